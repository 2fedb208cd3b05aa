"""Billing events through the real worker: every change is audited, and issuing, a payment and a claim
decision email the patient (a withdrawn claim does not)."""
from __future__ import annotations

import sqlalchemy as sa

from app.audit.models import AuditEntry
from app.billing import claims, payments, queries
from app.extensions import db
from app.notifications.models import Notification
from devtools.mailbox import wait_for_messages
from tests.billing.conftest import actor
from tests.services import wait_until


def _body(message) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content()


def test_issue_payment_and_claim_decision_email_the_patient_and_everything_is_audited(
        app, worker, mailbox, default_templates, make_invoice, clerk, patient, admin):
    invoice_id = make_invoice([("Surgery", 1, "200.00")])
    with app.app_context():
        by = actor(clerk.id)
        payment = payments.record_payment(invoice_id, by, amount="50.00", method="card",
                                          idempotency_key="notify-test-key")
        wrong = claims.submit_claim(invoice_id, by, payer="Acme Health", policy_number="P-8",
                                    claimed_amount="150.00")
        claims.withdraw_claim(wrong.id, by, "Wrong policy number")
        claim = claims.submit_claim(invoice_id, by, payer="Acme Health", policy_number="P-9",
                                    claimed_amount="150.00")
        db.session.commit()
        claims.decide_claim(claim.id, by, status="partially_approved", approved_amount="100.00",
                            reason_code="CO-45")
        refund = payments.request_refund(payment.id, by, "5.00", "Rounding")
        payments.approve_refund(refund.id, actor(admin.id))
        payments.record_refund(refund.id, by)
        db.session.commit()
        number = db.session.scalars(queries.patient_bills_query(patient.id)).first().number

    messages = wait_for_messages(mailbox, 3, timeout=30,
                                 predicate=lambda m: m["To"] == patient.email and number in m["Subject"])
    by_subject = {m["Subject"]: m for m in messages}
    issued = by_subject[f"Your invoice {number} from HMS Clinic"]
    assert "for USD 200.00 is ready" in _body(issued) and f"/patient/bills/{invoice_id}" in _body(issued)
    paid = by_subject[f"Payment received for {number}"]
    assert "We received USD 50.00 (Card)" in _body(paid) and "The balance is now USD 150.00." in _body(paid)
    decided = by_subject[f"Acme Health decided the claim for {number}"]
    assert "partially approved the claim of USD 150.00" in _body(decided)
    assert "USD 100.00 approved" in _body(decided) and "Reason code: CO-45." in _body(decided)
    assert "Your share to pay now: USD 50.00." in _body(decided)  # 200 − 100 approved − 50 paid

    expected = ["invoice.created", "invoice.line_added", "invoice.issued", "payment.received", "claim.submitted",
                "claim.withdrawn", "claim.submitted", "claim.decided", "refund.requested", "refund.approved",
                "refund.recorded"]

    def audited():
        with app.app_context():
            return list(db.session.scalars(sa.select(AuditEntry.action).where(
                AuditEntry.entity_type == "invoice", AuditEntry.entity_id == str(invoice_id),
                AuditEntry.patient_id == patient.id).order_by(AuditEntry.seq)))

    wait_until(lambda: len(audited()) >= len(expected), timeout=30, message="the billing audit rows")
    assert sorted(audited()) == sorted(expected)
    with app.app_context():
        rows = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "refund.approved",
                                                              AuditEntry.patient_id == patient.id)).all()
        assert [(r.actor_id, r.patient_id) for r in rows] == [(admin.id, patient.id)]
        # The decision came after the withdrawal on the same partition and was mailed: the withdrawal made nothing.
        assert db.session.scalar(sa.select(sa.func.count(Notification.id))
                                 .where(Notification.event_type == "claim.withdrawn")) == 0
