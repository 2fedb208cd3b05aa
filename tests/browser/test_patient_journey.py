"""A real browser: a visitor signs up, edits the profile in place, signs out and back in."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

PASSWORD = "tea with milk at four"


def fill_signup(page: Page) -> None:
    page.get_by_label("Full name").fill("Florence Nightingale")
    page.get_by_label("Email").fill("florence@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_label("Date of birth").fill("1980-05-12")
    page.get_by_label("Sex").select_option("female")
    page.get_by_label("Phone", exact=True).fill("202 555 0147")
    page.get_by_label("Address").fill("10 Lamp Lane\nScutari")
    page.get_by_label("Emergency contact name").fill("Parthenope Verney")
    page.get_by_label("Emergency contact phone").fill("202 555 0148")


def test_signup_edit_profile_in_place_logout_and_login_again(page: Page, base_url, artifacts):
    console_errors: list[str] = []
    page.on("pageerror", lambda error: console_errors.append(str(error)))
    page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)

    page.goto(f"{base_url}/signup")
    fill_signup(page)
    page.get_by_label("Password again").fill("a different one entirely")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#password_confirm-error")).to_have_text("The two passwords do not match.")
    expect(page.get_by_label("Full name")).to_have_value("Florence Nightingale")  # nothing typed is lost

    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    page.get_by_role("link", name="Sign in").last.click()
    expect(page.get_by_label("Email")).to_have_value("florence@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base_url}/patient/")
    expect(page.get_by_role("heading", name="Hello, Florence Nightingale")).to_be_visible()
    expect(page.get_by_test_id("signed-in-as")).to_contain_text("Patient")
    page.screenshot(path=str(artifacts / "patient-home.png"), full_page=True)

    page.get_by_role("link", name="My profile").click()
    profile_url = page.url
    page.evaluate("window.hmsNoReload = true")  # survives only if the page is never reloaded
    contact = page.get_by_test_id("section-contact")
    contact.get_by_role("link", name="Edit").click()
    phone = contact.get_by_label("Phone")
    expect(phone).to_have_value("+12025550147")

    phone.fill("not a phone")
    contact.get_by_role("button", name="Save").click()
    expect(contact.locator(".invalid-feedback")).to_contain_text("Enter a valid phone number")

    contact.get_by_label("Phone").fill("202 555 0199")
    contact.get_by_role("button", name="Save").click()
    expect(contact).to_contain_text("Contact saved.")
    expect(contact).to_contain_text("(202) 555-0199")
    assert page.evaluate("window.hmsNoReload") is True
    assert page.url == profile_url
    page.screenshot(path=str(artifacts / "patient-profile.png"), full_page=True)

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{base_url}/login")
    expect(page.get_by_text("You have signed out.")).to_be_visible()

    page.get_by_label("Email").fill("florence@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base_url}/patient/")
    expect(page.get_by_text("(202) 555-0199")).to_be_visible()
    # No script error and no Content-Security-Policy violation; the 422 answers are the expected ones.
    assert [e for e in console_errors if "422" not in e] == []


def test_pages_are_readable_at_phone_width(page: Page, base_url, create_patient, artifacts):
    patient = create_patient(full_name="Mary Seacole", password=PASSWORD)
    page.set_viewport_size({"width": 375, "height": 740})
    page.goto(f"{base_url}/login")
    page.get_by_label("Email").fill(patient.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Hello, Mary Seacole")).to_be_visible()
    # The navigation collapses behind the toggler and opens on tap.
    expect(page.get_by_role("link", name="My profile")).to_be_hidden()
    page.wait_for_load_state()  # Bootstrap's script has bound the toggler before it is tapped
    page.get_by_role("button", name="Toggle navigation").click()
    expect(page.locator(".navbar-collapse.show")).to_be_visible()  # the menu has finished opening
    page.get_by_role("link", name="My profile").click()
    expect(page).to_have_url(re.compile(r"/patient/\d+/profile$"))
    expect(page.get_by_role("heading", name="My profile")).to_be_visible()
    no_horizontal_scroll = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert no_horizontal_scroll
    page.screenshot(path=str(artifacts / "patient-profile-phone.png"), full_page=True)
