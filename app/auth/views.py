"""Sign up, sign in, sign out; set a password through an emailed link."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, request, session, url_for
from flask_login import current_user, login_user, logout_user

from app.accounts.models import Sex
from app.accounts.services import (AccountError, LoginThrottled, PatientRegistration, ProofOfControlNeeded,
                                   authenticate, normalize_email, record_sign_out, sign_up)
from app.accounts.sessions import end_session, start_session
from app.accounts.tokens import TokenProblem, check_password_token, request_password_reset, use_password_token
from app.api import ratelimit
from app.auth.second_factor import after_password
from app.auth.forms import ForgotPasswordForm, LoginForm, SetPasswordForm, SignupForm
from app.extensions import db
from app.web.unit_of_work import keep_despite_error
from app.web.rendering import redirect_to, render, render_form_errors, safe_next

bp = Blueprint("auth", __name__)


def _start_session(user) -> None:
    # A fresh session at sign-in: nothing set before it (a planted session id, an old CSRF token) survives.
    session.clear()
    session["sid"] = start_session(user)
    login_user(user)
    session.permanent = True


def _emails_spent(form_name: str, email: str | None = None) -> str | None:
    """A form that sends an email (sign-up, a password link) is limited per address and, given `email`, per email
    address (the inbox it would write to), so it cannot flood an inbox or probe addresses in bulk: the message to
    show beside the email, or None. (A password link is also limited per account, silently:
    `request_password_reset`.)"""
    buckets = [(form_name, request.remote_addr or "unknown", "HMS_EMAIL_FORM_RATE_LIMIT")]
    if email is not None:
        buckets.append((f"{form_name}-to", normalize_email(email), "HMS_EMAIL_FORM_RATE_LIMIT_EMAIL"))
    usage = ratelimit.spend(*buckets)
    if usage is None:
        return None
    return f"Too many requests for now. Try again in {max(1, -(-usage.reset // 60))} minutes."


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    form = LoginForm()
    if not form.validate_on_submit():
        if not form.is_submitted():
            form.email.data = request.args.get("email", "")[:254]  # from "Check your email" after a sign-up
        status = 422 if form.is_submitted() else 200
        return render("auth/login.html", form=form, status=status)
    try:
        user = authenticate(form.email.data, form.password.data, request.remote_addr or "unknown")
    except LoginThrottled as throttled:
        keep_despite_error()  # the refusal is audited
        response = render("auth/login.html", form=form, error=str(throttled), status=429)
        response.headers["Retry-After"] = str(throttled.retry_after_seconds)
        return response
    except ProofOfControlNeeded:
        keep_despite_error()  # the emailed link and the audit
        return render("auth/login.html", form=form, status=403, error=(
            "Many failed sign-ins for this account came from elsewhere, so the password alone is not enough now. "
            "We emailed you a link: set a password through it, then sign in."))
    if user is None:
        keep_despite_error()  # keep the failure, it counts towards the limit
        return render("auth/login.html", form=form, error="Email or password is incorrect.", status=422)
    return after_password(user, safe_next(request.args.get("next"), url_for("main.home")))


@bp.route("/logout", methods=["POST"])
def logout():
    if current_user.is_authenticated:
        record_sign_out(current_user)
    end_session(session.get("sid"))
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
    refused = _emails_spent("signup", form.email.data)
    if refused is not None:
        form.email.errors.append(refused)
        return render("auth/signup.html", form=form, status=429)
    registration = PatientRegistration(
        full_name=form.full_name.data, email=form.email.data, password=form.password.data,
        date_of_birth=form.date_of_birth.data, sex=Sex(form.sex.data), phone=form.phone.data,
        address=form.address.data, emergency_contact_name=form.emergency_contact_name.data,
        emergency_contact_phone=form.emergency_contact_phone.data,
        insurance_provider=form.insurance_provider.data, insurance_policy_number=form.insurance_policy_number.data,
    )
    try:
        sign_up(registration)
    except AccountError as error:
        getattr(form, error.field).errors.append(str(error))
        return render_form_errors("auth/signup.html", form=form)
    # The same answer whether or not the address already had an account (its owner is emailed instead).
    return render("auth/signup_done.html", email=normalize_email(form.email.data))


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot_password():
    form = ForgotPasswordForm()
    if not form.validate_on_submit():
        if form.is_submitted():
            return render_form_errors("auth/forgot_password.html", form=form)
        form.email.data = form.email.data or request.args.get("email", "")[:254]
        return render("auth/forgot_password.html", form=form)
    refused = _emails_spent("reset")
    if refused is not None:
        form.email.errors.append(refused)
        return render("auth/forgot_password.html", form=form, status=429)
    request_password_reset(form.email.data)
    # The same answer whether or not the address has an account.
    return render("auth/forgot_password.html", form=form, sent=True)


LINK_PROBLEM_STATUS = {"expired": 410, "used": 410, "unknown": 404}


def _link_problem(problem: TokenProblem):
    return render("auth/password_link_problem.html", reason=problem.reason, email=problem.email,
                  status=LINK_PROBLEM_STATUS[problem.reason])


@bp.route("/password/<token>", methods=["GET", "POST"])
def use_password_link(token: str):
    try:
        link = check_password_token(token)
    except TokenProblem as problem:
        return _link_problem(problem)
    form = SetPasswordForm()
    if not form.validate_on_submit():
        if form.is_submitted():
            return render_form_errors("auth/set_password.html", form=form, purpose=link.purpose)
        return render("auth/set_password.html", form=form, purpose=link.purpose)
    try:
        use_password_token(token, form.password.data)
    except TokenProblem as problem:  # the link was used meanwhile, from another tab or device
        db.session.rollback()
        return _link_problem(problem)
    except AccountError as error:
        getattr(form, error.field).errors.append(str(error))
        return render_form_errors("auth/set_password.html", form=form, purpose=link.purpose)
    flash("Your password is set. Sign in with it.", "success")
    return redirect_to(url_for("auth.login"))
