"""Access tokens for tests, issued by the real services (a registered client, a person's consent, a code
exchanged with PKCE, or client credentials): `issue_token(user, scope)` inside an app context.

    with app.app_context():
        token = issue_token(patient, "patient/Appointment.rs")
    client.http.get("/api/v1/...", headers={"Authorization": f"Bearer {token}"})
"""
from __future__ import annotations

import base64
import hashlib
import secrets

from werkzeug.datastructures import MultiDict

from app.accounts.models import User
from app.extensions import db
from app.oauth import scopes, services
from app.oauth.models import ClientKind, GrantType, OAuthClient

REDIRECT_URI = "http://127.0.0.1:8765/callback"


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge) of RFC 7636."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def register(*, name: str = "Test app", kind: ClientKind = ClientKind.PUBLIC, scope: str,
             grant_types: tuple[GrantType, ...] = (GrantType.AUTHORIZATION_CODE, GrantType.REFRESH_TOKEN),
             redirect_uris: tuple[str, ...] = (REDIRECT_URI,), service_role=None) -> tuple[OAuthClient, str | None]:
    """A registered client and its secret (None when public); committed."""
    client, secret = services.register_client(services.ClientRegistration(
        name=name, kind=kind, redirect_uris=list(redirect_uris), grant_types=[g.value for g in grant_types],
        allowed_scopes=scope, service_role=service_role), by=None)
    db.session.commit()
    return client, secret


def issue_token(user: User, scope: str, client: OAuthClient | None = None) -> str:
    """A valid access token for `user` with `scope`, committed. `patient/` and `user/` scopes go through the
    authorization code flow (consent, code, PKCE exchange) of `client` or of a new public client; `system/` scopes
    through client credentials of `client` or of a new confidential client whose service account has `user`'s
    role (the token's subject is then that service account, not `user`)."""
    resource_scopes, _ = scopes.parse_all(scope)
    if any(s.context == "system" for s in resource_scopes):
        if client is None:
            client, _ = register(name="Test system", kind=ClientKind.CONFIDENTIAL, scope=scope,
                                      grant_types=(GrantType.CLIENT_CREDENTIALS,), redirect_uris=(),
                                      service_role=user.role)
        body = services.client_credentials(client, MultiDict({"grant_type": "client_credentials", "scope": scope}))
        db.session.commit()
        return body["access_token"]
    person = db.session.get(User, user.id)
    if client is None:
        client, _ = register(scope=scope)
    client = db.session.merge(client)
    verifier, challenge = pkce_pair()
    request = services.authorization_request(MultiDict({
        "client_id": client.client_id, "redirect_uri": client.redirect_uris[0], "response_type": "code",
        "scope": scope, "code_challenge": challenge, "code_challenge_method": "S256"}), person)
    assert request.error is None, request.error.as_json()
    code = MultiDict(_query(services.approve(request, person)))["code"]
    body = services.exchange_code(client, MultiDict({"grant_type": "authorization_code", "code": code,
                                                     "redirect_uri": request.redirect_uri, "code_verifier": verifier}))
    db.session.commit()
    return body["access_token"]


def _query(url: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl, urlsplit

    return parse_qsl(urlsplit(url).query)
