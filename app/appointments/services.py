"""Booking and the appointment life cycle. Every status change goes through `transition` (or `book`,
`reschedule`), which checks the rules, records the history and emits the event.

Double booking is impossible whatever the timing: a booking locks the patient's and the doctor's
existing rows (always in that order, so two bookings cannot deadlock each other), re-checks the slot
under those locks, and the unique keys on (doctor, start, active) and (patient, start, active) stop
anything that gets past. Functions add and flush; the caller commits (a request: `app.web.unit_of_work`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from app.accounts.models import Role, User
from app.appointments.models import ACTIVE, Appointment, Status, StatusChange
from app.clinic.models import DoctorProfile
from app.events.outbox import emit
from app.extensions import db
from app.scheduling.slots import NEXT_FREE_LOOKAHEAD_DAYS, Slot, free_slots, next_free_slot
from app.timeutil import clinic_zone, utcnow


class BookingError(Exception):
    """A booking or reschedule the rules refuse; `alternatives` are the nearest free slots."""

    def __init__(self, message: str, code: str, alternatives: list[Slot] | None = None):
        super().__init__(message)
        self.code = code
        self.alternatives = alternatives or []


class TransitionError(Exception):
    """A status change that is not allowed from the current state, or not for this person (HTTP 409)."""


# (from, to) -> who may make the change, and whether a reason is required
@dataclass(frozen=True)
class Rule:
    roles: tuple[str, ...]
    reason_required: bool = False
    event: str = ""


TRANSITIONS: dict[tuple[Status, Status], Rule] = {
    (Status.REQUESTED, Status.CONFIRMED): Rule(("doctor",), event="confirmed"),
    (Status.REQUESTED, Status.DECLINED): Rule(("doctor",), reason_required=True, event="declined"),
    (Status.REQUESTED, Status.CANCELLED_BY_PATIENT): Rule(("patient",), event="cancelled"),
    (Status.CONFIRMED, Status.CANCELLED_BY_PATIENT): Rule(("patient",), event="cancelled"),
    (Status.REQUESTED, Status.CANCELLED_BY_CLINIC): Rule(("doctor", "admin"), reason_required=True, event="cancelled"),
    (Status.CONFIRMED, Status.CANCELLED_BY_CLINIC): Rule(("doctor", "admin"), reason_required=True, event="cancelled"),
    (Status.CONFIRMED, Status.CHECKED_IN): Rule(("doctor",), event="checked_in"),
    (Status.CHECKED_IN, Status.COMPLETED): Rule(("doctor",), event="completed"),
    (Status.CONFIRMED, Status.NO_SHOW): Rule(("doctor", "system"), event="no_show"),
}


def _config(name: str):
    return current_app.config[name]


def cutoff() -> timedelta:
    return timedelta(hours=_config("HMS_CANCEL_CUTOFF_HOURS"))


def can_patient_change(appointment: Appointment, now: datetime | None = None) -> bool:
    """Before the cutoff a patient may reschedule or cancel; after it they call the clinic."""
    return appointment.status in (Status.REQUESTED, Status.CONFIRMED) and \
        appointment.starts_at - (now or utcnow()) >= cutoff()


# --- slots --------------------------------------------------------------------------------------------

def busy_intervals(doctor_ids: list[int], start: datetime, end: datetime, *, excluding: int | None = None,
                   locking: bool = False) -> dict[int, list[tuple[datetime, datetime]]]:
    """Active appointments of these doctors overlapping [start, end), in one query. `locking` reads the
    latest committed rows (a plain read may see the transaction's older snapshot)."""
    query = sa.select(Appointment.doctor_id, Appointment.starts_at, Appointment.ends_at).where(
        Appointment.doctor_id.in_(doctor_ids), Appointment.active.is_(True),
        Appointment.starts_at < end, Appointment.ends_at > start)
    if excluding is not None:
        query = query.where(Appointment.id != excluding)
    if locking:
        query = query.with_for_update(read=True)
    busy: dict[int, list[tuple[datetime, datetime]]] = {}
    for doctor_id, starts_at, ends_at in db.session.execute(query):
        busy.setdefault(doctor_id, []).append((starts_at, ends_at))
    return busy


def _utc_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    zone = clinic_zone()
    return (datetime.combine(start, datetime.min.time(), tzinfo=zone),
            datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=zone))


