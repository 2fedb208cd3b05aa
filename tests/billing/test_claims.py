"""Insurance claims: submitted → approved / partially approved / denied → paid, or withdrawn before the
insurer decides; the insurer's payment reduces the balance and the patient's share follows the decision."""
from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError

from app.billing import claims, invoices, payments, queries
from app.billing.common import BillingError
from app.billing.models import Claim, ClaimStatus, Invoice, InvoiceHistory, InvoiceStatus
from app.events.models import OutboxEvent
from app.extensions import db
from tests.billing.conftest import actor


def claim(invoice_id: int, user_id: int, amount: str) -> Claim:
    result = claims.submit_claim(invoice_id, actor(user_id), payer="Acme Health", policy_number="POL-1",
                                 claimed_amount=amount)
    db.session.commit()
    return result


def test_approved_claim_paid_by_the_insurer_reduces_the_balance(app, make_invoice, clerk):
    invoice_id = make_invoice([("Surgery", 1, "200.00")])
    with app.app_context():
        filed = claim(invoice_id, clerk.id, "150.00")
        invoice = db.session.get(Invoice, invoice_id)
        share = queries.share(invoice)
        assert (share.insurance, share.patient_share, share.patient_due, share.pending_claims) == (
            Decimal("150.00"), Decimal("50.00"), Decimal("50.00"), True)
        claims.decide_claim(filed.id, actor(clerk.id), status="approved", payer_reference="ACME-9")
        claims.mark_claim_paid(filed.id, actor(clerk.id))
        db.session.commit()
        db.session.refresh(invoice)
        assert (invoice.insurer_paid, invoice.balance, invoice.status) == (
            Decimal("150.00"), Decimal("50.00"), InvoiceStatus.PARTIALLY_PAID)
        assert db.session.get(Claim, filed.id).status is ClaimStatus.PAID
        payments.record_payment(invoice_id, actor(clerk.id), amount="50.00", method="cash", idempotency_key="x" * 20)
        db.session.commit()
        db.session.refresh(invoice)
        assert (invoice.balance, invoice.status) == (0, InvoiceStatus.PAID)


def test_partial_approval_needs_a_lower_amount_and_a_reason_code(app, make_invoice, clerk):
    invoice_id = make_invoice([("Surgery", 1, "200.00")])
    with app.app_context():
        filed = claim(invoice_id, clerk.id, "200.00")
        with pytest.raises(BillingError, match="reason code"):
            claims.decide_claim(filed.id, actor(clerk.id), status="partially_approved", approved_amount="120.00")
        with pytest.raises(BillingError, match="less than the amount claimed"):
            claims.decide_claim(filed.id, actor(clerk.id), status="partially_approved", approved_amount="200.00",
                                reason_code="CO-45")
        claims.decide_claim(filed.id, actor(clerk.id), status="partially_approved", approved_amount="120.00",
                            reason_code="CO-45")
        db.session.commit()
        share = queries.share(db.session.get(Invoice, invoice_id))
        assert (share.insurance, share.patient_share, share.patient_due) == (
            Decimal("120.00"), Decimal("80.00"), Decimal("80.00"))
        with pytest.raises(BillingError, match="approved USD 120.00"):
            claims.mark_claim_paid(filed.id, actor(clerk.id), amount="150.00")


def test_a_denied_claim_leaves_the_whole_bill_to_the_patient_and_cannot_be_paid(app, make_invoice, clerk):
    invoice_id = make_invoice([("Surgery", 1, "200.00")])
    with app.app_context():
        filed = claim(invoice_id, clerk.id, "200.00")
        with pytest.raises(BillingError, match="reason code"):
            claims.decide_claim(filed.id, actor(clerk.id), status="denied")
        claims.decide_claim(filed.id, actor(clerk.id), status="denied", reason_code="CO-97")
        db.session.commit()
        share = queries.share(db.session.get(Invoice, invoice_id))
        assert (share.insurance, share.patient_due) == (0, Decimal("200.00"))
        with pytest.raises(BillingError, match="Only an approved claim"):
            claims.mark_claim_paid(filed.id, actor(clerk.id))


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
            claims.mark_claim_paid(filed.id, actor(clerk.id))
        claims.decide_claim(filed.id, actor(clerk.id), status="approved")
        db.session.commit()
        with pytest.raises(BillingError, match="already decided"):
            claims.decide_claim(filed.id, actor(clerk.id), status="denied", reason_code="X")


