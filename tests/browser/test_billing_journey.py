"""Two real browsers (a clerk and a patient), the real worker and mailbox: the clerk bills a completed visit,
records a partial payment, files a claim and marks it paid; the patient sees a balance of 0 and downloads
the PDF; the clerk's reports show the money."""
from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import Browser, Page, expect

from devtools.mailbox import wait_for_messages
from tests.browser.helpers import PHONE, signed_in

pytestmark = [pytest.mark.browser, pytest.mark.clock]




def nav(page: Page, label: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=label).click()


def test_clerk_bills_a_visit_takes_a_partial_payment_and_a_claim_then_the_patient_sees_it_paid(
        browser: Browser, base_url, app, worker, mailbox, default_templates, create_user, create_doctor,
        create_department, create_patient, artifacts):
    from app.accounts.models import Role
    from app.appointments.models import Appointment, Status
    from app.extensions import db
    from app.timeutil import utcnow
    from tests.conftest import DEFAULT_PASSWORD

    department = create_department("Family Medicine")
    doctor = create_doctor(full_name="Dr. Hattie Wyatt", department_ids=[department], fee="150.00")
    patient = create_patient(full_name="Paula Journey", email="paula.journey@example.com")
    clerk = create_user(Role.CLERK, full_name="Carla Clerk")
    with app.app_context():
        start = (utcnow() - timedelta(days=1)).replace(microsecond=0)
        db.session.add(Appointment(patient_id=patient.id, doctor_id=doctor.id, department_id=department,
                                   starts_at=start, ends_at=start + timedelta(minutes=30), status=Status.COMPLETED,
                                   reason="Knee pain", active=None))
        db.session.commit()

    # The clerk bills the completed visit: the consultation fee is already on the draft.
    page = signed_in(browser, base_url, clerk.email, DEFAULT_PASSWORD)
    nav(page, "Invoices")
    page.get_by_role("link", name="New invoice").click()
    page.get_by_test_id("visits-to-bill").get_by_role("listitem").filter(has_text="Paula Journey") \
        .get_by_role("button", name="Bill visit").click()
    expect(page.get_by_text("Consultation").first).to_be_visible()
    page.get_by_label("Description").fill("Knee X-ray")
    page.get_by_label("Quantity").fill("1")
    page.get_by_label("Unit price").fill("50.00")
    page.get_by_role("button", name="Add line").click()
    expect(page.get_by_text("Knee X-ray").first).to_be_visible()
    expect(page.get_by_text("200.00").first).to_be_visible()
    page.screenshot(path=str(artifacts / "billing-draft.png"), full_page=True)
    page.get_by_role("button", name="Issue invoice").click()
    expect(page.get_by_text("INV-").first).to_be_visible()
    invoice_url = page.url

    # A partial payment by card.
    page.get_by_role("link", name="Record payment").click()
    page.get_by_label("Amount", exact=True).fill("80.00")
    page.get_by_label("Method").select_option(label="Card")
    page.get_by_label("Reference").fill("POS-4471")
    page.get_by_role("button", name="Record payment").click()
    expect(page.get_by_text("Partially paid").first).to_be_visible()
    expect(page.get_by_text("120.00").first).to_be_visible()

    # The rest is claimed from the insurer, approved, and paid.
    page.get_by_role("link", name="File insurance claim").click()
    page.get_by_label("Insurer", exact=True).fill("Acme Health")
    page.get_by_label("Policy number").fill("AH-448812")
    page.get_by_label("Amount claimed").fill("120.00")
    page.get_by_role("button", name="File claim").click()
    expect(page.get_by_text("Acme Health").first).to_be_visible()
    page.get_by_role("link", name="Record decision").click()
    page.get_by_label("Insurer's decision").select_option(label="Approved")
    page.get_by_label("Insurer's reference").fill("ACME-2231")
    page.get_by_role("button", name="Save decision").click()
    page.get_by_role("link", name="Mark paid").click()
    amount = page.get_by_label("Amount the insurer paid")
    if not amount.input_value():
        amount.fill("120.00")
    page.get_by_role("button", name="Record payment").click()
    page.wait_for_url(invoice_url)
    expect(page.get_by_text("Paid", exact=True).first).to_be_visible()
    page.screenshot(path=str(artifacts / "billing-invoice-paid.png"), full_page=True)
    number = page.get_by_role("heading", level=1).inner_text()
    number = next(word for word in number.split() if word.startswith("INV-"))

    # The patient: the bill, paid, with a balance of 0, and its PDF.
    patient_page = signed_in(browser, base_url, patient.email, DEFAULT_PASSWORD)
    nav(patient_page, "My bills")
    row = patient_page.get_by_test_id("bill-row").filter(has_text=number)
    expect(row).to_contain_text("Paid")
    expect(row.get_by_test_id("bill-balance")).to_have_text("USD 0.00")
    patient_page.screenshot(path=str(artifacts / "patient-bills.png"), full_page=True)
    row.get_by_role("link", name=number).click()
    expect(patient_page.get_by_test_id("balance")).to_have_text("USD 0.00")
    expect(patient_page.get_by_test_id("insurer-paid")).to_have_text("USD 120.00")
    expect(patient_page.get_by_test_id("bill-payments")).to_contain_text("POS-4471")
    patient_page.screenshot(path=str(artifacts / "patient-bill-detail.png"), full_page=True)
    with patient_page.expect_download() as download_info:
        patient_page.get_by_test_id("pdf-link").click()
    download = download_info.value
    assert download.suggested_filename == f"{number}.pdf"
    pdf_path = artifacts / "patient-bill.pdf"
    download.save_as(str(pdf_path))
    assert pdf_path.read_bytes().startswith(b"%PDF-")

    # The patient was told: the invoice, the payment and the insurer's decision, by email.
    messages = wait_for_messages(mailbox, 3, timeout=30, predicate=lambda m: m["To"] == "paula.journey@example.com")
    subjects = " | ".join(m["Subject"] for m in messages)
    assert number in subjects

    # A phone-sized patient view of the bill stays readable.
    phone = signed_in(browser, base_url, patient.email, DEFAULT_PASSWORD, viewport=PHONE)
    phone.goto(patient_page.url)
    expect(phone.get_by_test_id("balance")).to_have_text("USD 0.00")
    phone.screenshot(path=str(artifacts / "patient-bill-phone.png"), full_page=True)

    # The clerk's reports show the visit's money, with a chart; the filter swaps the report in place.
    nav(page, "Reports")
    expect(page.get_by_role("heading", name="Revenue by day")).to_be_visible()
    expect(page.locator("canvas[data-chart-drawn=true]")).to_be_visible()
    expect(page.get_by_test_id("report-table").locator("tfoot")).to_contain_text("200.00")
    page.screenshot(path=str(artifacts / "billing-report-revenue-by-day.png"), full_page=True)
    page.get_by_role("navigation", name="Reports").get_by_role("link", name="Payments by method").click()
    table = page.get_by_test_id("report-table")
    expect(table.get_by_role("row").filter(has_text="Card")).to_contain_text("80.00")
    expect(table.get_by_role("row").filter(has_text="Insurers")).to_contain_text("120.00")
    page.get_by_label("From", exact=True).fill("2020-01-01")
    page.get_by_label("To", exact=True).fill("2020-01-31")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_test_id("period")).to_contain_text("01 Jan 2020")
    expect(page.get_by_test_id("no-chart")).to_be_visible()
    expect(table.get_by_role("row").filter(has_text="Card")).to_contain_text("0.00")
    assert "start=2020-01-01" in page.url  # the filtered report can be bookmarked
    page.screenshot(path=str(artifacts / "billing-report-payments-filtered.png"), full_page=True)
    page.get_by_role("navigation", name="Reports").get_by_role("link", name="Claims by status").click()
    expect(page.locator("canvas[data-chart-drawn=true]")).to_be_visible()
    page.screenshot(path=str(artifacts / "billing-report-claims.png"), full_page=True)
