"""What the browser tests share."""
from __future__ import annotations

from playwright.sync_api import Browser, Locator, Page, expect

from tests.conftest import DEFAULT_PASSWORD
from tests.helpers import authenticator_code

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def signed_in(browser: Browser, base_url: str, email: str, password: str = DEFAULT_PASSWORD, *,
              viewport: dict | None = None) -> Page:
    """A page in a new browser context (its own cookies), signed in as `email`."""
    page = browser.new_context(viewport=viewport or DESKTOP, accept_downloads=True).new_page()
    sign_in(page, base_url, email, password)
    return page


def sign_in(page: Page, base_url: str, email: str, password: str = DEFAULT_PASSWORD) -> None:
    """Sign in on `page` and return once the signed-in page has loaded."""
    page.goto(f"{base_url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    second_step = page.get_by_role("button", name="Verify").or_(page.get_by_test_id("signed-in-as"))
    expect(second_step).to_be_attached()
    if page.url.split("?")[0].endswith("/login/code"):  # staff: the authenticator's code
        page.get_by_label("Code").fill(authenticator_code(email))
        page.get_by_role("button", name="Verify").click()
    expect(page.get_by_test_id("signed-in-as")).to_be_attached()  # behind the menu button on a phone
    page.wait_for_load_state()  # htmx has processed the page before a test acts on it


def sign_out(page: Page) -> None:
    """Sign out and return once the server has answered: a navigation started earlier would abort the
    sign-out's POST and leave the session signed in."""
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You have signed out.")).to_be_visible()


def fill_prescription(form: Locator, *, drug: str, strength: str, days: int, refills: int | None = None,
                      instructions: str | None = None) -> None:
    """Fill the encounter's prescription form: one tablet by mouth once daily for `days` days (quantity the same)."""
    form.get_by_label("Drug").fill(drug)
    form.get_by_label("Strength").fill(strength)
    form.get_by_label("Form", exact=True).select_option("tablet")
    form.get_by_label("Dose").fill("1 tablet")
    form.get_by_label("Route").select_option("oral")
    form.get_by_label("Frequency").select_option("once daily")
    form.get_by_label("Duration (days)").fill(str(days))
    form.get_by_label("Quantity").fill(str(days))
    if refills is not None:
        form.get_by_label("Refills").fill(str(refills))
    if instructions is not None:
        form.get_by_label("Instructions").fill(instructions)
