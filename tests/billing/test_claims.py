"""Insurance claims: submitted → approved / partially approved / denied → paid; the insurer's payment
reduces the balance and the patient's share follows the decision."""
from __future__ import annotations

from decimal import Decimal

import pytest

from app.billing import services
from app.billing.models import Claim, ClaimStatus, Invoice, InvoiceStatus
from app.billing.services import BillingError
from app.extensions import db
from tests.billing.conftest import actor


def claim(invoice_id: int, user_id: int, amount: str) -> Claim:
    result = services.submit_claim(invoice_id, actor(user_id), payer="Acme Health", policy_number="POL-1",
                                   claimed_amount=amount)
    db.session.commit()
    return result


def test_approved_claim_paid_by_the_insurer_reduces_the_balance(app, make_invoice, clerk):
    invoice_id = make_invoice([("Surgery", 1, "200.00")])
    with app.app_context():
        filed = claim(invoice_id, clerk.id, "150.00")
        invoice = db.session.get(Invoice, invoice_id)
        share = services.share(invoice)
        assert (share.insurance, share.patient_share, share.patient_due, share.pending_claims) == (
            Decimal("150.00"), Decimal("50.00"), Decimal("50.00"), True)
        services.decide_claim(filed.id, actor(clerk.id), status="approved", payer_reference="ACME-9")
        services.mark_claim_paid(filed.id, actor(clerk.id))
        db.session.commit()
        db.session.refresh(invoice)
        assert (invoice.insurer_paid, invoice.balance, invoice.status) == (
            Decimal("150.00"), Decimal("50.00"), InvoiceStatus.PARTIALLY_PAID)
        assert db.session.get(Claim, filed.id).status is ClaimStatus.PAID
        services.record_payment(invoice_id, actor(clerk.id), amount="50.00", method="cash", idempotency_key="x" * 20)
        db.session.commit()
        db.session.refresh(invoice)
        assert (invoice.balance, invoice.status) == (0, InvoiceStatus.PAID)


def test_partial_approval_needs_a_lower_amount_and_a_reason_code(app, make_invoice, clerk):
    invoice_id = make_invoice([("Surgery", 1, "200.00")])
    with app.app_context():
        filed = claim(invoice_id, clerk.id, "200.00")
        with pytest.raises(BillingError, match="reason code"):
            services.decide_claim(filed.id, actor(clerk.id), status="partially_approved", approved_amount="120.00")
        with pytest.raises(BillingError, match="less than the amount claimed"):
            services.decide_claim(filed.id, actor(clerk.id), status="partially_approved", approved_amount="200.00",
                                  reason_code="CO-45")
        services.decide_claim(filed.id, actor(clerk.id), status="partially_approved", approved_amount="120.00",
                              reason_code="CO-45")
        db.session.commit()
        share = services.share(db.session.get(Invoice, invoice_id))
        assert (share.insurance, share.patient_share, share.patient_due) == (
            Decimal("120.00"), Decimal("80.00"), Decimal("80.00"))
        with pytest.raises(BillingError, match="approved USD 120.00"):
            services.mark_claim_paid(filed.id, actor(clerk.id), amount="150.00")


def test_a_denied_claim_leaves_the_whole_bill_to_the_patient_and_cannot_be_paid(app, make_invoice, clerk):
    invoice_id = make_invoice([("Surgery", 1, "200.00")])
    with app.app_context():
        filed = claim(invoice_id, clerk.id, "200.00")
        with pytest.raises(BillingError, match="reason code"):
            services.decide_claim(filed.id, actor(clerk.id), status="denied")
        services.decide_claim(filed.id, actor(clerk.id), status="denied", reason_code="CO-97")
        db.session.commit()
        share = services.share(db.session.get(Invoice, invoice_id))
        assert (share.insurance, share.patient_due) == (0, Decimal("200.00"))
        with pytest.raises(BillingError, match="Only an approved claim"):
            services.mark_claim_paid(filed.id, actor(clerk.id))


def test_claims_cannot_exceed_the_balance_less_open_claims(app, make_invoice, clerk):
    invoice_id = make_invoice([("Surgery", 1, "200.00")])
    with app.app_context():
        claim(invoice_id, clerk.id, "150.00")
        with pytest.raises(BillingError, match="At most USD 50.00") as error:
            claim(invoice_id, clerk.id, "50.01")
        assert error.value.field == "claimed_amount"


def test_a_claim_is_decided_once_and_only_from_submitted(app, make_invoice, clerk):
    invoice_id = make_invoice([("Surgery", 1, "200.00")])
    with app.app_context():
        filed = claim(invoice_id, clerk.id, "100.00")
        with pytest.raises(BillingError, match="Only an approved claim"):
            services.mark_claim_paid(filed.id, actor(clerk.id))
        services.decide_claim(filed.id, actor(clerk.id), status="approved")
        db.session.commit()
        with pytest.raises(BillingError, match="already decided"):
            services.decide_claim(filed.id, actor(clerk.id), status="denied", reason_code="X")


def test_the_insurer_cannot_pay_more_than_the_patient_left_owing(app, make_invoice, clerk):
    invoice_id = make_invoice([("Surgery", 1, "200.00")])
    with app.app_context():
        filed = claim(invoice_id, clerk.id, "150.00")
        services.decide_claim(filed.id, actor(clerk.id), status="approved")
        services.record_payment(invoice_id, actor(clerk.id), amount="100.00", method="cash", idempotency_key="y" * 20)
        db.session.commit()
        with pytest.raises(BillingError, match="more than the balance"):
            services.mark_claim_paid(filed.id, actor(clerk.id))
        db.session.rollback()
        services.mark_claim_paid(filed.id, actor(clerk.id), amount="100.00")
        db.session.commit()
        invoice = db.session.get(Invoice, invoice_id)
        assert (invoice.balance, invoice.status) == (0, InvoiceStatus.PAID)


def test_an_invoice_with_an_open_claim_cannot_be_voided(app, make_invoice, clerk):
    invoice_id = make_invoice([("Surgery", 1, "200.00")])
    with app.app_context():
        claim(invoice_id, clerk.id, "100.00")
        with pytest.raises(BillingError, match="claim is still open"):
            services.void_invoice(invoice_id, actor(clerk.id), "Mistake")
