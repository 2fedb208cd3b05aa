"""A real browser, the real worker and mailbox: a new doctor goes from the admin's form (setting up two-factor
sign-in at the first sign-in) to the directory."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from app.timeutil import clinic_today
from devtools.mailbox import wait_for_messages
from app.accounts import totp
from tests.browser.helpers import DESKTOP, PHONE, sign_in, sign_out

pytestmark = [pytest.mark.browser, pytest.mark.clock]

PASSWORD = "stethoscope and coffee"


def _step() -> int:
    from datetime import datetime, timezone

    return totp.step_at(datetime.now(timezone.utc))


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

    # the first sign-in: the password, then setting up an authenticator (the test computes its codes from the key
    # on the page, as the phone would from the QR code), ten recovery codes shown once
    page.get_by_label("Email").fill("oliver.sacks@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base_url}/login/setup")
    expect(page.get_by_test_id("totp-qr").locator("svg")).to_be_visible()
    secret = page.get_by_test_id("totp-secret").get_attribute("data-secret")
    page.screenshot(path=str(artifacts / "second-factor-setup.png"), full_page=True)
    page.get_by_label("Code from the app").fill("000000" if totp.code_at(secret, _step()) != "000000" else "111111")
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.locator("#code-error")).to_contain_text("That code does not match")
    page.get_by_label("Code from the app").fill(totp.code_at(secret, _step()))
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.get_by_test_id("recovery-codes").locator("li")).to_have_count(10)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(artifacts / "second-factor-recovery-codes-phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
    page.get_by_role("link", name="I have saved my codes, continue").click()
    expect(page.get_by_test_id("signed-in-as")).to_contain_text("Dr. Oliver Sacks")
    sign_out(page)
    # the next sign-in asks for the app's code (the helper types the phone's next one)
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
