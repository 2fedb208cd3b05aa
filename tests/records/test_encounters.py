"""The doctor's encounter: open from a checked-in visit, notes, vitals (ranges, BMI), ICD-10 diagnoses,
prescriptions with the allergy warning and its acknowledgement, sign (then read-only through every route and
in the database), amendments and their history, and exactly one audit row per read."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from app.appointments.models import Status
from app.audit.models import AuditEntry
from app.events.models import OutboxEvent
from app.extensions import db
from app.records import services as records
from app.records.models import AllergyAcknowledgement, Diagnosis, Encounter, EncounterStatus, Prescription
from tests.helpers import text
from tests.records.clinical_data import add_allergy, add_appointment
from tests.services import wait_until

pytestmark = pytest.mark.clock  # the outcome depends on the clock: see `make test-clock`

RX_FORM = {"drug_name": "Amoxicillin", "strength": "500 mg", "form": "capsule", "dose": "1 capsule", "route": "oral",
           "frequency": "three times daily", "duration_days": "7", "quantity": "21", "refills": "0",
           "instructions": "Finish the course"}


@pytest.fixture
def visit(app, create_doctor, create_patient, create_department):
    department = create_department("General medicine")
    doctor = create_doctor(full_name="Dr. Lena Park", department_ids=[department])
    patient = create_patient(full_name="Omar Haddad")
    with app.app_context():
        appointment = add_appointment(patient.id, doctor.id, department, days_ago=0.01, status=Status.CHECKED_IN,
                                      reason="Sore throat and fever")
        db.session.commit()
        appointment_id = appointment.id

    class Visit:
        pass

    v = Visit()
    v.doctor, v.patient, v.department, v.appointment_id = doctor, patient, department, appointment_id
    return v


@pytest.fixture
def as_doctor(visit, login):
    return login(visit.doctor)


def open_encounter(client, visit) -> int:
    response = client.post_form(f"/doctor/appointments/{visit.appointment_id}/encounter", {})
    assert response.status_code == 303, text(response)[:500]
    match = re.search(r"/doctor/encounters/(\d+)$", response.headers["Location"])
    assert match
    return int(match.group(1))


def events(app, type_: str) -> list[dict]:
    with app.app_context():
        return [row.envelope for row in db.session.scalars(
            sa.select(OutboxEvent).where(OutboxEvent.type == type_).order_by(OutboxEvent.seq))]


def test_open_encounter_creates_one_draft_with_the_visit_reason_and_reopening_returns_it(app, as_doctor, visit):
    first = open_encounter(as_doctor, visit)
    again = open_encounter(as_doctor, visit)
    assert first == again
    page = as_doctor.get(f"/doctor/encounters/{first}")
    assert page.status_code == 200
    body = text(page)
    assert "Sore throat and fever" in body and "draft" in body
    created = events(app, "encounter.created")
    assert len(created) == 1 and created[0]["patient_id"] == visit.patient.id
    assert created[0]["data"]["category"] == "encounter"


def test_an_encounter_cannot_be_opened_before_check_in(app, as_doctor, visit):
    with app.app_context():
        confirmed = add_appointment(visit.patient.id, visit.doctor.id, visit.department, days_ago=-1,
                                    status=Status.CONFIRMED)
        db.session.commit()
        confirmed_id = confirmed.id
    response = as_doctor.post_form(f"/doctor/appointments/{confirmed_id}/encounter", {})
    assert response.status_code == 409
    assert "checked in" in text(response)


def test_another_doctors_appointment_cannot_be_opened(app, visit, create_doctor, login):
    other = create_doctor(department_ids=[visit.department])
    client = login(other)
    assert client.post_form(f"/doctor/appointments/{visit.appointment_id}/encounter", {}).status_code == 404


def test_notes_are_saved_as_a_draft_fragment(app, as_doctor, visit):
    encounter_id = open_encounter(as_doctor, visit)
    response = as_doctor.post_form(f"/doctor/encounters/{encounter_id}/notes", {
        "chief_complaint": "Sore throat", "subjective": "Three days of pain", "objective": "Red pharynx",
        "assessment": "Viral pharyngitis", "plan": "Fluids, rest"}, htmx=True)
    assert response.status_code == 200
    assert "Draft saved." in text(response) and 'id="notes-card"' in text(response)
    with app.app_context():
        encounter = db.session.get(Encounter, encounter_id)
        assert (encounter.subjective, encounter.plan, encounter.status) == (
            "Three days of pain", "Fluids, rest", EncounterStatus.DRAFT)


@pytest.mark.parametrize("htmx", [True, False])
def test_a_note_too_long_for_its_column_is_kept_in_the_form_with_the_limit(app, as_doctor, visit, htmx):
    """A TEXT column holds 65,535 bytes: 16,000 characters of 4-byte emoji fit, 20,000 would not."""
    encounter_id = open_encounter(as_doctor, visit)
    fits, too_long = "\U0001F600" * 16_000, "Long history. " * 5_000
    response = as_doctor.post_form(f"/doctor/encounters/{encounter_id}/notes", {
        "chief_complaint": "Sore throat", "subjective": too_long, "objective": fits, "assessment": "", "plan": ""},
        htmx=htmx)
    assert response.status_code == 422
    page = text(response)
    assert 'id="subjective-error">Use at most 16,000 characters.' in page
    assert too_long.strip() in page and fits in page  # nothing the doctor typed is lost
    with app.app_context():
        assert db.session.get(Encounter, encounter_id).subjective == ""
    response = as_doctor.post_form(f"/doctor/encounters/{encounter_id}/notes", {
        "chief_complaint": "Sore throat", "subjective": fits, "objective": fits}, htmx=True)
    assert response.status_code == 200
    with app.app_context():
        assert db.session.get(Encounter, encounter_id).objective == fits


@pytest.mark.parametrize("field, value, message", [
    ("systolic", "300", "Systolic pressure must be between 50 and 260 mmHg."),
    ("systolic", "49", "Systolic pressure must be between 50 and 260 mmHg."),
    ("diastolic", "20", "Diastolic pressure must be between 30 and 160 mmHg."),
    ("heart_rate", "251", "Heart rate must be between 20 and 250 beats/min."),
    ("temperature_c", "45.1", "Temperature must be between 30.0 and 45.0 °C."),
    ("respiratory_rate", "3", "Respiratory rate must be between 4 and 60 breaths/min."),
    ("spo2", "101", "SpO2 must be between 50 and 100 %."),
    ("weight_kg", "0.4", "Weight must be between 0.5 and 400 kg."),
    ("height_cm", "251", "Height must be between 30 and 250 cm."),
    ("heart_rate", "abc", "Enter a number. Heart rate must be between 20 and 250 beats/min."),
])
def test_implausible_vitals_are_refused_with_the_range(app, as_doctor, visit, field, value, message):
    encounter_id = open_encounter(as_doctor, visit)
    data = {"systolic": "120", "diastolic": "80", field: value}
    response = as_doctor.post_form(f"/doctor/encounters/{encounter_id}/vitals", data, htmx=True)
    assert response.status_code == 422
    assert message in text(response).replace("&nbsp;", " ")
    with app.app_context():
        assert db.session.get(Encounter, encounter_id).systolic is None


def test_diastolic_must_be_lower_than_systolic():
    with pytest.raises(records.InvalidInput) as error:
        records.validate_vitals({"systolic": 90, "diastolic": 90})
    assert error.value.errors == {"diastolic": "Diastolic pressure must be lower than systolic pressure."}


def test_vitals_at_the_edges_of_the_ranges_are_accepted():
    clean = records.validate_vitals({"systolic": 260, "diastolic": 30, "heart_rate": 20, "temperature_c": "45.0",
                                     "respiratory_rate": 4, "spo2": 100, "weight_kg": "0.5", "height_cm": 250})
    assert clean["temperature_c"] == Decimal("45.0") and clean["weight_kg"] == Decimal("0.5")


@pytest.mark.parametrize("weight, height, expected", [
    ("70", "175", Decimal("22.9")), ("82", "178", Decimal("25.9")), ("3.5", "50", Decimal("14.0")),
    ("70", None, None), (None, "175", None),
])
def test_bmi_is_kilograms_per_square_metre_to_one_decimal(weight, height, expected):
    assert records.bmi(Decimal(weight) if weight else None, Decimal(height) if height else None) == expected


def test_vitals_are_saved_and_bmi_is_computed_on_the_server(app, as_doctor, visit):
    encounter_id = open_encounter(as_doctor, visit)
    response = as_doctor.post_form(f"/doctor/encounters/{encounter_id}/vitals", {
        "systolic": "128", "diastolic": "82", "heart_rate": "72", "respiratory_rate": "14", "temperature_c": "37.8",
        "spo2": "98", "weight_kg": "70", "height_cm": "175", "bmi": "99"}, htmx=True)
    assert response.status_code == 200
    assert "22.9" in text(response)
    with app.app_context():
        encounter = db.session.get(Encounter, encounter_id)
        assert (encounter.systolic, encounter.temperature_c, encounter.bmi) == (128, Decimal("37.8"), Decimal("22.9"))
    assert events(app, "vitals.recorded")[0]["data"]["category"] == "vitals"


def test_a_diagnosis_is_added_by_code_the_first_is_primary(app, as_doctor, visit):
    encounter_id = open_encounter(as_doctor, visit)
    first = as_doctor.post_form(f"/doctor/encounters/{encounter_id}/diagnoses", {"code": "J02.9"}, htmx=True)
    assert first.status_code == 200 and "Acute pharyngitis, unspecified" in text(first)
    as_doctor.post_form(f"/doctor/encounters/{encounter_id}/diagnoses", {"code": "i10"}, htmx=True)
    with app.app_context():
        rows = db.session.execute(sa.select(Diagnosis.code, Diagnosis.is_primary).where(
            Diagnosis.encounter_id == encounter_id).order_by(Diagnosis.id)).all()
    assert rows == [("J02.9", True), ("I10", False)]
    assert events(app, "diagnosis.added")[0]["data"]["category"] == "diagnosis"


@pytest.mark.parametrize("code, message", [
    ("ZZZ.9", "Choose a code from the ICD-10-CM list."),
    ("E11", "E11 is a category: choose one of its more specific codes."),
])
def test_unknown_or_category_codes_are_refused(app, as_doctor, visit, code, message):
    encounter_id = open_encounter(as_doctor, visit)
    response = as_doctor.post_form(f"/doctor/encounters/{encounter_id}/diagnoses", {"code": code}, htmx=True)
    assert response.status_code == 422 and message in text(response)


def test_prescription_required_fields_are_validated(app, as_doctor, visit):
    encounter_id = open_encounter(as_doctor, visit)
    response = as_doctor.post_form(f"/doctor/encounters/{encounter_id}/prescriptions",
                                   {**RX_FORM, "drug_name": "", "route": "sideways", "quantity": "0"}, htmx=True)
    assert response.status_code == 422
    body = text(response)
    assert "Enter the drug name." in body
    assert "Choose the route from the list." in body or "Not a valid choice" in body
    assert "Enter a quantity between 1 and 1000." in body
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Prescription)) == 0


def test_prescription_is_added(app, as_doctor, visit):
    encounter_id = open_encounter(as_doctor, visit)
    response = as_doctor.post_form(f"/doctor/encounters/{encounter_id}/prescriptions", RX_FORM, htmx=True)
    assert response.status_code == 200 and "Amoxicillin 500 mg" in text(response)
    created = events(app, "prescription.created")
    assert created[0]["data"]["category"] == "prescription" and created[0]["patient_id"] == visit.patient.id


def test_prescribing_an_allergen_warns_until_acknowledged_and_records_the_acknowledgement(app, as_doctor, visit):
    with app.app_context():
        allergy = add_allergy(visit.patient.id, visit.doctor.id, substance="Amoxicillin", reaction="Rash")
        db.session.commit()
        allergy_id = allergy.id
    encounter_id = open_encounter(as_doctor, visit)
    warned = as_doctor.post_form(f"/doctor/encounters/{encounter_id}/prescriptions",
                                 {**RX_FORM, "drug_name": "amoxicillin trihydrate"}, htmx=True)
    assert warned.status_code == 422
    assert 'data-testid="allergy-warning"' in text(warned) and f'value="{allergy_id}"' in text(warned)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Prescription)) == 0
    accepted = as_doctor.post_form(f"/doctor/encounters/{encounter_id}/prescriptions",
                                   {**RX_FORM, "drug_name": "amoxicillin trihydrate",
                                    "acknowledge_allergy": str(allergy_id)}, htmx=True)
    assert accepted.status_code == 200 and "acknowledged by the prescriber" in text(accepted)
    with app.app_context():
        ack = db.session.scalar(sa.select(AllergyAcknowledgement))
        assert (ack.allergy_id, ack.acknowledged_by_id, ack.substance) == (allergy_id, visit.doctor.id, "Amoxicillin")
        assert ack.acknowledged_at is not None
    created = events(app, "prescription.created")[0]["data"]
    assert created["allergy_acknowledged"] == [allergy_id] and "Amoxicillin" not in str(created)


def test_allergy_match_is_substring_either_way_on_normalised_names(app, visit):
    with app.app_context():
        add_allergy(visit.patient.id, visit.doctor.id, substance="Penicillin V")
        db.session.commit()
        assert [m.allergy.substance for m in records.allergy_matches(visit.patient.id, "PENICILLIN-V potassium")] == [
            "Penicillin V"]
        assert [m.allergy.substance for m in records.allergy_matches(visit.patient.id, "penicillin")] == [
            "Penicillin V"]
        assert records.allergy_matches(visit.patient.id, "Azithromycin") == []


def test_prescribing_a_member_of_an_allergy_class_warns_with_the_class_until_acknowledged(app, as_doctor, visit):
    with app.app_context():
        allergy_id = add_allergy(visit.patient.id, visit.doctor.id, substance="Penicillin", reaction="Hives").id
        db.session.commit()
    encounter_id = open_encounter(as_doctor, visit)
    url = f"/doctor/encounters/{encounter_id}/prescriptions"
    warned = as_doctor.post_form(url, RX_FORM, htmx=True)
    assert warned.status_code == 422
    assert "Amoxicillin is one of the penicillins; allergy recorded: Penicillin (severe, hives)" in text(warned)
    accepted = as_doctor.post_form(url, {**RX_FORM, "acknowledge_allergy": str(allergy_id)}, htmx=True)
    assert accepted.status_code == 200 and "Allergy to Penicillin acknowledged by the prescriber" in text(accepted)
    with app.app_context():
        ack = db.session.scalar(sa.select(AllergyAcknowledgement))
        assert (ack.allergy_id, ack.acknowledged_by_id, ack.substance) == (allergy_id, visit.doctor.id, "Penicillin")


def _signed(app, as_doctor, visit) -> int:
    encounter_id = open_encounter(as_doctor, visit)
    as_doctor.post_form(f"/doctor/encounters/{encounter_id}/vitals", {"systolic": "130", "diastolic": "85",
                                                                       "weight_kg": "80", "height_cm": "180"})
    as_doctor.post_form(f"/doctor/encounters/{encounter_id}/diagnoses", {"code": "J02.9"})
    as_doctor.post_form(f"/doctor/encounters/{encounter_id}/prescriptions", RX_FORM)
    response = as_doctor.post_form(f"/doctor/encounters/{encounter_id}/sign", {})
    assert response.status_code == 303
    return encounter_id


def test_signing_makes_the_encounter_read_only(app, as_doctor, visit):
    encounter_id = _signed(app, as_doctor, visit)
    page = text(as_doctor.get(f"/doctor/encounters/{encounter_id}"))
    assert "signed" in page and "Save draft" not in page and 'hx-post' not in page.split('id="encounter-body"')[1] \
        .split('id="sign-card"')[0]
    signed = events(app, "encounter.signed")
    assert len(signed) == 1 and signed[0]["data"]["category"] == "encounter"


def test_a_signed_encounter_cannot_be_changed_through_any_route(app, as_doctor, visit):
    encounter_id = _signed(app, as_doctor, visit)
    with app.app_context():
        encounter = db.session.get(Encounter, encounter_id)
        diagnosis_id = encounter.diagnoses[0].id
        prescription_id = encounter.prescriptions[0].id
        before = (encounter.chief_complaint, encounter.systolic, encounter.updated_at)
    base = f"/doctor/encounters/{encounter_id}"
    for url, data in [(f"{base}/notes", {"chief_complaint": "changed"}), (f"{base}/vitals", {"systolic": "100",
                                                                                                "diastolic": "60"}),
                      (f"{base}/diagnoses", {"code": "I10"}), (f"{base}/diagnoses/{diagnosis_id}/delete", {}),
                      (f"{base}/diagnoses/{diagnosis_id}/primary", {}), (f"{base}/prescriptions", RX_FORM),
                      (f"{base}/prescriptions/{prescription_id}/delete", {}), (f"{base}/sign", {})]:
        for htmx in (False, True):
            response = as_doctor.post_form(url, data, htmx=htmx)
            assert response.status_code == 409, url
    with app.app_context():
        encounter = db.session.get(Encounter, encounter_id)
        assert (encounter.chief_complaint, encounter.systolic, encounter.updated_at) == before
        assert [d.code for d in encounter.diagnoses] == ["J02.9"] and len(encounter.prescriptions) == 1


def test_the_database_refuses_to_change_a_signed_encounter(app, as_doctor, visit):
    encounter_id = _signed(app, as_doctor, visit)
    with app.app_context():
        for statement in (sa.update(Encounter).where(Encounter.id == encounter_id).values(plan="tampered"),
                          sa.update(Encounter).where(Encounter.id == encounter_id).values(status="draft"),
                          sa.update(Diagnosis).where(Diagnosis.encounter_id == encounter_id).values(code="I10"),
                          sa.insert(Diagnosis).values(encounter_id=encounter_id, code="I10", description="x",
                                                      is_primary=False, created_at=sa.func.now()),
                          sa.update(Prescription).where(Prescription.encounter_id == encounter_id).values(dose="2"),
                          sa.delete(Diagnosis).where(Diagnosis.encounter_id == encounter_id),
                          sa.delete(Prescription).where(Prescription.encounter_id == encounter_id),
                          sa.delete(Encounter).where(Encounter.id == encounter_id)):
            with pytest.raises(OperationalError, match="encounter is signed"):
                db.session.execute(statement)
            db.session.rollback()


def test_amendment_is_a_new_version_linked_to_the_untouched_original(app, as_doctor, visit):
    original_id = _signed(app, as_doctor, visit)
    missing = as_doctor.post_form(f"/doctor/encounters/{original_id}/amend", {"reason": ""})
    assert missing.status_code == 422 and "Enter the reason for the amendment." in text(missing)
    response = as_doctor.post_form(f"/doctor/encounters/{original_id}/amend", {"reason": "Wrong dose recorded"})
    assert response.status_code == 303
    amendment_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert amendment_id != original_id
    as_doctor.post_form(f"/doctor/encounters/{amendment_id}/notes", {"chief_complaint": "Sore throat",
                                                                      "plan": "Corrected plan"})
    with app.app_context():
        amendment = db.session.get(Encounter, amendment_id)
        assert (amendment.version, amendment.amends_id, amendment.amendment_reason, amendment.status) == (
            2, original_id, "Wrong dose recorded", EncounterStatus.DRAFT)
        assert [d.code for d in amendment.diagnoses] == ["J02.9"] and amendment.prescriptions[0].drug_name == \
            "Amoxicillin" and amendment.systolic == 130 and amendment.bmi == Decimal("24.7")
        original = db.session.get(Encounter, original_id)
        assert original.plan == "" and original.status is EncounterStatus.SIGNED
    # a second amendment of the same version is refused while the first exists
    assert as_doctor.post_form(f"/doctor/encounters/{original_id}/amend", {"reason": "again"}).status_code == 409
    assert as_doctor.post_form(f"/doctor/encounters/{amendment_id}/sign", {}).status_code == 303
    old = text(as_doctor.get(f"/doctor/encounters/{original_id}"))
    assert "superseded" in old and "corrected by" in old
    new = text(as_doctor.get(f"/doctor/encounters/{amendment_id}"))
    assert "Wrong dose recorded" in new and "Version 1" in new and "Version 2" in new
    with app.app_context():
        current = records.current_encounters(visit.patient.id)
        assert [e.id for e in current] == [amendment_id]
        assert [e.id for e in records.encounter_versions(current[0])] == [original_id, amendment_id]
    amended = events(app, "encounter.amended")
    assert amended[0]["data"]["amends_id"] == original_id and amended[0]["data"]["reason"] == "Wrong dose recorded"


def test_signing_needs_a_chief_complaint(app, as_doctor, visit):
    encounter_id = open_encounter(as_doctor, visit)
    as_doctor.post_form(f"/doctor/encounters/{encounter_id}/notes", {"chief_complaint": ""})
    response = as_doctor.post_form(f"/doctor/encounters/{encounter_id}/sign", {})
    assert response.status_code == 422 and "Enter the chief complaint before signing." in text(response)


def test_each_read_of_an_encounter_produces_exactly_one_audit_row(app, as_doctor, visit, worker):
    encounter_id = open_encounter(as_doctor, visit)
    as_doctor.get(f"/doctor/encounters/{encounter_id}")
    as_doctor.get(f"/doctor/encounters/{encounter_id}", htmx=True)
    as_doctor.get(f"/doctor/patients/{visit.patient.id}/chart")

    def reads():
        with app.app_context():
            return list(db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "record.viewed")
                                           .order_by(AuditEntry.seq)))

    wait_until(lambda: len(reads()) >= 3)
    with app.app_context():
        created = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "encounter.created"))
    assert created == 1
    rows = reads()
    assert len(rows) == 3 and len(events(app, "record.viewed")) == 3
    # The encounter's reads and the chart's travel under different keys, so in either order.
    assert sorted((r.entity_type, r.patient_id, r.details["view"]) for r in rows) == [
        ("encounter", visit.patient.id, "doctor.encounter"), ("encounter", visit.patient.id, "doctor.encounter"),
        ("patient", visit.patient.id, "doctor.chart")]
    assert all("encounter" in r.details["categories"] and r.details["basis"] == "care_relationship" for r in rows)


def test_simultaneous_opens_of_one_visit_create_one_encounter(app, visit, login):
    import threading

    from tests.helpers import Client

    clients = []
    for _ in range(4):
        client = Client(app)
        client.sign_in(visit.doctor.email, "correct horse battery")
        clients.append(client)
    tokens = [c.csrf_token("/doctor/") for c in clients]
    barrier = threading.Barrier(len(clients))
    answers = []

    def open_it(client, token):
        barrier.wait()
        answers.append(client.http.post(f"/doctor/appointments/{visit.appointment_id}/encounter",
                                        data={"csrf_token": token}))

    threads = [threading.Thread(target=open_it, args=pair) for pair in zip(clients, tokens)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [303] * 4
    assert len({a.headers["Location"] for a in answers}) == 1
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Encounter)) == 1
    assert len(events(app, "encounter.created")) == 1


def test_an_edit_racing_a_signature_is_either_saved_before_it_or_refused(app, as_doctor, visit, login):
    import threading

    from tests.helpers import Client

    encounter_id = open_encounter(as_doctor, visit)
    other = Client(app)
    other.sign_in(visit.doctor.email, "correct horse battery")
    tokens = (as_doctor.csrf_token("/doctor/"), other.csrf_token("/doctor/"))
    barrier = threading.Barrier(2)
    answers = {}

    def sign():
        barrier.wait()
        answers["sign"] = as_doctor.http.post(f"/doctor/encounters/{encounter_id}/sign",
                                              data={"csrf_token": tokens[0]})

    def edit():
        barrier.wait()
        answers["edit"] = other.http.post(f"/doctor/encounters/{encounter_id}/notes", data={
            "csrf_token": tokens[1], "chief_complaint": "Sore throat", "plan": "late edit"})

    threads = [threading.Thread(target=sign), threading.Thread(target=edit)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers["sign"].status_code == 303
    with app.app_context():
        encounter = db.session.get(Encounter, encounter_id)
        assert encounter.status is EncounterStatus.SIGNED
        if answers["edit"].status_code == 409:
            assert encounter.plan == ""
        else:
            assert answers["edit"].status_code == 303 and encounter.plan == "late edit"


def test_allergies_are_recorded_shown_in_the_banner_refused_twice_and_removed_as_entered_in_error(
        app, as_doctor, visit):
    url = f"/doctor/patients/{visit.patient.id}/allergies"
    added = as_doctor.post_form(url, {"substance": "Latex", "reaction": "Hives", "severity": "moderate"}, htmx=True)
    assert added.status_code == 200
    body = text(added)
    assert "Allergy recorded." in body and 'hx-swap-oob="true"' in body and "Latex · moderate" in body
    twice = as_doctor.post_form(url, {"substance": " latex ", "reaction": "Rash", "severity": "mild"}, htmx=True)
    assert twice.status_code == 422 and "An allergy to latex is already recorded." in text(twice)
    invalid = as_doctor.post_form(url, {"substance": "", "reaction": "", "severity": "fatal"}, htmx=True)
    assert invalid.status_code == 422
    assert "Enter the substance, like penicillin." in text(invalid)
    assert "Enter the reaction, like hives." in text(invalid)
    with app.app_context():
        allergy_id = records.allergies(visit.patient.id)[0].id
    encounter_id = open_encounter(as_doctor, visit)
    assert "Latex · moderate" in text(as_doctor.get(f"/doctor/encounters/{encounter_id}"))
    removed = as_doctor.post_form(f"{url}/{allergy_id}/delete", {}, htmx=True)
    assert removed.status_code == 200 and "No known allergies recorded." in text(removed)
    with app.app_context():
        assert records.allergies(visit.patient.id) == []
    assert [e["data"]["category"] for e in events(app, "allergy.recorded") + events(app, "allergy.removed")] == [
        "allergy", "allergy"]


def test_removing_the_primary_diagnosis_promotes_the_next_and_primary_can_be_moved(app, as_doctor, visit):
    encounter_id = open_encounter(as_doctor, visit)
    base = f"/doctor/encounters/{encounter_id}/diagnoses"
    for code in ("J02.9", "I10", "E11.9"):
        as_doctor.post_form(base, {"code": code}, htmx=True)

    def diagnoses():
        with app.app_context():
            return db.session.execute(sa.select(Diagnosis.id, Diagnosis.code, Diagnosis.is_primary).where(
                Diagnosis.encounter_id == encounter_id).order_by(Diagnosis.id)).all()

    ids = {code: id_ for id_, code, _ in diagnoses()}
    assert as_doctor.post_form(f"{base}/{ids['E11.9']}/primary", {}, htmx=True).status_code == 200
    assert [(c, p) for _, c, p in diagnoses()] == [("J02.9", False), ("I10", False), ("E11.9", True)]
    duplicate = as_doctor.post_form(base, {"code": "i10"}, htmx=True)
    assert duplicate.status_code == 422 and "I10 is already a diagnosis of this encounter." in text(duplicate)
    as_doctor.post_form(f"{base}/{ids['E11.9']}/delete", {}, htmx=True)
    assert [(c, p) for _, c, p in diagnoses()] == [("J02.9", True), ("I10", False)]


def test_the_patients_page_lists_own_patients_and_finds_others_by_name(app, as_doctor, visit, create_patient):
    create_patient(full_name="Zed Stranger")
    page = text(as_doctor.get("/doctor/patients"))
    assert "Omar Haddad" in page and "Zed Stranger" not in page
    found = as_doctor.get("/doctor/patients?q=Stranger", htmx=True)
    assert "<html" not in text(found) and "Zed Stranger" in text(found) and "no appointment with you" in text(found)
