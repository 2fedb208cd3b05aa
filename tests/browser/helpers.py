"""What the browser tests share."""
from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from tests.conftest import DEFAULT_PASSWORD

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def signed_in(browser: Browser, base_url: str, email: str, password: str = DEFAULT_PASSWORD, *,
              viewport: dict | None = None) -> Page:
    """A page in a new browser context (its own cookies), signed in as `email`."""
    page = browser.new_context(viewport=viewport or DESKTOP, accept_downloads=True).new_page()
    page.goto(f"{base_url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("signed-in-as")).to_be_attached()  # behind the menu button on a phone
    page.wait_for_load_state()  # htmx has processed the page before a test acts on it
    return page
