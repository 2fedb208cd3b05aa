"""SMART App Launch 2 over the authorization server: discovery, the standalone launch of a patient (the token
answer names them) and of a clinician (who picks the patient on the consent page), `openid fhirUser` id tokens,
the FHIR base URL as `aud`, and a token launched for a patient that reaches no other patient."""
from __future__ import annotations

from urllib.parse import urlencode

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from app.extensions import db
from app.oauth import bearer, keys
from tests.fhir.conftest import BASE, ids, issue
from tests.helpers import text
from tests.oauth.conftest import sign_in
from tests.oauth.helpers import claims_of, redirect_params, token_request
from tests.oauth.tokens import REDIRECT_URI, pkce_pair, register
from tests.records.clinical_data import add_appointment

APP_SCOPES = "patient/*.rs patient/Appointment.c user/*.rs offline_access"


@pytest.fixture
def smart_app(app):
    with app.app_context():
        client, _ = register(name="Chart Viewer", scope=APP_SCOPES)
        client_id = client.client_id
        db.session.remove()
    return client_id


def launch_url(client_id: str, challenge: str, scope: str, **extra: str) -> str:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI, "scope": scope,
              "state": "s-1", "code_challenge": challenge, "code_challenge_method": "S256", **extra}
    return "/oauth/authorize?" + urlencode(params)


def fhir_base(app) -> str:
    with app.app_context():
        return bearer.fhir_audience()


def exchange(browser, client_id: str, code: str, verifier: str) -> dict:
    answer = token_request(browser, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
                                     "code_verifier": verifier, "client_id": client_id})
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def get(app, path: str, token: str):
    return app.test_client().get(path, headers={"Authorization": f"Bearer {token}"})


def test_discovery_names_the_endpoints_and_what_is_supported(app):
    client = app.test_client()
    smart = client.get(f"{BASE}/.well-known/smart-configuration")
    assert smart.status_code == 200 and smart.mimetype == "application/json"
    config = smart.get_json()
    assert config["authorization_endpoint"].endswith("/oauth/authorize")
    assert config["token_endpoint"].endswith("/oauth/token")
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert {"launch-standalone", "context-standalone-patient", "sso-openid-connect", "permission-v2",
            "client-public"} <= set(config["capabilities"])
    assert {"openid", "fhirUser", "launch/patient", "patient/*.cruds"} <= set(config["scopes_supported"])
    openid = client.get("/.well-known/openid-configuration").get_json()
    assert openid["issuer"] == config["issuer"] and openid["id_token_signing_alg_values_supported"] == ["ES256"]
    security = client.get(f"{BASE}/metadata").get_json()["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    uris = {e["url"]: e["valueUri"] for e in security["extension"][0]["extension"]}
    assert uris["authorize"] == config["authorization_endpoint"] and uris["token"] == config["token_endpoint"]


def test_a_patients_standalone_launch_names_them_and_signs_them_in(app, clinic, smart_app):
    browser = sign_in(app, clinic.patient_a)
    verifier, challenge = pkce_pair()
    url = launch_url(smart_app, challenge, "launch/patient openid fhirUser patient/*.rs", aud=fhir_base(app),
                     nonce="n-0S6_WzA2Mj")
    assert "Know which patient" in text(browser.get(url))
    answer = browser.post_form(url, {"decision": "allow"})
    body = exchange(browser, smart_app, redirect_params(answer)["code"], verifier)

    assert body["patient"] == str(clinic.patient_a.id)
    access = claims_of(body["access_token"])
    assert access["aud"] == fhir_base(app) and access["patient"] == str(clinic.patient_a.id)
    with app.app_context():
        key_set = KeySet.import_key_set(keys.jwks())
        identity = jwt.decode(body["id_token"], key_set, algorithms=["ES256"]).claims
        issuer = keys.issuer()
    assert identity["iss"] == issuer and identity["aud"] == smart_app and identity["sub"] == str(clinic.patient_a.id)
    assert identity["fhirUser"] == f"{fhir_base(app)}/Patient/{clinic.patient_a.id}"
    assert identity["nonce"] == "n-0S6_WzA2Mj"

    assert get(app, f"{BASE}/Patient/{body['patient']}", body["access_token"]).status_code == 200
    # a token for the FHIR endpoint is not one for the REST API
    assert get(app, "/api/v1/patients/me", body["access_token"]).status_code == 401


def test_an_aud_that_is_not_this_server_is_refused(app, clinic, smart_app):
    browser = sign_in(app, clinic.patient_a)
    _, challenge = pkce_pair()
    answer = browser.get(launch_url(smart_app, challenge, "launch/patient patient/*.rs",
                                    aud="https://fhir.elsewhere.example/R4"))
    params = redirect_params(answer)
    assert params["error"] == "invalid_request" and "aud" in params["error_description"]


def test_a_clinician_picks_a_patient_in_their_care_and_the_token_reaches_only_them(app, clinic, smart_app,
                                                                                   create_patient):
    browser = sign_in(app, clinic.doctor_a)
    verifier, challenge = pkce_pair()
    url = launch_url(smart_app, challenge, "launch/patient openid fhirUser patient/*.rs offline_access",
                     aud=fhir_base(app))
    page = browser.get(url)
    assert page.status_code == 200
    picker = text(page)
    assert clinic.patient_a.full_name in picker and clinic.patient_b.full_name not in picker  # not in their care
    assert "Read, search all the chosen patient&#39;s data" in picker

    missing = browser.post_form(url, {"decision": "allow"})
    assert missing.status_code == 422 and "Choose the patient" in text(missing)
    outsider = browser.post_form(url, {"decision": "allow", "patient": str(clinic.patient_b.id)})
    assert outsider.status_code == 422 and "in your care" in text(outsider)

    answer = browser.post_form(url, {"decision": "allow", "patient": str(clinic.patient_a.id)})
    body = exchange(browser, smart_app, redirect_params(answer)["code"], verifier)
    assert body["patient"] == str(clinic.patient_a.id)
    with app.app_context():
        fhir_user = claims_of(body["id_token"])["fhirUser"]
    assert fhir_user.endswith(f"/Practitioner/{clinic.doctor_a.id}")
    token = body["access_token"]

    conditions = get(app, f"{BASE}/Condition", token)  # no `patient`: the one in context
    assert conditions.status_code == 200 and conditions.get_json()["total"] >= 1
    appointments = get(app, f"{BASE}/Appointment", token).get_json()
    assert {e["resource"]["participant"][0]["actor"]["reference"] for e in appointments["entry"]} == {
        f"Patient/{clinic.patient_a.id}"}

    # another patient in the doctor's care is out of this token's reach
    other = create_patient(full_name="Other Incare")
    with app.app_context():
        add_appointment(other.id, clinic.doctor_a.id, clinic.department_id, days_ago=3)
        db.session.commit()
    assert get(app, f"{BASE}/Patient/{other.id}", token).status_code == 404
    assert get(app, f"{BASE}/Condition?patient={other.id}", token).status_code == 404
    assert ids(get(app, f"{BASE}/Patient", token).get_json()) == [str(clinic.patient_a.id)]

    refreshed = token_request(browser, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"],
                                        "client_id": smart_app}).get_json()
    assert refreshed["patient"] == str(clinic.patient_a.id)
    assert claims_of(refreshed["access_token"])["patient"] == str(clinic.patient_a.id)
    assert get(app, f"{BASE}/Patient/{other.id}", refreshed["access_token"]).status_code == 404


