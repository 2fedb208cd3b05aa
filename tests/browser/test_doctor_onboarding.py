"""A real browser, the real worker and mailbox: a new doctor goes from the admin's form to the directory."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from app.timeutil import clinic_today
from devtools.mailbox import wait_for_messages
from tests.browser.helpers import sign_in, sign_out

pytestmark = [pytest.mark.browser, pytest.mark.clock]

PASSWORD = "stethoscope and coffee"


def test_admin_creates_a_doctor_who_sets_a_password_adds_hours_and_is_found_by_a_patient(
        page: Page, base_url, app, worker, mailbox, default_templates, create_user, create_patient, create_department,
        artifacts):
    from app.accounts.models import Role
    from tests.conftest import DEFAULT_PASSWORD

    create_department("Neurology")
    admin = create_user(Role.ADMIN)
    patient = create_patient(full_name="Pat Searcher")

    sign_in(page, base_url, admin.email, DEFAULT_PASSWORD)
    page.get_by_role("link", name="Doctors").click()
    page.get_by_role("link", name="Add a doctor").click()
    page.get_by_label("Full name").fill("Dr. Oliver Sacks")
    page.get_by_label("Email").fill("oliver.sacks@example.com")
    page.get_by_label("Phone").fill("202 555 0161")
    page.get_by_label("Neurology").check()
    page.get_by_label("Specialty").fill("Neurologist")
    page.get_by_label("Licence number").fill("NEURO-1933")
    page.get_by_label("Consultation fee").fill("175.00")
    page.get_by_role("button", name="Create doctor").click()
    expect(page.get_by_text("can now set a password with the link sent to oliver.sacks@example.com")).to_be_visible()
    page.screenshot(path=str(artifacts / "admin-doctor-created.png"), full_page=True)
    sign_out(page)

    [message] = wait_for_messages(mailbox, 1, timeout=30, predicate=lambda m: m["To"] == "oliver.sacks@example.com")
    link = re.search(r"https?://\S+/password/[\w-]+", message.get_body(("plain",)).get_content()).group(0)
    page.goto(base_url + link[link.index("/password/"):])
    page.get_by_label("New password", exact=True).fill(PASSWORD)
    page.get_by_label("New password again").fill(PASSWORD)
    page.get_by_role("button", name="Set the password").click()
    expect(page).to_have_url(f"{base_url}/login")

    sign_in(page, base_url, "oliver.sacks@example.com", PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Availability").click()
    with app.app_context():
        tomorrow = clinic_today() + timedelta(days=1)  # the clinic's tomorrow, whatever the hour in UTC
    page.get_by_label("Day", exact=True).select_option(str(tomorrow.weekday()))
    page.get_by_label("From", exact=True).fill("09:00")
    page.get_by_label("To", exact=True).fill("08:00")
    page.get_by_role("button", name="Add hours").click()
    expect(page.locator("#end_time-error")).to_have_text("The end time must be after the start time.")
    page.get_by_label("To", exact=True).fill("12:00")
    page.get_by_label("Slot (minutes)").fill("30")
    page.get_by_role("button", name="Add hours").click()
    expect(page.get_by_test_id("windows")).to_contain_text("09:00–12:00")
    expect(page.get_by_test_id("slot-preview")).to_contain_text("09:30")
    page.screenshot(path=str(artifacts / "doctor-availability.png"), full_page=True)
    sign_out(page)

    sign_in(page, base_url, patient.email, DEFAULT_PASSWORD)
    page.get_by_role("link", name="Find a doctor").click()
    page.get_by_label("Search").press_sequentially("neurol", delay=30)
    card = page.get_by_test_id("doctor-card").filter(has_text="Dr. Oliver Sacks")
    expect(card).to_be_visible()
    expect(card.get_by_test_id("next-slot")).to_contain_text("Next free:")
    page.screenshot(path=str(artifacts / "directory-search.png"), full_page=True)
    card.get_by_role("link", name="Dr. Oliver Sacks").click()
    expect(page.get_by_test_id("free-slots")).to_contain_text(tomorrow.strftime("%A %d %B"))
    expect(page.get_by_test_id("free-slots")).to_contain_text("09:00")
    page.screenshot(path=str(artifacts / "directory-doctor.png"), full_page=True)
