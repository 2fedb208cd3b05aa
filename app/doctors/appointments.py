"""The doctor's schedule (routes of the doctors blueprint): today, the week and the pending requests on the
dashboard, every appointment in a filtered list, and the actions that move a visit through its states.

Every change goes through `transition`; an action answers with the appointment's row, which HTMX swaps
in place, so the row carries everything the templates need to know about it (`Schedule`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from flask import request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from app.appointments.models import Appointment, Status
from app.appointments.queries import for_doctor, schedule_version
from app.appointments.services import TRANSITIONS, TransitionError, transition
from app.clinic.services import get_doctor
from app.doctors.forms import AppointmentFilterForm, ReasonForm, reason_form, status_label
from app.doctors.views import bp
from app.extensions import db
from app.policy import Resource, Verb
from app.scheduling.services import local_range
from app.timeutil import clinic_today, to_clinic_time, utcnow
from app.web.access import authorize
from app.web.pagination import paginate
from app.web.rendering import failure, fragment_or_redirect, is_htmx, render, safe_next

PER_PAGE = 20
PENDING_SHOWN = 20
ON_THE_SCHEDULE = [Status.REQUESTED, Status.CONFIRMED, Status.CHECKED_IN, Status.COMPLETED, Status.NO_SHOW]


@dataclass(frozen=True)
class Action:
    slug: str
    to: Status
    label: str
    done: str
    style: str


ACTIONS = {action.slug: action for action in (
    Action("accept", Status.CONFIRMED, "Accept", "Accepted. The patient is told.", "btn-success"),
    Action("decline", Status.DECLINED, "Decline", "Declined. The patient is told why.", "btn-outline-danger"),
    Action("check-in", Status.CHECKED_IN, "Check in", "Checked in.", "btn-primary"),
    Action("complete", Status.COMPLETED, "Complete", "Completed.", "btn-success"),
    Action("no-show", Status.NO_SHOW, "No-show", "Marked as a no-show.", "btn-outline-secondary"),
    Action("cancel", Status.CANCELLED_BY_CLINIC, "Cancel", "Cancelled. The patient is told why.", "btn-outline-danger"),
)}


def _allowed(appointment: Appointment, action: Action):
    rule = TRANSITIONS.get((appointment.status, action.to))
    return rule if rule is not None and "doctor" in rule.roles else None


class Schedule:
    """What the schedule's templates ask about an appointment: its local time, its label, the actions on
    offer now and the reason form. `keep_open` marks open reason forms to survive the dashboard's refresh."""

    def __init__(self, *, back: str, keep_open: bool = False, failed: tuple[int, ReasonForm] | None = None):
        self.now = utcnow()
        self.today = clinic_today()
        self.back = back
        self.keep_open = keep_open
        self._failed = failed

    @property
    def on_dashboard(self) -> bool:
        """Rows on the dashboard share its request queue with its refresh (see doctors/_dashboard.html)."""
        return self.back == url_for("doctors.home")

    local = staticmethod(to_clinic_time)
    label = staticmethod(status_label)

    def actions(self, appointment: Appointment) -> list[Action]:
        """The changes a doctor can make now. A request is answered (accept or decline), not cancelled;
        a visit is checked in from its day on, cancelled before it starts, a no-show after."""
        offered = []
        for action in ACTIONS.values():
            if _allowed(appointment, action) is None:
                continue
            if action.to is Status.CANCELLED_BY_CLINIC and (appointment.status is Status.REQUESTED
                                                            or appointment.starts_at <= self.now):
                continue
            if action.to is Status.NO_SHOW and appointment.starts_at > self.now:
                continue
            if action.to is Status.CHECKED_IN and self.local(appointment.starts_at).date() > self.today:
                continue
            offered.append(action)
        return offered

    @staticmethod
    def needs_reason(appointment: Appointment, action: Action) -> bool:
        rule = _allowed(appointment, action)
        return rule is not None and rule.reason_required

    def form(self, appointment: Appointment) -> ReasonForm:
        if self._failed and self._failed[0] == appointment.id:
            return self._failed[1]
        return reason_form(appointment.id)

    @staticmethod
    def url(appointment: Appointment, action: Action) -> str:
        return url_for("doctors.act", appointment_id=appointment.id, action=action.slug)


def _back(default: str) -> str:
    """Where a plain (non-HTMX) form returns to: a page of the doctor's own area, nothing else."""
    return safe_next(request.form.get("next"), default, within=url_for("doctors.home"))


def _current_path() -> str:
    return request.full_path.rstrip("?")


# --- the dashboard ------------------------------------------------------------------------------------

