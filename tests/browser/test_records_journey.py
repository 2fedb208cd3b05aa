"""Two real browsers: the doctor checks a patient in, records vitals (an implausible value is refused with
its range), picks a diagnosis by typing (ICD-10 live search), prescribes and signs; the patient then finds
the visit under "My records", sees the vitals trend, and opens the printable prescription, whose print
layout keeps the prescription and drops the navigation."""
from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import Browser, expect

from app.appointments.models import Appointment, Status
from app.extensions import db
from app.records.models import Allergy, Severity
from tests.browser.helpers import PHONE, fill_prescription, signed_in
from tests.records.clinical_data import earlier_today

pytestmark = [pytest.mark.browser, pytest.mark.clock]


def test_doctor_records_a_visit_and_the_patient_reads_and_prints_it(
        browser: Browser, base_url, app, create_doctor, create_department, create_patient, artifacts):
    from tests.conftest import DEFAULT_PASSWORD

    department = create_department("Family Medicine")
    doctor = create_doctor(full_name="Hattie Wyatt", department_ids=[department])
    patient = create_patient(full_name="Tom Booker", email="tom.booker@example.com")
    with app.app_context():
        starts_at = earlier_today()
        db.session.add(Appointment(patient_id=patient.id, doctor_id=doctor.id, department_id=department,
                                   starts_at=starts_at, ends_at=starts_at + timedelta(minutes=30),
                                   reason="Headaches in the morning", status=Status.CONFIRMED, active=True))
        db.session.add(Allergy(patient_id=patient.id, substance="Penicillin", reaction="Hives",
                               severity=Severity.SEVERE, recorded_by_id=doctor.id))
        db.session.commit()

    # --- the doctor ----------------------------------------------------------------------------------------
    page = signed_in(browser, base_url, doctor.email, DEFAULT_PASSWORD)
    visit = page.get_by_test_id("appointment").filter(has_text="Tom Booker").first
    visit.get_by_role("button", name="Check in").click()
    expect(visit).to_contain_text("Checked in")
    page.get_by_test_id("appointment").filter(has_text="Tom Booker").first.get_by_role(
        "button", name="Open encounter").click()
    expect(page.get_by_role("heading", name="Tom Booker")).to_be_visible()
    expect(page.get_by_text("Penicillin").first).to_be_visible()  # the allergy, prominent on the page

    notes = page.locator("#notes-card")
    expect(notes.get_by_label("Chief complaint")).to_have_value("Headaches in the morning")
    page.wait_for_load_state()  # htmx has processed the encounter page before "Save draft" (else a plain POST)
    notes.get_by_label("Subjective").fill("Headaches on waking for three weeks.")
    notes.get_by_label("Assessment").fill("Essential hypertension, newly diagnosed.")
    notes.get_by_label("Plan").fill("Start lisinopril; home blood pressure diary; review in 4 weeks.")
    notes.get_by_role("button", name="Save draft").click()
    expect(page.locator("#notes-card")).to_contain_text("Draft saved")

    vitals = page.locator("#vitals-card")
    vitals.get_by_label("Systolic").fill("152")
    vitals.get_by_label("Diastolic").fill("96")
    vitals.get_by_label("Heart rate").fill("400")
    vitals.get_by_label("Weight").fill("84.5")
    vitals.get_by_label("Height").fill("178")
    vitals.get_by_role("button", name="Save vitals").click()
    expect(page.locator("#vitals-card")).to_contain_text("between 20 and 250")  # refused, with the range
    vitals = page.locator("#vitals-card")
    expect(vitals.get_by_label("Systolic")).to_have_value("152")  # nothing typed is lost
    vitals.get_by_label("Heart rate").fill("82")
    vitals.get_by_role("button", name="Save vitals").click()
    expect(page.locator("#vitals-card")).to_contain_text("Vitals saved")
    expect(page.get_by_test_id("bmi")).to_contain_text("26.7")

    page.locator("#icd-search").press_sequentially("hypertens", delay=40)
    essential = page.get_by_test_id("icd-results").locator('[data-code="I10"]')
    # the first search of a process may wait for the code-set index (built in the background, ~1 s unloaded)
    expect(essential).to_contain_text("Essential (primary) hypertension", timeout=20_000)
    page.screenshot(path=str(artifacts / "records-journey-icd-search.png"), full_page=True)
    essential.get_by_role("button", name="Add").click()
    expect(page.get_by_test_id("diagnosis").filter(has_text="I10")).to_contain_text("Primary")

    prescription = page.get_by_test_id("prescription-form")
    fill_prescription(prescription, drug="Lisinopril", strength="10 mg", days=28, refills=1,
                      instructions="Take in the morning with water.")
    prescription.get_by_role("button", name="Add prescription").click()
    expect(page.get_by_test_id("prescription").filter(has_text="Lisinopril")).to_contain_text("10 mg")

    page.get_by_role("button", name="Sign encounter").click()
    expect(page.get_by_test_id("signed-by")).to_be_visible()
    expect(page.get_by_role("button", name="Save draft")).to_have_count(0)  # read-only now
    page.screenshot(path=str(artifacts / "records-journey-signed.png"), full_page=True)

    # --- the patient -------------------------------------------------------------------------------------
    patient_page = signed_in(browser, base_url, patient.email, DEFAULT_PASSWORD)
    patient_page.get_by_role("navigation", name="Main").get_by_role("link", name="My records").click()
    expect(patient_page.get_by_test_id("allergy-banner")).to_contain_text("Penicillin")
    row = patient_page.get_by_test_id("visit-row").filter(has_text="Hattie Wyatt")
    expect(row).to_contain_text("I10")
    patient_page.screenshot(path=str(artifacts / "records-patient-list.png"), full_page=True)
    row.click()
    expect(patient_page.get_by_test_id("assessment")).to_contain_text("Essential hypertension, newly diagnosed.")
    expect(patient_page.get_by_test_id("visit-prescriptions")).to_contain_text("Lisinopril")
    expect(patient_page.get_by_test_id("visit-vitals")).to_contain_text("152/96 mmHg")
    expect(patient_page.get_by_text("Headaches on waking")).to_have_count(0)  # the subjective note stays in the clinic
    patient_page.screenshot(path=str(artifacts / "records-patient-visit.png"), full_page=True)

    patient_page.get_by_role("link", name="Print prescription").click()
    document = patient_page.get_by_test_id("print-document")
    expect(document).to_contain_text("Lisinopril 10 mg")
    expect(document).to_contain_text("Tom Booker")
    expect(document).to_contain_text("I10")
    expect(patient_page.get_by_role("button", name="Print")).to_be_visible()
    patient_page.screenshot(path=str(artifacts / "records-prescription-screen.png"), full_page=True)

    patient_page.emulate_media(media="print")
    expect(patient_page.locator("nav.navbar")).to_be_hidden()
    expect(patient_page.locator("footer")).to_be_hidden()
    expect(patient_page.get_by_test_id("print-toolbar")).to_be_hidden()
    expect(document).to_be_visible()
    expect(document.get_by_test_id("rx-line")).to_contain_text("Take in the morning with water.")
    patient_page.screenshot(path=str(artifacts / "records-prescription-print.png"), full_page=True)
    patient_page.pdf(path=str(artifacts / "records-prescription.pdf"))
    patient_page.emulate_media(media="screen")

    patient_page.goto(f"{base_url}/patient/records/vitals")
    expect(patient_page.locator("canvas[data-chart-drawn]").first).to_be_visible()  # Chart.js drew it
    expect(patient_page.get_by_test_id("vitals-row")).to_contain_text("152/96")
    patient_page.screenshot(path=str(artifacts / "records-patient-vitals.png"), full_page=True)


