"""The FHIR door asks the same access policy as the pages and the API: another patient's data is 404, a doctor
without a care relationship 403, a missing scope 403, and a patient's token only ever reaches its own patient."""
from __future__ import annotations

import pytest

from tests.api.tokens import token_for
from tests.fhir.conftest import ids, issue

pytestmark = pytest.mark.clock


def test_another_patients_patient_resource_is_404_like_a_missing_one(fhir, clinic, tokens):
    other = fhir(f"Patient/{clinic.patient_a.id}", tokens["patient_b"])
    missing = fhir("Patient/1999999999", tokens["patient_b"])
    assert other.status_code == missing.status_code == 404
    assert other.body == missing.body and issue(other)["code"] == "not-found"
    assert "Quartermaine" not in other.get_data(as_text=True)


def test_a_doctor_without_a_care_relationship_is_refused_403(fhir, clinic, tokens):
    doctor = tokens["doctor_b"]
    for path in (f"Patient/{clinic.patient_a.id}", f"Condition?patient={clinic.patient_a.id}",
                 f"Encounter/{clinic.chart.current_id}", f"Observation?patient={clinic.patient_a.id}",
                 f"Patient/{clinic.patient_a.id}/$everything"):
        answer = fhir(path, doctor)
        assert answer.status_code == 403, path
        assert issue(answer)["code"] == "forbidden"
        assert "Quartermaine" not in answer.get_data(as_text=True)
    assert fhir("Patient?name=zenobia", doctor).body["total"] == 0  # not among the patients they may find


def test_the_clerk_reads_no_clinical_data(fhir, clinic, tokens):
    assert fhir(f"Condition?patient={clinic.patient_a.id}", tokens["clerk"]).status_code == 403
    assert fhir(f"Patient/{clinic.patient_a.id}", tokens["clerk"]).status_code == 403


def test_a_patients_search_is_limited_to_themselves(fhir, clinic, tokens):
    token = tokens["patient_b"]
    assert ids(fhir("Patient", token).body) == [str(clinic.patient_b.id)]
    assert fhir("Condition", token).body["total"] == 0
    assert fhir("Appointment", token).body["total"] == 0
    assert fhir(f"Condition?patient={clinic.patient_a.id}", token).status_code == 404
    assert fhir(f"Appointment?patient={clinic.patient_a.id}", token).status_code == 404
    assert fhir(f"Patient/{clinic.patient_a.id}/$everything", token).status_code == 404
    assert fhir(f"Encounter/{clinic.chart.current_id}", token).status_code == 404


def test_a_clinician_names_the_patient_of_a_record_search(fhir, clinic, tokens):
    answer = fhir("Condition", tokens["doctor_a"])
    assert answer.status_code == 400 and issue(answer)["expression"] == ["patient"]


def test_a_missing_scope_is_403(app, fhir, clinic):
    token = token_for(app, clinic.patient_a, "patient/Patient.rs")
    assert fhir(f"Patient/{clinic.patient_a.id}", token).status_code == 200
    refused = fhir("Condition", token)
    assert refused.status_code == 403 and 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
    assert fhir("Practitioner", token).status_code == 403
    everything = fhir(f"Patient/{clinic.patient_a.id}/$everything", token).body
    assert {e["resource"]["resourceType"] for e in everything["entry"]} == {"Patient"}
    appointments_only = token_for(app, clinic.patient_a, "patient/Appointment.rs")
    assert fhir(f"Patient/{clinic.patient_a.id}", appointments_only).status_code == 403
    assert fhir("Appointment", appointments_only).status_code == 200


def test_an_include_leaves_out_what_the_token_may_not_read(app, fhir, clinic, tokens):
    bundle = fhir("Appointment?_include=Appointment:patient", tokens["clerk"]).body
    assert ids(bundle, "Appointment") and not ids(bundle, "Patient")  # the front desk has no record access


def test_a_refusal_is_audited_once_with_the_client(app, fhir, clinic, tokens):
    import sqlalchemy as sa

    from app.events.models import OutboxEvent
    from app.extensions import db

    with app.app_context():
        before = db.session.scalar(sa.select(sa.func.max(OutboxEvent.seq))) or 0
    fhir(f"Condition?patient={clinic.patient_a.id}", tokens["doctor_b"])
    with app.app_context():
        events = [e.envelope for e in db.session.scalars(sa.select(OutboxEvent).where(OutboxEvent.seq > before))]
    assert [e["type"] for e in events] == ["access.denied"]
    assert events[0]["data"]["reason"] == "no_relationship" and events[0]["actor"]["client_id"] == "test-app"
    assert events[0]["patient_id"] == clinic.patient_a.id


def test_break_glass_opened_on_the_pages_opens_the_record_through_fhir_too(app, fhir, clinic, tokens):
    import sqlalchemy as sa

    from app.accounts.models import User
    from app.events.models import OutboxEvent
    from app.extensions import db
    from app.records.services import grant_break_glass

    with app.app_context():
        grant_break_glass(db.session.get(User, clinic.doctor_b.id), clinic.patient_a.id, "Unconscious in the ER")
        db.session.commit()
        before = db.session.scalar(sa.select(sa.func.max(OutboxEvent.seq)))
    assert fhir(f"AllergyIntolerance?patient={clinic.patient_a.id}", tokens["doctor_b"]).body["total"] == 1
    assert ids(fhir("Patient?name=zenobia", tokens["doctor_b"]).body) == [str(clinic.patient_a.id)]
    with app.app_context():
        read = db.session.scalar(sa.select(OutboxEvent).where(OutboxEvent.seq > before,
                                                              OutboxEvent.type == "record.viewed"))
        assert read.envelope["data"]["basis"] == "break_glass" and read.envelope["data"]["break_glass"] is True


def test_only_doctors_search_patients_and_only_their_own(fhir, clinic, tokens):
    assert fhir("Patient", tokens["clerk"]).status_code == 403
    assert ids(fhir("Patient", tokens["doctor_a"]).body) == [str(clinic.patient_a.id)]
    assert fhir("Patient", tokens["doctor_b"]).body["total"] == 0