def test_a_clinicians_patient_scopes_need_launch_patient_and_the_front_desk_has_none(app, clinic, smart_app):
    _, challenge = pkce_pair()
    doctor = sign_in(app, clinic.doctor_a)
    params = redirect_params(doctor.get(launch_url(smart_app, challenge, "patient/*.rs", aud=fhir_base(app))))
    assert params["error"] == "invalid_scope" and "launch/patient" in params["error_description"]
    clerk = sign_in(app, clinic.clerk)
    params = redirect_params(clerk.get(launch_url(smart_app, challenge, "launch/patient user/*.rs")))
    assert params["error"] == "invalid_scope"


def test_the_policy_hides_every_other_patient_from_a_launched_token(app, clinic):
    """The rule is the policy's, whatever the door: a resource of another patient is 404 for the actor."""
    from app.policy import Actor, Resource, Verb, decide

    with app.app_context():
        doctor = db.session.get(type(clinic.doctor_a), clinic.doctor_a.id)
        launched = Actor(doctor, scopes=frozenset({"record.read"}), patient_context=clinic.patient_b.id)
        decision = decide(launched, Verb.READ, Resource.record(clinic.patient_a.id))
        assert (decision.allowed, decision.status, decision.basis) == (False, 404, "outside_launch_context")
        assert decide(Actor(doctor, scopes=frozenset({"record.read"})), Verb.READ,
                      Resource.record(clinic.patient_a.id)).allowed
        db.session.remove()


def test_a_launched_tokens_refusal_is_an_operation_outcome(fhir, app, clinic, smart_app):
    browser = sign_in(app, clinic.patient_a)
    verifier, challenge = pkce_pair()
    url = launch_url(smart_app, challenge, "launch/patient patient/*.rs", aud=fhir_base(app))
    body = exchange(browser, smart_app, redirect_params(browser.post_form(url, {"decision": "allow"}))["code"],
                    verifier)
    answer = fhir(f"Patient/{clinic.patient_b.id}", body["access_token"])
    assert answer.status_code == 404 and issue(answer)["code"] == "not-found"


def test_the_picker_finds_only_the_doctors_own_patients_by_name(app, clinic):
    doctor = sign_in(app, clinic.doctor_a)
    found = text(doctor.get("/oauth/authorize/patients?q=zenob", htmx=True))
    assert clinic.patient_a.full_name in found and "<html" not in found
    outsider = text(doctor.get("/oauth/authorize/patients?q=Bruno", htmx=True))
    assert clinic.patient_b.full_name not in outsider and "None of your patients" in outsider
    assert sign_in(app, clinic.patient_a).get("/oauth/authorize/patients?q=zen").status_code == 404
