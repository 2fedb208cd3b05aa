"""What stops a token at once: revocation (RFC 7009), a person's revoke on Connected apps, a password change, a
deactivation, a disabled client; and introspection (RFC 7662) saying so."""
from __future__ import annotations

import sqlalchemy as sa

from app.accounts.models import Role, User
from app.accounts.services import set_password, set_staff_active
from app.extensions import db
from app.oauth.models import ClientKind, OAuthClient, OAuthGrant, RevokedAccessToken
from app.oauth.services import set_client_active
from tests.helpers import text
from tests.oauth.helpers import (USER_SCOPE, assert_oauth_error, bearer_of, claims_of, grant_id_of, refresh_request,
                                 refusal_reason, token_request)


def _post(client, path, data, headers=None):
    return client.http.post(path, data=data, headers=headers)


def test_revoking_an_access_token_denies_its_jti_until_it_expires(app, client, create_patient, public_app,
                                                                  code_flow):
    body = code_flow(create_patient(), public_app)
    response = _post(client, "/oauth/revoke", {"token": body["access_token"], "token_type_hint": "access_token",
                                               "client_id": public_app.client_id})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert refusal_reason(app, body["access_token"]) == "revoked"
    with app.app_context():
        row = db.session.scalar(sa.select(RevokedAccessToken))
        assert row.expires_at.timestamp() == claims_of(body["access_token"])["exp"]
    assert refresh_request(client, public_app, body["refresh_token"]).status_code == 200  # the grant lives on


def test_revoking_a_refresh_token_revokes_its_grant(app, client, create_patient, public_app, code_flow):
    body = code_flow(create_patient(), public_app)
    response = _post(client, "/oauth/revoke", {"token": body["refresh_token"], "client_id": public_app.client_id})
    assert response.status_code == 200
    assert refusal_reason(app, body["access_token"]) == "grant_revoked"
    assert_oauth_error(refresh_request(client, public_app, body["refresh_token"]), 400, "invalid_grant")


def test_revocation_answers_200_for_unknown_tokens_and_needs_client_authentication(client, public_app, backend):
    for token in ("not-a-token", "a.b.c"):
        assert _post(client, "/oauth/revoke", {"token": token, "client_id": public_app.client_id}).status_code == 200
    assert_oauth_error(_post(client, "/oauth/revoke", {"token": "x"}), 401, "invalid_client")
    assert_oauth_error(_post(client, "/oauth/revoke", {"token": "x"}, backend.basic("wrong")), 401, "invalid_client")
    hinted = _post(client, "/oauth/revoke", {"token": "x", "token_type_hint": "id_token",
                                             "client_id": public_app.client_id})
    assert_oauth_error(hinted, 400, "unsupported_token_type")


def test_a_client_cannot_revoke_another_clients_tokens(app, client, create_patient, public_app, make_client,
                                                       code_flow):
    body = code_flow(create_patient(), public_app)
    other = make_client()
    for token in (body["access_token"], body["refresh_token"]):
        assert _post(client, "/oauth/revoke", {"token": token, "client_id": other.client_id}).status_code == 200
    assert bearer_of(app, body["access_token"])


def test_introspection_says_active_with_claims_then_inactive_once_revoked(app, client, backend):
    token = token_request(client, {"grant_type": "client_credentials"}, backend.basic()).get_json()["access_token"]
    active = _post(client, "/oauth/introspect", {"token": token}, backend.basic())
    assert active.status_code == 200 and active.headers["Cache-Control"] == "no-store"
    body = active.get_json()
    assert body["active"] is True and body["client_id"] == backend.client_id
    assert body["sub"] == str(backend.service_user_id) and body["scope"] == "system/Appointment.rs system/Invoice.rs"
    assert {"exp", "iat", "iss", "aud", "jti", "token_type"} <= body.keys()
    _post(client, "/oauth/revoke", {"token": token}, backend.basic())
    assert _post(client, "/oauth/introspect", {"token": token}, backend.basic()).get_json() == {"active": False}
    for junk in ("junk", "a.b.c", "x" * 4000):
        assert _post(client, "/oauth/introspect", {"token": junk}, backend.basic()).get_json() == {"active": False}


