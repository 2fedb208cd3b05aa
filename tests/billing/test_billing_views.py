"""The clerk's screens end to end over HTTP: bill a visit, edit the draft in place, issue, take payments
(a double submit records one), refunds through an admin, claims, the price list; refusals come back as
422 with the message beside the field."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest
import sqlalchemy as sa

from app.billing import claims, invoices, payments
from app.billing.models import Claim, ClaimStatus, Invoice, InvoiceStatus, Payment, PriceItem, Refund, RefundStatus
from app.extensions import db
from tests.billing.conftest import actor
from tests.helpers import text

pytestmark = pytest.mark.clock  # the outcome depends on the clock: see `make test-clock`


def _key(html: str) -> str:
    return re.search(r'name="idempotency_key" type="hidden" value="([^"]+)"', html).group(1)


def test_clerk_bills_a_completed_visit_edits_the_draft_and_issues_it(app, client, login, clerk, patient,
                                                                     completed_appointment):
    appointment_id = completed_appointment()
    with app.app_context():
        invoices.create_price_item(None, code="XRAY", name="Chest X-ray", price="80.00")
        db.session.commit()
        item_id = db.session.scalar(sa.select(PriceItem.id))
    login(clerk)
    home = text(client.get("/billing/"))
    assert "Completed visits to bill" in home and "Paula Patient" in home
    response = client.post_form("/billing/invoices", {"patient_id": patient.id, "appointment_id": appointment_id})
    assert response.status_code == 303
    url = response.headers["Location"]
    invoice_id = int(url.rsplit("/", 1)[1])
    page = text(client.get(url))
    assert "Consultation — Dr. Dora Doctor (Cardiology)" in page and "USD 150.00" in page

    fragment = client.post_form(f"{url}/lines", {"price_item_id": str(item_id), "quantity": "2", "unit_price": ""},
                                htmx=True)
    assert fragment.status_code == 200
    assert 'id="draft-editor"' in text(fragment) and "<html" not in text(fragment)
    assert "Chest X-ray" in text(fragment) and "USD 310.00" in text(fragment)
    assert 'id="invoice-history" data-testid="history" hx-swap-oob="true"' in text(fragment)

    refused = client.post_form(f"{url}/discount", {"discount": "20.00", "discount_reason": ""}, htmx=True)
    assert refused.status_code == 422 and "Give the reason for the discount." in text(refused)
    client.post_form(f"{url}/discount", {"discount": "10.00", "discount_reason": "Staff family"}, htmx=True)

    issued = client.post_form(f"{url}/issue", {"due_on": ""})
    assert issued.status_code == 303
    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        assert (invoice.status, invoice.total) == (InvoiceStatus.ISSUED, Decimal("300.00"))
        assert invoice.number.startswith("INV-")
    page = text(client.get(url))
    assert "Record payment" in page and "Add a line" not in page


def test_a_line_with_a_bad_price_is_refused_beside_the_field(app, client, login, clerk, make_invoice):
    invoice_id = make_invoice(issue=False)
    login(clerk)
    response = client.post_form(f"/billing/invoices/{invoice_id}/lines",
                                {"description": "Dressing", "quantity": "1", "unit_price": "12.345"}, htmx=True)
    assert response.status_code == 422
    assert 'id="unit_price-error"' in text(response) and "at most two decimals" in text(response)


def test_the_payment_form_carries_a_key_and_a_double_submit_records_one_payment(app, client, login, clerk,
                                                                               make_invoice):
    invoice_id = make_invoice([("Consultation", 1, "100.00")])
    login(clerk)
    form_page = text(client.get(f"/billing/invoices/{invoice_id}/payments/new"))
    key = _key(form_page)
    assert key and 'value="100.00"' in form_page
    data = {"amount": "40.00", "method": "cash", "paid_on": "2026-01-05", "reference": "", "idempotency_key": key}
    first = client.post_form(f"/billing/invoices/{invoice_id}/payments/new", data)
    second = client.post_form(f"/billing/invoices/{invoice_id}/payments/new", data)
    assert first.status_code == second.status_code == 303
    assert _key(text(client.get(f"/billing/invoices/{invoice_id}/payments/new"))) != key  # a new form, a new key
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Payment.id))) == 1
        assert db.session.get(Invoice, invoice_id).status is InvoiceStatus.PARTIALLY_PAID


def test_a_payment_above_the_balance_is_refused_beside_the_amount(app, client, login, clerk, make_invoice):
    invoice_id = make_invoice([("Consultation", 1, "100.00")])
    login(clerk)
    key = _key(text(client.get(f"/billing/invoices/{invoice_id}/payments/new")))
    response = client.post_form(f"/billing/invoices/{invoice_id}/payments/new",
                                {"amount": "100.01", "method": "card", "paid_on": "2026-01-05",
                                 "idempotency_key": key}, htmx=True)
    assert response.status_code == 422
    assert 'id="amount-error"' in text(response) and "more than the balance (USD 100.00)" in text(response)
    assert "<html" not in text(response)


def test_refund_goes_from_clerk_to_admin_and_back_to_the_clerk(app, client, login, clerk, admin, make_invoice):
    invoice_id = make_invoice([("Consultation", 1, "100.00")])
    with app.app_context():
        payment = payments.record_payment(invoice_id, actor(clerk.id), amount="100.00", method="card",
                                          idempotency_key="refund-flow-key")
        db.session.commit()
        payment_id = payment.id
    login(clerk)
    response = client.post_form(f"/billing/payments/{payment_id}/refund", {"amount": "25.00", "reason": "Overcharge"})
    assert response.status_code == 303
    with app.app_context():
        refund_id = db.session.scalar(sa.select(Refund.id))
    clerk_view = text(client.get(f"/billing/refunds/{refund_id}"))
    assert "Waiting for an administrator" in clerk_view and "Approve" not in clerk_view
    assert client.post_form(f"/billing/refunds/{refund_id}/approve", {"note": ""}).status_code == 403

    client.post_form("/logout", {})
    login(admin)
    assert "Overcharge" in text(client.get("/billing/"))
    assert client.post_form(f"/billing/refunds/{refund_id}/approve", {"note": "OK"}).status_code == 303

    client.post_form("/logout", {})
    login(clerk)
    assert client.post_form(f"/billing/refunds/{refund_id}/record", {"reference": "R-1"}).status_code == 303
    with app.app_context():
        assert db.session.get(Refund, refund_id).status is RefundStatus.RECORDED
        assert db.session.get(Invoice, invoice_id).balance == Decimal("25.00")


def test_an_admin_who_asked_for_a_refund_is_told_another_must_decide(app, client, login, admin, make_invoice, clerk):
    invoice_id = make_invoice([("Consultation", 1, "100.00")])
    with app.app_context():
        payment = payments.record_payment(invoice_id, actor(clerk.id), amount="100.00", method="card",
                                          idempotency_key="admin-own-refund")
        refund = payments.request_refund(payment.id, actor(admin.id), "10.00", "Goodwill")
        db.session.commit()
        refund_id = refund.id
    login(admin)
    assert "another administrator must decide it" in text(client.get(f"/billing/refunds/{refund_id}"))
    response = client.post_form(f"/billing/refunds/{refund_id}/approve", {"note": ""})
    assert response.status_code == 422 and "another administrator must decide it" in text(response)


def test_clerk_files_a_claim_records_the_decision_and_the_insurer_payment(app, client, login, clerk, make_invoice):
    invoice_id = make_invoice([("Surgery", 1, "200.00")])
    login(clerk)
    form = text(client.get(f"/billing/invoices/{invoice_id}/claims/new"))
    assert 'value="200.00"' in form
    assert client.post_form(f"/billing/invoices/{invoice_id}/claims/new",
                            {"payer": "Acme Health", "policy_number": "POL-77", "claimed_amount": "150.00"}
                            ).status_code == 303
    with app.app_context():
        claim_id = db.session.scalar(sa.select(Claim.id))
    refused = client.post_form(f"/billing/claims/{claim_id}/decide",
                               {"status": "partially_approved", "approved_amount": "100.00", "reason_code": ""},
                               htmx=True)
    assert refused.status_code == 422 and 'id="reason_code-error"' in text(refused)
    assert client.post_form(f"/billing/claims/{claim_id}/decide",
                            {"status": "partially_approved", "approved_amount": "100.00", "reason_code": "CO-45",
                             "payer_reference": "ACME-1"}).status_code == 303
    page = text(client.get(f"/billing/invoices/{invoice_id}"))
    assert "Partially approved" in page and 'data-testid="patient-share">USD 100.00' in page
    assert client.post_form(f"/billing/claims/{claim_id}/paid",
                            {"amount": "100.00", "paid_on": "2026-01-05", "payer_reference": ""}).status_code == 303
    with app.app_context():
        assert db.session.get(Claim, claim_id).status is ClaimStatus.PAID
        assert db.session.get(Invoice, invoice_id).balance == Decimal("100.00")


def test_clerk_withdraws_a_claim_filed_in_error_then_voids_the_invoice(app, client, login, clerk, make_invoice):
    invoice_id = make_invoice([("Surgery", 1, "200.00")])
    with app.app_context():
        claim_id = claims.submit_claim(invoice_id, actor(clerk.id), payer="Acme Health", policy_number="POL-1",
                                       claimed_amount="150.00").id
        db.session.commit()
    login(clerk)
    url = f"/billing/claims/{claim_id}/withdraw"
    assert f'href="{url}"' in text(client.get(f"/billing/invoices/{invoice_id}"))
    form = text(client.get(url))
    assert "Withdraw the insurance claim" in form and "claimed USD 150.00" in form
    refused = client.post_form(url, {"reason": ""}, htmx=True)
    assert refused.status_code == 422 and "<html" not in text(refused)
    assert re.search(r'id="reason-error">\s*Enter the reason\.', text(refused))
    blank = client.post_form(url, {"reason": "   "})
    assert blank.status_code == 422 and "Give the reason for withdrawing the claim." in text(blank)
    assert client.post_form(url, {"reason": "Filed under the wrong policy"}).status_code == 303

    page = text(client.get(f"/billing/invoices/{invoice_id}"))
    assert 'data-testid="claim-status">Withdrawn' in page and "Filed under the wrong policy" in page
    assert 'data-testid="patient-share">USD 200.00' in page and f'href="{url}"' not in page
    assert 'Claim withdrawn · USD 150.00 · <span class="text-break">Acme Health: Filed under the wrong policy' in page
    assert client.get(url).status_code == 409
    again = client.post_form(url, {"reason": "Twice"}, htmx=True)
    assert again.status_code == 422 and "this one is withdrawn" in text(again)
    assert client.get(f"/billing/claims/{claim_id}/decide").status_code == 409
    assert client.post_form(f"/billing/invoices/{invoice_id}/void", {"reason": "Duplicate"}).status_code == 303


def test_void_needs_a_reason_shown_beside_the_field(app, client, login, clerk, make_invoice):
    invoice_id = make_invoice()
    login(clerk)
    response = client.post_form(f"/billing/invoices/{invoice_id}/void", {"reason": ""})
    assert response.status_code == 422 and 'id="reason-error"' in text(response)
    assert client.post_form(f"/billing/invoices/{invoice_id}/void", {"reason": "Duplicate"}).status_code == 303
    assert "Void since" in text(client.get(f"/billing/invoices/{invoice_id}"))


def test_invoices_list_filters_by_status_and_patient_and_pages(app, client, login, clerk, make_invoice,
                                                               create_patient):
    other = create_patient(full_name="Zed Other")
    make_invoice(issue=False)
    for _ in range(26):
        make_invoice()
    make_invoice(patient_id=other.id)
    login(clerk)
    first = text(client.get("/billing/invoices?status=issued"))
    assert first.count('data-testid="invoice-row"') == 25 and "Page 1 of 2" in first
    fragment = client.get("/billing/invoices?status=issued&page=2", htmx=True)
    assert "<html" not in text(fragment) and text(fragment).count('data-testid="invoice-row"') == 2
    assert text(client.get("/billing/invoices?status=draft")).count('data-testid="invoice-row"') == 1
    assert text(client.get("/billing/invoices?q=Zed")).count('data-testid="invoice-row"') == 1
    bad = client.get("/billing/invoices?date_from=2026-02-01&date_to=2026-01-01")
    assert bad.status_code == 422 and "The end date is before the start date." in text(bad)


def test_price_list_add_edit_and_duplicate_code(app, client, login, clerk):
    login(clerk)
    assert client.post_form("/billing/prices/new", {"code": "ecg", "name": "ECG", "price": "45.00", "active": "y",
                                                    "department_id": ""}).status_code == 303
    duplicate = client.post_form("/billing/prices/new", {"code": "ECG", "name": "Other", "price": "1.00",
                                                         "department_id": ""})
    assert duplicate.status_code == 422 and "Another service already has this code." in text(duplicate)
    with app.app_context():
        item_id = db.session.scalar(sa.select(PriceItem.id))
    assert client.post_form(f"/billing/prices/{item_id}/edit", {"code": "ECG", "name": "ECG (12 leads)",
                                                               "price": "50.00", "department_id": ""}
                            ).status_code == 303
    client.get("/billing/prices")  # shows the flashed "saved" message
    assert 'data-testid="price-item"' not in text(client.get("/billing/prices"))  # withdrawn: "active" not sent
    assert "ECG (12 leads)" in text(client.get("/billing/prices?show=all"))


def test_removing_a_line_below_the_discount_is_refused_beside_the_discount(app, client, login, clerk, make_invoice):
    invoice_id = make_invoice([("Consultation", 1, "100.00"), ("Dressing", 1, "20.00")], discount="110.00",
                              issue=False)
    with app.app_context():
        line_id = db.session.get(Invoice, invoice_id).lines[0].id
    login(clerk)
    response = client.post_form(f"/billing/invoices/{invoice_id}/lines/{line_id}/delete", {}, htmx=True)
    assert response.status_code == 422
    assert 'id="discount-error"' in text(response) and "Lower the discount first" in text(response)
    assert text(response).count('data-testid="line"') == 2


def test_a_payment_form_without_its_key_asks_for_a_reload(app, client, login, clerk, make_invoice):
    invoice_id = make_invoice()
    login(clerk)
    response = client.post_form(f"/billing/invoices/{invoice_id}/payments/new",
                                {"amount": "10.00", "method": "cash", "paid_on": "2026-01-05"})
    assert response.status_code == 422 and "This form has expired. Reload the page." in text(response)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Payment.id))) == 0


def test_the_invoices_list_and_the_worklist_cost_the_same_queries_for_few_or_many(app, client, login, clerk,
                                                                                  make_invoice, create_patient,
                                                                                  completed_appointment):
    from tests.helpers import count_statements

    login(clerk)
    for _ in range(3):
        make_invoice(patient_id=create_patient().id)
        make_invoice(patient_id=create_patient().id, issue=False)
        completed_appointment(patient_id=create_patient().id)
    few = (count_statements(app, client, "/billing/invoices"), count_statements(app, client, "/billing/"))
    for _ in range(12):
        make_invoice(patient_id=create_patient().id)
        make_invoice(patient_id=create_patient().id, issue=False)
        completed_appointment(patient_id=create_patient().id)
    assert (count_statements(app, client, "/billing/invoices"), count_statements(app, client, "/billing/")) == few
