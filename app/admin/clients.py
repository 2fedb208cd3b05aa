"""API clients of the authorization server: the admin registers, rotates and disables them (routes of the admin
blueprint). A new secret is shown once, in the answer of the request that made it, and never again."""
from __future__ import annotations

from flask import abort, flash, url_for
from flask_login import current_user

from app.accounts.models import Role
from app.admin.views import PER_PAGE, bp
from app.oauth.forms import ClientForm
from app.oauth.models import ClientKind, OAuthClient
from app.oauth.services import (ClientError, ClientRegistration, clients_query, get_client, register_client,
                                rotate_secret, set_client_active)
from app.web.pagination import paginate
from app.web.rendering import redirect_to, render, render_form_errors


@bp.route("/clients")
def clients():
    return render("admin/clients.html", page=paginate(clients_query(), per_page=PER_PAGE))


@bp.route("/clients/new", methods=["GET", "POST"])
def new_client():
    form = ClientForm()
    if not form.validate_on_submit():
        return render("admin/client_form.html", form=form, status=422 if form.is_submitted() else 200)
    registration = ClientRegistration(
        name=form.name.data, kind=ClientKind(form.kind.data), redirect_uris=form.uris(),
        grant_types=form.grant_types.data, allowed_scopes=form.allowed_scopes.data,
        service_role=Role(form.service_role.data) if form.service_role.data else None)
    try:
        client, secret = register_client(registration, by=current_user)
    except ClientError as error:
        form[error.field].errors.append(str(error))
        return render_form_errors("admin/client_form.html", form=form)
    return render("admin/client.html", client=client, secret=secret, created=True, status=201)


def _client_or_404(client_pk: int) -> OAuthClient:
    client = get_client(client_pk)
    if client is None:
        abort(404)
    return client


@bp.route("/clients/<int:client_pk>")
def client(client_pk: int):
    return render("admin/client.html", client=_client_or_404(client_pk), secret=None)


@bp.route("/clients/<int:client_pk>/rotate", methods=["POST"])
def rotate_client_secret(client_pk: int):
    client = _client_or_404(client_pk)
    try:
        secret = rotate_secret(client)
    except ClientError as error:
        flash(str(error), "danger")
        return redirect_to(url_for("admin.client", client_pk=client.id))
    return render("admin/client.html", client=client, secret=secret)


@bp.route("/clients/<int:client_pk>/<any(activate, deactivate):action>", methods=["POST"])
def toggle_client(client_pk: int, action: str):
    client = _client_or_404(client_pk)
    set_client_active(client, action == "activate")
    state = "enabled" if client.active else "disabled: its tokens stop working now"
    flash(f"{client.name} is {state}.", "success")
    return redirect_to(url_for("admin.client", client_pk=client.id))
