"""Two real browsers (a patient and a doctor), the real worker and mailbox: book, accept, reschedule, cancel."""
from __future__ import annotations

from datetime import time, timedelta

import pytest
from playwright.sync_api import Browser, expect

from devtools.mailbox import wait_for_messages
from tests.browser.helpers import signed_in

pytestmark = [pytest.mark.browser, pytest.mark.clock]


def day_link(page, container: str, day) -> object:
    """The link of `day` in a day picker (a date from the rule, never "the second day offered")."""
    return page.locator(container).get_by_test_id("day-choices").locator(f'a[href*="day={day.isoformat()}"]')


@pytest.fixture
def quick_dashboard(app):
    app.config["HMS_DASHBOARD_REFRESH_SECONDS"] = 1
    yield
    app.config["HMS_DASHBOARD_REFRESH_SECONDS"] = 30


def test_patient_books_doctor_accepts_patient_reschedules_doctor_cancels(
        browser: Browser, base_url, app, worker, mailbox, default_templates, quick_dashboard, create_doctor,
        create_department, create_patient, artifacts):
    from app.clinic.models import DoctorProfile
    from app.extensions import db
    from app.scheduling.models import WeeklyAvailability
    from app.timeutil import clinic_today
    from tests.conftest import DEFAULT_PASSWORD

    department = create_department("Family Medicine")
    doctor = create_doctor(full_name="Dr. Hattie Wyatt", department_ids=[department])
    with app.app_context():
        for weekday in range(7):
            db.session.add(WeeklyAvailability(doctor_id=doctor.id, department_id=department, weekday=weekday,
                                              start_time=time(8), end_time=time(18), slot_minutes=30))
        assert db.session.get(DoctorProfile, doctor.id)
        db.session.commit()
        # Two days on, every slot lies beyond the 24-hour cutoff whatever the hour; the move goes two days later.
        booked_day, moved_day = clinic_today() + timedelta(days=2), clinic_today() + timedelta(days=4)
    patient = create_patient(full_name="Tom Booker", email="tom.booker@example.com")

    doctor_page = signed_in(browser, base_url, doctor.email, DEFAULT_PASSWORD)
    expect(doctor_page.get_by_role("heading", name="Pending requests")).to_be_visible()

    page = signed_in(browser, base_url, patient.email, DEFAULT_PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Book a visit").click()
    page.wait_for_load_state()  # htmx listens for the department's change only once the page has loaded
    page.get_by_label("Which department do you need?").select_option(label="Family Medicine")
    page.get_by_test_id("doctor-choices").get_by_role("link", name="Dr. Hattie Wyatt").click()
    day_link(page, "main", booked_day).click()
    page.get_by_test_id("time-choices").get_by_role("link").nth(2).click()
    page.get_by_label("Reason for the visit").fill("Persistent cough for two weeks")
    page.screenshot(path=str(artifacts / "patient-booking.png"), full_page=True)
    page.get_by_role("button", name="Request this appointment").click()
    expect(page.get_by_text("Requested", exact=True).first).to_be_visible()
    appointment_url = page.url

    request = doctor_page.get_by_test_id("appointment").filter(has_text="Tom Booker")
    expect(request).to_be_visible(timeout=15_000)  # the dashboard refreshes itself
    expect(request).to_contain_text("Persistent cough")
    doctor_page.screenshot(path=str(artifacts / "doctor-dashboard.png"), full_page=True)
    request.get_by_role("button", name="Accept").click()
    # The dashboard shows this week only, and the visit may fall in the next one: the list shows it from today on.
    expect(request.filter(has_text="Requested")).to_have_count(0)
    doctor_page.goto(f"{base_url}/doctor/appointments")
    expect(doctor_page.get_by_test_id("appointment").filter(has_text="Tom Booker")).to_contain_text("Confirmed")

    page.goto(appointment_url)
    expect(page.get_by_text("Confirmed", exact=True).first).to_be_visible()
    confirmation = wait_for_messages(mailbox, 1, timeout=30, predicate=lambda m: m["To"] == "tom.booker@example.com"
                                     and "confirmed" in m["Subject"].lower())
    assert "Dr. Hattie Wyatt" in confirmation[0].get_body(("plain",)).get_content()

    page.get_by_role("link", name="Reschedule").click()
    day_link(page, "#reschedule", moved_day).click()
    page.locator("#reschedule").get_by_test_id("time-choices").get_by_role("link").first.click()
    page.get_by_role("button", name="Move my appointment").click()
    expect(page.get_by_text("Requested", exact=True).first).to_be_visible()

    doctor_page.reload()
    moved = doctor_page.get_by_test_id("appointment").filter(has_text="Tom Booker").filter(has_text="Requested")
    expect(moved.first).to_be_visible(timeout=15_000)
    moved.first.get_by_role("button", name="Accept").click()
    expect(moved).to_have_count(0)
    doctor_page.goto(f"{base_url}/doctor/appointments")
    confirmed = doctor_page.get_by_test_id("appointment").filter(has_text="Tom Booker").filter(has_text="Confirmed")
    confirmed.first.get_by_text("Cancel…").click()
    confirmed.first.get_by_label("Reason").fill("Dr. Wyatt is called to an emergency; please book another time.")
    confirmed.first.get_by_role("button", name="Cancel and tell the patient").click()
    expect(doctor_page.get_by_test_id("appointment").filter(has_text="Tom Booker")).to_contain_text(
        "Cancelled by the clinic")

    page.goto(appointment_url)
    expect(page.get_by_test_id("clinic-reason")).to_contain_text("called to an emergency")
    page.screenshot(path=str(artifacts / "patient-appointment-cancelled.png"), full_page=True)
