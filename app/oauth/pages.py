"""The authorization server's pages for people: the consent page of the authorization endpoint
(RFC 6749 section 4.1.1) and "Connected apps", where a person sees and revokes what they allowed.

Both are pages of the site (HTML errors, CSRF on every form), for any signed-in person; service accounts never
sign in. A bad client or redirect address is shown as an error page and never redirected to (RFC 6749 section
4.1.2.1); every other error of the request goes back to the client's redirect address.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user

from app.accounts.models import Role
from app.accounts.queries import patients_doctor_may_open
from app.oauth import services
from app.oauth.forms import ConsentForm
from app.policy import Resource, Verb, decide
from app.web.access import current_actor, guard_blueprint
from app.web.rendering import redirect_to, render, safe_next
from app.web.security import allow_form_action

bp = Blueprint("oauth_pages", __name__)
guard_blueprint(bp, "account")


@bp.route("/oauth/authorize", methods=["GET", "POST"])
def authorize():
    if current_user.service_account:
        abort(403)
    try:
        auth = services.authorization_request(request.args, current_user)
    except services.BadAuthorizationRequest as problem:
        return render("errors/error.html", status=400, title="This sign-in link cannot be used",
                      message=str(problem))
    if auth.error is not None:
        return redirect(auth.error_redirect(), code=303)
    form = ConsentForm()
    valid = form.validate_on_submit()
    if valid and form.decision.data == "deny":
        return redirect(services.deny(auth), code=303)
    patient_id = _picked_patient(form) if valid and auth.pick_patient else None
    if not valid or (auth.pick_patient and patient_id is None):
        allow_form_action(auth.redirect_origin)
        choices = patients_doctor_may_open(current_user.id) if auth.pick_patient else []
        return render("oauth/consent.html", auth=auth, form=form, choices=choices, query="",
                      status=422 if form.is_submitted() else 200)
    return redirect(services.approve(auth, current_user, patient_id), code=303)


def _picked_patient(form: ConsentForm) -> int | None:
    """The patient a clinician chose for a `launch/patient` request, if the policy lets them open the record;
    otherwise None, with the reason beside the field."""
    raw = (form.patient.data or "").strip()
    if not raw:
        form.patient.errors = ["Choose the patient whose record the app opens."]
        return None
    patient_id = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else 0
    if not decide(current_actor(), Verb.READ, Resource.record(patient_id)).allowed:
        form.patient.errors = ["You may open only the records of patients in your care (or opened by break-glass "
                               "on the chart)."]
        return None
    return patient_id


@bp.get("/oauth/authorize/patients")
def patient_choices():
    """The consent page's patient picker, narrowed by name (HTMX)."""
    if current_user.role is not Role.DOCTOR:
        abort(404)
    query = (request.args.get("q") or "").strip()[:120]
    return render("oauth/_patient_choices.html", choices=patients_doctor_may_open(current_user.id, query),
                  query=query, form=ConsentForm(formdata=None))


@bp.get("/account/apps")
def connected_apps():
    return render("oauth/connected_apps.html", apps=services.connected_apps(current_user))


@bp.post("/account/apps/<int:grant_id>/revoke")
def revoke_app(grant_id: int):
    grant = services.grant_of(current_user, grant_id)
    if grant is None:
        abort(404)
    services.revoke_grant(grant, "user")
    flash(f"{grant.client.name} can no longer use your account.", "success")
    return redirect_to(safe_next(request.form.get("next"), url_for("oauth_pages.connected_apps")))
