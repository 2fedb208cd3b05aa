"""An app gets an access token for a person in Chromium: HMS's sign-in page, the consent page, the redirect to
the app's address with a code, and the code exchanged with PKCE at the token endpoint."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

from app.extensions import db
from app.oauth import bearer
from tests.conftest import DEFAULT_PASSWORD
from tests.oauth.helpers import authorize_url
from tests.oauth.tokens import pkce_pair, register

pytestmark = pytest.mark.browser

APP_ADDRESS = "http://localhost:8765/callback"  # another origin: the consent page must allow it in form-action


def test_authorization_code_with_pkce_through_sign_in_and_consent(page: Page, base_url, app, create_patient):
    patient = create_patient(full_name="Olga Oauth")
    with app.app_context():
        client, _ = register(name="Pocket Clinic", scope="patient/Appointment.cruds offline_access",
                             redirect_uris=(APP_ADDRESS,))
        client_id = client.client_id
        db.session.remove()
    verifier, challenge = pkce_pair()
    arrived: list[str] = []
    page.route(f"{APP_ADDRESS}**", lambda route: (arrived.append(route.request.url),
                                                  route.fulfill(status=200, body="the app")))

    page.goto(base_url + authorize_url(client_id, challenge, scope="patient/Appointment.cruds offline_access",
                                       redirect_uri=APP_ADDRESS, state="browser-state"))
    page.get_by_label("Email").fill(patient.email)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Allow Pocket Clinic to use your account?")).to_be_visible()
    expect(page.get_by_text("Create, read, update, delete, search your own appointments")).to_be_visible()
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(f"{APP_ADDRESS}**")

    params = {name: values[0] for name, values in parse_qs(urlsplit(arrived[-1]).query).items()}
    assert params["state"] == "browser-state"
    response = page.request.post(f"{base_url}/oauth/token", form={
        "grant_type": "authorization_code", "code": params["code"], "redirect_uri": APP_ADDRESS,
        "code_verifier": verifier, "client_id": client_id})
    assert response.status == 200, response.text()
    body = response.json()
    assert body["refresh_token"] and body["scope"] == "offline_access patient/Appointment.cruds"
    with app.app_context():
        found = bearer.authenticate(f"Bearer {body['access_token']}", audience=bearer.api_audience())
        assert found.user.id == patient.id and found.client.client_id == client_id
        db.session.remove()

    page.goto(f"{base_url}/account/apps")
    expect(page.get_by_test_id("connected-app")).to_contain_text("Pocket Clinic")
