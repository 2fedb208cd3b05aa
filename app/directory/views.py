"""The doctors directory, for patients and visitors: live search and a page per doctor."""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, abort, request

from app.accounts.forms import choices
from app.appointments.services import bookable_slots, next_bookable_slot
from app.clinic.forms import DoctorSearchForm
from app.clinic.services import departments, doctors_query, get_doctor
from app.scheduling.slots import by_day
from app.timeutil import clinic_today
from app.web.pagination import paginate
from app.web.rendering import render

bp = Blueprint("directory", __name__, url_prefix="/doctors")

PER_PAGE = 24


@bp.route("/")
def index():
    form = DoctorSearchForm(request.args)
    del form.state
    form.department.choices = choices([("", "All departments")]
                                      + [(str(d.id), d.name) for d in departments(active_only=True)])
    valid = form.validate()
    department_id = int(form.department.data) if valid and form.department.data else None
    query = doctors_query(search=form.q.data if valid else None, department_id=department_id, active=True)
    page = paginate(query, per_page=PER_PAGE)
    next_slots = next_bookable_slot([doctor.user_id for doctor in page.items], department_id=department_id)
    return render("directory/index.html", fragment="directory/_results.html", form=form, page=page,
                  next_slots=next_slots, status=200 if valid else 422)


@bp.route("/<int:doctor_id>")
def doctor(doctor_id: int):
    profile = get_doctor(doctor_id)
    if profile is None or not profile.user.active:
        abort(404)
    today = clinic_today()
    slots = bookable_slots([doctor_id], today, today + timedelta(days=13))[doctor_id]
    names = {d.id: d.name for d in profile.departments}
    return render("directory/doctor.html", doctor=profile, slots_by_day=by_day(slots), department_names=names)