def test_the_insurer_cannot_pay_more_than_the_patient_left_owing(app, make_invoice, clerk):
    invoice_id = make_invoice([("Surgery", 1, "200.00")])
    with app.app_context():
        filed = claim(invoice_id, clerk.id, "150.00")
        claims.decide_claim(filed.id, actor(clerk.id), status="approved")
        payments.record_payment(invoice_id, actor(clerk.id), amount="100.00", method="cash", idempotency_key="y" * 20)
        db.session.commit()
        with pytest.raises(BillingError, match="more than the balance"):
            claims.mark_claim_paid(filed.id, actor(clerk.id))
        db.session.rollback()
        claims.mark_claim_paid(filed.id, actor(clerk.id), amount="100.00")
        db.session.commit()
        invoice = db.session.get(Invoice, invoice_id)
        assert (invoice.balance, invoice.status) == (0, InvoiceStatus.PAID)


def test_an_invoice_with_an_open_claim_cannot_be_voided(app, make_invoice, clerk):
    invoice_id = make_invoice([("Surgery", 1, "200.00")])
    with app.app_context():
        claim(invoice_id, clerk.id, "100.00")
        with pytest.raises(BillingError, match="claim is still open"):
            invoices.void_invoice(invoice_id, actor(clerk.id), "Mistake")


# --- withdrawal ------------------------------------------------------------------------------------------

def test_a_withdrawn_claim_keeps_who_when_why_and_leaves_the_bill_to_the_patient(app, make_invoice, clerk):
    invoice_id = make_invoice([("Surgery", 1, "200.00")])
    with app.app_context():
        filed = claim(invoice_id, clerk.id, "150.00")
        claims.withdraw_claim(filed.id, actor(clerk.id), "  Filed under the wrong policy  ")
        db.session.commit()
        withdrawn = db.session.get(Claim, filed.id)
        assert (withdrawn.status, withdrawn.withdrawn_by_id, withdrawn.withdrawal_reason) == (
            ClaimStatus.WITHDRAWN, clerk.id, "Filed under the wrong policy")
        assert withdrawn.withdrawn_at is not None and withdrawn.approved_amount is None
        invoice = db.session.get(Invoice, invoice_id)
        share = queries.share(invoice)
        assert (share.insurance, share.patient_share, share.patient_due, share.pending_claims) == (
            0, Decimal("200.00"), Decimal("200.00"), False)
        assert (invoice.balance, invoice.status, queries.claimable(invoice)) == (
            Decimal("200.00"), InvoiceStatus.ISSUED, Decimal("200.00"))
        history = invoice.history[-1]
        assert (history.action, history.amount, history.note, history.actor_id) == (
            "claim_withdrawn", Decimal("150.00"), "Acme Health: Filed under the wrong policy", clerk.id)
        event = db.session.scalars(sa.select(OutboxEvent).order_by(OutboxEvent.seq.desc())).first()
        assert event.type == "claim.withdrawn"
        assert event.envelope["data"]["claim_id"] == filed.id
        assert event.envelope["data"]["reason"] == "Filed under the wrong policy"
        assert event.envelope["actor"]["id"] == clerk.id


def test_after_a_withdrawal_the_invoice_can_be_claimed_again_or_voided(app, make_invoice, clerk):
    invoice_id = make_invoice([("Surgery", 1, "200.00")])
    with app.app_context():
        wrong = claim(invoice_id, clerk.id, "200.00")
        with pytest.raises(BillingError, match="withdraw it if it was filed in error"):
            invoices.void_invoice(invoice_id, actor(clerk.id), "Billed twice")
        db.session.rollback()
        claims.withdraw_claim(wrong.id, actor(clerk.id), "Wrong insurer")
        db.session.commit()
        assert queries.worklist().open_claims == []
        refiled = claim(invoice_id, clerk.id, "200.00")
        claims.withdraw_claim(refiled.id, actor(clerk.id), "The visit was billed twice")
        invoices.void_invoice(invoice_id, actor(clerk.id), "Billed twice")
        db.session.commit()
        assert db.session.get(Invoice, invoice_id).status is InvoiceStatus.VOID


