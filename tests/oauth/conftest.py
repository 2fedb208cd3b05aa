"""Fixtures of the authorization server's tests: registered clients and the steps of the code flow."""
from __future__ import annotations

import base64
from dataclasses import dataclass

import pytest

from app.accounts.models import Role
from app.extensions import db
from app.oauth.models import ClientKind, GrantType
from tests.conftest import DEFAULT_PASSWORD
from tests.helpers import Client
from tests.oauth.helpers import PATIENT_SCOPE, USER_SCOPE, authorize_url, consent, token_request
from tests.oauth.tokens import REDIRECT_URI, pkce_pair, register


@dataclass
class RegisteredClient:
    pk: int
    client_id: str
    secret: str | None
    service_user_id: int | None = None

    def basic(self, secret: str | None = None) -> dict[str, str]:
        raw = f"{self.client_id}:{secret if secret is not None else self.secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


@pytest.fixture
def make_client(app):
    def make(*, kind: ClientKind = ClientKind.PUBLIC, scope: str = f"{PATIENT_SCOPE} {USER_SCOPE}",
             grant_types=(GrantType.AUTHORIZATION_CODE, GrantType.REFRESH_TOKEN), service_role: Role | None = None,
             redirect_uris=(REDIRECT_URI,)) -> RegisteredClient:
        with app.app_context():
            client, secret = register(kind=kind, scope=scope, grant_types=grant_types, service_role=service_role,
                                      redirect_uris=redirect_uris)
            registered = RegisteredClient(client.id, client.client_id, secret, client.service_user_id)
            db.session.remove()
        return registered

    return make


@pytest.fixture
def public_app(make_client) -> RegisteredClient:
    return make_client()


@pytest.fixture
def backend(make_client) -> RegisteredClient:
    """A confidential client-credentials client whose service account is a billing clerk."""
    return make_client(kind=ClientKind.CONFIDENTIAL, scope="system/Invoice.rs system/Appointment.rs",
                       grant_types=(GrantType.CLIENT_CREDENTIALS,), service_role=Role.CLERK, redirect_uris=())


def sign_in(app, user) -> Client:
    """A browser of its own, signed in as `user`."""
    client = Client(app)
    response = client.sign_in(user.email, DEFAULT_PASSWORD)
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    return client


@pytest.fixture
def code_flow(app):
    """In a browser of its own: sign `user` in, consent for `registered`, exchange the code; the token answer."""

    def run(user, registered: RegisteredClient, *, scope: str = PATIENT_SCOPE) -> dict:
        client = sign_in(app, user)
        verifier, challenge = pkce_pair()
        params = consent(client, authorize_url(registered.client_id, challenge, scope=scope))
        data = {"grant_type": "authorization_code", "code": params["code"], "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier, "client_id": registered.client_id}
        if registered.secret:
            data["client_secret"] = registered.secret
        response = token_request(client, data)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    return run
