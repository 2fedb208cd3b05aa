"""Access tokens for API tests, made the way the authorization server makes them: a registered client, the
person's grant (or the client's service account), and a signed RFC 9068 token. The token is then checked by the
real bearer check of every request."""
from __future__ import annotations

import secrets

from app.accounts.models import Role, User
from app.extensions import db
from app.oauth.bearer import api_audience
from app.oauth.keys import sign_access_token
from app.oauth.models import ClientKind, OAuthClient, OAuthGrant


def _client(client_id: str, service_user_id: int | None = None) -> OAuthClient:
    client = db.session.query(OAuthClient).filter_by(client_id=client_id).one_or_none()
    if client is None:
        client = OAuthClient(client_id=client_id, name=f"Test app {client_id}", kind=ClientKind.CONFIDENTIAL,
                             redirect_uris=["http://127.0.0.1/callback"],
                             grant_types=["authorization_code", "refresh_token", "client_credentials"],
                             allowed_scopes="patient/*.cruds user/*.cruds system/*.cruds offline_access",
                             service_user_id=service_user_id)
        db.session.add(client)
        db.session.flush()
    return client


def token_for(app, user: User, scope: str = "user/*.cruds", *, client_id: str = "test-app") -> str:
    """A token for `user` through a grant to the client (the authorization code flow's outcome)."""
    with app.app_context():
        person = db.session.get(User, user.id)
        client = _client(client_id)
        grant = OAuthGrant(client_pk=client.id, user_id=person.id, scope=scope)
        db.session.add(grant)
        db.session.flush()
        token = sign_access_token({"sub": str(person.id), "aud": api_audience(), "client_id": client.client_id,
                                   "scope": scope, "sv": person.session_version, "gid": grant.id})
        db.session.commit()
        return token


def system_token(app, role: Role = Role.CLERK, scope: str = "system/*.cruds", *,
                 client_id: str | None = None) -> str:
    """A client-credentials token: the client's service account, with `role`."""
    with app.app_context():
        client_id = client_id or f"svc-{secrets.token_hex(4)}"
        account = User(email=f"client-{client_id}@service.hms.invalid", role=role, full_name=f"Client {client_id}",
                       service_account=True)
        db.session.add(account)
        db.session.flush()
        client = _client(client_id, account.id)
        token = sign_access_token({"sub": str(account.id), "aud": api_audience(), "client_id": client.client_id,
                                   "scope": scope, "sv": account.session_version})
        db.session.commit()
        return token


def auth(token: str, **headers) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}
