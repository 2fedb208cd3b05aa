"""A patient's "My records": signed visits only (amended ones as their current version), what of the note a
patient sees, allergies on every page, the vitals trend, the printable summary and prescription, empty
states, and exactly one audit row per read."""
from __future__ import annotations

import html
import json
import re

import pytest
import sqlalchemy as sa

from app.audit.models import AuditEntry
from app.events.models import OutboxEvent
from app.extensions import db
from tests.helpers import text
from tests.records.clinical_data import (ASSESSMENT, COMPLAINT, DRUG, OBJECTIVE, PLAN, SUBJECTIVE, add_appointment,
                                         add_encounter, build_chart)
from tests.services import wait_until

pytestmark = pytest.mark.clock  # the outcome depends on the clock: see `make test-clock`


@pytest.fixture
def world(app, create_doctor, create_patient, create_department):
    department = create_department("Cardiology")
    doctor = create_doctor(full_name="Dr. Amara Okafor", department_ids=[department])
    patient = create_patient(full_name="Maria Garcia")
    other = create_patient(full_name="John Miller")
    with app.app_context():
        chart = build_chart(patient.id, doctor.id, department)
        db.session.commit()

    class World:
        pass

    world = World()
    world.department, world.doctor, world.patient, world.other, world.chart = department, doctor, patient, other, chart
    return world


@pytest.fixture
def as_patient(world, login):
    return login(world.patient)


def visit_url(encounter_id: int, page: str = "") -> str:
    return f"/patient/records/visits/{encounter_id}{page}"


def test_my_records_lists_signed_visits_newest_first_with_the_amendment_note(as_patient, world):
    response = as_patient.get("/patient/records")
    assert response.status_code == 200
    page = text(response)
    rows = re.findall(r'data-testid="visit-row"', page)
    assert len(rows) == 2  # the check-up and the amended visit; the draft is not shown
    assert page.index(COMPLAINT) < page.index("Annual check-up")  # newest first
    assert f'href="{visit_url(world.chart.current_id)}"' in page  # the current version, not the original
    assert f'href="{visit_url(world.chart.original_id)}"' not in page
    assert "Amended on" in page and "Assessment and plan completed after lab results" in page
    assert "zxq-draft" not in page
    assert 'aria-current="page">My records</a>' in page  # the patient's navigation entry


def test_the_visit_shows_assessment_plan_diagnoses_prescriptions_and_vitals_but_not_the_working_notes(
        as_patient, world):
    page = text(as_patient.get(visit_url(world.chart.current_id)))
    for expected in (ASSESSMENT, PLAN, COMPLAINT, "I10", "Essential (primary) hypertension", "E11.9", DRUG,
                     "5 mg", "once daily", "150/95 mmHg", "26.7", "Dr. Amara Okafor"):
        assert expected in page, expected
    assert SUBJECTIVE not in page and OBJECTIVE not in page
    assert 'data-testid="amended-note"' in page
    history = page[page.index('data-testid="versions"'):]
    assert "Version 1" in history and "Version 2 (shown)" in history


def test_an_earlier_version_stays_readable_and_points_to_the_correction(as_patient, world):
    page = text(as_patient.get(visit_url(world.chart.original_id)))
    assert 'data-testid="superseded"' in page
    assert "Raised blood pressure" in page and ASSESSMENT not in page  # the original as it was signed
    assert f'href="{visit_url(world.chart.current_id)}"' in page


@pytest.mark.parametrize("page", ["", "/summary", "/prescription"])
def test_a_draft_visit_is_not_found_for_its_own_patient(as_patient, world, page):
    assert as_patient.get(visit_url(world.chart.draft_id, page)).status_code == 404


@pytest.mark.parametrize("page", ["", "/summary", "/prescription"])
def test_another_patients_visit_is_not_found(world, login, page):
    client = login(world.other)
    response = client.get(visit_url(world.chart.current_id, page))
    assert response.status_code == 404
    assert DRUG not in text(response) and ASSESSMENT not in text(response)


def test_a_missing_visit_is_not_found(as_patient):
    assert as_patient.get(visit_url(999999)).status_code == 404


def test_the_lists_of_diagnoses_and_prescriptions_come_from_the_current_versions(as_patient):
    diagnoses = text(as_patient.get("/patient/records/diagnoses"))
    assert diagnoses.count('data-testid="diagnosis-row"') == 2  # I10 and E11.9 of version 2 (not v1's I10 again)
    assert "E11.9" in diagnoses and "primary" in diagnoses
    prescriptions = text(as_patient.get("/patient/records/prescriptions"))
    assert prescriptions.count('data-testid="prescription-row"') == 1
    assert DRUG in prescriptions and "Take in the morning" in prescriptions


