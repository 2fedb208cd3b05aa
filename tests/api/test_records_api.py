"""Medical records through the API: the doctor's encounter (open, notes and vitals, diagnoses, prescriptions with
the allergy warning, sign, amend), allergies, ICD-10 search and the record summary, with the same services,
policy and audit as the pages, and the API's conventions (If-Match, Idempotency-Key, problems with pointers)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.accounts.models import Role
from app.appointments.models import Status
from app.events.models import OutboxEvent
from app.extensions import db
from app.records.models import AllergyAcknowledgement, Encounter, EncounterStatus, Prescription
from tests.api.tokens import auth, system_token, token_for
from tests.records.clinical_data import add_allergy, add_appointment, add_encounter, build_chart

pytestmark = pytest.mark.clock  # the care relationship depends on the clock: see `make test-clock`

RX = {"drug_name": "Amoxicillin 500 mg", "strength": "500 mg", "form": "capsule", "dose": "1 capsule",
      "route": "oral", "frequency": "three times daily", "duration_days": 7, "quantity": 21}


class Visit:
    """A checked-in visit of a patient with a doctor, and their tokens."""


@pytest.fixture
def visit(app, create_doctor, create_patient, create_department):
    v = Visit()
    department = create_department("General medicine")
    v.doctor = create_doctor(full_name="Dr. Lena Park", department_ids=[department])
    v.patient = create_patient(full_name="Omar Haddad")
    v.department = department
    with app.app_context():
        v.appointment_id = add_appointment(v.patient.id, v.doctor.id, department, days_ago=0.01,
                                           status=Status.CHECKED_IN, reason="Sore throat and fever").id
        db.session.commit()
    v.doctor_token = token_for(app, v.doctor, "user/Encounter.cru user/Condition.rs user/AllergyIntolerance.cd")
    v.patient_token = token_for(app, v.patient, "patient/*.rs")
    return v


@pytest.fixture
def api(app):
    return app.test_client()


def opened(api, visit) -> tuple[int, str]:
    answer = api.post(f"/api/v1/appointments/{visit.appointment_id}/encounter", headers=auth(visit.doctor_token))
    assert answer.status_code in (200, 201), answer.get_json()
    return answer.get_json()["id"], answer.headers["ETag"]


def change(api, visit, method: str, path: str, etag: str, **kwargs):
    return api.open(path, method=method, headers=auth(visit.doctor_token, **{"If-Match": etag}), **kwargs)


def events(app, type_: str) -> list[dict]:
    with app.app_context():
        return [row.envelope for row in db.session.scalars(
            sa.select(OutboxEvent).where(OutboxEvent.type == type_).order_by(OutboxEvent.seq))]


def test_a_doctor_records_a_visit_and_the_patient_reads_it_once_signed(app, api, visit):
    first = api.post(f"/api/v1/appointments/{visit.appointment_id}/encounter", headers=auth(visit.doctor_token))
    assert first.status_code == 201, first.get_json()
    encounter = first.get_json()
    assert encounter["status"] == "draft" and encounter["chief_complaint"] == "Sore throat and fever"
    url = f"/api/v1/encounters/{encounter['id']}"
    assert first.headers["Location"] == url
    again = api.post(f"/api/v1/appointments/{visit.appointment_id}/encounter", headers=auth(visit.doctor_token))
    assert again.status_code == 200 and again.get_json()["id"] == encounter["id"]
    assert again.headers["ETag"] == first.headers["ETag"]

    assert api.get(url, headers=auth(visit.patient_token)).status_code == 404  # a draft is its author's only

    patched = change(api, visit, "PATCH", url, first.headers["ETag"], json={
        "subjective": "Three days of fever", "objective": "Red throat", "assessment": "Viral pharyngitis",
        "plan": "Fluids and rest", "vitals": {"systolic": 120, "diastolic": 80, "temperature_c": "38.25",
                                              "weight_kg": 70, "height_cm": 175}})
    assert patched.status_code == 200, patched.get_json()
    body = patched.get_json()
    assert body["vitals"]["temperature_c"] == 38.3 and body["vitals"]["bmi"] == 22.9
    assert body["vitals"]["systolic"] == 120 and body["plan"] == "Fluids and rest"
    dx = change(api, visit, "POST", f"{url}/diagnoses", patched.headers["ETag"], json={"code": "j02.9"})
    assert dx.status_code == 201, dx.get_json()
    assert [(d["code"], d["is_primary"]) for d in dx.get_json()["diagnoses"]] == [("J02.9", True)]
    read = api.get(url, headers=auth(visit.doctor_token))
    assert read.get_json() == dx.get_json() and read.headers["ETag"] == dx.headers["ETag"]  # chained changes
    rx = change(api, visit, "POST", f"{url}/prescriptions", dx.headers["ETag"], json=RX)
    assert rx.status_code == 201, rx.get_json()
    signed = change(api, visit, "POST", f"{url}/sign", rx.headers["ETag"])
    assert signed.status_code == 200 and signed.get_json()["status"] == "signed"

    as_patient = api.get(url, headers=auth(visit.patient_token))
    assert as_patient.status_code == 200
    seen = as_patient.get_json()
    assert seen["assessment"] == "Viral pharyngitis" and seen["plan"] == "Fluids and rest"
    assert seen["subjective"] is None and seen["objective"] is None  # the doctor's working notes
    assert seen["prescriptions"][0]["drug_name"] == "Amoxicillin 500 mg"
    for type_ in ("encounter.created", "encounter.updated", "vitals.recorded", "diagnosis.added",
                  "prescription.created", "encounter.signed"):
        [event] = events(app, type_)
        assert event["actor"] == {"id": visit.doctor.id, "role": "doctor", "client_id": "test-app"}, type_
    reads = [e for e in events(app, "record.viewed") if e["data"]["view"] == "api.encounter"]
    assert [e["actor"]["id"] for e in reads] == [visit.doctor.id, visit.doctor.id, visit.patient.id]


def test_changes_need_the_encounters_current_etag(app, api, visit):
    encounter_id, etag = opened(api, visit)
    url = f"/api/v1/encounters/{encounter_id}"
    missing = api.patch(url, json={"plan": "x"}, headers=auth(visit.doctor_token))
    assert missing.status_code == 428
    first = change(api, visit, "PATCH", url, etag, json={"plan": "First"})
    assert first.status_code == 200
    stale = change(api, visit, "PATCH", url, etag, json={"plan": "Second"})  # the copy before the first change
    assert stale.status_code == 412 and stale.mimetype == "application/problem+json"
    stale_dx = change(api, visit, "POST", f"{url}/diagnoses", etag, json={"code": "I10"})
    assert stale_dx.status_code == 412
    with app.app_context():
        encounter = db.session.get(Encounter, encounter_id)
        assert encounter.plan == "First" and not encounter.diagnoses


def test_bad_notes_and_vitals_are_field_errors_and_nothing_is_saved(app, api, visit):
    encounter_id, etag = opened(api, visit)
    url = f"/api/v1/encounters/{encounter_id}"
    answer = change(api, visit, "PATCH", url, etag, json={"plan": "Changed", "vitals": {"systolic": 400,
                                                                                        "diastolic": 80}})
    assert answer.status_code == 422
    assert answer.get_json()["errors"] == [
        {"pointer": "/vitals/systolic", "detail": "Systolic pressure must be between 50 and 260 mmHg."}]
    half = change(api, visit, "PATCH", url, etag, json={"vitals": {"systolic": 120}})
    assert half.status_code == 422
    assert half.get_json()["errors"][0]["pointer"] == "/vitals/diastolic"
    unknown = change(api, visit, "PATCH", url, etag, json={"vitals": {"colour": 1}, "mood": "x"})
    assert unknown.status_code == 422
    assert {e["pointer"] for e in unknown.get_json()["errors"]} == {"/vitals/colour", "/mood"}
    long = change(api, visit, "PATCH", url, etag, json={"chief_complaint": "x" * 501})
    assert long.status_code == 422 and long.get_json()["errors"][0]["pointer"] == "/chief_complaint"
    with app.app_context():
        encounter = db.session.get(Encounter, encounter_id)
        assert encounter.plan == "" and encounter.systolic is None
    assert api.get(url, headers=auth(visit.doctor_token)).headers["ETag"] == etag

    kept = change(api, visit, "PATCH", url, etag, json={"vitals": {"systolic": 130, "diastolic": 85}})
    cleared = change(api, visit, "PATCH", url, kept.headers["ETag"], json={"vitals": {"heart_rate": 70}})
    assert cleared.get_json()["vitals"]["systolic"] == 130  # a vital left out keeps its value
    nulled = change(api, visit, "PATCH", url, cleared.headers["ETag"], json={"vitals": None})
    assert nulled.get_json()["vitals"]["heart_rate"] is None and nulled.get_json()["vitals"]["systolic"] is None


def test_diagnoses_are_icd10_codes_the_first_primary_and_removed_with_the_etag(app, api, visit):
    encounter_id, etag = opened(api, visit)
    url = f"/api/v1/encounters/{encounter_id}"
    unknown = change(api, visit, "POST", f"{url}/diagnoses", etag, json={"code": "ZZZ"})
    assert unknown.status_code == 422 and unknown.get_json()["errors"][0]["pointer"] == "/code"
    category = change(api, visit, "POST", f"{url}/diagnoses", etag, json={"code": "E11"})
    assert category.status_code == 422 and "category" in category.get_json()["errors"][0]["detail"]
    first = change(api, visit, "POST", f"{url}/diagnoses", etag, json={"code": "I10"})
    second = change(api, visit, "POST", f"{url}/diagnoses", first.headers["ETag"],
                    json={"code": "E11.9", "primary": True})
    assert second.status_code == 201
    diagnoses = second.get_json()["diagnoses"]
    assert [(d["code"], d["is_primary"]) for d in diagnoses] == [("E11.9", True), ("I10", False)]
    twice = change(api, visit, "POST", f"{url}/diagnoses", second.headers["ETag"], json={"code": "I10"})
    assert twice.status_code == 422
    removed = change(api, visit, "DELETE", f"{url}/diagnoses/{diagnoses[0]['id']}", second.headers["ETag"])
    assert removed.status_code == 200
    assert [(d["code"], d["is_primary"]) for d in removed.get_json()["diagnoses"]] == [("I10", True)]
    gone = change(api, visit, "DELETE", f"{url}/diagnoses/{diagnoses[0]['id']}", removed.headers["ETag"])
    assert gone.status_code == 404
    assert [e["data"]["diagnosis_id"] for e in events(app, "diagnosis.removed")] == [diagnoses[0]["id"]]


def test_an_allergy_recorded_through_the_api_stops_a_matching_prescription_until_acknowledged(app, api, visit):
    allergies = f"/api/v1/patients/{visit.patient.id}/allergies"
    recorded = api.post(allergies, json={"substance": " Penicillin ", "reaction": "Hives", "severity": "severe"},
                        headers=auth(visit.doctor_token))
    assert recorded.status_code == 201, recorded.get_json()
    allergy = recorded.get_json()
    assert allergy["substance"] == "Penicillin" and recorded.headers["Location"] == f"{allergies}/{allergy['id']}"
    doctor_reads = token_for(app, visit.doctor, "user/AllergyIntolerance.r")
    assert api.get(recorded.headers["Location"], headers=auth(doctor_reads)).get_json() == allergy
    duplicate = api.post(allergies, json={"substance": "penicillin", "reaction": "Rash", "severity": "mild"},
                         headers=auth(visit.doctor_token))
    assert duplicate.status_code == 422 and duplicate.get_json()["errors"][0]["pointer"] == "/substance"

    encounter_id, etag = opened(api, visit)
    url = f"/api/v1/encounters/{encounter_id}/prescriptions"
    warned = change(api, visit, "POST", url, etag, json=RX)
    assert warned.status_code == 409
    problem = warned.get_json()
    assert problem["type"].endswith("/allergy-warning")
    [match] = problem["allergy_matches"]
    assert match["allergy_id"] == allergy["id"] and "penicillins" in match["reason"]
    headers = auth(visit.doctor_token, **{"If-Match": etag, "Idempotency-Key": "rx-1"})
    body = {**RX, "acknowledge_allergies": [allergy["id"]]}
    prescribed = api.post(url, json=body, headers=headers)
    assert prescribed.status_code == 201, prescribed.get_json()
    [rx] = prescribed.get_json()["prescriptions"]
    assert [a["allergy_id"] for a in rx["allergy_acknowledgements"]] == [allergy["id"]]
    retry = api.post(url, json=body, headers=headers)
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.get_json() == prescribed.get_json()
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Prescription)) == 1
        assert db.session.scalar(sa.select(AllergyAcknowledgement.acknowledged_by_id)) == visit.doctor.id

    bad = change(api, visit, "POST", url, prescribed.headers["ETag"],
                 json={**RX, "form": "lozenge", "quantity": 0, "drug_name": "  "})
    assert bad.status_code == 422
    assert {e["pointer"] for e in bad.get_json()["errors"]} == {"/form", "/quantity", "/drug_name"}
    removed = change(api, visit, "DELETE", f"{url}/{rx['id']}", prescribed.headers["ETag"])
    assert removed.status_code == 200 and removed.get_json()["prescriptions"] == []

    allergy_url = f"{allergies}/{allergy['id']}"
    assert api.delete(allergy_url, headers=auth(visit.doctor_token)).status_code == 428
    assert api.delete(allergy_url, headers=auth(visit.doctor_token, **{"If-Match": '"stale"'})).status_code == 412
    allergy_etag = api.get(allergy_url, headers=auth(visit.doctor_token)).headers["ETag"]
    gone = api.delete(allergy_url, headers=auth(visit.doctor_token, **{"If-Match": allergy_etag}))
    assert gone.status_code == 204
    assert api.delete(allergy_url, headers=auth(visit.doctor_token, **{"If-Match": allergy_etag})).status_code == 404
    assert api.get(f"/api/v1/patients/{visit.patient.id}/record",
                   headers=auth(visit.patient_token)).get_json()["allergies"] == []
    assert len(events(app, "allergy.removed")) == 1


def test_signing_freezes_the_encounter_and_an_amendment_is_a_new_version(app, api, visit):
    encounter_id, etag = opened(api, visit)
    url = f"/api/v1/encounters/{encounter_id}"
    blank = change(api, visit, "PATCH", url, etag, json={"chief_complaint": None})
    assert blank.status_code == 200 and blank.get_json()["chief_complaint"] == ""
    incomplete = change(api, visit, "POST", f"{url}/sign", blank.headers["ETag"])
    assert incomplete.status_code == 409 and incomplete.get_json()["type"].endswith("/encounter-incomplete")
    ready = change(api, visit, "PATCH", url, blank.headers["ETag"], json={"chief_complaint": "Fever"})
    signed = change(api, visit, "POST", f"{url}/sign", ready.headers["ETag"])
    assert signed.status_code == 200
    etag = signed.headers["ETag"]
    for method, path, body in (("PATCH", url, {"plan": "x"}), ("POST", f"{url}/diagnoses", {"code": "I10"}),
                               ("POST", f"{url}/prescriptions", RX), ("POST", f"{url}/sign", None)):
        refused = change(api, visit, method, path, etag, json=body)
        assert refused.status_code == 409 and refused.get_json()["type"].endswith("/record-locked"), path
    no_reason = change(api, visit, "POST", f"{url}/amend", etag, json={"reason": " "})
    assert no_reason.status_code == 422 and no_reason.get_json()["errors"][0]["pointer"] == "/reason"
    amended = change(api, visit, "POST", f"{url}/amend", etag, json={"reason": "Lab results came back"})
    assert amended.status_code == 201, amended.get_json()
    amendment = amended.get_json()
    assert amendment["version"] == 2 and amendment["amends_id"] == encounter_id
    assert amendment["status"] == "draft" and amendment["amendment_reason"] == "Lab results came back"
    assert amended.headers["Location"] == f"/api/v1/encounters/{amendment['id']}"
    twice = change(api, visit, "POST", f"{url}/amend", etag, json={"reason": "Again"})
    assert twice.status_code == 409 and twice.get_json()["type"].endswith("/not-amendable")
    reopened = api.post(f"/api/v1/appointments/{visit.appointment_id}/encounter", headers=auth(visit.doctor_token))
    assert reopened.status_code == 200 and reopened.get_json()["id"] == amendment["id"]  # the latest version
    with app.app_context():
        assert db.session.get(Encounter, encounter_id).status is EncounterStatus.SIGNED


def test_only_the_visits_doctor_opens_it_and_only_once_the_patient_is_checked_in(app, api, visit, create_doctor):
    other = create_doctor()
    answer = api.post(f"/api/v1/appointments/{visit.appointment_id}/encounter", headers=auth(token_for(app, other)))
    assert answer.status_code == 404
    patient = api.post(f"/api/v1/appointments/{visit.appointment_id}/encounter", headers=auth(visit.patient_token))
    assert patient.status_code in (403, 404)  # a patient/…rs token has no write scope; with one, 404
    writer = token_for(app, visit.patient, "patient/*.cruds")
    assert api.post(f"/api/v1/appointments/{visit.appointment_id}/encounter",
                    headers=auth(writer)).status_code == 404
    with app.app_context():
        ahead = add_appointment(visit.patient.id, visit.doctor.id, visit.department, days_ago=-2,
                                status=Status.CONFIRMED).id
        db.session.commit()
    early = api.post(f"/api/v1/appointments/{ahead}/encounter", headers=auth(visit.doctor_token))
    assert early.status_code == 409 and early.get_json()["type"].endswith("/encounter-not-openable")
    no_scope = token_for(app, visit.doctor, "user/Appointment.cruds")
    refused = api.post(f"/api/v1/appointments/{visit.appointment_id}/encounter", headers=auth(no_scope))
    assert refused.status_code == 403 and refused.get_json()["type"].endswith("/insufficient-scope")


@pytest.fixture
def chart(app, visit):
    with app.app_context():
        chart = build_chart(visit.patient.id, visit.doctor.id, visit.department)
        db.session.commit()
    return chart


def test_the_record_summary_for_the_patient_and_the_caring_doctor(app, api, visit, chart):
    url = f"/api/v1/patients/{visit.patient.id}/record"
    own = api.get(url, headers=auth(visit.patient_token))
    assert own.status_code == 200, own.get_json()
    record = own.get_json()
    ids = [e["id"] for e in record["encounters"]]
    assert chart.current_id in ids and chart.draft_id not in ids and chart.original_id not in ids
    assert sorted(d["code"] for d in record["diagnoses"]) == ["E11.9", "I10"]
    assert [a["substance"] for a in record["allergies"]] == ["Penicillin"]
    assert [p["systolic"] for p in record["vitals"]] == [128, 150] and record["vitals"][0]["bmi"] == 25.9
    doctor = api.get(url, headers=auth(token_for(app, visit.doctor, "user/Observation.r")))
    assert doctor.status_code == 200
    assert chart.draft_id in [e["id"] for e in doctor.get_json()["encounters"]]  # the author's own draft
    reads = [e for e in events(app, "record.viewed") if e["data"]["view"] == "api.record"]
    assert [(e["actor"]["id"], e["patient_id"], e["actor"]["client_id"]) for e in reads] == [
        (visit.patient.id, visit.patient.id, "test-app"), (visit.doctor.id, visit.patient.id, "test-app")]


def test_nobody_else_reads_the_record(app, api, visit, chart, create_patient, create_doctor):
    url = f"/api/v1/patients/{visit.patient.id}/record"
    stranger = token_for(app, create_patient(), "patient/*.cruds")
    assert api.get(url, headers=auth(stranger)).status_code == 404
    assert api.get(f"/api/v1/encounters/{chart.current_id}", headers=auth(stranger)).status_code == 404
    unrelated = token_for(app, create_doctor())
    refused = api.get(url, headers=auth(unrelated))
    assert refused.status_code == 403 and refused.get_json()["type"].endswith("/no-care-relationship")
    assert "Penicillin" not in refused.get_data(as_text=True)
    assert api.get(f"/api/v1/encounters/{chart.current_id}", headers=auth(unrelated)).status_code == 403
    assert api.get(f"/api/v1/encounters/{chart.draft_id}", headers=auth(unrelated)).status_code == 403
    assert api.post(f"/api/v1/patients/{visit.patient.id}/allergies", headers=auth(unrelated),
                    json={"substance": "Latex", "reaction": "Rash", "severity": "mild"}).status_code == 403
    clerk = system_token(app, Role.CLERK)
    assert api.get(url, headers=auth(clerk)).status_code == 403
    assert api.get(f"/api/v1/encounters/{chart.current_id}", headers=auth(clerk)).status_code == 403
    appointments_only = token_for(app, visit.patient, "patient/Appointment.rs")
    scoped = api.get(url, headers=auth(appointments_only))
    assert scoped.status_code == 403 and scoped.get_json()["type"].endswith("/insufficient-scope")
    assert api.get(f"/api/v1/patients/{visit.doctor.id}/record", headers=auth(visit.doctor_token)).status_code == 404
    denied = events(app, "access.denied")
    assert denied and all(e["actor"]["client_id"] for e in denied)


def test_a_patient_never_writes_their_record(app, api, visit, chart):
    writer = token_for(app, visit.patient, "patient/*.cruds")
    url = f"/api/v1/encounters/{chart.current_id}"
    etag = api.get(url, headers=auth(writer)).headers["ETag"]
    assert api.patch(url, json={"plan": "x"}, headers=auth(writer, **{"If-Match": etag})).status_code == 404
    assert api.post(f"/api/v1/patients/{visit.patient.id}/allergies", headers=auth(writer),
                    json={"substance": "Latex", "reaction": "Rash", "severity": "mild"}).status_code == 404
    with app.app_context():
        allergy_id = add_allergy(visit.patient.id, visit.doctor.id, substance="Latex").id
        db.session.commit()
    assert api.delete(f"/api/v1/patients/{visit.patient.id}/allergies/{allergy_id}",
                      headers=auth(writer, **{"If-Match": "*"})).status_code == 404


def test_icd10_search_is_for_clinicians(app, api, visit):
    answer = api.get("/api/v1/icd10?q=hypertension&limit=3", headers=auth(visit.doctor_token))
    assert answer.status_code == 200
    items = answer.get_json()["items"]
    assert len(items) == 3 and items[0] == {"code": "I10", "description": "Essential (primary) hypertension",
                                            "billable": True}
    short = api.get("/api/v1/icd10?q=h", headers=auth(visit.doctor_token))
    assert short.status_code == 422 and short.get_json()["errors"][0]["parameter"] == "q"
    too_many = api.get("/api/v1/icd10?q=hyp&limit=500", headers=auth(visit.doctor_token))
    assert too_many.status_code == 422
    assert api.get("/api/v1/icd10?q=hypertension", headers=auth(visit.patient_token)).status_code == 403
    clerk = system_token(app, Role.CLERK)
    assert api.get("/api/v1/icd10?q=hypertension", headers=auth(clerk)).status_code == 403


def test_another_doctor_with_care_reads_a_signed_encounter_but_never_writes_it(app, api, visit, create_doctor):
    colleague = create_doctor()
    with app.app_context():
        theirs = add_appointment(visit.patient.id, colleague.id, visit.department, days_ago=3)
        mine = add_appointment(visit.patient.id, visit.doctor.id, visit.department, days_ago=2)
        signed = add_encounter(mine, chief_complaint="Cough", subjective="zxq-subjective").id
        db.session.commit()
        assert theirs.id
    token = token_for(app, colleague)
    url = f"/api/v1/encounters/{signed}"
    read = api.get(url, headers=auth(token))
    assert read.status_code == 200 and read.get_json()["subjective"] == "zxq-subjective"
    amend = api.post(f"{url}/amend", json={"reason": "Mine now"}, headers=auth(token, **{"If-Match": "*"}))
    assert amend.status_code == 404


@pytest.mark.parametrize("path, body, pointer", [
    ("", {"vitals": {"systolic": "abc"}}, "/vitals/systolic"),
    ("", {"vitals": {"heart_rate": "NaN"}}, "/vitals/heart_rate"),
    ("", {"vitals": {"weight_kg": 1e308}}, "/vitals/weight_kg"),
    ("", {"vitals": {"spo2": 97.5}}, "/vitals/spo2"),
    ("", {"subjective": 5}, "/subjective"),
    ("", {"vitals": [1]}, "/vitals"),
    ("/diagnoses", {"code": "\u0000I10"}, "/code"),
    ("/diagnoses", {"code": "I10", "primary": "maybe"}, "/primary"),
    ("/prescriptions", {**RX, "duration_days": 10**30}, "/duration_days"),
    ("/prescriptions", {**RX, "acknowledge_allergies": [0]}, "/acknowledge_allergies/0"),
    ("/prescriptions", {**RX, "instructions": "x" * 501}, "/instructions"),
])
def test_odd_values_are_field_errors_never_server_errors(app, api, visit, path, body, pointer):
    encounter_id, etag = opened(api, visit)
    method = "PATCH" if not path else "POST"
    answer = change(api, visit, method, f"/api/v1/encounters/{encounter_id}{path}", etag, json=body)
    assert answer.status_code == 422, answer.get_json()
    assert answer.get_json()["errors"][0]["pointer"] == pointer
    assert api.get(f"/api/v1/encounters/{encounter_id}", headers=auth(visit.doctor_token)).headers["ETag"] == etag


def test_the_records_operations_are_in_the_openapi_document(app, api):
    paths = api.get("/api/v1/openapi.json").get_json()["paths"]
    assert set(paths["/api/v1/encounters/{encounter_id}"]) == {"get", "patch"}
    patch = paths["/api/v1/encounters/{encounter_id}"]["patch"]
    assert {p["name"] for p in patch["parameters"]} >= {"If-Match"}
    assert patch["security"][0] == {"oauth2": ["patient/Encounter.u"]}
    for path in ("/api/v1/appointments/{appointment_id}/encounter", "/api/v1/encounters/{encounter_id}/amend",
                 "/api/v1/patients/{patient_id}/record", "/api/v1/icd10",
                 "/api/v1/patients/{patient_id}/allergies/{allergy_id}"):
        assert path in paths
