"""Administration of departments and doctors (routes of the admin blueprint)."""
from __future__ import annotations

from flask import abort, flash, request, url_for

from app.admin.views import PER_PAGE, bp
from app.clinic.forms import DepartmentForm, DoctorForm, DoctorSearchForm
from app.clinic.models import Department
from app.clinic.services import (ClinicError, DoctorDetails, create_doctor, delete_department, department_doctor_counts,
                                 departments, doctors_query, get_doctor, save_department, set_department_active,
                                 set_doctor_active, update_doctor)
from app.accounts.forms import choices
from app.extensions import db
from app.web.rendering import redirect_to, render, render_form_errors
from app.web.pagination import paginate


# --- departments ------------------------------------------------------------------------------------

def _department_or_404(department_id: int) -> Department:
    department = db.session.get(Department, department_id)
    if department is None:
        abort(404)
    return department


def _departments_page(form: DepartmentForm, status: int = 200):
    return render("admin/departments.html", form=form, departments=departments(),
                  counts=department_doctor_counts(), status=status)


@bp.route("/departments", methods=["GET", "POST"])
def departments_page():
    form = DepartmentForm()
    if not form.validate_on_submit():
        return _departments_page(form, 422 if form.is_submitted() else 200)
    try:
        department = save_department(None, name=form.name.data, description=form.description.data)
    except ClinicError as error:
        form[error.field].errors.append(str(error))
        return _departments_page(form, 422)
    flash(f"Department {department.name} created.", "success")
    return redirect_to(url_for("admin.departments_page"))


@bp.route("/departments/<int:department_id>", methods=["GET", "POST"])
def edit_department(department_id: int):
    department = _department_or_404(department_id)
    form = DepartmentForm(obj=department)
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return render("admin/department_edit.html", form=form, department=department, status=status)
    try:
        save_department(department, name=form.name.data, description=form.description.data)
    except ClinicError as error:
        form[error.field].errors.append(str(error))
        return render_form_errors("admin/department_edit.html", form=form, department=department)
    flash(f"Department {department.name} saved.", "success")
    return redirect_to(url_for("admin.departments_page"))


@bp.route("/departments/<int:department_id>/<any(activate, deactivate):action>", methods=["POST"])
def toggle_department(department_id: int, action: str):
    department = _department_or_404(department_id)
    set_department_active(department, action == "activate")
    flash(f"{department.name} is {'active' if department.active else 'deactivated'}.", "success")
    return redirect_to(url_for("admin.departments_page"))


@bp.route("/departments/<int:department_id>/delete", methods=["POST"])
def remove_department(department_id: int):
    department = _department_or_404(department_id)
    try:
        delete_department(department)
    except ClinicError as error:
        flash(str(error), "danger")
        return redirect_to(url_for("admin.departments_page"))
    flash(f"Department {department.name} deleted.", "success")
    return redirect_to(url_for("admin.departments_page"))


# --- doctors ----------------------------------------------------------------------------------------

def _department_choices(form, *, active_only: bool = True) -> None:
    form.department_ids.choices = choices((d.id, d.name) for d in departments(active_only=active_only))


@bp.route("/doctors")
def doctors():
    form = DoctorSearchForm(request.args)
    form.department.choices = choices([("", "All departments")] + [(str(d.id), d.name) for d in departments()])
    valid = form.validate()
    state = form.state.data if valid and request.args.get("state") is not None else "active"
    query = doctors_query(search=form.q.data if valid else None,
                          department_id=int(form.department.data) if valid and form.department.data else None,
                          active={"active": True, "inactive": False}.get(state))
    page = paginate(query, per_page=PER_PAGE)
    return render("admin/doctors.html", fragment="admin/_doctors_table.html", form=form, page=page,
                  status=200 if valid else 422)


def _details(form: DoctorForm) -> DoctorDetails:
    return DoctorDetails(full_name=form.full_name.data, email=form.email.data, phone=form.phone.data,
                         department_ids=form.department_ids.data, specialty=form.specialty.data,
                         licence_number=form.licence_number.data, consultation_fee=form.consultation_fee.data,
                         bio=form.bio.data)


@bp.route("/doctors/new", methods=["GET", "POST"])
def new_doctor():
    from app.accounts.tokens import issue_password_token

    form = DoctorForm()
    _department_choices(form)
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return render("admin/doctor_form.html", form=form, doctor=None, status=status)
    try:
        profile = create_doctor(_details(form))
    except ClinicError as error:
        form[error.field].errors.append(str(error))
        return render_form_errors("admin/doctor_form.html", form=form, doctor=None)
    issue_password_token(profile.user, "set_password")
    flash(f"{profile.user.full_name} can now set a password with the link sent to {profile.user.email}.", "success")
    return redirect_to(url_for("admin.doctor_detail", doctor_id=profile.user_id))


def _doctor_or_404(doctor_id: int):
    profile = get_doctor(doctor_id)
    if profile is None:
        abort(404)
    return profile


@bp.route("/doctors/<int:doctor_id>")
def doctor_detail(doctor_id: int):
    from app.scheduling.services import windows

    profile = _doctor_or_404(doctor_id)
    return render("admin/doctor_detail.html", doctor=profile, windows=windows(profile.user_id))


@bp.route("/doctors/<int:doctor_id>/edit", methods=["GET", "POST"])
def edit_doctor(doctor_id: int):
    profile = _doctor_or_404(doctor_id)
    form = DoctorForm(obj=profile.user if request.method == "GET" else None,
                      data={"specialty": profile.specialty, "licence_number": profile.licence_number,
                            "consultation_fee": profile.consultation_fee, "bio": profile.bio,
                            "department_ids": [d.id for d in profile.departments]} if request.method == "GET" else None)
    _department_choices(form, active_only=False)
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return render("admin/doctor_form.html", form=form, doctor=profile, status=status)
    try:
        update_doctor(profile, _details(form))
    except ClinicError as error:
        form[error.field].errors.append(str(error))
        return render_form_errors("admin/doctor_form.html", form=form, doctor=profile)
    flash(f"{profile.user.full_name} saved.", "success")
    return redirect_to(url_for("admin.doctor_detail", doctor_id=profile.user_id))


@bp.route("/doctors/<int:doctor_id>/<any(activate, deactivate):action>", methods=["POST"])
def toggle_doctor(doctor_id: int, action: str):
    profile = _doctor_or_404(doctor_id)
    set_doctor_active(profile, action == "activate")
    state = "active again" if profile.user.active else "deactivated: they can no longer sign in or be booked"
    flash(f"{profile.user.full_name} is {state}.", "success")
    return redirect_to(url_for("admin.doctor_detail", doctor_id=profile.user_id))
