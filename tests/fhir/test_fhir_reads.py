"""Read and search of every resource type through /fhir/R4, each answer validated as FHIR R4B."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.appointments.models import Appointment
from app.events.models import OutboxEvent
from app.extensions import db
from app.timeutil import clinic_today, clinic_zone
from tests.api.tokens import token_for
from tests.fhir.conftest import ids
from tests.test_booking import a_slot, do_book

pytestmark = pytest.mark.clock  # the care relationship and the free slots depend on the clock

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"


def today(app):
    with app.app_context():
        return clinic_today()


def test_a_patient_reads_their_own_patient_resource(fhir, clinic, tokens):
    answer = fhir(f"Patient/{clinic.patient_a.id}", tokens["patient_a"])
    assert answer.status_code == 200
    patient = answer.body
    assert patient["name"][0]["family"] == "Quartermaine" and patient["name"][0]["given"] == ["Zenobia"]
    assert patient["birthDate"] == "1980-01-02" and patient["gender"] == "female"
    assert {"system": "email", "value": "zenobia@example.com", "use": "home"} in patient["telecom"]
    assert answer.headers["Cache-Control"] == "no-store"


def test_patient_search_by_name_birthdate_identifier_and_email(fhir, clinic, tokens):
    doctor = tokens["doctor_a"]  # patient A is in doctor A's care; patient B is not
    assert ids(fhir("Patient?name=zeno", doctor).body) == [str(clinic.patient_a.id)]
    assert ids(fhir("Patient?name=quarter", doctor).body) == [str(clinic.patient_a.id)]
    assert ids(fhir("Patient?name=bruno", doctor).body) == []
    assert ids(fhir("Patient?birthdate=1980-01-02", doctor).body) == [str(clinic.patient_a.id)]
    assert ids(fhir("Patient?birthdate=ge1981", doctor).body) == []
    assert ids(fhir("Patient?email=zenobia@example.com", doctor).body) == [str(clinic.patient_a.id)]
    identifier = fhir(f"Patient/{clinic.patient_a.id}", doctor).body["identifier"][0]
    found = fhir(f"Patient?identifier={identifier['system']}|{identifier['value']}", doctor).body
    assert ids(found) == [str(clinic.patient_a.id)] and found["total"] == 1


def test_practitioner_role_organization_and_schedule(fhir, clinic, tokens):
    token = tokens["patient_a"]
    practitioner = fhir(f"Practitioner/{clinic.doctor_a.id}", token).body
    assert practitioner["name"][0]["text"] == "Alma Attending"
    assert ids(fhir("Practitioner?name=alma", token).body) == [str(clinic.doctor_a.id)]
    role_id = f"{clinic.doctor_a.id}-{clinic.department_id}"
    role = fhir(f"PractitionerRole/{role_id}", token).body
    assert role["specialty"] == [{"text": "Cardiology"}]
    assert role["organization"]["reference"] == f"Organization/{clinic.department_id}"
    assert ids(fhir(f"PractitionerRole?practitioner={clinic.doctor_a.id}", token).body) == [role_id]
    organizations = fhir("Organization", token).body
    assert ids(organizations) == ["clinic", str(clinic.department_id)]
    department = fhir(f"Organization/{clinic.department_id}", token).body
    assert department["partOf"]["reference"] == "Organization/clinic" and department["name"] == "Cardiology"
    assert fhir("Organization/clinic", token).body["type"][0]["coding"][0]["code"] == "prov"
    schedule = fhir(f"Schedule/{role_id}", token).body
    assert schedule["actor"][1]["reference"] == f"Practitioner/{clinic.doctor_a.id}"
    assert role_id in ids(fhir("Schedule", token).body)
    assert fhir("Practitioner/999999", token).status_code == 404


def test_free_slots_come_from_the_slot_engine_and_their_ids_decode(app, fhir, clinic, tokens):
    token = tokens["patient_a"]
    day = today(app) + timedelta(days=3)
    schedule = f"Schedule/{clinic.doctor_a.id}-{clinic.department_id}"
    found = fhir(f"Slot?schedule={schedule}&start=ge{day}&start=le{day}&status=free", token).body
    engine = a_slot(app, clinic.doctor_a.id, days_ahead=3)
    first = found["entry"][0]["resource"]
    assert found["total"] == 20  # 08:00 to 18:00 in 30 minutes
    assert first["id"] == f"{clinic.doctor_a.id}-{clinic.department_id}-{int(engine.start.timestamp())}"
    assert first["status"] == "free" and first["schedule"]["reference"] == schedule
    assert fhir(f"Slot/{first['id']}", token).body == first
    do_book(app, clinic.patient_b.id, clinic.doctor_a.id, clinic.department_id, engine.start)
    taken = fhir(f"Slot/{first['id']}", token)
    assert taken.status_code == 404
    again = fhir(f"Slot?schedule={schedule}&start=ge{day}&start=le{day}", token).body
    assert again["total"] == 19 and first["id"] not in ids(again)
    assert fhir(f"Slot?schedule={schedule}&status=busy", token).body["total"] == 0
    assert fhir(f"Slot?start=ge{day}&start=le{day + timedelta(days=40)}", token).status_code == 400


def test_appointments_by_patient_practitioner_date_and_status_with_includes(app, fhir, clinic, tokens):
    slot = a_slot(app, clinic.doctor_a.id, days_ahead=2)
    booked = do_book(app, clinic.patient_a.id, clinic.doctor_a.id, clinic.department_id, slot.start)
    token = tokens["patient_a"]
    appointment = fhir(f"Appointment/{booked}", token).body
    assert appointment["status"] == "pending"  # requested: the doctor has not accepted yet
    assert appointment["participant"][1]["status"] == "needs-action"
    mine = fhir("Appointment", token).body
    assert mine["total"] == 4  # the chart's three visits and this one
    pending = fhir(f"Appointment?patient={clinic.patient_a.id}&status=pending", token).body
    assert ids(pending) == [str(booked)]
    with app.app_context():
        day = slot.start.astimezone(clinic_zone()).date()
    dated = fhir(f"Appointment?date=ge{day}&date=le{day}&practitioner=Practitioner/{clinic.doctor_a.id}", token)
    assert ids(dated.body) == [str(booked)]
    fulfilled = fhir("Appointment?status=fulfilled", token).body
    assert fulfilled["total"] == 2
    included = fhir("Appointment?status=pending&_include=Appointment:patient&_include=Appointment:practitioner",
                    tokens["doctor_a"]).body
    assert ids(included, "Appointment") == [str(booked)]
    assert ids(included, "Practitioner") == [str(clinic.doctor_a.id)]
    assert ids(included, "Patient") == [str(clinic.patient_a.id)]  # in doctor A's care: readable
    assert [e["search"]["mode"] for e in included["entry"]] == ["match", "include", "include"]
    assert ids(fhir("Appointment", tokens["clerk"]).body) == ids(fhir("Appointment?_count=100", token).body)


def test_encounters_conditions_prescriptions_allergies_of_a_patient(fhir, clinic, tokens):
    doctor = tokens["doctor_a"]
    patient = clinic.patient_a.id
    encounters = fhir(f"Encounter?patient={patient}", doctor).body
    # the current version of each visit (the check-up, the amended visit) and doctor A's own draft
    assert encounters["total"] == 3
    assert {str(clinic.chart.current_id), str(clinic.chart.draft_id)} <= set(ids(encounters))
    assert str(clinic.chart.original_id) not in ids(encounters)
    assert {e["resource"]["status"] for e in encounters["entry"]} == {"finished", "in-progress"}
    own = fhir("Encounter", tokens["patient_a"]).body  # a patient's token: their own, signed only
    assert str(clinic.chart.draft_id) not in ids(own) and own["total"] == 2
    assert fhir(f"Encounter/{clinic.chart.original_id}", tokens["patient_a"]).status_code == 200  # its history
    assert fhir(f"Encounter/{clinic.chart.draft_id}", tokens["patient_a"]).status_code == 404

    conditions = fhir(f"Condition?patient=Patient/{patient}", doctor).body
    codes = {e["resource"]["code"]["coding"][0]["code"] for e in conditions["entry"]}
    assert codes == {"I10", "E11.9"}
    assert all(e["resource"]["code"]["coding"][0]["system"] == ICD10CM for e in conditions["entry"])
    assert ids(fhir(f"Condition?patient={patient}&code={ICD10CM}|I10", doctor).body) == \
        [e["resource"]["id"] for e in conditions["entry"] if e["resource"]["code"]["coding"][0]["code"] == "I10"]
    condition = fhir(f"Condition/{ids(conditions)[0]}", doctor).body
    assert condition["verificationStatus"]["coding"][0]["code"] == "confirmed"

    prescriptions = fhir(f"MedicationRequest?patient={patient}", doctor).body
    request = prescriptions["entry"][0]["resource"]
    assert request["medicationCodeableConcept"]["text"] == "Amlodipine 5 mg tablet"
    assert request["dispenseRequest"]["expectedSupplyDuration"]["code"] == "d"
    assert fhir(f"MedicationRequest/{request['id']}", doctor).body == request

    allergies = fhir(f"AllergyIntolerance?patient={patient}", doctor).body
    allergy = allergies["entry"][0]["resource"]
    assert allergy["code"]["text"] == "Penicillin" and allergy["reaction"][0]["severity"] == "severe"
    assert fhir(f"AllergyIntolerance/{allergy['id']}", tokens["patient_a"]).body == allergy


def test_vital_signs_are_observations_with_loinc_codes_ucum_units_and_bp_components(app, fhir, clinic, tokens):
    token = tokens["patient_a"]
    vitals = fhir("Observation?category=vital-signs", token).body
    by_code = {}
    for entry in vitals["entry"]:
        by_code.setdefault(entry["resource"]["code"]["coding"][0]["code"], []).append(entry["resource"])
    assert set(by_code) == {"85354-9", "8867-4", "2708-6", "29463-7", "8302-2", "39156-5"}
    pressure = by_code["85354-9"][-1]
    components = {c["code"]["coding"][0]["code"]: c["valueQuantity"] for c in pressure["component"]}
    assert components == {"8480-6": {"value": 150, "unit": "mmHg", "system": "http://unitsofmeasure.org",
                                      "code": "mm[Hg]"},
                          "8462-4": {"value": 95, "unit": "mmHg", "system": "http://unitsofmeasure.org",
                                     "code": "mm[Hg]"}}
    assert "http://hl7.org/fhir/StructureDefinition/bp" in pressure["meta"]["profile"]
    bmi = by_code["39156-5"][-1]["valueQuantity"]
    assert bmi == {"value": 26.7, "unit": "kg/m2", "system": "http://unitsofmeasure.org", "code": "kg/m2"}
    assert ids(fhir(f"Observation?code={LOINC}|39156-5", token).body) == [o["id"] for o in by_code["39156-5"]]
    recent = fhir(f"Observation?code=8867-4&date=ge{today(app) - timedelta(days=30)}", token).body
    assert recent["total"] == 1 and recent["entry"][0]["resource"]["valueQuantity"]["value"] == 88
    assert fhir(f"Observation/{pressure['id']}", token).body == pressure
    assert fhir("Observation?category=laboratory", token).body["total"] == 0


def test_everything_of_a_patient(fhir, clinic, tokens):
    bundle = fhir(f"Patient/{clinic.patient_a.id}/$everything", tokens["patient_a"]).body
    types = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert types == {"Patient", "Appointment", "Encounter", "Condition", "MedicationRequest", "AllergyIntolerance",
                     "Observation"}
    assert bundle["entry"][0]["resource"]["id"] == str(clinic.patient_a.id)
    assert bundle["total"] == len(bundle["entry"])
    assert str(clinic.chart.draft_id) not in ids(bundle, "Encounter")


def test_every_read_of_clinical_data_is_audited_with_the_client(app, fhir, clinic, tokens):
    with app.app_context():
        before = db.session.scalar(sa.select(sa.func.max(OutboxEvent.seq))) or 0
    fhir(f"Condition?patient={clinic.patient_a.id}", tokens["doctor_a"])
    fhir(f"Encounter/{clinic.chart.current_id}", tokens["doctor_a"])
    fhir("Practitioner", tokens["doctor_a"])  # the directory: not a record read
    fhir(f"Patient/{clinic.patient_a.id}", tokens["doctor_a"])
    fhir("Patient?name=zenobia", tokens["doctor_a"])
    with app.app_context():
        events = [e.envelope for e in db.session.scalars(
            sa.select(OutboxEvent).where(OutboxEvent.seq > before, OutboxEvent.type == "record.viewed")
            .order_by(OutboxEvent.seq))]
    assert [e["data"]["view"] for e in events] == ["fhir.Condition.search", "fhir.Encounter.read",
                                                   "fhir.Patient.read", "fhir.Patient.search"]
    assert [e["data"]["categories"] for e in events[2:]] == [["demographics"], ["demographics"]]
    assert all(e["patient_id"] == clinic.patient_a.id and e["actor"]["client_id"] == "test-app" for e in events)
    events = events[:3]
    assert all(e["patient_id"] == clinic.patient_a.id and e["actor"]["client_id"] == "test-app"
               and e["data"]["basis"] == "care_relationship" for e in events)


def test_a_token_for_the_fhir_base_url_is_accepted_here_and_not_by_the_api(app, fhir, clinic):
    from app.oauth.bearer import fhir_audience
    from app.oauth.keys import sign_access_token
    from app.oauth.models import OAuthClient, OAuthGrant

    with app.app_context():
        client = OAuthClient.query.filter_by(client_id="test-app").one_or_none()
        if client is None:
            token_for(app, clinic.patient_a, "patient/*.rs")
            client = OAuthClient.query.filter_by(client_id="test-app").one()
        grant = OAuthGrant(client_pk=client.id, user_id=clinic.patient_a.id, scope="patient/*.rs")
        db.session.add(grant)
        db.session.flush()
        token = sign_access_token({"sub": str(clinic.patient_a.id), "aud": fhir_audience(), "client_id": "test-app",
                                   "scope": "patient/*.rs", "sv": 1, "gid": grant.id})
        db.session.commit()
    assert fhir(f"Patient/{clinic.patient_a.id}", token).status_code == 200
    api = app.test_client().get(f"/api/v1/patients/{clinic.patient_a.id}/appointments",
                                headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 401


def test_new_appointments_do_not_shift_a_page_already_handed_out(app, fhir, clinic, tokens):
    token = tokens["clerk"]
    first = fhir("Appointment?_count=2", token).body
    assert first["total"] == 3 and len(first["entry"]) == 2
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    slot = a_slot(app, clinic.doctor_a.id, days_ahead=4)
    do_book(app, clinic.patient_b.id, clinic.doctor_a.id, clinic.department_id, slot.start)
    second = fhir(next_url, token).body
    assert second["total"] == 4
    seen = ids(first) + ids(second)
    with app.app_context():
        every = [str(i) for i in db.session.scalars(sa.select(Appointment.id).order_by(Appointment.id))]
    assert seen == every and len(set(seen)) == len(seen)
    assert not any(link["relation"] == "next" for link in second["link"])
