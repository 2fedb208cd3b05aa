"""The second step of signing in, and each person's own second factor.

After a correct password (`app/auth/views.py`), a person with an authenticator, or whose role must have one,
is not signed in yet: the session cookie holds only who passed the password and when (signed, 10 minutes), no
server session is started and Flask-Login sees an anonymous visitor, so every page but these two steps still
sends them to sign in. `/login/code` takes the authenticator's code or a recovery code; `/login/setup` enrols an
authenticator for a person who must have one and has none (the first sign-in, or after an admin's reset).
`/account/two-factor` lets a signed-in person set one up, get new recovery codes, or (when their role does not
require one) turn it off; an admin resets someone's factor from the staff and doctor pages.
"""
from __future__ import annotations

import segno
from flask import Blueprint, abort, flash, redirect, request, session, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from app.accounts import second_factor as factors
from app.accounts import totp
from app.accounts.models import User
from app.accounts.services import LoginThrottled, check_login_throttle, sign_in_succeeded
from app.auth.forms import AuthenticatorCodeForm, NewPhoneForm, SecondFactorCodeForm
from app.extensions import db
from app.timeutil import utcnow
from app.web.access import current_actor, requires
from app.web.rendering import redirect_to, render, render_form_errors, safe_next
from app.web.unit_of_work import keep_despite_error

bp = Blueprint("second_factor", __name__)

PENDING = "pending_sign_in"
NEW_SECRET = "new_authenticator_secret"
PENDING_SECONDS = 10 * 60


def after_password(user: User, next_url: str) -> Response:
    """The password was right: sign in now, or ask for the second factor first."""
    if not factors.has_factor(user) and not factors.is_required(user):
        return _finish(user, next_url, "password")
    session.clear()  # nothing set before (a planted session, an old CSRF token) survives
    session[PENDING] = {"user_id": user.id, "version": user.session_version, "at": utcnow().timestamp(),
                        "next": next_url}
    step = "second_factor.verify" if factors.has_factor(user) else "second_factor.setup"
    return redirect_to(url_for(step))


def _finish(user: User, next_url: str, method: str) -> Response:
    from app.auth.views import _start_session

    sign_in_succeeded(user, method=method)
    _start_session(user)
    return redirect_to(next_url)


def _pending() -> tuple[User, str] | None:
    """Who passed the password in this browser within the last ten minutes, and where they were going."""
    pending = session.get(PENDING)
    if not isinstance(pending, dict) or utcnow().timestamp() - pending.get("at", 0) > PENDING_SECONDS:
        return None
    user = db.session.get(User, pending.get("user_id"))
    if user is None or not user.active or user.session_version != pending.get("version"):
        return None
    return user, pending.get("next") or url_for("main.home")


def _start_again() -> Response:
    session.pop(PENDING, None)
    flash("Sign in again: the sign-in was not finished within 10 minutes.", "warning")
    return redirect(url_for("auth.login"))


def _qr_svg(uri: str) -> str:
    """The provisioning URI as an inline SVG (no script, no style attribute: the CSP stays strict)."""
    return segno.make(uri, error="m").svg_inline(scale=4, dark="#000", light="#fff", border=2,
                                                 title="QR code of your authenticator key")


def _new_secret() -> str:
    """The secret being set up in this browser: kept in the session until confirmed, so a reload shows the same."""
    secret = session.get(NEW_SECRET)
    if not isinstance(secret, str) or len(secret) != 32:
        secret = session[NEW_SECRET] = totp.new_secret()
    return secret


def _setup_page(user: User, form, *, status: int = 200, signed_in: bool) -> Response:
    secret = _new_secret()
    uri = factors.provisioning_uri(user, secret)
    return render("auth/second_factor_setup.html", form=form, secret=secret, qr_svg=_qr_svg(uri),
                  grouped=" ".join(secret[i:i + 4] for i in range(0, len(secret), 4)), signed_in=signed_in,
                  required=factors.is_required(user), status=status)


@bp.route("/login/code", methods=["GET", "POST"])
def verify():
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    pending = _pending()
    if pending is None:
        return _start_again()
    user, next_url = pending
    if not factors.has_factor(user):  # reset by an admin meanwhile
        return redirect(url_for("second_factor.setup"))
    form = SecondFactorCodeForm()
    if not form.validate_on_submit():
        return render("auth/second_factor.html", form=form, status=422 if form.is_submitted() else 200)
    ip = request.remote_addr or "unknown"
    try:
        check_login_throttle(user.email, ip, user)
        method = factors.verify(user, form.code.data, ip)
    except LoginThrottled as throttled:
        keep_despite_error()
        return render("auth/second_factor.html", form=form, error=str(throttled), status=429)
    except factors.SecondFactorError as wrong:
        keep_despite_error()  # the failure counts towards the throttle
        form.code.errors.append(str(wrong))
        return render_form_errors("auth/second_factor.html", form=form)
    response = _finish(user, next_url, method)  # a new session: flash after it
    if method == "recovery_code":
        left = factors.recovery_codes_left(user)
        flash(f"You signed in with a recovery code; {left} left. Lost your phone? Set up the app again under"
              f" Two-factor sign-in.", "warning")
    return response


