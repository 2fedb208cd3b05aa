"""The authorization server's pages for people: the consent page of the authorization endpoint
(RFC 6749 section 4.1.1) and "Connected apps", where a person sees and revokes what they allowed.

Both are pages of the site (HTML errors, CSRF on every form), for any signed-in person; service accounts never
sign in. A bad client or redirect address is shown as an error page and never redirected to (RFC 6749 section
4.1.2.1); every other error of the request goes back to the client's redirect address.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user

from app.oauth import services
from app.oauth.forms import ConsentForm
from app.web.access import guard_blueprint
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
    if not form.validate_on_submit():
        allow_form_action(auth.redirect_origin)
        return render("oauth/consent.html", auth=auth, form=form, status=422 if form.is_submitted() else 200)
    if form.decision.data == "allow":
        return redirect(services.approve(auth, current_user), code=303)
    return redirect(services.deny(auth), code=303)


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
