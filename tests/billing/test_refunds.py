"""Refunds: a clerk asks, another person (an admin) decides, then it is recorded and the balance rises."""
from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from app.accounts.models import Role
from app.billing import invoices, payments
from app.billing.common import BillingError
from app.billing.models import Invoice, InvoiceStatus, Refund, RefundStatus
from app.extensions import db
from tests.billing.conftest import actor


@pytest.fixture
def paid_invoice(app, make_invoice, clerk):
    """An invoice of 100.00 paid in full: (invoice id, payment id)."""
    invoice_id = make_invoice([("Consultation", 1, "100.00")])
    with app.app_context():
        payment = payments.record_payment(invoice_id, actor(clerk.id), amount="100.00", method="card",
                                          idempotency_key="paid-invoice-key")
        db.session.commit()
        return invoice_id, payment.id


def test_requested_approved_then_recorded_refund_raises_the_balance(app, paid_invoice, clerk, admin):
    invoice_id, payment_id = paid_invoice
    with app.app_context():
        refund = payments.request_refund(payment_id, actor(clerk.id), "40.00", "Overcharged for the X-ray")
        db.session.commit()
        assert db.session.get(Invoice, invoice_id).balance == 0  # nothing moves before it is recorded
        payments.approve_refund(refund.id, actor(admin.id))
        db.session.commit()
        assert db.session.get(Invoice, invoice_id).balance == 0
        payments.record_refund(refund.id, actor(clerk.id), reference="card reversal 77")
        db.session.commit()
        invoice = db.session.get(Invoice, invoice_id)
        assert (invoice.balance, invoice.patient_paid, invoice.status) == (
            Decimal("40.00"), Decimal("60.00"), InvoiceStatus.PARTIALLY_PAID)
        assert db.session.get(Refund, refund.id).status is RefundStatus.RECORDED


def test_the_requester_cannot_approve_their_own_refund(app, paid_invoice, admin):
    _, payment_id = paid_invoice
    with app.app_context():
        refund = payments.request_refund(payment_id, actor(admin.id), "10.00", "Goodwill")
        db.session.commit()
        with pytest.raises(BillingError, match="another administrator"):
            payments.approve_refund(refund.id, actor(admin.id))


def test_the_database_refuses_a_decider_who_is_the_requester(app, paid_invoice, admin):
    _, payment_id = paid_invoice
    with app.app_context():
        refund = payments.request_refund(payment_id, actor(admin.id), "10.00", "Goodwill")
        db.session.commit()
        with pytest.raises(OperationalError, match="checker_not_maker"):
            db.session.execute(sa.update(Refund).where(Refund.id == refund.id).values(decided_by_id=admin.id))


def test_a_clerk_cannot_decide_a_refund(app, paid_invoice, clerk, create_user):
    _, payment_id = paid_invoice
    other_clerk = create_user(Role.CLERK)
    with app.app_context():
        refund = payments.request_refund(payment_id, actor(clerk.id), "10.00", "Goodwill")
        db.session.commit()
        with pytest.raises(BillingError, match="Only an administrator"):
            payments.approve_refund(refund.id, actor(other_clerk.id))


def test_a_rejected_refund_needs_a_reason_and_changes_no_balance(app, paid_invoice, clerk, admin):
    invoice_id, payment_id = paid_invoice
    with app.app_context():
        refund = payments.request_refund(payment_id, actor(clerk.id), "10.00", "Goodwill")
        db.session.commit()
        with pytest.raises(BillingError, match="why"):
            payments.reject_refund(refund.id, actor(admin.id), "")
        payments.reject_refund(refund.id, actor(admin.id), "Policy: no goodwill refunds")
        db.session.commit()
        with pytest.raises(BillingError, match="approved refund"):
            payments.record_refund(refund.id, actor(clerk.id))
        assert db.session.get(Invoice, invoice_id).balance == 0


def test_refunds_on_a_payment_never_exceed_it(app, paid_invoice, clerk, admin):
    _, payment_id = paid_invoice
    with app.app_context():
        payments.request_refund(payment_id, actor(clerk.id), "70.00", "Part one")
        db.session.commit()
        with pytest.raises(BillingError, match="At most USD 30.00") as error:
            payments.request_refund(payment_id, actor(clerk.id), "30.01", "Part two")
        assert error.value.field == "amount"
        db.session.rollback()
        payments.request_refund(payment_id, actor(clerk.id), "30.00", "Part two")
        db.session.commit()


def test_a_refund_is_decided_once(app, paid_invoice, clerk, admin, create_user):
    _, payment_id = paid_invoice
    second_admin = create_user(Role.ADMIN)
    with app.app_context():
        refund = payments.request_refund(payment_id, actor(clerk.id), "5.00", "Goodwill")
        payments.approve_refund(refund.id, actor(admin.id))
        db.session.commit()
        with pytest.raises(BillingError, match="already decided"):
            payments.reject_refund(refund.id, actor(second_admin.id), "changed my mind")


def test_a_fully_refunded_invoice_can_be_voided(app, paid_invoice, clerk, admin):
    invoice_id, payment_id = paid_invoice
    with app.app_context():
        refund = payments.request_refund(payment_id, actor(clerk.id), "100.00", "Billed the wrong patient")
        payments.approve_refund(refund.id, actor(admin.id))
        payments.record_refund(refund.id, actor(clerk.id))
        db.session.commit()
        assert db.session.get(Invoice, invoice_id).status is InvoiceStatus.ISSUED
        invoice = invoices.void_invoice(invoice_id, actor(clerk.id), "Billed the wrong patient")
        db.session.commit()
        assert invoice.status is InvoiceStatus.VOID
