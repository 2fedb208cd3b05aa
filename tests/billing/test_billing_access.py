"""Who reaches the billing workspace: clerks do everything but decide refunds, admins read and decide
refunds, patients and doctors never get in, anonymous visitors are sent to sign in."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.accounts.models import Role
from app.billing import claims, payments
from app.billing.models import Invoice
from app.extensions import db
from tests.billing.conftest import actor
from tests.helpers import text


@pytest.fixture
def billed(app, make_invoice, clerk, admin):
    """An issued, partly paid invoice with a requested refund and a submitted claim: the ids involved."""
    invoice_id = make_invoice([("Consultation", 1, "100.00")])
    with app.app_context():
        payment = payments.record_payment(invoice_id, actor(clerk.id), amount="50.00", method="cash",
                                          idempotency_key="access-test-key")
        refund = payments.request_refund(payment.id, actor(clerk.id), "5.00", "Test")
        claim = claims.submit_claim(invoice_id, actor(clerk.id), payer="Acme", policy_number="P",
                                    claimed_amount="10.00")
        db.session.commit()
        return {"invoice_id": invoice_id, "payment_id": payment.id, "refund_id": refund.id, "claim_id": claim.id,
                "line_id": db.session.get(Invoice, invoice_id).lines[0].id}


READ_PAGES = ["/billing/", "/billing/invoices", "/billing/invoices/{invoice_id}", "/billing/refunds",
              "/billing/refunds/{refund_id}", "/billing/prices", "/billing/prices/new"]
CLERK_PAGES = ["/billing/invoices/new", "/billing/invoices/{invoice_id}/payments/new",
               "/billing/payments/{payment_id}/refund", "/billing/invoices/{invoice_id}/claims/new",
               "/billing/claims/{claim_id}/decide", "/billing/claims/{claim_id}/withdraw"]
CLERK_POSTS = ["/billing/invoices", "/billing/invoices/{invoice_id}/lines",
               "/billing/invoices/{invoice_id}/lines/{line_id}/delete", "/billing/invoices/{invoice_id}/discount",
               "/billing/invoices/{invoice_id}/issue", "/billing/invoices/{invoice_id}/void",
               "/billing/invoices/{invoice_id}/payments/new", "/billing/payments/{payment_id}/refund",
               "/billing/refunds/{refund_id}/record", "/billing/invoices/{invoice_id}/claims/new",
               "/billing/claims/{claim_id}/decide", "/billing/claims/{claim_id}/paid",
               "/billing/claims/{claim_id}/withdraw"]
ADMIN_POSTS = ["/billing/refunds/{refund_id}/approve", "/billing/refunds/{refund_id}/reject"]


@pytest.mark.parametrize("role", [Role.PATIENT, Role.DOCTOR])
def test_patients_and_doctors_never_reach_billing_pages(client, create_user, login, billed, role):
    login(create_user(role))
    for url in READ_PAGES + CLERK_PAGES:
        response = client.get(url.format(**billed))
        assert response.status_code == 403, url
    for url in CLERK_POSTS + ADMIN_POSTS:
        assert client.post_form(url.format(**billed), {}).status_code == 403, url


def test_anonymous_visitors_are_sent_to_sign_in(client, billed):
    for url in READ_PAGES + CLERK_PAGES:
        response = client.get(url.format(**billed))
        assert response.status_code == 302 and response.headers["Location"].startswith("/login"), url


def test_clerk_reads_and_works_but_cannot_decide_refunds(client, login, clerk, billed):
    login(clerk)
    for url in READ_PAGES + CLERK_PAGES:
        assert client.get(url.format(**billed)).status_code == 200, url
    for url in ADMIN_POSTS:
        assert client.post_form(url.format(**billed), {"note": "x"}).status_code == 403, url


def test_admin_reads_and_decides_refunds_but_does_not_bill(client, login, admin, billed):
    login(admin)
    for url in READ_PAGES:
        assert client.get(url.format(**billed)).status_code == 200, url
    for url in CLERK_PAGES:
        assert client.get(url.format(**billed)).status_code == 403, url
    for url in CLERK_POSTS:
        assert client.post_form(url.format(**billed), {}).status_code == 403, url
    page = text(client.get("/billing/refunds/{refund_id}".format(**billed)))
    assert "Approve" in page and "Reject" in page


def test_admin_navigation_leads_to_refunds(client, login, admin):
    login(admin)
    assert 'href="/billing/refunds"' in text(client.get("/admin/"))


def test_clerk_navigation_lists_the_billing_pages(client, login, clerk):
    login(clerk)
    html = text(client.get("/billing/"))
    for href in ("/billing/invoices", "/billing/refunds", "/billing/prices", "/billing/reports"):
        assert f'href="{href}' in html, href


def test_unknown_ids_are_404(client, login, clerk, app):
    login(clerk)
    for url in ("/billing/invoices/999999", "/billing/refunds/999999", "/billing/prices/999999/edit",
                "/billing/invoices/999999/payments/new", "/billing/claims/999999/decide",
                "/billing/claims/999999/withdraw"):
        assert client.get(url).status_code == 404, url
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Invoice.id))) == 0


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example/", "http:/x"])
def test_approving_a_refund_never_redirects_to_another_site(client, login, admin, billed, target):
    login(admin)
    response = client.post_form("/billing/refunds/{refund_id}/approve".format(**billed), {"note": "ok", "next": target})
    assert response.status_code == 303
    assert response.headers["Location"] == "/billing/refunds"


def test_approving_a_refund_returns_to_a_page_of_this_site(client, login, admin, billed):
    login(admin)
    back = "/billing/refunds/{refund_id}".format(**billed)
    response = client.post_form(back + "/approve", {"note": "ok", "next": back})
    assert response.status_code == 303 and response.headers["Location"] == back
