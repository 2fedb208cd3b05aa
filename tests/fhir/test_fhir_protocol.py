"""The FHIR endpoint's protocol: the CapabilityStatement, OperationOutcome errors (never HTML), lenient and
strict handling of parameters, and the paging of searchsets."""
from __future__ import annotations

import pytest

from tests.fhir.conftest import BASE, ids, issue

pytestmark = pytest.mark.clock


def test_the_capability_statement_lists_what_is_implemented_without_a_token(fhir):
    answer = fhir("metadata")
    assert answer.status_code == 200 and answer.get_data(as_text=True).startswith('{"resourceType"')
    statement = answer.body
    assert statement["fhirVersion"] == "4.0.1" and statement["format"] == ["json"]
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert set(resources) == {"Patient", "Practitioner", "PractitionerRole", "Organization", "Schedule", "Slot",
                              "Appointment", "Encounter", "Condition", "MedicationRequest", "AllergyIntolerance",
                              "Observation"}
    params = {name: {p["name"] for p in r["searchParam"]} for name, r in resources.items()}
    assert {"_id", "_lastUpdated", "name", "birthdate", "identifier", "email"} <= params["Patient"]
    assert {"schedule", "start", "status"} <= params["Slot"]
    assert {"patient", "practitioner", "date", "status"} <= params["Appointment"]
    assert {"patient", "category", "code", "date"} <= params["Observation"]
    assert resources["Appointment"]["searchInclude"] == ["Appointment:patient", "Appointment:practitioner"]
    assert resources["Patient"]["operation"][0]["name"] == "everything"
    assert all(r["interaction"][:2] == [{"code": "read"}, {"code": "search-type"}] for r in resources.values())
    # the writes: tests/fhir/test_fhir_writes.py


def test_errors_are_operation_outcomes(app, fhir, clinic, tokens):
    token = tokens["patient_a"]
    unauthenticated = fhir("Patient")
    assert unauthenticated.status_code == 401 and issue(unauthenticated)["code"] == "login"
    assert unauthenticated.headers["WWW-Authenticate"].startswith("Bearer")
    assert fhir("Patient", "not-a-token").status_code == 401
    assert fhir("Unicorn/1", token).status_code == 404
    assert fhir("Patient/has_underscore", token).status_code == 404
    bad_date = fhir("Appointment?date=yesterday", token)
    assert bad_date.status_code == 400 and issue(bad_date)["expression"] == ["date"]
    assert fhir("Patient?_count=many", token).status_code == 400
    assert fhir("Patient?_cursor=garbage", token).status_code == 400
    assert fhir("Patient?name:phonetic=zen", token).status_code == 400
    assert fhir("Patient?_format=xml", token).status_code == 406
    post = app.test_client().post(f"{BASE}/Patient", json={"resourceType": "Patient"})
    assert post.status_code == 405 and post.mimetype == "application/fhir+json"
    assert post.get_json()["resourceType"] == "OperationOutcome"


def test_a_cookie_session_never_authorizes_fhir(app, clinic, login):
    client = login(clinic.patient_a)
    csrf = {"X-CSRFToken": client.csrf_token("/")}  # even with the page's CSRF token
    for method, path in (("GET", f"Patient/{clinic.patient_a.id}"), ("POST", "Appointment"),
                         ("PUT", f"Appointment/{clinic.chart.appointment_id}"),
                         ("PATCH", f"Appointment/{clinic.chart.appointment_id}")):
        answer = client.http.open(f"{BASE}/{path}", method=method, json={"resourceType": "Appointment"},
                                  headers=csrf)
        assert answer.status_code == 401 and answer.mimetype == "application/fhir+json", (method, path)
        assert "set-cookie" not in {name.lower() for name in answer.headers.keys()}


def test_unknown_parameters_are_ignored_unless_handling_is_strict(fhir, clinic, tokens):
    token = tokens["patient_a"]
    lenient = fhir("Encounter?colour=blue", token)
    assert lenient.status_code == 200 and lenient.body["total"] == 2
    self_link = next(link["url"] for link in lenient.body["link"] if link["relation"] == "self")
    assert "colour" not in self_link
    strict = fhir("Encounter?colour=blue", token, Prefer="handling=strict")
    assert strict.status_code == 400 and issue(strict)["code"] == "not-supported"
    assert fhir("Encounter?_count=1", token, Prefer="handling=strict").status_code == 200
    assert fhir("Encounter?colour=blue", token, Prefer="return=representation, handling=strict").status_code == 400


def test_paging_follows_next_links_through_every_match_once(fhir, clinic, tokens):
    token = tokens["patient_a"]
    whole = fhir("Observation?_count=100", token).body
    assert whole["total"] > 3 and "next" not in {link["relation"] for link in whole["link"]}
    seen, url = [], "Observation?_count=2"
    while url:
        page = fhir(url, token).body
        assert page["total"] == whole["total"] and len(page["entry"]) <= 2
        seen += ids(page)
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    assert seen == ids(whole)
    only_total = {name: value for name, value in whole.items() if name != "entry"}
    assert fhir("Observation?_count=0", token).body == {**only_total, "link": [
        {"relation": "self", "url": whole["link"][0]["url"].replace("_count=100", "_count=0")}]}


def test_last_updated_and_id_filter_every_type(fhir, clinic, tokens):
    token = tokens["doctor_a"]
    assert fhir("Encounter?patient={}&_lastUpdated=gt2100-01-01".format(clinic.patient_a.id), token).body["total"] == 0
    assert fhir("Encounter?patient={}&_lastUpdated=ge2000".format(clinic.patient_a.id), token).body["total"] == 3
    assert ids(fhir(f"Encounter?patient={clinic.patient_a.id}&_id={clinic.chart.current_id}", token).body) == \
        [str(clinic.chart.current_id)]
    assert ids(fhir(f"Practitioner?_id={clinic.doctor_b.id}", token).body) == [str(clinic.doctor_b.id)]


@pytest.mark.parametrize("path", [
    "Patient?_id=²", "Patient?identifier=²", "Patient?_count=" + "9" * 5000, "Patient?birthdate=0001-01-01",
    "Patient?birthdate=9999-12-31T23:59:59-12:00", "Appointment?date=ge2026-02-30", "Appointment?patient=²",
    "Slot/1-2-99999999999999999999", "Slot/²-1-1", "Observation/1-heart-rate", "Observation/x", "Schedule/1-2-3",
    "Appointment?practitioner=Patient/1", "Encounter?patient=" + "1" * 40, "Patient?_cursor=W10",
    "Slot?start=ge2026-01-01T25:00Z", "Observation?date=lt2026-13", "Patient?name:exact=%00",
])
def test_odd_values_are_answered_never_a_500(fhir, clinic, tokens, path):
    answer = fhir(path, tokens["patient_a"])
    assert answer.status_code in (200, 400, 403, 404), (path, answer.body)


def test_the_apis_rate_limits_count_fhir_requests(app, fhir, clinic, tokens, monkeypatch):
    monkeypatch.setitem(app.config, "HMS_API_RATE_LIMIT_CLIENT", (2, 60))
    assert [fhir("Practitioner", tokens["patient_a"]).status_code for _ in range(2)] == [200, 200]
    refused = fhir("Practitioner", tokens["patient_a"])
    assert refused.status_code == 429 and issue(refused)["code"] == "throttled"
    assert int(refused.headers["Retry-After"]) > 0
