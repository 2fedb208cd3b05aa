"""Sign up, sign in, sign out."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, request, session, url_for
from flask_login import current_user, login_user, logout_user

from app.accounts.models import Sex
from app.accounts.services import (AccountError, LoginThrottled, PatientRegistration, authenticate, record_sign_out,
                                   register_patient)
from app.auth.forms import LoginForm, SignupForm
from app.extensions import db
from app.web.rendering import redirect_to, render, render_form_errors

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site, so a crafted link cannot send the user elsewhere after sign-in."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def _start_session(user) -> None:
    # A fresh session at sign-in: nothing set before it (a planted session id, an old CSRF token) survives.
    session.clear()
    login_user(user)
    session.permanent = True


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    form = LoginForm()
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return render("auth/login.html", form=form, status=status)
    try:
        user = authenticate(form.email.data, form.password.data, request.remote_addr or "unknown")
    except LoginThrottled as throttled:
        db.session.commit()
        return render("auth/login.html", form=form, error=str(throttled), status=429)
    if user is None:
        db.session.commit()  # keep the failure, it counts towards the limit
        return render("auth/login.html", form=form, error="Email or password is incorrect.", status=422)
    _start_session(user)
    db.session.commit()
    return redirect_to(_safe_next(request.args.get("next")) or url_for("main.home"))


@bp.route("/logout", methods=["POST"])
def logout():
    if current_user.is_authenticated:
        record_sign_out(current_user)
        db.session.commit()
    logout_user()
    session.clear()
    flash("You have signed out.", "info")
    return redirect_to(url_for("auth.login"))


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    form = SignupForm()
    if not form.validate_on_submit():
        if form.is_submitted():
            return render_form_errors("auth/signup.html", form=form)
        return render("auth/signup.html", form=form)
    registration = PatientRegistration(
        full_name=form.full_name.data, email=form.email.data, password=form.password.data,
        date_of_birth=form.date_of_birth.data, sex=Sex(form.sex.data), phone=form.phone.data,
        address=form.address.data, emergency_contact_name=form.emergency_contact_name.data,
        emergency_contact_phone=form.emergency_contact_phone.data,
        insurance_provider=form.insurance_provider.data, insurance_policy_number=form.insurance_policy_number.data,
    )
    try:
        user = register_patient(registration)
    except AccountError as error:
        getattr(form, error.field).errors.append(str(error))
        return render_form_errors("auth/signup.html", form=form)
    _start_session(user)
    db.session.commit()
    flash(f"Welcome, {user.full_name}. Your account is ready.", "success")
    return redirect_to(url_for("patients.home"))
