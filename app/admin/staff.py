"""Billing clerks and admins: the admin onboards and offboards them (routes of the admin blueprint)."""
from __future__ import annotations

from flask import abort, flash, request, url_for
from flask_login import current_user

from app.accounts import sessions
from app.accounts.models import Role, User
from app.accounts.services import AccountError, create_staff, get_staff, set_staff_active, staff_query
from app.accounts.tokens import issue_password_token
from app.admin.forms import StaffForm
from app.admin.views import PER_PAGE, bp
from app.extensions import db
from app.web.pagination import paginate
from app.web.rendering import redirect_to, render, render_form_errors, safe_next


@bp.route("/staff")
def staff():
    page = paginate(staff_query(), per_page=PER_PAGE)
    return render("admin/staff.html", fragment="admin/_staff_table.html", page=page)


@bp.route("/staff/new", methods=["GET", "POST"])
def new_staff():
    form = StaffForm()
    if not form.validate_on_submit():
        return render("admin/staff_form.html", form=form, status=422 if form.is_submitted() else 200)
    try:
        user = create_staff(role=Role(form.role.data), email=form.email.data, full_name=form.full_name.data,
                            phone=form.phone.data)
    except AccountError as error:
        form[error.field].errors.append(str(error))
        return render_form_errors("admin/staff_form.html", form=form)
    issue_password_token(user, "set_password")
    flash(f"{user.full_name} ({user.role.label.lower()}) can now set a password with the link sent to {user.email}.",
          "success")
    return redirect_to(url_for("admin.staff"))


@bp.route("/staff/<int:user_id>/<any(activate, deactivate):action>", methods=["POST"])
def toggle_staff(user_id: int, action: str):
    user = get_staff(user_id)
    if user is None:
        abort(404)
    try:
        set_staff_active(user, action == "activate", by=current_user)
    except AccountError as error:
        db.session.rollback()
        flash(str(error), "danger")
        return redirect_to(url_for("admin.staff"))
    state = "active again" if user.active else "deactivated: they are signed out and can no longer sign in"
    flash(f"{user.full_name} is {state}.", "success")
    return redirect_to(url_for("admin.staff"))


@bp.route("/users/<int:user_id>/sign-out", methods=["POST"])
def sign_out_everywhere(user_id: int):
    """Any person's "End all sessions" (a lost phone, a shared computer): every session ends at once."""
    user = db.session.get(User, user_id)
    if user is None or user.service_account or user.id == current_user.id:
        abort(404)
    count = sessions.sign_out_everywhere(user, by=current_user)
    flash(f"All sessions of {user.full_name} have ended ({count} open session{'s' if count != 1 else ''}).",
          "success")
    return redirect_to(safe_next(request.form.get("next"), url_for("admin.staff")))
