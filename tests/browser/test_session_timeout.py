"""The idle-timeout warning: a dialog a minute before, "Stay signed in", and at the end a message, with what a form
held filled back in after signing in again. The page's clock is Playwright's (fast-forwarded); the server's session
is aged in the database."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, expect

from app.accounts.models import UserSession
from app.extensions import db
from app.timeutil import utcnow
from tests.browser.helpers import DESKTOP, PHONE, sign_in
from tests.conftest import DEFAULT_PASSWORD

pytestmark = pytest.mark.browser


def test_the_warning_keeps_the_session_and_the_end_keeps_what_was_typed(app, browser: Browser, base_url,
                                                                          create_patient, artifacts):
    patient = create_patient(email="idle.patient@example.com")
    page = browser.new_context(viewport=DESKTOP).new_page()
    page.clock.install()
    sign_in(page, base_url, patient.email)
    edit = f"/patient/{patient.id}/profile/contact/edit"
    page.goto(base_url + edit)
    page.get_by_label("Address").fill("42 Typed Lane")
    dialog = page.locator("#session-timer")

    page.clock.fast_forward("29:01")
    expect(dialog).to_contain_text("You will be signed out in a minute because of inactivity.")
    page.screenshot(path=str(artifacts / "session-warning-desktop.png"))
    page.get_by_role("button", name="Stay signed in").click()
    expect(dialog).to_be_hidden()

    page.clock.fast_forward("29:01")
    expect(dialog).to_be_visible()
    with app.app_context():  # the server's side of the half hour without activity
        db.session.execute(sa.update(UserSession).where(UserSession.user_id == patient.id)
                           .values(last_seen_at=utcnow() - timedelta(minutes=31)))
        db.session.commit()
    page.clock.fast_forward("01:00")
    expect(dialog).to_contain_text("You were signed out after 30 minutes without activity. What you typed on this"
                                   " page is kept")
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(artifacts / "session-ended-phone.png"))
    page.get_by_role("link", name="Sign in again").click()
    page.get_by_label("Email").fill(patient.email)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(base_url + edit)
    expect(page.get_by_test_id("form-restored")).to_be_visible()
    expect(page.get_by_label("Address")).to_have_value("42 Typed Lane")
    page.context.close()
