"""The doctor's workspace: today, their profile, weekly availability and leave."""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, abort, current_app, flash, url_for
from flask_login import current_user

from app.accounts.forms import choices
from app.appointments.services import bookable_slots
from app.clinic.forms import DoctorSelfForm
from app.clinic.models import DoctorProfile
from app.clinic.services import get_doctor, update_own_profile
from app.extensions import db
from app.accounts.sessions import current_session, live_sessions
from app.oauth.services import connected_apps
from app.policy import Resource, Verb
from app.scheduling.forms import UnavailabilityForm, WindowForm
from app.scheduling.models import Unavailability, UnavailabilityKind, WeeklyAvailability
from app.scheduling.services import (ScheduleError, add_unavailability, add_window, delete_unavailability,
                                     delete_window, leave, local_range, windows)
from app.scheduling.slots import by_day
from app.timeutil import clinic_today
from app.web.access import authorize, guard_blueprint
from app.web.rendering import redirect_to, render

bp = Blueprint("doctors", __name__, url_prefix="/doctor")
guard_blueprint(bp, "doctor")


def _my_profile() -> DoctorProfile:
    profile = get_doctor(current_user.id)
    if profile is None:
        abort(404, description="Your doctor profile is not set up yet: ask an administrator to complete it.")
    return profile


@bp.route("/profile", methods=["GET", "POST"])
def profile():
    doctor = _my_profile()
    form = DoctorSelfForm(data={"phone": doctor.user.phone, "bio": doctor.bio} if not DoctorSelfForm().is_submitted()
                          else None)
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return render("doctors/profile.html", form=form, doctor=doctor, apps=connected_apps(doctor.user),
                      sessions=live_sessions(doctor.user, current_session()), status=status)
    update_own_profile(doctor, phone=form.phone.data, bio=form.bio.data)
    flash("Your profile is saved.", "success")
    return redirect_to(url_for("doctors.profile"))


def _availability_page(doctor: DoctorProfile, *, window_form=None, leave_form=None, status: int = 200):
    window_form = window_form or WindowForm()
    window_form.department_id.choices = choices((d.id, d.name) for d in doctor.departments)
    leave_form = leave_form or UnavailabilityForm()
    today = clinic_today()
    days = current_app.config["HMS_SLOT_PREVIEW_DAYS"]
    slots = bookable_slots([doctor.user_id], today, today + timedelta(days=days - 1))[doctor.user_id]
    return render("doctors/availability.html", doctor=doctor, windows=windows(doctor.user_id),
                  leave=leave(doctor.user_id, from_day=today), window_form=window_form, leave_form=leave_form,
                  preview=by_day(slots), preview_days=days, status=status)


@bp.route("/availability")
def availability():
    return _availability_page(_my_profile())


@bp.route("/availability/windows", methods=["POST"])
def add_availability_window():
    doctor = _my_profile()
    form = WindowForm()
    form.department_id.choices = choices((d.id, d.name) for d in doctor.departments)
    if not form.validate_on_submit():
        return _availability_page(doctor, window_form=form, status=422)
    try:
        add_window(doctor, department_id=form.department_id.data, weekday=form.weekday.data,
                   start=form.start_time.data, end=form.end_time.data, slot_minutes=form.slot_minutes.data)
    except ScheduleError as error:
        form[error.field].errors.append(str(error))
        return _availability_page(doctor, window_form=form, status=422)
    flash("Availability added.", "success")
    return redirect_to(url_for("doctors.availability"))


def _own(model, entry_id: int):
    """One of the signed-in doctor's schedule entries (the policy answers 404 for another's)."""
    entry = db.session.get(model, entry_id)
    authorize(Verb.WRITE, Resource.schedule_entry(entry_id, entry))
    return entry


@bp.route("/availability/windows/<int:window_id>/delete", methods=["POST"])
def remove_availability_window(window_id: int):
    doctor = _my_profile()
    delete_window(doctor, _own(WeeklyAvailability, window_id))
    flash("Availability removed.", "success")
    return redirect_to(url_for("doctors.availability"))


@bp.route("/availability/leave", methods=["POST"])
def add_leave():
    doctor = _my_profile()
    form = UnavailabilityForm()
    if not form.validate_on_submit():
        return _availability_page(doctor, leave_form=form, status=422)
    starts, ends = local_range(form.start_day.data, form.start_time.data, form.end_day.data, form.end_time.data)
    try:
        add_unavailability(doctor, starts=starts, ends=ends, kind=UnavailabilityKind(form.kind.data),
                           reason=form.reason.data)
    except ScheduleError as error:
        form[error.field].errors.append(str(error))
        return _availability_page(doctor, leave_form=form, status=422)
    flash("Time off added; those slots can no longer be booked.", "success")
    return redirect_to(url_for("doctors.availability"))


@bp.route("/availability/leave/<int:entry_id>/delete", methods=["POST"])
def remove_leave(entry_id: int):
    doctor = _my_profile()
    delete_unavailability(doctor, _own(Unavailability, entry_id))
    flash("Time off removed.", "success")
    return redirect_to(url_for("doctors.availability"))


from app.doctors import appointments  # noqa: E402,F401  (the schedule: home, list and actions)
from app.doctors import records  # noqa: E402,F401  (medical records: encounters, chart, break-glass)
