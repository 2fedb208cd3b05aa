"""Plain (not htmx) POST forms: a spinner while the next page loads, and a second submit is ignored."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import DEFAULT_PASSWORD

pytestmark = pytest.mark.browser

# A listener on window runs after app.js's listener on document. It records whether app.js let each submit
# through, then stops the browser's navigation itself, so the page stays put and nothing needs to be timed.
RECORD_SUBMITS = ("() => { window.submits = []; window.addEventListener('submit', (e) => {"
                  " window.submits.push(!e.defaultPrevented); e.preventDefault(); }); }")
SIGN_IN = "main form button[type=submit]"


def test_a_plain_form_shows_its_spinner_and_ignores_a_second_submit(page: Page, base_url, create_patient):
    patient = create_patient(email="double.click@example.com")
    page.goto(f"{base_url}/login")
    page.get_by_label("Email").fill(patient.email)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.evaluate(RECORD_SUBMITS)
    spinner = page.locator(SIGN_IN).locator(".spinner-border")
    expect(spinner).to_be_hidden()

    page.locator(SIGN_IN).click()
    expect(spinner).to_be_visible()
    expect(page.locator("main form")).to_have_attribute("aria-busy", "true")
    # The busy button takes no more clicks (app.css); Enter in a field submits the form regardless.
    page.get_by_label("Password").press("Enter")

    assert page.evaluate("() => window.submits") == [True, False]


def test_a_plain_form_submits_and_signs_in(page: Page, base_url, create_patient):
    patient = create_patient(email="single.click@example.com")
    page.goto(f"{base_url}/login")
    page.get_by_label("Email").fill(patient.email)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.locator(SIGN_IN).click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