@pytest.mark.parametrize("url", ["/patient/records", "/patient/records/diagnoses", "/patient/records/prescriptions",
                                 "/patient/records/allergies", "/patient/records/vitals"])
def test_allergies_are_shown_on_every_records_page(as_patient, url):
    page = text(as_patient.get(url))
    banner = page[page.index('data-testid="allergy-banner"'):]
    assert "Penicillin" in banner[:800] and "severe" in banner[:800].lower()


def test_allergies_are_shown_on_the_visit_and_print_pages(as_patient, world):
    for page in ("", "/summary", "/prescription"):
        assert "Penicillin" in text(as_patient.get(visit_url(world.chart.current_id, page)))


def test_the_allergies_page_lists_substance_reaction_and_severity(as_patient):
    page = text(as_patient.get("/patient/records/allergies"))
    row = page[page.index('data-testid="allergy-row"'):]
    assert "Penicillin" in row and "Hives" in row and "Severe" in row


def chart_specs(page: str) -> dict[str, dict]:
    """The charts on the vitals page: title -> the spec the chart script draws."""
    specs = {}
    for title, raw in re.findall(r'<figcaption[^>]*>([^<]+)</figcaption>\s*<div class="card-body">\s*'
                                 r'<canvas data-vitals-chart="([^"]+)"', page):
        specs[title] = json.loads(html.unescape(raw))
    return specs


def test_the_vitals_trend_charts_the_same_numbers_as_its_table(as_patient):
    page = text(as_patient.get("/patient/records/vitals"))
    specs = chart_specs(page)
    assert set(specs) == {"Blood pressure", "Heart rate", "Weight", "BMI", "SpO₂"}
    pressure = specs["Blood pressure"]
    assert len(pressure["labels"]) == 2  # oldest first: the check-up, then the current version of the visit
    assert [d["label"] for d in pressure["datasets"]] == ["Systolic", "Diastolic"]
    assert pressure["datasets"][0]["data"] == [128, 150] and pressure["datasets"][1]["data"] == [84, 95]
    assert specs["BMI"]["datasets"][0]["data"] == [25.9, 26.7]
    assert specs["Weight"]["datasets"][0]["data"] == [82.0, 84.5]
    assert specs["SpO₂"]["datasets"][0]["data"] == [98, 97]
    table = page[page.index('data-testid="vitals-table"'):]
    rows = re.findall(r'<tr data-testid="vitals-row">(.*?)</tr>', table, re.S)
    assert len(rows) == 2
    assert "128/84" in rows[0] and "25.9" in rows[0] and "150/95" in rows[1] and "26.7" in rows[1]
    assert pressure["labels"][0] in rows[0] and pressure["labels"][1] in rows[1]
    assert "vendor/chart-4.6.1.umd.min.js" in page and "js/vitals-chart.js" in page


def test_chart_js_is_loaded_only_by_the_vitals_page(as_patient, world):
    for url in ("/patient/records", "/patient/records/allergies", visit_url(world.chart.current_id), "/patient/"):
        assert "chart-4.6.1" not in text(as_patient.get(url)), url


def test_a_patient_without_records_sees_empty_states(world, login):
    client = login(world.other)
    expected = {"/patient/records": "No visit records yet", "/patient/records/diagnoses": "No diagnoses recorded",
                "/patient/records/prescriptions": "No prescriptions",
                "/patient/records/allergies": "No known allergies",
                "/patient/records/vitals": "No measurements yet"}
    for url, message in expected.items():
        response = client.get(url)
        assert response.status_code == 200
        page = text(response)
        assert message in page, url
        assert "Penicillin" not in page and DRUG not in page  # nothing of the other patient's record
    assert "data-vitals-chart" not in text(client.get("/patient/records/vitals"))


def test_the_printable_prescription_has_clinic_patient_doctor_lines_and_a_signature_line(as_patient, world, app):
    response = as_patient.get(visit_url(world.chart.current_id, "/prescription"))
    assert response.status_code == 200
    page = text(response)
    document = page[page.index('data-testid="print-document"'):]
    for expected in (app.config["HMS_CLINIC_NAME"], "Prescription", "Maria Garcia", "born 02 January 1980",
                     "Dr. Amara Okafor", "licence LIC-", "Cardiology", "I10", f"{DRUG} 5 mg", "Quantity: 30",
                     "Refills: 2", "Take in the morning", "Signed electronically by Dr. Amara Okafor", "Signature"):
        assert expected in document, expected
    assert "css/print.css" in page and "js/print.js" in page
    assert re.search(r'<button[^>]*data-print[^>]*>Print</button>', page)
    assert ASSESSMENT not in document  # a prescription carries the drugs, not the note
    local_time = re.search(r"Visit date</dt><dd>([^<]+)</dd>", document).group(1)
    assert local_time.split(",")[0]  # shown in the clinic's zone by the localtime filter
    assert "<dt>Visit date</dt>" in document