@bp.route("/login/setup", methods=["GET", "POST"])
def setup():
    if current_user.is_authenticated:
        return redirect(url_for("second_factor.manage"))
    pending = _pending()
    if pending is None:
        return _start_again()
    user, next_url = pending
    if factors.has_factor(user):
        return redirect(url_for("second_factor.verify"))
    form = AuthenticatorCodeForm()
    if not form.validate_on_submit():
        return _setup_page(user, form, status=422 if form.is_submitted() else 200, signed_in=False)
    try:
        codes = factors.enrol(user, _new_secret(), form.code.data)
    except factors.SecondFactorError as wrong:
        form.code.errors.append(str(wrong))
        return _setup_page(user, form, status=422, signed_in=False)
    sign_in_succeeded(user, method="totp")
    from app.auth.views import _start_session

    _start_session(user)
    return render("auth/recovery_codes.html", codes=codes, next_url=next_url)


# --- a signed-in person's own second factor ---------------------------------------------------------------------

@bp.get("/account/two-factor")
@requires("account")
def manage():
    user = current_actor().user
    return render("auth/two_factor.html", enrolled=factors.has_factor(user), required=factors.is_required(user),
                  codes_left=factors.recovery_codes_left(user), form=SecondFactorCodeForm(formdata=None))


@bp.route("/account/two-factor/setup", methods=["GET", "POST"])
@requires("account")
def enrol():
    user = current_actor().user
    moving = factors.has_factor(user)
    form = NewPhoneForm() if moving else AuthenticatorCodeForm()
    if not form.validate_on_submit():
        return _setup_page(user, form, status=422 if form.is_submitted() else 200, signed_in=True)
    if moving:
        try:
            factors.verify(user, form.current_code.data, request.remote_addr or "unknown")
        except factors.SecondFactorError as wrong:
            keep_despite_error()  # counted like a wrong code at sign-in
            form.current_code.errors.append(str(wrong))
            return _setup_page(user, form, status=422, signed_in=True)
    try:
        codes = factors.enrol(user, _new_secret(), form.code.data)
    except factors.SecondFactorError as wrong:
        form.code.errors.append(str(wrong))
        return _setup_page(user, form, status=422, signed_in=True)
    session.pop(NEW_SECRET, None)
    return render("auth/recovery_codes.html", codes=codes, next_url=url_for("second_factor.manage"))


def _checked_code(user: User, form) -> Response | None:
    """An error page unless the form carries a valid code of the person's factor (counted like a sign-in)."""
    if not factors.has_factor(user):
        return redirect_to(url_for("second_factor.manage"))
    problem = None
    if form.validate_on_submit():
        try:
            factors.verify(user, form.code.data, request.remote_addr or "unknown")
            return None
        except factors.SecondFactorError as wrong:
            keep_despite_error()
            problem = str(wrong)
    if problem:
        form.code.errors.append(problem)
    return render_form_errors("auth/two_factor.html", enrolled=True, required=factors.is_required(user),
                              codes_left=factors.recovery_codes_left(user), form=form)


@bp.post("/account/two-factor/recovery-codes")
@requires("account")
def new_recovery_codes():
    user = current_actor().user
    form = SecondFactorCodeForm()
    if (refused := _checked_code(user, form)) is not None:
        return refused
    codes = factors.issue_recovery_codes(user)
    return render("auth/recovery_codes.html", codes=codes, next_url=url_for("second_factor.manage"))


@bp.post("/account/two-factor/remove")
@requires("account")
def remove():
    user = current_actor().user
    if factors.is_required(user):
        return render("auth/two_factor.html", enrolled=factors.has_factor(user), required=True,
                      codes_left=factors.recovery_codes_left(user), form=SecondFactorCodeForm(formdata=None),
                      error="Your role must sign in with a second factor; it cannot be turned off.", status=409)
    form = SecondFactorCodeForm()
    if (refused := _checked_code(user, form)) is not None:
        return refused
    factors.remove_factor(user, by=user)
    flash("Two-factor sign-in is off: you sign in with your password alone.", "success")
    return redirect_to(url_for("second_factor.manage"))


# --- an admin resets someone's second factor --------------------------------------------------------------------

@bp.post("/admin/users/<int:user_id>/second-factor/reset")
@requires("admin")
def reset(user_id: int):
    user = db.session.get(User, user_id)
    if user is None or user.service_account:
        abort(404)
    admin = current_actor().user
    back = safe_next(request.form.get("next"), url_for("admin.staff"), within="/admin/")
    if user.id == admin.id:
        flash("You cannot reset your own second factor; another admin can, or use a recovery code.", "danger")
    elif factors.remove_factor(user, by=admin):
        flash(f"{user.full_name}'s second factor is reset: they set up a new one at their next sign-in and have"
              f" been emailed.", "success")
    else:
        flash(f"{user.full_name} has no second factor to reset.", "info")
    return redirect_to(back)