def bookable_slots(doctor_ids: list[int], start: date, end: date, *, department_id: int | None = None,
                   now: datetime | None = None, excluding: int | None = None,
                   locking: bool = False) -> dict[int, list[Slot]]:
    """Free slots minus booked appointments, within the booking horizon (three queries in all)."""
    horizon_end = (now or utcnow()).astimezone(clinic_zone()).date() + timedelta(days=_config("HMS_BOOKING_HORIZON_DAYS"))
    end = min(end, horizon_end)
    if end < start:
        return {doctor_id: [] for doctor_id in doctor_ids}
    lo, hi = _utc_bounds(start, end)
    busy = busy_intervals(doctor_ids, lo, hi, excluding=excluding, locking=locking)
    return free_slots(doctor_ids, start, end, now=now, busy=busy, department_id=department_id)


def next_bookable_slot(doctor_ids: list[int], *, department_id: int | None = None) -> dict[int, Slot | None]:
    """Each doctor's first bookable slot in the next weeks (three queries in all)."""
    now = utcnow()
    busy = busy_intervals(doctor_ids, now, now + timedelta(days=NEXT_FREE_LOOKAHEAD_DAYS + 1))
    return next_free_slot(doctor_ids, now=now, busy=busy, department_id=department_id)


def nearest_slots(doctor_id: int, around: datetime, *, department_id: int | None = None, count: int = 3,
                  excluding: int | None = None) -> list[Slot]:
    day = around.astimezone(clinic_zone()).date()
    slots = bookable_slots([doctor_id], day, day + timedelta(days=14), department_id=department_id,
                           excluding=excluding)[doctor_id]
    return sorted(slots, key=lambda s: abs((s.start - around).total_seconds()))[:count]


# --- booking ------------------------------------------------------------------------------------------

def _lock(patient_id: int, doctor_id: int) -> DoctorProfile:
    db.session.execute(sa.select(User.id).where(User.id == patient_id).with_for_update())
    doctor = db.session.scalar(sa.select(DoctorProfile).where(DoctorProfile.user_id == doctor_id).with_for_update())
    if doctor is None or not doctor.user.active:
        raise BookingError("This doctor cannot be booked.", "unavailable")
    return doctor


def _check_slot(doctor_id: int, department_id: int, starts_at: datetime, *, patient_id: int,
                excluding: int | None = None) -> Slot:
    now = utcnow()
    if starts_at <= now:
        raise BookingError("That time has already passed. Choose a time in the future.", "past",
                           nearest_slots(doctor_id, now, department_id=department_id, excluding=excluding))
    horizon = _config("HMS_BOOKING_HORIZON_DAYS")
    if starts_at.astimezone(clinic_zone()).date() > now.astimezone(clinic_zone()).date() + timedelta(days=horizon):
        raise BookingError(f"Appointments can be booked up to {horizon} days ahead.", "horizon")
    day = starts_at.astimezone(clinic_zone()).date()
    slots = bookable_slots([doctor_id], day, day, department_id=department_id, now=now, excluding=excluding,
                           locking=True)[doctor_id]
    slot = next((s for s in slots if s.start == starts_at), None)
    if slot is None:
        raise BookingError("That slot was just taken or is no longer available.", "slot_taken",
                           nearest_slots(doctor_id, starts_at, department_id=department_id, excluding=excluding))
    overlapping = db.session.scalar(sa.select(Appointment.id).where(
        Appointment.patient_id == patient_id, Appointment.active.is_(True), Appointment.starts_at < slot.end,
        Appointment.ends_at > slot.start, *([Appointment.id != excluding] if excluding else []))
        .limit(1).with_for_update(read=True))
    if overlapping is not None:
        raise BookingError("You already have an appointment at that time.", "patient_overlap")
    return slot


def _record(appointment: Appointment, from_status: Status | None, to_status: Status, actor_id: int | None,
            reason: str | None = None) -> None:
    appointment.status = to_status
    appointment.active = True if to_status in ACTIVE else None
    db.session.add(StatusChange(appointment=appointment, from_status=from_status, to_status=to_status,
                                actor_id=actor_id, reason=reason, starts_at=appointment.starts_at))