def test_my_records_pages_on_a_phone(browser: Browser, base_url, app, create_doctor, create_department,
                                     create_patient, artifacts):
    """The records pages fit a phone: no page-wide horizontal scrolling; screenshots for a look."""
    from tests.conftest import DEFAULT_PASSWORD
    from tests.records.clinical_data import build_chart

    department = create_department("Cardiology")
    doctor = create_doctor(full_name="Amara Okafor", department_ids=[department])
    patient = create_patient(full_name="Maria Garcia")
    with app.app_context():
        chart = build_chart(patient.id, doctor.id, department)
        db.session.commit()
    page = signed_in(browser, base_url, patient.email, DEFAULT_PASSWORD, viewport=PHONE)
    for name, path in [("list", "/patient/records"), ("visit", f"/patient/records/visits/{chart.current_id}"),
                       ("vitals", "/patient/records/vitals"), ("allergies", "/patient/records/allergies"),
                       ("prescription", f"/patient/records/visits/{chart.current_id}/prescription")]:
        page.goto(f"{base_url}{path}")
        expect(page.locator("main")).to_be_visible()
        if name == "vitals":
            expect(page.locator("canvas[data-chart-drawn]").first).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), name
        page.screenshot(path=str(artifacts / f"records-phone-{name}.png"), full_page=True)
