"""A patient's bills: the list, one bill, its PDF and the billing history; nobody else's, and never a draft."""
from __future__ import annotations

import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from app.billing import claims, invoices, payments
from app.billing.models import Invoice
from app.events.models import OutboxEvent
from app.extensions import db
from app.timeutil import clinic_today
from tests.billing.conftest import actor
from tests.helpers import text

pytestmark = pytest.mark.clock  # the outcome depends on the clock: see `make test-clock`


def pdf_text(pdf: bytes) -> str:
    """The text WeasyPrint drew, as a PDF reader extracts it."""
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


@pytest.fixture
def bill(app, make_invoice, patient, clerk, admin):
    """An issued bill of `patient`: 2 × 60.00 + 30.00 = 150.00, 40.00 paid by card, a 50.00 claim approved and
    paid by the insurer → balance 60.00. Returns (id, number)."""
    invoice_id = make_invoice([("Physiotherapy session", 2, "60.00"), ("Knee brace", 1, "30.00")])
    with app.app_context():
        by = actor(clerk.id)
        payments.record_payment(invoice_id, by, amount=Decimal("40.00"), method="card", reference="POS-881",
                                idempotency_key=payments.new_idempotency_key())
        claim = claims.submit_claim(invoice_id, by, payer="Acme Health", policy_number="AC-123",
                                    claimed_amount="50.00")
        claims.decide_claim(claim.id, by, status="approved", payer_reference="ACME-9")
        claims.mark_claim_paid(claim.id, by)
        db.session.commit()
        invoice = db.session.get(Invoice, invoice_id)
        assert invoice.balance == Decimal("60.00")
        return invoice_id, invoice.number


def _events(app, type: str) -> list[OutboxEvent]:
    with app.app_context():
        return list(db.session.scalars(sa.select(OutboxEvent).where(OutboxEvent.type == type)))


def test_my_bills_lists_issued_bills_with_status_and_balance_but_no_drafts(app, bill, make_invoice, patient, login):
    invoice_id, number = bill
    draft_id = make_invoice([("Not yet billed", 1, "999.00")], issue=False)
    client = login(patient)
    page = text(client.get("/patient/bills"))
    assert number in page
    assert "Partially paid" in page and "USD 60.00" in page and "USD 150.00" in page
    assert f"/patient/bills/{draft_id}" not in page and "999.00" not in page
    assert 'data-testid="total-due">USD 60.00' in page
    assert client.get(f"/patient/bills/{draft_id}").status_code == 404
    assert client.get(f"/patient/bills/{draft_id}/pdf").status_code == 404


def test_a_bill_shows_lines_payments_insurer_share_and_history(app, bill, patient, login):
    invoice_id, number = bill
    client = login(patient)
    response = client.get(f"/patient/bills/{invoice_id}")
    assert response.status_code == 200
    page = text(response)
    for expected in (number, "Physiotherapy session", "Knee brace", "USD 150.00", "Card", "POS-881", "USD 40.00",
                     "Acme Health", "AC-123", "Paid by the insurer USD 50.00"):
        assert expected in page, expected
    assert re.search(r'data-testid="insurer-paid">USD 50.00<', page)
    assert re.search(r'data-testid="balance">USD 60.00<', page)
    assert "Claim paid" in page and "Payment" in page  # the history
    viewed = _events(app, "invoice.viewed")
    assert len(viewed) == 1
    assert viewed[0].envelope["patient_id"] == patient.id and viewed[0].aggregate_id == str(invoice_id)