def event_data(appointment: Appointment, **extra) -> dict:
    return {"doctor_id": appointment.doctor_id, "patient_id": appointment.patient_id,
            "department_id": appointment.department_id, "starts_at": appointment.starts_at.isoformat(),
            "ends_at": appointment.ends_at.isoformat(), "status": appointment.status.value, **extra}


def _save_or_taken(apply, *, doctor_id: int, department_id: int, starts_at: datetime) -> None:
    """Make the change inside a savepoint: if a unique key refuses it, only the savepoint is lost."""
    try:
        with db.session.begin_nested():
            apply()
            db.session.flush()
    except IntegrityError as error:
        if "patient_slot" in str(error.orig):
            raise BookingError("You already have an appointment at that time.", "patient_overlap") from None
        raise BookingError("That slot was just taken.", "slot_taken",
                           nearest_slots(doctor_id, starts_at, department_id=department_id)) from None


def book(patient: User, *, doctor_id: int, department_id: int, starts_at: datetime, reason: str) -> Appointment:
    """A patient's request for a free slot; it is `requested` until the doctor accepts."""
    _lock(patient.id, doctor_id)
    slot = _check_slot(doctor_id, department_id, starts_at, patient_id=patient.id)
    appointment = Appointment(patient_id=patient.id, doctor_id=doctor_id, department_id=department_id,
                              starts_at=slot.start, ends_at=slot.end, reason=reason.strip())

    def insert() -> None:
        db.session.add(appointment)
        _record(appointment, None, Status.REQUESTED, patient.id)

    _save_or_taken(insert, doctor_id=doctor_id, department_id=department_id, starts_at=slot.start)
    emit("appointment.requested", "appointment", appointment.id, event_data(appointment, reason=appointment.reason),
         patient_id=patient.id)
    return appointment


def reschedule(appointment: Appointment, actor: User, *, starts_at: datetime) -> Appointment:
    """Move to another free slot of the same doctor; the doctor accepts the new time again."""
    if actor.role is Role.PATIENT and not can_patient_change(appointment):
        raise TransitionError("It is too late to change this appointment online. Please call the clinic.")
    if appointment.status not in (Status.REQUESTED, Status.CONFIRMED):
        raise TransitionError(f"A {appointment.status.label.lower()} appointment cannot be rescheduled.")
    _lock(appointment.patient_id, appointment.doctor_id)
    slot = _check_slot(appointment.doctor_id, appointment.department_id, starts_at,
                       patient_id=appointment.patient_id, excluding=appointment.id)
    previous = appointment.starts_at

    def move() -> None:
        appointment.starts_at, appointment.ends_at = slot.start, slot.end
        _record(appointment, appointment.status, Status.REQUESTED, actor.id, "rescheduled")

    _save_or_taken(move, doctor_id=appointment.doctor_id, department_id=appointment.department_id,
                   starts_at=slot.start)
    emit("appointment.rescheduled", "appointment", appointment.id,
         event_data(appointment, previous_starts_at=previous.isoformat()), patient_id=appointment.patient_id)
    return appointment


def transition(appointment: Appointment, to: Status, actor: User | None, *, reason: str | None = None,
               now: datetime | None = None) -> None:
    """Change the status if the rules allow it for this actor (None = the system's sweep)."""
    now = now or utcnow()
    rule = TRANSITIONS.get((appointment.status, to))
    role = actor.role.value if actor is not None else "system"
    if rule is None:
        raise TransitionError(f"A {appointment.status.label.lower()} appointment cannot become "
                              f"{to.label.lower()}.")
    if role not in rule.roles:
        raise TransitionError("You cannot make this change.")
    if rule.reason_required and not (reason or "").strip():
        raise TransitionError("Give a reason; the patient will see it.")
    if to is Status.CANCELLED_BY_PATIENT and not can_patient_change(appointment, now):
        raise TransitionError("It is too late to cancel online. Please call the clinic.")
    if to is Status.NO_SHOW and now < appointment.starts_at:
        raise TransitionError("A patient can be marked as a no-show only after the appointment's start.")
    reason = (reason or "").strip() or None
    _record(appointment, appointment.status, to, actor.id if actor else None, reason)
    appointment.status_reason = reason
    db.session.flush()
    emit(f"appointment.{rule.event}", "appointment", appointment.id, event_data(appointment, reason=reason),
         patient_id=appointment.patient_id,
         actor=None if actor is None else {"id": actor.id, "role": actor.role.value})
