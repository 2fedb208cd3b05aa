"""`flask oauth-clients …`: register an API client from the command line (the admin's "API clients" page does
the same); the secret is printed once."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from app.accounts.models import Role
from app.extensions import db
from app.oauth.models import ClientKind, GrantType
from app.oauth.services import SERVICE_ROLES, ClientError, ClientRegistration, register_client

oauth_cli = click.Group("oauth-clients", help="Manage the API's OAuth clients.")


@oauth_cli.command("create")
@click.option("--name", required=True, help="Shown to people on the consent page and in the audit.")
@click.option("--role", type=click.Choice([r.value for r in SERVICE_ROLES]),
              help="Client credentials: the role of the client's service account.")
@click.option("--redirect-uri", "redirect_uris", multiple=True,
              help="Authorization code: a redirect address (repeatable).")
@click.option("--public", is_flag=True, help="A public client (no secret; authorization code with PKCE only).")
@click.option("--scope", "allowed_scopes", required=True, help='Allowed scopes, e.g. "system/*.rs".')
@with_appcontext
def create(name: str, role: str | None, redirect_uris: tuple[str, ...], public: bool, allowed_scopes: str) -> None:
    """Register a client: with --role, a confidential client-credentials client; with --redirect-uri, an
    authorization-code client (add offline_access to the scopes for refresh tokens)."""
    grants = []
    if role:
        grants.append(GrantType.CLIENT_CREDENTIALS.value)
    if redirect_uris:
        grants.append(GrantType.AUTHORIZATION_CODE.value)
        if "offline_access" in allowed_scopes.split():
            grants.append(GrantType.REFRESH_TOKEN.value)
    registration = ClientRegistration(name=name, kind=ClientKind.PUBLIC if public else ClientKind.CONFIDENTIAL,
                                      redirect_uris=list(redirect_uris), grant_types=grants,
                                      allowed_scopes=allowed_scopes, service_role=Role(role) if role else None)
    try:
        client, secret = register_client(registration, by=None)
    except ClientError as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(f"CLIENT_ID={client.client_id}")
    if secret:
        click.echo(f"CLIENT_SECRET={secret}")
        click.echo("The secret is shown this once; HMS keeps only its hash.", err=True)
