"""The admin's API clients page: register (the secret shown once, stored hashed), rotate, disable; service
accounts stay off the staff list and off the sign-in page. And the tokens helper other tests use."""
from __future__ import annotations

import base64
import hashlib
import re

import sqlalchemy as sa

from app.accounts.models import Role, User
from app.accounts.services import authenticate
from app.events.models import OutboxEvent
from app.extensions import db
from app.oauth import bearer
from app.oauth.models import ClientKind, OAuthClient
from tests.helpers import text
from tests.oauth.helpers import token_request
from tests.oauth.tokens import issue_token

CONFIDENTIAL = {"name": "Lab system", "kind": "confidential", "grant_types": ["client_credentials"],
                "allowed_scopes": "system/Appointment.rs system/Invoice.rs", "service_role": "clerk",
                "redirect_uris": ""}
_SECRET = re.compile(r'<code class="user-select-all fs-6">([^<]+)</code>')
_CLIENT_ID = re.compile(r'<code data-testid="client-id">([^<]+)</code>')


def _register(client, form: dict):
    return client.post_form("/admin/clients/new", form)


def test_register_a_confidential_client_shows_the_secret_once_and_keeps_its_hash(app, login, create_user):
    admin = login(create_user(Role.ADMIN))
    response = _register(admin, CONFIDENTIAL)
    assert response.status_code == 201, text(response)[:2000]
    secret, client_id = _SECRET.search(text(response)).group(1), _CLIENT_ID.search(text(response)).group(1)
    with app.app_context():
        client = db.session.scalar(sa.select(OAuthClient).where(OAuthClient.client_id == client_id))
        assert client.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert client.service_user.service_account and client.service_user.role is Role.CLERK
        assert client.service_user.password_hash is None
        assert client.service_user.email == f"client-{client_id}@service.hms.invalid"
        pk = client.id
        events = [e.envelope for e in db.session.scalars(sa.select(OutboxEvent).where(
            OutboxEvent.type == "oauth.client_registered"))]
    assert len(events) == 1 and secret not in str(events)
    detail = admin.get(f"/admin/clients/{pk}")
    assert detail.status_code == 200 and secret not in text(detail) and "Lab system" in text(detail)
    assert "Lab system" in text(admin.get("/admin/clients"))
    basic = {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}
    assert token_request(admin, {"grant_type": "client_credentials"}, basic).status_code == 200


def test_rotation_shows_a_new_secret_and_the_old_one_stops(app, login, create_user):
    admin = login(create_user(Role.ADMIN))
    created = text(_register(admin, CONFIDENTIAL))
    old, client_id = _SECRET.search(created).group(1), _CLIENT_ID.search(created).group(1)
    with app.app_context():
        pk = db.session.scalar(sa.select(OAuthClient.id).where(OAuthClient.client_id == client_id))
    rotated = admin.post_form(f"/admin/clients/{pk}/rotate", {})
    assert rotated.status_code == 200
    new = _SECRET.search(text(rotated)).group(1)
    assert new != old
    data = {"grant_type": "client_credentials", "client_id": client_id}
    assert token_request(admin, {**data, "client_secret": old}).status_code == 401
    assert token_request(admin, {**data, "client_secret": new}).status_code == 200


def test_disable_stops_the_client_and_enable_brings_it_back(app, login, create_user):
    admin = login(create_user(Role.ADMIN))
    created = text(_register(admin, CONFIDENTIAL))
    secret, client_id = _SECRET.search(created).group(1), _CLIENT_ID.search(created).group(1)
    data = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    token = token_request(admin, data).get_json()["access_token"]
    with app.app_context():
        pk = db.session.scalar(sa.select(OAuthClient.id).where(OAuthClient.client_id == client_id))
    assert admin.post_form(f"/admin/clients/{pk}/deactivate", {}).status_code == 303
    with app.app_context():
        try:
            bearer.authenticate(f"Bearer {token}", audience=bearer.api_audience())
            raise AssertionError("a disabled client's token was accepted")
        except bearer.BearerError as error:
            assert error.reason == "client_inactive"
        types = list(db.session.scalars(sa.select(OutboxEvent.type)))
    assert "oauth.client_disabled" in types
    assert token_request(admin, data).status_code == 401
    admin.post_form(f"/admin/clients/{pk}/activate", {})
    assert token_request(admin, data).status_code == 200


def test_registration_errors_are_shown_next_to_their_fields(login, create_user):
    admin = login(create_user(Role.ADMIN))
    cases = [
        ({"allowed_scopes": "system/Nothing.rs"}, "allowed_scopes"),
        ({"allowed_scopes": "system/*.rs user/Invoice.rs"}, "allowed_scopes"),
        ({"service_role": ""}, "service_role"),
        ({"kind": "public"}, "grant_types"),
        ({"grant_types": ["authorization_code"], "allowed_scopes": "patient/Appointment.rs",
          "redirect_uris": "http://evil.example/cb"}, "redirect_uris"),
        ({"grant_types": ["authorization_code"], "allowed_scopes": "patient/Appointment.rs"}, "redirect_uris"),
        ({"grant_types": []}, "grant_types"),
    ]
    for change, field in cases:
        response = _register(admin, {**CONFIDENTIAL, **change})
        assert response.status_code == 422, (change, text(response)[:300])
        assert f'id="{field}-error"' in text(response), change


def test_a_public_client_has_no_secret(app, login, create_user):
    admin = login(create_user(Role.ADMIN))
    response = _register(admin, {"name": "Phone app", "kind": "public",
                                 "grant_types": ["authorization_code", "refresh_token"],
                                 "redirect_uris": "https://app.example/cb\nhttp://127.0.0.1:9000/cb",
                                 "allowed_scopes": "patient/Appointment.cruds offline_access", "service_role": ""})
    assert response.status_code == 201 and not _SECRET.search(text(response))
    with app.app_context():
        client = db.session.scalar(sa.select(OAuthClient))
        assert client.kind is ClientKind.PUBLIC and client.secret_hash is None and client.service_user is None
        assert client.redirect_uris == ["https://app.example/cb", "http://127.0.0.1:9000/cb"]


def test_service_accounts_are_not_staff_and_cannot_sign_in(app, login, create_user, backend):
    admin = login(create_user(Role.ADMIN))
    with app.app_context():
        service = db.session.get(User, backend.service_user_id)
        email = service.email
    staff = text(admin.get("/admin/staff"))
    assert email not in staff
    assert admin.get(f"/admin/staff/{backend.service_user_id}/deactivate").status_code == 405
    response = admin.post_form(f"/admin/staff/{backend.service_user_id}/deactivate", {})
    assert response.status_code == 404
    with app.app_context():
        assert authenticate(email, "any password at all", "127.0.0.1") is None
        db.session.commit()
        failure = db.session.scalar(sa.select(OutboxEvent).where(OutboxEvent.type == "user.login_failed"))
        assert failure.envelope["data"]["reason"] == "service account"


def test_issue_token_gives_tokens_the_resource_server_accepts(app, create_patient, create_user):
    patient, doctor = create_patient(), create_user(Role.DOCTOR)
    with app.app_context():
        for user, scope in ((patient, "patient/Appointment.rs"), (doctor, "user/Encounter.rs"),
                            (doctor, "system/Appointment.rs")):
            token = issue_token(user, scope)
            found = bearer.authenticate(f"Bearer {token}", audience=bearer.api_audience())
            assert found.scope == scope and found.user.role is user.role
            assert (found.user.id == user.id) is (not scope.startswith("system/"))