def test_the_printable_visit_summary_has_diagnoses_with_codes_assessment_plan_and_medicines(as_patient, world):
    page = text(as_patient.get(visit_url(world.chart.current_id, "/summary")))
    document = page[page.index('data-testid="print-document"'):]
    for expected in ("Visit summary", "I10", "Essential (primary) hypertension", "E11.9", ASSESSMENT, PLAN, DRUG,
                     "150/95 mmHg", "Amended", "Assessment and plan completed after lab results"):
        assert expected in document, expected
    assert SUBJECTIVE not in page and OBJECTIVE not in page


def test_there_is_no_printable_prescription_for_a_visit_without_one(app, as_patient, world):
    with app.app_context():
        checkup = db.session.scalar(sa.text(
            "SELECT id FROM encounters WHERE patient_id = :p AND chief_complaint = 'Annual check-up'"),
            {"p": world.patient.id})
    assert as_patient.get(visit_url(checkup, "/prescription")).status_code == 404
    visit = text(as_patient.get(visit_url(checkup)))
    assert "Print visit summary" in visit and "Print prescription" not in visit


def viewed_events(app, patient_id: int) -> list[dict]:
    with app.app_context():
        return [e.envelope for e in db.session.scalars(
            sa.select(OutboxEvent).where(OutboxEvent.type == "record.viewed").order_by(OutboxEvent.seq))
            if e.envelope.get("patient_id") == patient_id]


def test_each_read_produces_exactly_one_audit_row(app, worker, as_patient, world):
    pages = {
        "/patient/records": ("patient.visits", "encounter"),
        "/patient/records/diagnoses": ("patient.diagnoses", "diagnosis"),
        "/patient/records/prescriptions": ("patient.prescriptions", "prescription"),
        "/patient/records/allergies": ("patient.allergies", "allergy"),
        "/patient/records/vitals": ("patient.vitals", "vitals"),
        visit_url(world.chart.current_id): ("patient.visit", "encounter"),
        visit_url(world.chart.current_id, "/summary"): ("patient.print_summary", "encounter"),
        visit_url(world.chart.current_id, "/prescription"): ("patient.print_prescription", "prescription"),
    }
    for n, (url, (view, category)) in enumerate(pages.items(), start=1):
        assert as_patient.get(url).status_code == 200
        events = viewed_events(app, world.patient.id)
        assert len(events) == n, url  # this read added exactly one event
        assert events[-1]["data"]["view"] == view and events[-1]["data"]["category"] == category

    def audit_rows():
        with app.app_context():
            rows = list(db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "record.viewed")
                                           .order_by(AuditEntry.seq)))
            db.session.expunge_all()
            return rows if len(rows) >= len(pages) else None

    rows = wait_until(audit_rows, timeout=30, message="the audit rows of the reads")
    assert len(rows) == len(pages)
    # A page about one visit travels under the encounter's key, the others under the patient's: any order.
    assert sorted(row.details["view"] for row in rows) == sorted(view for view, _ in pages.values())
    for row in rows:
        assert row.patient_id == world.patient.id and row.actor_id == world.patient.id
        assert row.actor_role == "patient" and row.outcome == "success"
        assert row.details["category"] in ("encounter", "diagnosis", "prescription", "allergy", "vitals")
        assert "allergy" in row.details["categories"]  # the banner shows the allergies on every page
    assert {row.entity_id for row in rows if row.entity_type == "encounter"} == {str(world.chart.current_id)}


def test_a_refused_read_of_another_patients_visit_is_audited_as_denied(app, world, login):
    client = login(world.other)
    assert client.get(visit_url(world.chart.current_id)).status_code == 404
    with app.app_context():
        denied = [e.envelope for e in db.session.scalars(
            sa.select(OutboxEvent).where(OutboxEvent.type == "access.denied"))]
    assert len(denied) == 1 and denied[0]["patient_id"] == world.patient.id
    assert denied[0]["actor"]["id"] == world.other.id and denied[0]["outcome"] == "denied"
    assert viewed_events(app, world.patient.id) == []


def test_a_second_signed_visit_joins_the_list(app, as_patient, world):
    with app.app_context():
        appointment = add_appointment(world.patient.id, world.doctor.id, world.department, days_ago=0.5)
        add_encounter(appointment, chief_complaint="Follow-up zxq-followup", assessment="Better")
        db.session.commit()
    page = text(as_patient.get("/patient/records"))
    assert page.count('data-testid="visit-row"') == 3
    assert page.index("Follow-up zxq-followup") < page.index(COMPLAINT)
