"""The token endpoint (RFC 6749, RFC 7636): the authorization code with PKCE S256, client credentials and
rotated refresh tokens, with RFC 6749's errors."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from app.accounts.models import Role
from app.events.models import OutboxEvent
from app.extensions import db
from app.oauth.models import GrantType, OAuthGrant
from app.timeutil import utcnow
from tests.oauth.helpers import (PATIENT_SCOPE, USER_SCOPE, assert_oauth_error, authorize_url, bearer_of, consent,
                                 grant_id_of, redirect_params, refresh_request, refusal_reason, token_request)
from tests.oauth.tokens import REDIRECT_URI, pkce_pair


def test_authorization_code_with_pkce_gives_a_token_the_resource_server_accepts(app, create_patient, public_app,
                                                                                code_flow):
    patient = create_patient()
    body = code_flow(patient, public_app)
    assert body["token_type"] == "Bearer" and body["expires_in"] == 600 and body["refresh_token"]
    assert body["scope"] == "offline_access patient/Appointment.cruds patient/Patient.rs"
    found = bearer_of(app, body["access_token"])
    assert found.user.id == patient.id and found.client.client_id == public_app.client_id
    assert found.claims["sv"] == 1 and isinstance(found.claims["gid"], int)
    assert found.claims["aud"].endswith("/api/v1")
    with app.app_context():
        events = {e.type: e.envelope for e in db.session.scalars(sa.select(OutboxEvent))}
        grant = db.session.get(OAuthGrant, found.grant_id)
        assert grant.last_used_at is not None
    assert {"oauth.grant_created", "oauth.token_issued"} <= set(events)
    issued = events["oauth.token_issued"]["data"]
    assert issued["grant_type"] == "authorization_code"
    assert body["access_token"] not in str(events) and body["refresh_token"] not in str(events)


def test_the_consent_page_names_the_client_and_describes_the_scopes(login, create_patient, public_app):
    client = login(create_patient())
    page = client.get(authorize_url(public_app.client_id, pkce_pair()[1]))
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Test app" in html
    assert "Create, read, update, delete, search your own appointments" in html
    assert "form-action 'self' http://127.0.0.1:8765" in page.headers["Content-Security-Policy"]


def test_an_anonymous_visitor_signs_in_first_and_comes_back_to_the_consent_page(client, create_patient, public_app):
    patient = create_patient()
    url = authorize_url(public_app.client_id, pkce_pair()[1])
    response = client.get(url)
    assert response.status_code == 302 and "/login?next=" in response.headers["Location"]
    signed_in = client.post_form(response.headers["Location"], {"email": patient.email,
                                                               "password": "correct horse battery"})
    assert signed_in.status_code == 303 and signed_in.headers["Location"] == url


def test_deny_sends_access_denied_back_with_the_state(login, create_patient, public_app):
    client = login(create_patient())
    params = consent(client, authorize_url(public_app.client_id, pkce_pair()[1]), decision="deny")
    assert params["error"] == "access_denied" and params["state"] == "st-123" and "code" not in params


@pytest.mark.parametrize("method, challenge", [("plain", "x" * 43), (None, "x" * 43), ("S256", None)])
def test_pkce_is_required_with_s256(login, create_patient, public_app, method, challenge):
    client = login(create_patient())
    response = client.get(authorize_url(public_app.client_id, challenge, method=method))
    assert response.status_code == 303
    params = redirect_params(response)
    assert params["error"] == "invalid_request" and params["state"] == "st-123"


def test_an_unknown_client_or_redirect_address_is_an_error_page_never_a_redirect(login, create_patient, public_app):
    client = login(create_patient())
    challenge = pkce_pair()[1]
    for url in (authorize_url("nobody", challenge),
                authorize_url(public_app.client_id, challenge, redirect_uri="https://evil.example/cb"),
                authorize_url(public_app.client_id, challenge, redirect_uri=REDIRECT_URI + "/more")):
        response = client.get(url)
        assert response.status_code == 400 and "Location" not in response.headers
        assert response.mimetype == "text/html"


def _code(login, user, registered, scope=PATIENT_SCOPE):
    client = login(user)
    verifier, challenge = pkce_pair()
    params = consent(client, authorize_url(registered.client_id, challenge, scope=scope))
    return client, params["code"], verifier


def _exchange(client, registered, code, verifier, **overrides):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier, "client_id": registered.client_id, **overrides}
    return token_request(client, {k: v for k, v in data.items() if v is not None})


def test_a_wrong_or_missing_verifier_is_refused(login, create_patient, public_app):
    client, code, verifier = _code(login, create_patient(), public_app)
    assert_oauth_error(_exchange(client, public_app, code, pkce_pair()[0]), 400, "invalid_grant")
    assert_oauth_error(_exchange(client, public_app, code, None), 400, "invalid_request")
    assert _exchange(client, public_app, code, verifier).status_code == 200  # the code was not used up


def test_a_code_is_single_use_and_its_reuse_revokes_what_it_issued(app, login, create_patient, public_app):
    client, code, verifier = _code(login, create_patient(), public_app)
    first = _exchange(client, public_app, code, verifier)
    assert first.status_code == 200
    assert_oauth_error(_exchange(client, public_app, code, verifier), 400, "invalid_grant")
    assert refusal_reason(app, first.get_json()["access_token"]) == "grant_revoked"


def test_the_redirect_uri_must_be_the_one_of_the_request(login, create_patient, public_app):
    client, code, verifier = _code(login, create_patient(), public_app)
    assert_oauth_error(_exchange(client, public_app, code, verifier, redirect_uri=REDIRECT_URI + "x"), 400,
                       "invalid_grant")


def test_an_expired_code_is_refused(login, create_patient, public_app):
    client, code, verifier = _code(login, create_patient(), public_app)
    with time_machine.travel(utcnow() + timedelta(minutes=3), tick=False):
        assert_oauth_error(_exchange(client, public_app, code, verifier), 400, "invalid_grant")


def test_another_clients_code_is_refused(login, create_patient, public_app, make_client):
    other = make_client()
    client, code, verifier = _code(login, create_patient(), public_app)
    assert_oauth_error(_exchange(client, other, code, verifier), 400, "invalid_grant")


# --- client credentials ---------------------------------------------------------------------------------------

def test_client_credentials_with_basic_and_with_post(app, client, backend):
    by_basic = token_request(client, {"grant_type": "client_credentials"}, backend.basic())
    by_post = token_request(client, {"grant_type": "client_credentials", "client_id": backend.client_id,
                                     "client_secret": backend.secret, "scope": "system/Invoice.rs"})
    for response in (by_basic, by_post):
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert "refresh_token" not in body
        found = bearer_of(app, body["access_token"])
        assert found.user.id == backend.service_user_id and found.user.role is Role.CLERK
        assert found.grant_id is None and "gid" not in found.claims
    assert by_basic.get_json()["scope"] == "system/Appointment.rs system/Invoice.rs"
    assert by_post.get_json()["scope"] == "system/Invoice.rs"


def test_a_wrong_secret_is_401_invalid_client(client, backend):
    for headers, data in ((backend.basic("wrong"), {}),
                          (None, {"client_id": backend.client_id, "client_secret": "wrong"}),
                          (None, {"client_id": backend.client_id}),
                          (None, {"client_id": "nobody", "client_secret": "x"})):
        response = token_request(client, {"grant_type": "client_credentials", **data}, headers)
        assert_oauth_error(response, 401, "invalid_client")
        assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_a_public_client_may_not_use_client_credentials(client, public_app):
    response = token_request(client, {"grant_type": "client_credentials", "client_id": public_app.client_id})
    assert_oauth_error(response, 400, "unauthorized_client")


@pytest.mark.parametrize("grant_type", ["password", "implicit", "urn:ietf:params:oauth:grant-type:jwt-bearer"])
def test_other_grants_are_unsupported(client, backend, grant_type):
    response = token_request(client, {"grant_type": grant_type, "username": "a", "password": "b"}, backend.basic())
    assert_oauth_error(response, 400, "unsupported_grant_type")


def test_token_errors_are_rfc_6749_json_not_problem_details(client, backend):
    as_json = client.http.post("/oauth/token", json={"grant_type": "client_credentials"})
    assert_oauth_error(as_json, 400, "invalid_request")
    assert_oauth_error(token_request(client, {}, backend.basic()), 400, "invalid_request")
    twice = token_request(client, {"grant_type": ["client_credentials", "client_credentials"]}, backend.basic())
    assert_oauth_error(twice, 400, "invalid_request")


def test_scope_escalation_is_invalid_scope(client, backend, login, create_patient, create_user, public_app):
    wider = token_request(client, {"grant_type": "client_credentials", "scope": "system/Invoice.cruds"},
                          backend.basic())
    assert_oauth_error(wider, 400, "invalid_scope")
    other_context = token_request(client, {"grant_type": "client_credentials", "scope": "user/Invoice.rs"},
                                  backend.basic())
    assert_oauth_error(other_context, 400, "invalid_scope")


def test_a_patient_gets_only_patient_scopes(login, create_patient, public_app):
    client = login(create_patient())
    response = client.get(authorize_url(public_app.client_id, pkce_pair()[1], scope=USER_SCOPE))
    assert redirect_params(response)["error"] == "invalid_scope"


def test_staff_get_only_user_scopes(app, login, create_user, public_app, code_flow):
    clerk = create_user(Role.CLERK)
    client = login(clerk)
    response = client.get(authorize_url(public_app.client_id, pkce_pair()[1], scope=PATIENT_SCOPE))
    assert redirect_params(response)["error"] == "invalid_scope"
    body = code_flow(clerk, public_app, scope=USER_SCOPE)
    assert body["scope"] == "offline_access user/Appointment.rs user/Invoice.rs"


def test_no_refresh_token_without_offline_access(login, create_patient, public_app, code_flow):
    body = code_flow(create_patient(), public_app, scope="patient/Appointment.rs")
    assert "refresh_token" not in body and body["scope"] == "patient/Appointment.rs"


# --- refresh tokens -----------------------------------------------------------------------------------------

def test_a_refresh_token_is_rotated_on_every_use(app, client, create_patient, public_app, code_flow):
    first = code_flow(create_patient(), public_app)
    second = refresh_request(client, public_app, first["refresh_token"])
    assert second.status_code == 200, second.get_json()
    second = second.get_json()
    assert second["refresh_token"] != first["refresh_token"] and second["scope"] == first["scope"]
    assert bearer_of(app, second["access_token"]).grant_id == bearer_of(app, first["access_token"]).grant_id
    third = refresh_request(client, public_app, second["refresh_token"], scope="patient/Appointment.rs")
    assert third.status_code == 200 and third.get_json()["scope"] == "patient/Appointment.rs"
    wider = refresh_request(client, public_app, third.get_json()["refresh_token"], scope="patient/*.cruds")
    assert_oauth_error(wider, 400, "invalid_scope")


def test_a_reused_refresh_token_revokes_the_whole_family(app, client, create_patient, public_app, code_flow):
    first = code_flow(create_patient(), public_app)
    second = refresh_request(client, public_app, first["refresh_token"]).get_json()
    assert_oauth_error(refresh_request(client, public_app, first["refresh_token"]), 400, "invalid_grant")
    assert refusal_reason(app, second["access_token"]) == "grant_revoked"
    assert_oauth_error(refresh_request(client, public_app, second["refresh_token"]), 400, "invalid_grant")
    with app.app_context():
        grant = db.session.get(OAuthGrant, grant_id_of(second["access_token"]))
        assert grant.revoked_at is not None and grant.revoked_reason == "refresh_reuse"
        types = list(db.session.scalars(sa.select(OutboxEvent.type)))
    assert "oauth.refresh_reuse_detected" in types and "oauth.grant_revoked" in types


def test_an_expired_refresh_token_is_400_invalid_grant(client, create_patient, public_app, code_flow):
    body = code_flow(create_patient(), public_app)
    with time_machine.travel(utcnow() + timedelta(days=31), tick=False):
        response = refresh_request(client, public_app, body["refresh_token"])
    assert_oauth_error(response, 400, "invalid_grant")
    assert "WWW-Authenticate" not in response.headers


def test_a_refresh_token_of_another_client_is_refused(client, create_patient, public_app, make_client, code_flow):
    body = code_flow(create_patient(), public_app)
    assert_oauth_error(refresh_request(client, make_client(), body["refresh_token"]), 400, "invalid_grant")


def test_the_metadata_lists_the_endpoints(client):
    body = client.http.get("/.well-known/oauth-authorization-server").get_json()
    assert body["token_endpoint"].endswith("/oauth/token")
    assert body["authorization_endpoint"].endswith("/oauth/authorize")
    assert body["revocation_endpoint"].endswith("/oauth/revoke")
    assert body["introspection_endpoint"].endswith("/oauth/introspect")
    assert body["response_types_supported"] == ["code"]
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert set(body["grant_types_supported"]) == {g.value for g in GrantType}
    assert "client_secret_basic" in body["token_endpoint_auth_methods_supported"]
    assert "offline_access" in body["scopes_supported"] and "patient/Appointment.cruds" in body["scopes_supported"]


def test_the_consent_page_answers_as_a_page_and_the_endpoints_as_json(login, create_patient, client):
    signed_in = login(create_patient())
    refused = signed_in.http.post("/oauth/authorize", data={"decision": "allow"})  # no CSRF token
    assert refused.status_code == 400 and refused.mimetype == "text/html"
    assert client.http.get("/oauth/token").mimetype == "application/problem+json"  # 405 of a program's door


def test_a_narrower_new_consent_limits_the_older_refresh_tokens(client, create_patient, public_app, code_flow):
    patient = create_patient()
    wide = code_flow(patient, public_app)
    code_flow(patient, public_app, scope="patient/Appointment.rs offline_access")
    assert_oauth_error(refresh_request(client, public_app, wide["refresh_token"]), 400, "invalid_grant")


def test_the_token_endpoint_is_rate_limited_per_address(app, monkeypatch):
    monkeypatch.setitem(app.config, "HMS_OAUTH_RATE_LIMIT", (2, 3600))
    client = app.test_client()
    answers = [client.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": "nobody",
                                                 "client_secret": "guess"}) for _ in range(3)]
    assert [a.status_code for a in answers] == [401, 401, 429]
    assert answers[0].headers["RateLimit-Policy"] == '"token";q=2;w=3600'
    assert int(answers[2].headers["Retry-After"]) > 0
