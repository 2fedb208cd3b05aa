"""A doctor in a real browser: open the encounter from the dashboard, vitals, a diagnosis picked by typing,
a prescription through the allergy warning, sign, amend; a stranger breaks the glass. Screenshots of each
page go to test-artifacts/ (desktop and phone)."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect

from app.appointments.models import Status
from app.extensions import db
from tests.browser.helpers import PHONE, fill_prescription, signed_in
from tests.records.clinical_data import add_allergy, add_appointment, earlier_today

pytestmark = [pytest.mark.browser, pytest.mark.clock]


def test_doctor_records_a_visit_by_typing_a_diagnosis_prescribing_past_an_allergy_and_signing(
        browser: Browser, base_url, app, create_doctor, create_department, create_patient, artifacts):
    department = create_department("Family Medicine")
    doctor = create_doctor(full_name="Dr. Hattie Wyatt", department_ids=[department])
    patient = create_patient(full_name="Tom Booker")
    with app.app_context():
        add_appointment(patient.id, doctor.id, department, starts_at=earlier_today(), status=Status.CHECKED_IN,
                        reason="Headaches and dizziness")
        add_allergy(patient.id, doctor.id, substance="Lisinopril", reaction="Angioedema")
        db.session.commit()

    page = signed_in(browser, base_url, doctor.email)
    page.get_by_role("button", name="Open encounter").click()
    expect(page.get_by_test_id("encounter-status")).to_have_text(re.compile("draft"))
    page.wait_for_load_state()  # htmx has processed the encounter page before "Save draft" (else a plain POST)
    expect(page.get_by_test_id("allergy-banner")).to_contain_text("Lisinopril")

    page.get_by_label("Subjective").fill("Morning headaches for two weeks")
    page.get_by_label("Assessment").fill("Essential hypertension")
    page.get_by_role("button", name="Save draft").click()
    expect(page.locator("#notes-card")).to_contain_text("Draft saved.")

    vitals = page.locator("#vitals-card")
    vitals.get_by_label("Systolic (mmHg)").fill("300")
    vitals.get_by_label("Diastolic (mmHg)").fill("95")
    vitals.get_by_role("button", name="Save vitals").click()
    expect(vitals).to_contain_text("Systolic pressure must be between 50 and 260 mmHg.")
    vitals = page.locator("#vitals-card")
    vitals.get_by_label("Systolic (mmHg)").fill("152")
    vitals.get_by_label("Weight (kg)").fill("84")
    vitals.get_by_label("Height (cm)").fill("178")
    vitals.get_by_role("button", name="Save vitals").click()
    expect(page.get_by_test_id("bmi")).to_contain_text("26.5")

    page.get_by_label("Find a diagnosis").press_sequentially("hypertens", delay=60)
    result = page.locator('#icd-results [data-code="I10"]')
    expect(result).to_be_visible(timeout=30_000)  # the first search may wait for the index (built once per process)
    page.screenshot(path=str(artifacts / "records-doctor-icd-search.png"), full_page=True)
    result.get_by_role("button", name=re.compile("^Add")).click()
    expect(page.get_by_test_id("diagnosis")).to_contain_text("I10")
    expect(page.get_by_test_id("diagnosis")).to_contain_text("Primary")

    form = page.get_by_test_id("prescription-form")
    fill_prescription(form, drug="Lisinopril", strength="10 mg", days=30)
    form.get_by_role("button", name="Add prescription").click()
    warning = page.get_by_test_id("allergy-warning")
    expect(warning).to_contain_text("matches a recorded allergy")
    page.screenshot(path=str(artifacts / "records-doctor-allergy-warning.png"), full_page=True)
    warning.get_by_role("checkbox").check()
    page.get_by_test_id("prescription-form").get_by_role("button", name="Add prescription").click()
    expect(page.get_by_test_id("prescription")).to_contain_text("Lisinopril 10 mg")
    expect(page.get_by_test_id("allergy-acknowledged")).to_be_visible()

    page.get_by_role("button", name="Sign encounter").click()
    expect(page.get_by_test_id("encounter-status")).to_have_text(re.compile("signed"))
    expect(page.get_by_role("button", name="Save draft")).to_have_count(0)
    page.screenshot(path=str(artifacts / "records-doctor-signed.png"), full_page=True)

    page.locator("summary", has_text="Amend").click()
    page.get_by_label("Reason for the amendment").fill("Dose should be 5 mg")
    page.get_by_role("button", name="Start an amendment").click()
    expect(page.get_by_test_id("amendment-reason")).to_contain_text("Dose should be 5 mg")
    page.get_by_role("button", name="Sign encounter").click()
    expect(page.get_by_test_id("history")).to_contain_text("Version 1")
    encounter_url = page.url
    page.get_by_role("link", name="Tom Booker").first.click()
    expect(page.get_by_test_id("visit")).to_contain_text("v2")
    page.screenshot(path=str(artifacts / "records-doctor-chart.png"), full_page=True)

    phone = signed_in(browser, base_url, doctor.email, viewport=PHONE)
    phone.goto(page.url)
    phone.screenshot(path=str(artifacts / "records-doctor-chart-phone.png"), full_page=True)
    phone.goto(encounter_url)
    expect(phone.get_by_test_id("allergy-banner")).to_be_visible()
    phone.screenshot(path=str(artifacts / "records-doctor-encounter-phone.png"), full_page=True)


def test_an_unrelated_doctor_breaks_the_glass_and_the_admin_sees_it_flagged(
        browser: Browser, base_url, app, worker, create_doctor, create_department, create_patient, create_user,
        artifacts):
    from app.accounts.models import Role

    department = create_department("Emergency")
    doctor = create_doctor(full_name="Dr. Own", department_ids=[department])
    stranger = create_doctor(full_name="Dr. Night Shift", department_ids=[department])
    patient = create_patient(full_name="Ada Quinn")
    with app.app_context():
        add_appointment(patient.id, doctor.id, department, days_ago=3, status=Status.COMPLETED)
        db.session.commit()
    page = signed_in(browser, base_url, stranger.email)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Patients").click()
    page.get_by_label("Find a patient by name").press_sequentially("Ada", delay=50)
    page.get_by_role("link", name="Ada Quinn").click()
    expect(page.get_by_test_id("break-glass-form")).to_be_visible()
    page.screenshot(path=str(artifacts / "records-doctor-break-glass.png"), full_page=True)
    page.get_by_label("Why do you need this record now?").fill("Brought in unconscious, need allergies")
    page.get_by_role("button", name=re.compile("Open the record")).click()
    expect(page.get_by_test_id("break-glass-active")).to_be_visible()

    admin = signed_in(browser, base_url, create_user(Role.ADMIN).email)
    admin.goto(f"{base_url}/admin/audit?break_glass=y")
    expect(admin.get_by_test_id("break-glass-row").filter(has_text="record.break_glass")).to_contain_text(
        "Brought in unconscious")
    admin.screenshot(path=str(artifacts / "records-admin-audit-break-glass.png"), full_page=True)
