"""A patient's appointments: book (step by step on one page), list, view, reschedule and cancel.

Routes of the patients blueprint. The booking steps are one URL, `/patient/book?department=…&doctor=…
&day=…&start=…`: the whole page without HTMX, and with HTMX the part of the page below the deepest
choice made (FRAGMENTS). Booking, rescheduling and cancelling call `app.appointments.services`.
"""
from __future__ import annotations

import sqlalchemy as sa

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask import current_app, flash, request, url_for
from flask_login import current_user

from app.appointments.models import Appointment, Status
from app.appointments.queries import for_patient
from app.appointments.services import (BookingError, TransitionError, book, bookable_slots, can_patient_change,
                                       reschedule, transition)
from app.clinic.models import Department, DoctorProfile
from app.clinic.services import departments, doctors_query, get_doctor
from app.extensions import db
from app.patients.forms import BookingForm, RescheduleForm, parse_start
from app.patients.views import bp
from app.policy import Resource, Verb
from app.scheduling.slots import Slot, by_day
from app.timeutil import clinic_today, clinic_zone, utcnow
from app.web.access import authorize
from app.web.rendering import redirect_to, render

CHANGEABLE = (Status.REQUESTED, Status.CONFIRMED)  # by the patient, before the cutoff
CONFLICTS = {"slot_taken", "patient_overlap"}  # 409; every other BookingError is 422

# The deepest choice in the query -> the fragment htmx swaps: the step where that choice was made, with
# everything below it (so the chosen button shows as chosen), except for the department's <select>,
# which shows its own choice, so its answer starts at the doctors.
FRAGMENTS = {"start": "patients/_book_slot.html", "day": "patients/_book_day.html",
             "doctor": "patients/_book_doctor.html", "department": "patients/_book_doctor.html"}


def doctor_title(name: str) -> str:
    return name if re.match(r"Dr\.?\s", name) else f"Dr {name}"


def _date_arg(name: str) -> date | None:
    try:
        return date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return None


# --- choosing a day and a time ----------------------------------------------------------------------------

@dataclass
class TimeChoice:
    """The free slots of the coming days and the day and time chosen among them, for the booking and
    the reschedule pickers. `url(day=…)` / `url(start=…)` link to the same page with that choice."""

    days: dict[date, list[Slot]] = field(default_factory=dict)
    day: date | None = None
    start: datetime | None = None
    slot: Slot | None = None
    notice: str | None = None

    def choose(self, slots: list[Slot], day: date | None, start: datetime | None, *, keep_time: bool) -> None:
        """Keep the day and time only while they are free; with `keep_time` (a refused request, shown
        again with its message) the chosen time stays even if it is no longer free."""
        self.days = by_day(slots)
        if start is not None:
            day = start.astimezone(clinic_zone()).date()
        if day is None or (day not in self.days and not keep_time):
            if day is not None:
                self.notice = "No free times are left on that day. Choose another day."
            return
        self.day = day
        self.slot = next((s for s in self.days.get(day, []) if s.start == start), None)
        if self.slot is not None or keep_time:
            self.start = start
        elif start is not None:
            self.notice = "That time is no longer free. Choose another time."

    def url(self, **choice) -> str:
        raise NotImplementedError


def _coming_slots(doctor_id: int, department_id: int, *, excluding: int | None = None) -> list[Slot]:
    today = clinic_today()
    return bookable_slots([doctor_id], today, today + timedelta(days=current_app.config["HMS_SLOT_PREVIEW_DAYS"] - 1),
                          department_id=department_id, excluding=excluding)[doctor_id]


# --- booking ------------------------------------------------------------------------------------------

@dataclass
class BookingSteps(TimeChoice):
    """The choices made so far, each checked against what can still be booked."""

    departments: list[Department] = field(default_factory=list)
    department: Department | None = None
    doctors: list[DoctorProfile] = field(default_factory=list)
    doctor: DoctorProfile | None = None

    def url(self, **choice) -> str:
        """The booking page with this choice, the earlier ones kept and the later ones dropped."""
        earlier = {"department": self.department.id if self.department else None,
                   "doctor": self.doctor.user_id if self.doctor else None, "day": self.day}
        names = [*earlier, "start"]
        last = max(names.index(name) for name in choice)
        args = {name: value for name, value in earlier.items() if names.index(name) < last} | choice
        return url_for("patients.book", **{name: value.isoformat() if isinstance(value, date) else value
                                           for name, value in args.items() if value is not None})