def test_the_pdf_is_a_real_pdf_of_the_bill_downloaded_as_an_attachment(app, bill, patient, login):
    invoice_id, number = bill
    client = login(patient)
    response = client.get(f"/patient/bills/{invoice_id}/pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == f'attachment; filename="{number}.pdf"'
    pdf = response.get_data()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    words = pdf_text(pdf)
    assert number in words
    for expected in ("Paula Patient", "Physiotherapy session", "USD 150.00", "Acme Health", "USD 60.00"):
        assert expected in words, (expected, words[:2000])
    downloaded = _events(app, "invoice.pdf_downloaded")
    assert len(downloaded) == 1 and downloaded[0].envelope["patient_id"] == patient.id


def test_a_patient_cannot_open_another_patients_bill_or_its_pdf(app, bill, create_patient, login):
    invoice_id, _ = bill
    other = create_patient(full_name="Olga Other")
    client = login(other)
    assert client.get(f"/patient/bills/{invoice_id}").status_code == 404
    assert client.get(f"/patient/bills/{invoice_id}/pdf").status_code == 404
    assert client.get("/patient/bills/999999").status_code == 404
    assert f"/patient/bills/{invoice_id}" not in text(client.get("/patient/bills"))
    assert f"/patient/bills/{invoice_id}" not in text(client.get("/patient/bills/history"))
    assert _events(app, "invoice.viewed") == [] and _events(app, "invoice.pdf_downloaded") == []


def test_staff_do_not_use_the_patients_bill_pages(app, bill, clerk, login):
    invoice_id, _ = bill
    client = login(clerk)
    assert client.get("/patient/bills").status_code == 403
    assert client.get(f"/patient/bills/{invoice_id}/pdf").status_code == 403


def test_billing_history_lists_every_change_across_the_patients_bills(app, bill, make_invoice, patient, login):
    invoice_id, number = bill
    other_id = make_invoice([("Vaccination", 1, "25.00")])
    client = login(patient)
    page = text(client.get("/patient/bills/history"))
    assert number in page
    assert "Issued" in page and "Payment" in page and "Claim submitted" in page and "Claim paid" in page
    assert f"/patient/bills/{other_id}" in page
    assert "Line added" not in page  # editing the draft is the clinic's business


def test_a_void_bill_says_nothing_is_owed(app, make_invoice, patient, clerk, login):
    invoice_id = make_invoice([("Duplicate visit", 1, "80.00")])
    with app.app_context():
        invoices.void_invoice(invoice_id, actor(clerk.id), "Entered twice")
        db.session.commit()
    client = login(patient)
    page = text(client.get(f"/patient/bills/{invoice_id}"))
    assert "This bill was cancelled: Entered twice" in page
    assert "Void" in text(client.get("/patient/bills"))


def test_a_draft_voided_before_issue_was_never_a_bill(app, make_invoice, patient, clerk, login):
    invoice_id = make_invoice([("Mistake", 1, "80.00")], issue=False)
    with app.app_context():
        invoices.void_invoice(invoice_id, actor(clerk.id), "Wrong patient")
        db.session.commit()
    client = login(patient)
    assert client.get(f"/patient/bills/{invoice_id}").status_code == 404
    assert "No bills yet" in text(client.get("/patient/bills"))


def test_a_patient_with_no_bills_sees_an_empty_state(app, patient, login):
    client = login(patient)
    page = text(client.get("/patient/bills"))
    assert "No bills yet" in page
    assert "My bills" in page and 'aria-current="page"' in page


def test_the_bill_list_pages_and_keeps_due_dates(app, make_invoice, patient, login):
    ids = [make_invoice([(f"Visit {n}", 1, "10.00")]) for n in range(22)]
    client = login(patient)
    first = text(client.get("/patient/bills"))
    assert "Page 1 of 2" in first
    second = text(client.get("/patient/bills?page=2", htmx=True))
    assert second.lstrip().startswith('<section class="card shadow-sm" id="bills"')
    assert len(re.findall(r'data-testid="bill-row"', first)) + len(re.findall(r'data-testid="bill-row"', second)) == 22
    with app.app_context():
        assert db.session.get(Invoice, ids[0]).due_on == clinic_today() + timedelta(days=30)


def test_rendering_a_pdf_never_fetches_a_remote_url(app):
    import socket

    from app.billing.pdf import html_to_pdf

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(5)
        server.setblocking(False)
        port = server.getsockname()[1]
        pdf = html_to_pdf(f'<html><body><p>Invoice INV-9</p><img src="http://127.0.0.1:{port}/logo.png">'
                          f'<link rel="stylesheet" href="http://127.0.0.1:{port}/style.css"></body></html>')
        with pytest.raises(BlockingIOError):
            server.accept()  # nobody connected
    assert pdf.startswith(b"%PDF-") and "Invoice INV-9" in pdf_text(pdf)
