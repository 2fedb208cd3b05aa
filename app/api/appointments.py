"""Appointments through the API: book a free slot, move a visit through its states, read and list them.

The same services as the pages (`app.appointments.services`): the same rules, the same emails and audit rows
(with the client id), the same refusals. A taken slot is 409 with the nearest free slots as `alternatives`.
"""
from __future__ import annotations

from datetime import date, datetime
from functools import cache
from typing import Annotated

import sqlalchemy as sa
from flask import request, url_for
from pydantic import AwareDatetime, Field

from app.accounts.models import Role, User
from app.api import bp
from app.api.auth import actor, authorize, require_area
from app.api.framework import (MAX_LIMIT, ApiModel, Reply, check_if_match, decode_cursor, operation, page_model,
                               paged)
from app.api.problems import FieldError, Problem
from app.appointments.models import Appointment, Status
from app.appointments.services import (TRANSITIONS, BookingError, TransitionError, bookable_slots, book, reschedule,
                                       transition)
from app.clinic.models import Department
from app.extensions import db
from app.policy import Kind, Resource, Verb

CONFLICTS = {"slot_taken", "patient_overlap"}  # 409; any other refusal of a booking is 422 on starts_at
MAX_SLOT_DAYS = 31

Reason = Annotated[str, Field(min_length=1, max_length=500)]
Id = Annotated[int, Field(ge=1, le=10**18)]


class AppointmentOut(ApiModel):
    id: int
    patient_id: int
    doctor_id: int
    department_id: int
    starts_at: datetime
    ends_at: datetime
    status: Status
    reason: str
    status_reason: str | None
    doctor_name: str
    department_name: str
    patient_name: str


AppointmentPage = page_model(AppointmentOut)


class BookingIn(ApiModel):
    patient_id: Id | None = Field(None, description="Whom for: a patient's own token leaves it out; the front "
                                                   "desk (a clerk's token) names the patient.")
    doctor_id: Id
    department_id: Id
    starts_at: AwareDatetime = Field(description="The slot's start, RFC 3339 with an offset (a free slot's start).")
    reason: Reason


class ReasonIn(ApiModel):
    reason: Reason | None = Field(None, description="Required to decline, and for the clinic to cancel; the "
                                                    "patient sees it.")


class RescheduleIn(ApiModel):
    starts_at: AwareDatetime


class SlotOut(ApiModel):
    doctor_id: int
    department_id: int
    starts_at: datetime
    ends_at: datetime


class SlotList(ApiModel):
    items: list[SlotOut]


class SlotQuery(ApiModel):
    start: date = Field(description="The first day, in the clinic's time zone.")
    end: date = Field(description=f"The last day (inclusive), at most {MAX_SLOT_DAYS} days after start.")
    department_id: Id | None = None