def _booking_steps(department_id: int | None, doctor_id: int | None, day: date | None, start: datetime | None,
                   *, keep_time: bool = False) -> BookingSteps:
    steps = BookingSteps(departments=departments(active_only=True))
    if department_id is None and doctor_id is not None:  # e.g. a link from the directory: the doctor's department
        profile = get_doctor(doctor_id)
        active = [d for d in profile.departments if d.active] if profile else []
        department_id = active[0].id if len(active) == 1 else None
    steps.department = next((d for d in steps.departments if d.id == department_id), None)
    if steps.department is None:
        return steps
    steps.doctors = list(db.session.scalars(doctors_query(department_id=steps.department.id, active=True)))
    steps.doctor = next((d for d in steps.doctors if d.user_id == doctor_id), None)
    if steps.doctor is not None:
        steps.choose(_coming_slots(steps.doctor.user_id, steps.department.id), day, start, keep_time=keep_time)
    return steps


def _deepest_choice() -> str:
    return next((name for name in ("start", "day", "doctor", "department") if request.args.get(name)), "department")


def _book_page(steps: BookingSteps, form: BookingForm, *, error: BookingError | None = None, status: int = 200):
    return render("patients/book.html", fragment=FRAGMENTS[_deepest_choice()] if request.method == "GET" else None,
                  steps=steps, form=form, error=error, status=status)


@bp.route("/book", methods=["GET", "POST"], endpoint="book")
def booking_page():
    """GET: the booking steps. POST: request the chosen slot."""
    if request.method == "POST":
        return _request_appointment()
    start = parse_start(request.args.get("start"))
    steps = _booking_steps(request.args.get("department", type=int), request.args.get("doctor", type=int),
                           _date_arg("day"), start)
    form = BookingForm(formdata=None, department=steps.department and steps.department.id,
                       doctor=steps.doctor and steps.doctor.user_id, start=steps.start)
    return _book_page(steps, form)


def _request_appointment():
    form = BookingForm()
    error, status = None, 422
    if form.validate_on_submit():
        try:
            appointment = book(current_user, doctor_id=form.doctor.data, department_id=form.department.data,
                               starts_at=form.start.data, reason=form.reason.data)
        except BookingError as refused:
            db.session.rollback()
            error, status = refused, 409 if refused.code in CONFLICTS else 422
        else:
            flash(f"Requested — {doctor_title(appointment.doctor_user.full_name)} will confirm.", "success")
            return redirect_to(url_for("patients.appointment", appointment_id=appointment.id))
    if form.reason.errors:  # the page reloads after a POST: bring the message into view
        form.reason.render_kw = {**form.reason.render_kw, "autofocus": True}
    steps = _booking_steps(form.department.data, form.doctor.data, None, form.start.data, keep_time=True)
    return _book_page(steps, form, error=error, status=status)


# --- my appointments ----------------------------------------------------------------------------------

@bp.route("/appointments")
def appointments():
    upcoming, past = for_patient(current_user.id)
    return render("patients/appointments.html", upcoming=upcoming, past=past)


@bp.app_template_filter()
def patient_status(status: Status) -> str:
    """A status as the patient reads it: their own cancellation is "Cancelled by you"."""
    return "Cancelled by you" if status is Status.CANCELLED_BY_PATIENT else status.label


def _own_appointment(appointment_id: int) -> Appointment:
    """The signed-in patient's appointment (404 otherwise). A change locks the row and reads it afresh, so a
    doctor's decline or cancel that lands at the same moment is never overwritten."""
    query = sa.select(Appointment).where(Appointment.id == appointment_id)
    if request.method == "POST":
        query = query.with_for_update().execution_options(populate_existing=True)
    appointment = db.session.scalar(query)
    authorize(Verb.READ if request.method == "GET" else Verb.WRITE, Resource.appointment(appointment_id, appointment))
    return appointment


