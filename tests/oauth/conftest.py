"""Fixtures of the authorization server's tests: registered clients and the steps of the code flow."""
from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from app.accounts.models import Role
from app.extensions import db
from app.oauth.models import ClientKind, GrantType
from tests.conftest import DEFAULT_PASSWORD
from tests.helpers import Client
from tests.oauth.tokens import REDIRECT_URI, pkce_pair, register

PATIENT_SCOPE = "patient/Appointment.cruds patient/Patient.rs offline_access"
USER_SCOPE = "user/Appointment.rs user/Invoice.rs offline_access"


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


def authorize_url(client_id: str, challenge: str | None, *, scope: str = PATIENT_SCOPE, state: str = "st-123",
                  redirect_uri: str = REDIRECT_URI, method: str | None = "S256") -> str:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": scope,
              "state": state}
    if challenge is not None:
        params["code_challenge"] = challenge
    if method is not None:
        params["code_challenge_method"] = method
    return "/oauth/authorize?" + urlencode(params)


def redirect_params(response) -> dict[str, str]:
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI), location
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


def consent(client: Client, url: str, decision: str = "allow") -> dict[str, str]:
    """Open the consent page (signed in), answer it; the parameters sent back to the client's address."""
    page = client.get(url)
    assert page.status_code == 200, page.get_data(as_text=True)[:500]
    response = client.post_form(url, {"decision": decision})
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    return redirect_params(response)


def token_request(client: Client, data: dict, headers: dict | None = None):
    return client.http.post("/oauth/token", data=data, headers=headers)


def sign_in(app, user) -> Client:
    """A browser of its own, signed in as `user`."""
    client = Client(app)
    response = client.post_form("/login", {"email": user.email, "password": DEFAULT_PASSWORD})
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