class AppointmentQuery(ApiModel):
    start: AwareDatetime | None = Field(None, description="Only visits starting at or after this instant.")
    end: AwareDatetime | None = Field(None, description="Only visits starting before this instant.")
    status: list[Status] = Field(default_factory=list, max_length=len(Status))
    limit: int = Field(50, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(None, max_length=200)


def out(appointment: Appointment) -> AppointmentOut:
    return AppointmentOut(
        id=appointment.id, patient_id=appointment.patient_id, doctor_id=appointment.doctor_id,
        department_id=appointment.department_id, starts_at=appointment.starts_at, ends_at=appointment.ends_at,
        status=appointment.status, reason=appointment.reason, status_reason=appointment.status_reason,
        doctor_name=appointment.doctor_user.full_name, department_name=appointment.department.name,
        patient_name=appointment.patient.full_name)


def slot_out(slot) -> SlotOut:
    return SlotOut(doctor_id=slot.doctor_id, department_id=slot.department_id, starts_at=slot.start,
                   ends_at=slot.end)


def _load(appointment_id: int, verb: Verb) -> Appointment:
    """An appointment the token may `verb` (404 otherwise); a change locks the row and reads it afresh."""
    query = sa.select(Appointment).where(Appointment.id == appointment_id)
    if verb is Verb.WRITE:
        query = query.with_for_update().execution_options(populate_existing=True)
    appointment = db.session.scalar(query)
    authorize(verb, Resource.appointment(appointment_id, appointment))
    return appointment


# --- reading ----------------------------------------------------------------------------------------------

@operation(bp, "GET", "/appointments/<id:appointment_id>", tag="Appointments", summary="Get an appointment",
           response=AppointmentOut, scope="Appointment.r", errors=(404,))
def get_appointment(appointment_id: int):
    """The patient's own appointment, or one of the doctor's own."""
    return out(_load(appointment_id, Verb.READ))


_PATIENT, _DOCTOR = sa.orm.aliased(User), sa.orm.aliased(User)
# A list reads only what its items show: the appointment's columns and three names, not whole user rows.
_LIST_COLUMNS = (Appointment.id, Appointment.patient_id, Appointment.doctor_id, Appointment.department_id,
                 Appointment.starts_at, Appointment.ends_at, Appointment.status, Appointment.reason,
                 Appointment.status_reason, _DOCTOR.full_name.label("doctor_name"),
                 Department.name.label("department_name"), _PATIENT.full_name.label("patient_name"))


@cache
def _list_statement(owner: str, start: bool, end: bool, status: bool, cursor: bool) -> sa.Select:
    """The list's SELECT for one combination of filters, built once with bound parameters (a request neither
    builds nor keys it again)."""
    select = (sa.select(*_LIST_COLUMNS).where(getattr(Appointment, owner) == sa.bindparam("owner"))
              .join(_PATIENT, _PATIENT.id == Appointment.patient_id).join(_DOCTOR, _DOCTOR.id == Appointment.doctor_id)
              .join(Department, Department.id == Appointment.department_id)
              .order_by(Appointment.starts_at, Appointment.id).limit(sa.bindparam("limit")))
    if start:
        select = select.where(Appointment.starts_at >= sa.bindparam("start"))
    if end:
        select = select.where(Appointment.starts_at < sa.bindparam("end"))
    if status:
        select = select.where(Appointment.status.in_(sa.bindparam("status", expanding=True)))
    if cursor:
        select = select.where(sa.or_(Appointment.starts_at > sa.bindparam("after"),
                                     sa.and_(Appointment.starts_at == sa.bindparam("after"),
                                             Appointment.id > sa.bindparam("after_id"))))
    return select


def _list(query: AppointmentQuery, *, owner: str, owner_id: int) -> Reply:
    params = {"owner": owner_id, "limit": query.limit + 1}
    for name, value in (("start", query.start), ("end", query.end), ("status", list(query.status) or None)):
        if value is not None:
            params[name] = value
    position = decode_cursor(query.cursor, (str, int))
    if position is not None:
        try:
            params["after"] = datetime.fromisoformat(position[0])
            if params["after"].tzinfo is None:
                raise ValueError("a naive instant")
        except ValueError:
            raise Problem(422, "The cursor is not one this API gave.",
                          errors=[FieldError("cursor", "Not a cursor of this list.", in_query=True)]) from None
        params["after_id"] = position[1]
    select = _list_statement(owner, query.start is not None, query.end is not None, bool(query.status),
                             position is not None)
    rows = db.session.execute(select, params).all()
    items, cursor, headers = paged(rows, query.limit, lambda a: [a.starts_at.isoformat(), a.id],
                                   request.endpoint, **(request.view_args or {}))
    return Reply(AppointmentPage(items=[AppointmentOut(**row._asdict()) for row in items], next_cursor=cursor),
                 headers=headers)


@operation(bp, "GET", "/doctors/<id:doctor_id>/appointments", tag="Appointments", query=AppointmentQuery,
           summary="List a doctor's appointments", response=AppointmentPage, scope="Appointment.s",
           errors=(403, 404))
def list_doctor_appointments(doctor_id: int, query: AppointmentQuery):
    """The doctor's own schedule, oldest first, filtered by start and status; a cursor gives the next page."""
    require_area("doctor", Kind.APPOINTMENT, Verb.READ)
    if actor().user.id != doctor_id:
        authorize(Verb.READ, Resource.missing(Kind.APPOINTMENT, f"doctor:{doctor_id}"))
    return _list(query, owner="doctor_id", owner_id=doctor_id)


@operation(bp, "GET", "/patients/<id:patient_id>/appointments", tag="Appointments", query=AppointmentQuery,
           summary="List a patient's appointments", response=AppointmentPage, scope="Appointment.s",
           errors=(403, 404))
def list_patient_appointments(patient_id: int, query: AppointmentQuery):
    """The patient's own appointments (a patient's token reads no one else's), or any patient's for the front
    desk."""
    authorize(Verb.READ, Resource.appointments_of(db.session.get(User, patient_id), patient_id))
    return _list(query, owner="patient_id", owner_id=patient_id)


@operation(bp, "GET", "/doctors/<id:doctor_id>/slots", tag="Appointments", query=SlotQuery,
           summary="A doctor's free slots", response=SlotList, scope="Slot.r", errors=(422,))
def list_slots(doctor_id: int, query: SlotQuery):
    """The slots a patient can book now, by day range in the clinic's zone (past, booked and beyond the
    booking horizon left out)."""
    require_area(_own_area(), Kind.APPOINTMENT, Verb.READ)
    if query.end < query.start or (query.end - query.start).days > MAX_SLOT_DAYS:
        raise Problem(422, f"Ask for 1 to {MAX_SLOT_DAYS + 1} days.",
                      errors=[FieldError("end", f"From start to at most {MAX_SLOT_DAYS} days after.", in_query=True)])
    slots = bookable_slots([doctor_id], query.start, query.end, department_id=query.department_id).get(doctor_id, [])
    return SlotList(items=[slot_out(s) for s in slots])


def _own_area() -> str:
    return {Role.PATIENT: "patient", Role.DOCTOR: "doctor"}.get(actor().role, "billing")


# --- booking and changes -----------------------------------------------------------------------------------

@operation(bp, "POST", "/appointments", tag="Appointments", summary="Book a free slot", body=BookingIn,
           response=AppointmentOut, status=201, scope="Appointment.c", idempotent=True, errors=(409, 422))
def create_appointment(body: BookingIn):
    """A patient requests a free slot (or the front desk, a clerk, for a patient); it is `requested` until the
    doctor accepts. A slot taken meanwhile is 409 with the nearest free slots in `alternatives`."""
    patient = _patient_to_book_for(body.patient_id)
    try:
        appointment = book(patient, doctor_id=body.doctor_id, department_id=body.department_id,
                           starts_at=body.starts_at, reason=body.reason)
    except BookingError as refused:
        _refuse_booking(refused)
    return Reply(out(appointment), headers={"Location": url_for("api.get_appointment",
                                                                appointment_id=appointment.id)})


def _patient_to_book_for(patient_id: int | None) -> User:
    """The patient of a booking: the token's own patient, or the one the front desk names (the policy decides)."""
    me = actor().user
    if patient_id is None:
        if me.role is not Role.PATIENT:
            raise Problem(422, "Name the patient to book for.", errors=[FieldError("/patient_id", "Required.")])
        patient_id = me.id
    patient = db.session.get(User, patient_id)
    authorize(Verb.WRITE, Resource.appointments_of(patient, patient_id))
    return patient


def _refuse_booking(refused: BookingError):
    extensions = {"code": refused.code, "alternatives": [slot_out(s).model_dump(mode="json") for s in refused.alternatives]}
    if refused.code in CONFLICTS:
        raise Problem(409, str(refused), slug=refused.code.replace("_", "-"), title="Slot not available",
                      extensions=extensions)
    raise Problem(422, str(refused), errors=[FieldError("/starts_at", str(refused))], extensions=extensions)


def _change(appointment_id: int, to: Status, reason: str | None) -> AppointmentOut:
    appointment = _load(appointment_id, Verb.WRITE)
    check_if_match(out(appointment))
    rule = TRANSITIONS.get((appointment.status, to))
    if rule is not None and rule.reason_required and not reason:
        raise Problem(422, "Give a reason; the patient will see it.",
                      errors=[FieldError("/reason", "Required for this change.")])
    try:
        transition(appointment, to, actor().user, reason=reason)
    except TransitionError as error:
        raise Problem(409, str(error), slug="transition-not-allowed", title="Change not possible") from None
    return out(appointment)


def _state_change(slug: str, to: Status | None, summary: str, description: str) -> None:
    def view(appointment_id: int, body: ReasonIn):
        target = to
        if target is None:  # cancel: by the patient, or by the clinic
            target = Status.CANCELLED_BY_PATIENT if actor().role is Role.PATIENT else Status.CANCELLED_BY_CLINIC
        return _change(appointment_id, target, body.reason)

    view.__name__ = f"{slug.replace('-', '_')}_appointment"
    view.__doc__ = description
    operation(bp, "POST", f"/appointments/<id:appointment_id>/{slug}", tag="Appointments", summary=summary,
              body=ReasonIn, response=AppointmentOut, scope="Appointment.u", if_match=True,
              errors=(404, 409, 412, 422, 428))(view)


_state_change("accept", Status.CONFIRMED, "Accept a requested appointment", "The doctor confirms a request.")
_state_change("decline", Status.DECLINED, "Decline a requested appointment",
              "The doctor declines a request, with a reason the patient sees.")
_state_change("cancel", None, "Cancel an appointment",
              "The patient cancels (until the cutoff before the visit), or the doctor cancels with a reason.")
_state_change("check-in", Status.CHECKED_IN, "Check a patient in", "The doctor checks in a confirmed visit.")
_state_change("complete", Status.COMPLETED, "Complete a visit", "The doctor completes a checked-in visit.")
_state_change("no-show", Status.NO_SHOW, "Mark a no-show", "After its start, a confirmed visit nobody came to.")


@operation(bp, "POST", "/appointments/<id:appointment_id>/reschedule", tag="Appointments",
           summary="Move an appointment to another free slot", body=RescheduleIn, response=AppointmentOut,
           scope="Appointment.u", if_match=True, errors=(404, 409, 412, 422, 428))
def reschedule_appointment(appointment_id: int, body: RescheduleIn):
    """Another free slot of the same doctor; the doctor accepts the new time again."""
    appointment = _load(appointment_id, Verb.WRITE)
    check_if_match(out(appointment))
    try:
        reschedule(appointment, actor().user, starts_at=body.starts_at)
    except BookingError as refused:
        _refuse_booking(refused)
    except TransitionError as error:
        raise Problem(409, str(error), slug="transition-not-allowed", title="Change not possible") from None
    return out(appointment)