def _appointment_page(appointment: Appointment, *, fragment: str | None = None, status: int = 200, **context):
    can_change = can_patient_change(appointment)
    late = not can_change and appointment.status in CHANGEABLE and appointment.starts_at > utcnow()
    return render("patients/appointment.html", fragment=fragment, status=status, appointment=appointment,
                  can_change=can_change, late=late, cutoff_hours=current_app.config["HMS_CANCEL_CUTOFF_HOURS"],
                  Status=Status, **context)


@bp.route("/appointments/<int:appointment_id>")
def appointment(appointment_id: int):
    return _appointment_page(_own_appointment(appointment_id))


# --- reschedule and cancel ------------------------------------------------------------------------------

@dataclass
class RescheduleSteps(TimeChoice):
    appointment_id: int = 0

    def url(self, **choice) -> str:
        args = ({"day": self.day} if "start" in choice else {}) | choice
        return url_for("patients.reschedule_appointment", appointment_id=self.appointment_id,
                       **{name: value.isoformat() for name, value in args.items() if value is not None})


def _reschedule_steps(appointment: Appointment, day: date | None, start: datetime | None, *,
                      keep_time: bool = False) -> RescheduleSteps:
    """The free times of the same doctor and department, the appointment's own time left out."""
    slots = _coming_slots(appointment.doctor_id, appointment.department_id, excluding=appointment.id)
    steps = RescheduleSteps(appointment_id=appointment.id)
    steps.choose([s for s in slots if s.start != appointment.starts_at], day, start, keep_time=keep_time)
    return steps


def _too_late(appointment: Appointment, message: str | None = None):
    """The appointment page, as 409: the change is no longer possible (the page says why)."""
    return _appointment_page(appointment, status=409, problem=message)


@bp.route("/appointments/<int:appointment_id>/reschedule", methods=["GET", "POST"])
def reschedule_appointment(appointment_id: int):
    """GET: choose a new day and time (HTMX: the picker alone). POST: move the appointment there."""
    appointment = _own_appointment(appointment_id)
    if not can_patient_change(appointment):
        return _too_late(appointment, None if appointment.status in CHANGEABLE else
                         f"A {appointment.status.label.lower()} appointment cannot be rescheduled.")
    if request.method == "GET":
        steps = _reschedule_steps(appointment, _date_arg("day"), parse_start(request.args.get("start")))
        return _appointment_page(appointment, fragment="patients/_reschedule.html", rescheduling=steps,
                                 form=RescheduleForm(formdata=None, start=steps.start))
    form = RescheduleForm()
    if not form.validate_on_submit():
        steps = _reschedule_steps(appointment, None, None)
        return _appointment_page(appointment, rescheduling=steps, form=form, status=422)
    try:
        reschedule(appointment, current_user, starts_at=form.start.data)
    except BookingError as error:
        db.session.rollback()
        steps = _reschedule_steps(appointment, None, form.start.data, keep_time=True)
        return _appointment_page(appointment, rescheduling=steps, form=form, error=error,
                                 status=409 if error.code in CONFLICTS else 422)
    except TransitionError as error:
        db.session.rollback()
        return _too_late(appointment, str(error))
    flash(f"Moved — {doctor_title(appointment.doctor_user.full_name)} will confirm the new time.", "success")
    return redirect_to(url_for("patients.appointment", appointment_id=appointment.id))


@bp.post("/appointments/<int:appointment_id>/cancel")
def cancel_appointment(appointment_id: int):
    appointment = _own_appointment(appointment_id)
    try:
        transition(appointment, Status.CANCELLED_BY_PATIENT, current_user)
    except TransitionError as error:
        db.session.rollback()
        return _too_late(appointment, str(error))
    flash("Your appointment is cancelled.", "success")
    return redirect_to(url_for("patients.appointment", appointment_id=appointment.id))