def _week(today: date) -> list[date]:
    monday = today - timedelta(days=today.weekday())
    return [monday + timedelta(days=n) for n in range(7)]


VERSION_HEADER = "X-Schedule-Version"


@bp.route("/")
def home():
    schedule = Schedule(back=url_for("doctors.home"), keep_open=True)
    days = _week(schedule.today)
    week_start, week_end = local_range(days[0], None, days[-1], None)
    version = schedule_version(current_user.id, week_start, now=schedule.now, today=schedule.today,
                               statuses=ON_THE_SCHEDULE)
    if is_htmx() and request.headers.get(VERSION_HEADER) == version:
        return Response(status=204)  # the 30 s refresh of an unchanged schedule: htmx swaps nothing
    week: dict[date, list[Appointment]] = {day: [] for day in days}
    for appointment in db.session.scalars(for_doctor(current_user.id, start=week_start, end=week_end,
                                                     statuses=ON_THE_SCHEDULE)):
        week[schedule.local(appointment.starts_at).date()].append(appointment)
    agenda = [a for a in week[schedule.today] if a.status is not Status.REQUESTED]
    today_start, _ = local_range(schedule.today, None, schedule.today, None)
    pending = list(db.session.scalars(for_doctor(current_user.id, start=today_start, statuses=[Status.REQUESTED])
                                      .limit(PENDING_SHOWN + 1)))
    return render("doctors/home.html", fragment="doctors/_dashboard.html", doctor=current_user,
                  profile=get_doctor(current_user.id), schedule=schedule, agenda=agenda, week=week,
                  pending=pending[:PENDING_SHOWN], more_pending=len(pending) > PENDING_SHOWN, version=version,
                  version_header=VERSION_HEADER)


# --- the list -----------------------------------------------------------------------------------------

def _bounds(start: date | None, end: date | None) -> tuple[datetime | None, datetime | None]:
    """Clinic-local days, inclusive, as the UTC instants that enclose them."""
    return (local_range(start, None, start, None)[0] if start else None,
            local_range(end, None, end, None)[1] if end else None)


@bp.route("/appointments")
def appointments():
    form = AppointmentFilterForm(request.args)
    page = None
    valid = form.validate()
    if valid:
        start, end = _bounds(form.start.data, form.end.data)
        query = for_doctor(current_user.id, start=start, end=end,
                           statuses=[Status(form.status.data)] if form.status.data else None)
        page = paginate(query, per_page=PER_PAGE)
    return render("doctors/appointments.html", fragment="doctors/_appointments.html", form=form, page=page,
                  schedule=Schedule(back=_current_path()), status=200 if valid else 422)


# --- actions ------------------------------------------------------------------------------------------

def _own(appointment_id: int, *, for_update: bool = False) -> Appointment:
    """One of the signed-in doctor's appointments (the policy answers 404 for another doctor's). A change locks
    the row and reads it afresh, so a patient's cancel landing at the same moment is never overwritten."""
    query = sa.select(Appointment).where(Appointment.id == appointment_id)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    appointment = db.session.scalar(query)
    authorize(Verb.WRITE if for_update else Verb.READ, Resource.appointment(appointment_id, appointment))
    return appointment


def _change(appointment_id: int, action: Action, reason: str | None) -> Appointment:
    appointment = _own(appointment_id, for_update=True)
    transition(appointment, action.to, current_user._get_current_object(), reason=reason)
    return appointment


def act(appointment_id: int, action: str):
    """Accept, decline, check in, complete, mark a no-show or cancel: one of the doctor's own appointments."""
    change = ACTIONS[action]
    appointment = _own(appointment_id)
    schedule = Schedule(back=_back(url_for("doctors.home")))
    reason = None
    if schedule.needs_reason(appointment, change):
        form = reason_form(appointment.id, formdata=request.form)
        if not form.validate():
            if not is_htmx():
                return failure(422, "Give a reason", " ".join(form.reason.errors))
            schedule = Schedule(back=schedule.back, failed=(appointment.id, form))
            return render("doctors/_appointment.html", a=appointment, schedule=schedule, status=422)
        reason = form.reason.data
    try:
        appointment = _change(appointment_id, change, reason)
    except TransitionError as error:
        db.session.rollback()
        return failure(409, "This change is not possible now", str(error))
    return fragment_or_redirect("doctors/_appointment.html", schedule.back, flash_message=change.done,
                                a=appointment, schedule=schedule)


# One fixed URL per action (not an `any` converter), so every rule builds from the appointment id alone.
for _slug in ACTIONS:
    bp.add_url_rule(f"/appointments/<int:appointment_id>/{_slug}", "act", act, methods=["POST"],
                    defaults={"action": _slug})
