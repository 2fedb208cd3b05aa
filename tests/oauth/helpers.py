"""The steps of the OAuth flows and the checks the authorization server's tests share."""
from __future__ import annotations

import json
from base64 import urlsafe_b64decode
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from app.extensions import db
from app.oauth import bearer
from tests.helpers import Client
from tests.oauth.tokens import REDIRECT_URI

PATIENT_SCOPE = "patient/Appointment.cruds patient/Patient.rs offline_access"
USER_SCOPE = "user/Appointment.rs user/Invoice.rs offline_access"


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


def bearer_of(app, token: str) -> bearer.Bearer:
    with app.app_context():
        found = bearer.authenticate(f"Bearer {token}", audience=bearer.api_audience())
        db.session.remove()
        return found


def refusal_reason(app, token: str) -> str:
    with app.app_context():
        with pytest.raises(bearer.BearerError) as refused:
            bearer.authenticate(f"Bearer {token}", audience=bearer.api_audience())
        db.session.remove()
    return refused.value.reason


def assert_oauth_error(response, status: int, error: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["error"] == error and body["error_description"]
    assert response.headers["Cache-Control"] == "no-store"


def refresh_request(client, registered, token, **extra):
    return token_request(client, {"grant_type": "refresh_token", "refresh_token": token,
                                  "client_id": registered.client_id, **extra})


def claims_of(token: str) -> dict:
    """The claims of a JWT, unverified (what the test issued itself)."""
    payload = token.split(".")[1]
    return json.loads(urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def grant_id_of(token: str) -> int:
    return claims_of(token)["gid"]
