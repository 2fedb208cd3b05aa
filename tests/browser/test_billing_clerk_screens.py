"""The clerk's draft editor and the admin's refund approval in a real browser (HTMX under the CSP), with
screenshots of each billing screen on a desktop and a phone."""
from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from tests.billing.conftest import admin, clerk, completed_appointment, doctor, patient  # noqa: F401  (fixtures)
from tests.browser.helpers import PHONE, signed_in

pytestmark = [pytest.mark.browser, pytest.mark.clock]




def test_clerk_edits_a_draft_in_place_and_admin_approves_a_refund(browser: Browser, base_url, app, clerk, admin,
                                                                   patient, completed_appointment, artifacts):
    from app.billing import invoices
    from app.extensions import db
    from tests.conftest import DEFAULT_PASSWORD

    completed_appointment()
    with app.app_context():
        invoices.create_price_item(None, code="ECG", name="Electrocardiogram", price="60.00")
        invoices.create_price_item(None, code="XRAY", name="Chest X-ray", price="90.00")
        db.session.commit()

    page = signed_in(browser, base_url, clerk.email, DEFAULT_PASSWORD)
    page.goto(f"{base_url}/billing/")
    page.screenshot(path=str(artifacts / "billing-home.png"), full_page=True)
    page.get_by_test_id("to-bill").get_by_role("button", name="Bill visit").click()
    editor = page.get_by_test_id("draft-editor")
    expect(editor.get_by_test_id("line")).to_have_count(1)

    page.get_by_label("Service").select_option(label="ECG · Electrocardiogram · 60.00")
    editor.get_by_role("button", name="Add line").click()
    expect(editor.get_by_test_id("line")).to_have_count(2)
    expect(page.get_by_test_id("total")).to_have_text("USD 210.00")
    expect(page.get_by_test_id("history")).to_contain_text("Line added · USD 60.00 · Electrocardiogram")
    expect(page.get_by_test_id("history")).to_have_count(1)
    page.get_by_label("Description").fill("")
    page.get_by_label("Unit price").fill("abc")
    editor.get_by_role("button", name="Add line").click()
    expect(page.locator("#unit_price-error")).to_contain_text("Enter an amount such as 120.50")
    page.screenshot(path=str(artifacts / "billing-draft-error.png"), full_page=True)
    page.get_by_label("Unit price").fill("")
    page.get_by_label("Service").select_option(label="XRAY · Chest X-ray · 90.00")
    editor.get_by_role("button", name="Add line").click()
    expect(editor.get_by_test_id("line")).to_have_count(3)
    editor.get_by_role("button", name="Remove Chest X-ray").click()
    expect(editor.get_by_test_id("line")).to_have_count(2)
    page.get_by_label("Discount", exact=True).fill("10.00")
    page.get_by_label("Reason for the discount").fill("Returning patient")
    editor.get_by_role("button", name="Apply discount").click()
    expect(page.get_by_test_id("total")).to_have_text("USD 200.00")
    page.screenshot(path=str(artifacts / "billing-draft.png"), full_page=True)
    page.get_by_role("button", name="Issue invoice").click()
    expect(page.get_by_test_id("invoice-status")).to_have_text("Issued")
    expect(page.get_by_test_id("invoice-label")).to_contain_text("INV-")

    page.get_by_role("link", name="Record payment").click()
    page.get_by_label("Amount").fill("200.00")
    page.screenshot(path=str(artifacts / "billing-payment-form.png"), full_page=True)
    page.get_by_role("button", name="Record payment").click()
    expect(page.get_by_test_id("invoice-status")).to_have_text("Paid")
    page.get_by_role("link", name="Refund…").click()
    page.get_by_label("Amount to refund").fill("20.00")
    page.get_by_label("Reason").fill("Discount agreed after payment")
    page.screenshot(path=str(artifacts / "billing-refund-form.png"), full_page=True)
    page.get_by_role("button", name="Ask for approval").click()
    expect(page.get_by_test_id("refund-status")).to_have_text("Awaiting approval")
    page.screenshot(path=str(artifacts / "billing-invoice-paid.png"), full_page=True)

    admin_page = signed_in(browser, base_url, admin.email, DEFAULT_PASSWORD, viewport=PHONE)
    admin_page.goto(f"{base_url}/billing/")
    admin_page.get_by_test_id("refunds-to-decide").get_by_role("link", name="Review").click()
    admin_page.screenshot(path=str(artifacts / "billing-refund-approval-phone.png"), full_page=True)
    admin_page.get_by_role("button", name="Approve").click()
    expect(admin_page.get_by_test_id("to-record")).to_contain_text("USD 20.00")

    page.goto(f"{base_url}/billing/refunds")
    page.get_by_test_id("to-record").get_by_role("link", name="Open").click()
    page.get_by_role("button", name="Record refund paid").click()
    expect(page.get_by_test_id("balance").first).to_have_text("USD 20.00")
    expect(page.get_by_test_id("invoice-status")).to_have_text("Partially paid")

    phone = signed_in(browser, base_url, clerk.email, DEFAULT_PASSWORD, viewport=PHONE)
    phone.goto(f"{base_url}/billing/invoices")
    phone.screenshot(path=str(artifacts / "billing-invoices-phone.png"), full_page=True)
    phone.get_by_role("link", name="INV-").first.click()
    phone.screenshot(path=str(artifacts / "billing-invoice-phone.png"), full_page=True)