@pytest.mark.parametrize("decision", ["approved", "denied", "paid", "withdrawn"])
def test_only_a_claim_awaiting_the_insurer_can_be_withdrawn(app, make_invoice, clerk, decision):
    invoice_id = make_invoice([("Surgery", 1, "200.00")])
    with app.app_context():
        filed = claim(invoice_id, clerk.id, "100.00")
        if decision == "withdrawn":
            claims.withdraw_claim(filed.id, actor(clerk.id), "Filed in error")
        else:
            claims.decide_claim(filed.id, actor(clerk.id), status="denied" if decision == "denied" else "approved",
                                reason_code="CO-50")
        if decision == "paid":
            claims.mark_claim_paid(filed.id, actor(clerk.id))
        db.session.commit()
        before = db.session.scalar(sa.select(sa.func.count(InvoiceHistory.id)))
        with pytest.raises(BillingError, match=f"awaiting the insurer's decision can be withdrawn; this one is"
                                               f" {decision}") as error:
            claims.withdraw_claim(filed.id, actor(clerk.id), "Changed our mind")
        assert error.value.code == "not_submitted"
        db.session.rollback()
        assert db.session.get(Claim, filed.id).status is ClaimStatus(decision)
        assert db.session.scalar(sa.select(sa.func.count(InvoiceHistory.id))) == before


def test_withdrawal_needs_a_reason_and_a_withdrawn_claim_cannot_be_decided(app, make_invoice, clerk):
    invoice_id = make_invoice([("Surgery", 1, "200.00")])
    with app.app_context():
        filed = claim(invoice_id, clerk.id, "100.00")
        with pytest.raises(BillingError, match="Give the reason") as error:
            claims.withdraw_claim(filed.id, actor(clerk.id), "   ")
        assert error.value.field == "reason"
        db.session.rollback()
        claims.withdraw_claim(filed.id, actor(clerk.id), "Filed in error")
        db.session.commit()
        with pytest.raises(BillingError, match="This claim was withdrawn."):
            claims.decide_claim(filed.id, actor(clerk.id), status="approved")
        with pytest.raises(BillingError, match="Only an approved claim"):
            claims.mark_claim_paid(filed.id, actor(clerk.id))


def test_the_database_refuses_a_withdrawn_claim_without_its_reason_or_with_a_decision(app, make_invoice, clerk):
    invoice_id = make_invoice([("Surgery", 1, "200.00")])
    with app.app_context():
        filed = claim(invoice_id, clerk.id, "100.00")
        for values in ({"withdrawn_at": sa.func.now(6)},
                       {"withdrawn_at": sa.func.now(6), "withdrawal_reason": "x", "approved_amount": 0}):
            with pytest.raises((IntegrityError, OperationalError), match="withdrawn_recorded_undecided"):
                db.session.execute(sa.update(Claim).where(Claim.id == filed.id).values(status="withdrawn", **values))
            db.session.rollback()


def test_undoing_migration_0011_keeps_a_withdrawn_claim_as_a_denied_one(app, make_invoice, clerk):
    from flask_migrate import downgrade, upgrade

    invoice_id = make_invoice([("Surgery", 1, "200.00")])
    with app.app_context():
        claim_id = claim(invoice_id, clerk.id, "150.00").id
        claims.withdraw_claim(claim_id, actor(clerk.id), "Filed in error")
        db.session.commit()
        db.session.remove()
        downgrade(revision="0010")
        try:
            with db.engine.connect() as conn:
                row = conn.exec_driver_sql("SELECT status, reason_code, approved_amount, paid_amount FROM claims"
                                           " WHERE id = %s", (claim_id,)).one()
        finally:
            upgrade()
        assert tuple(row) == ("denied", "WITHDRAWN", Decimal("0.00"), Decimal("0.00"))