def test_introspection_is_for_confidential_clients_only(client, public_app):
    assert_oauth_error(_post(client, "/oauth/introspect", {"token": "x", "client_id": public_app.client_id}), 401,
                       "invalid_client")


def test_introspection_of_refresh_tokens(app, client, create_user, make_client, code_flow):
    web = make_client(kind=ClientKind.CONFIDENTIAL, scope=USER_SCOPE)
    body = code_flow(create_user(Role.DOCTOR), web, scope=USER_SCOPE)
    answer = _post(client, "/oauth/introspect", {"token": body["refresh_token"]}, web.basic()).get_json()
    assert answer["active"] is True and answer["scope"] == "offline_access user/Appointment.rs user/Invoice.rs"
    assert answer["client_id"] == web.client_id and answer["exp"] > answer["iat"]
    refresh_request(client, web, body["refresh_token"], client_secret=web.secret)
    assert _post(client, "/oauth/introspect", {"token": body["refresh_token"]}, web.basic()).get_json() == {
        "active": False}


def test_a_password_change_stops_the_access_tokens_at_once(app, create_patient, public_app, code_flow):
    patient = create_patient()
    body = code_flow(patient, public_app)
    with app.app_context():
        set_password(db.session.get(User, patient.id), "another long passphrase")
        db.session.commit()
    assert refusal_reason(app, body["access_token"]) == "session_version"


def test_a_deactivation_stops_the_access_and_refresh_tokens(app, client, create_user, public_app, code_flow):
    clerk, admin = create_user(Role.CLERK), create_user(Role.ADMIN)
    body = code_flow(clerk, public_app, scope=USER_SCOPE)
    with app.app_context():
        set_staff_active(db.session.get(User, clerk.id), False, by=db.session.get(User, admin.id))
        db.session.commit()
    assert refusal_reason(app, body["access_token"]) == "user_inactive"
    assert_oauth_error(refresh_request(client, public_app, body["refresh_token"]), 400, "invalid_grant")


def test_a_disabled_client_stops_its_tokens_and_authenticates_no_more(app, client, backend):
    token = token_request(client, {"grant_type": "client_credentials"}, backend.basic()).get_json()["access_token"]
    with app.app_context():
        set_client_active(db.session.get(OAuthClient, backend.pk), False)
        db.session.commit()
    assert refusal_reason(app, token) == "client_inactive"
    assert_oauth_error(token_request(client, {"grant_type": "client_credentials"}, backend.basic()), 401,
                       "invalid_client")


def test_connected_apps_lists_and_revokes_a_grant(app, login, create_patient, public_app, code_flow):
    patient = create_patient()
    body = code_flow(patient, public_app)
    client = login(patient)
    profile = client.get(f"/patient/{patient.id}/profile")
    assert profile.status_code == 200 and "Test app" in text(profile)
    assert "Read, search your own patient profiles" in text(profile)
    page = client.get("/account/apps")
    assert "last used" in text(page) and "never" not in text(page).split("last used")[1][:40]
    grant_id = grant_id_of(body["access_token"])
    response = client.post_form(f"/account/apps/{grant_id}/revoke", {})
    assert response.status_code == 303
    assert refusal_reason(app, body["access_token"]) == "grant_revoked"
    with app.app_context():
        grant = db.session.get(OAuthGrant, grant_id)
        assert grant.revoked_reason == "user"
    assert 'data-testid="connected-app"' not in text(client.get("/account/apps"))


def test_nobody_revokes_someone_elses_connected_app(app, login, create_patient, public_app, code_flow):
    owner = create_patient()
    body = code_flow(owner, public_app)
    client = login(create_patient())
    assert client.post_form(f"/account/apps/{grant_id_of(body['access_token'])}/revoke", {}).status_code == 404
    assert bearer_of(app, body["access_token"])


def test_a_new_consent_reuses_the_grant_with_the_new_scope(app, create_patient, public_app, code_flow):
    patient = create_patient()
    first = code_flow(patient, public_app)
    second = code_flow(patient, public_app, scope="patient/Appointment.rs")
    assert grant_id_of(first["access_token"]) == grant_id_of(second["access_token"])
    with app.app_context():
        grants = list(db.session.scalars(sa.select(OAuthGrant)))
    assert len(grants) == 1 and grants[0].scope == "patient/Appointment.rs"
