"""Insurance claims: filed on an issued invoice, answered by the insurer, paid, or withdrawn before an answer.

Public API (functions add and flush; the request's unit of work commits, see `app.web.unit_of_work`):

  claims            submit_claim(invoice_id, actor, payer=, policy_number=, claimed_amount=),
                    decide_claim(claim_id, actor, status=, approved_amount=, payer_reference=, reason_code=),
                    mark_claim_paid(claim_id, actor, amount=None, paid_on=None, payer_reference=None),
                    withdraw_claim(claim_id, actor, reason)

Rules (with those of `app.billing.common`: the invoice lock, the balance and the status that follows it):
  - A claim is for at most the balance less what open claims are expected to bring (`queries.claimable`).
  - submitted → approved / partially_approved (less, with a reason code) / denied (with a reason code);
    approved ones → paid, at most the approved amount and the balance, which reduces the balance by what the
    insurer paid.
  - A submitted claim (no answer from the insurer yet) can be withdrawn, with a reason: it then expects nothing
    from the insurer and is no longer open, like a denied one. A decided claim stays.
`claim.decided` also emails the patient (with the share now due). `claim.withdrawn` does not: the patient was
not told of the filing either, and their bill shows the new share.
"""
from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from app.accounts.models import User
from app.billing.common import (BillingError, actor_id, add_history, emit_change, lock_invoice, money_text,
                                parse_amount, require_open, required_text, settle)
from app.billing.models import ZERO, Claim, ClaimStatus, Invoice
from app.billing.queries import claimable, share
from app.extensions import db
from app.timeutil import clinic_today, utcnow


def _lock_claim(claim_id: int) -> tuple[Claim, Invoice]:
    invoice_id = db.session.scalar(sa.select(Claim.invoice_id).where(Claim.id == claim_id))
    if invoice_id is None:
        raise BillingError("No such claim.", "not_found")
    invoice = lock_invoice(invoice_id)
    claim = db.session.scalar(sa.select(Claim).where(Claim.id == claim_id).execution_options(populate_existing=True))
    return claim, invoice


def submit_claim(invoice_id: int, actor: User | None, *, payer: str, policy_number: str, claimed_amount) -> Claim:
    invoice = lock_invoice(invoice_id)
    require_open(invoice, "file a claim")
    payer = required_text(payer, "payer", "Name the insurer.", 120)
    policy_number = required_text(policy_number, "policy_number", "Enter the policy number.", 64)
    amount = parse_amount(claimed_amount, "claimed_amount")
    room = claimable(invoice)
    if amount > room:
        raise BillingError(f"At most {money_text(room)} can be claimed (the balance less open claims).",
                           "over_balance", "claimed_amount")
    claim = Claim(invoice_id=invoice.id, payer=payer, policy_number=policy_number, claimed_amount=amount,
                  paid_amount=ZERO, status=ClaimStatus.SUBMITTED, submitted_by_id=actor_id(actor))
    db.session.add(claim)
    db.session.flush()
    add_history(invoice, "claim_submitted", actor, from_status=invoice.status, amount=amount, note=payer)
    emit_change("claim.submitted", invoice, actor, claim_id=claim.id, payer=payer, amount=str(amount))
    db.session.flush()
    return claim


def decide_claim(claim_id: int, actor: User | None, *, status: ClaimStatus | str, approved_amount=None,
                 payer_reference: str | None = None, reason_code: str | None = None) -> Claim:
    """The insurer's answer: approved (in full), partially approved (an amount below the claim, with a
    reason code) or denied (with a reason code)."""
    claim, invoice = _lock_claim(claim_id)
    if claim.status is ClaimStatus.WITHDRAWN:
        raise BillingError("This claim was withdrawn.", "withdrawn")
    if claim.status is not ClaimStatus.SUBMITTED:
        raise BillingError("This claim was already decided.", "already_decided")
    try:
        status = ClaimStatus(status)
    except ValueError:
        raise BillingError("Choose the insurer's decision.", "invalid_status", "status") from None
    reason_code = (reason_code or "").strip()[:40] or None
    if status is ClaimStatus.APPROVED:
        approved = claim.claimed_amount
    elif status is ClaimStatus.PARTIALLY_APPROVED:
        approved = parse_amount(approved_amount, "approved_amount")
        if approved >= claim.claimed_amount:
            raise BillingError("A partial approval is less than the amount claimed.", "invalid_amount",
                               "approved_amount")
        if not reason_code:
            raise BillingError("Enter the insurer's reason code.", "required", "reason_code")
    elif status is ClaimStatus.DENIED:
        approved = ZERO
        if not reason_code:
            raise BillingError("Enter the insurer's reason code.", "required", "reason_code")
    else:
        raise BillingError("Choose approved, partially approved or denied.", "invalid_status", "status")
    claim.status, claim.approved_amount, claim.reason_code = status, approved, reason_code
    claim.payer_reference = (payer_reference or "").strip()[:100] or claim.payer_reference
    claim.decided_at = utcnow()
    add_history(invoice, "claim_decided", actor, from_status=invoice.status, amount=approved,
                note=f"{claim.payer}: {status.label}" + (f" ({reason_code})" if reason_code else ""))
    share_now = share(invoice)
    emit_change("claim.decided", invoice, actor, claim_id=claim.id, payer=claim.payer, decision=status.value,
                decision_text=status.label.lower(), claimed_text=money_text(claim.claimed_amount),
                approved_text=money_text(approved), reason_code=reason_code or "",
                patient_due_text=money_text(share_now.patient_due))
    db.session.flush()
    return claim


def mark_claim_paid(claim_id: int, actor: User | None, *, amount=None, paid_on: date | None = None,
                    payer_reference: str | None = None) -> Claim:
    """The insurer paid: at most the approved amount and the balance; the balance falls by it."""
    claim, invoice = _lock_claim(claim_id)
    if claim.status not in (ClaimStatus.APPROVED, ClaimStatus.PARTIALLY_APPROVED):
        raise BillingError("Only an approved claim can be marked paid.", "not_approved")
    require_open(invoice, "record the insurer's payment")
    paid = parse_amount(amount if amount not in (None, "") else claim.approved_amount, "amount")
    if paid > claim.approved_amount:
        raise BillingError(f"The insurer approved {money_text(claim.approved_amount)}.", "over_approved", "amount")
    if paid > invoice.balance:
        raise BillingError(f"The amount is more than the balance ({money_text(invoice.balance)}); refund the patient's"
                           " overpayment first or record less.", "over_balance", "amount")
    paid_on = paid_on or clinic_today()
    if paid_on > clinic_today():
        raise BillingError("The payment date cannot be in the future.", "future_date", "paid_on")
    claim.status, claim.paid_amount, claim.paid_at, claim.paid_on = ClaimStatus.PAID, paid, utcnow(), paid_on
    claim.payer_reference = (payer_reference or "").strip()[:100] or claim.payer_reference
    invoice.insurer_paid += paid
    settle(invoice, actor, "claim_paid", amount=paid, note=claim.payer)
    emit_change("claim.paid", invoice, actor, claim_id=claim.id, payer=claim.payer, amount=str(paid))
    db.session.flush()
    return claim


def withdraw_claim(claim_id: int, actor: User | None, reason: str | None) -> Claim:
    """Take back a claim the insurer has not answered (filed in error, wrong policy or insurer): it stops
    counting towards the insurer's share and as an open claim, so the invoice can be voided or claimed again.
    A decided claim stays: the insurer's answer is on record."""
    claim, invoice = _lock_claim(claim_id)
    if claim.status is not ClaimStatus.SUBMITTED:
        raise BillingError(f"Only a claim awaiting the insurer's decision can be withdrawn; this one is"
                           f" {claim.status.label.lower()}.", "not_submitted")
    reason = required_text(reason, "reason", "Give the reason for withdrawing the claim.", 500)
    # Assigned together, after reading the actor (which may load it and autoflush): no flush sees a withdrawn
    # claim without its time and reason, which the CHECK would refuse.
    by_id, now = actor_id(actor), utcnow()
    claim.status, claim.withdrawn_by_id, claim.withdrawn_at, claim.withdrawal_reason = (
        ClaimStatus.WITHDRAWN, by_id, now, reason)
    add_history(invoice, "claim_withdrawn", actor, from_status=invoice.status, amount=claim.claimed_amount,
                note=f"{claim.payer}: {reason}")
    emit_change("claim.withdrawn", invoice, actor, claim_id=claim.id, payer=claim.payer,
                amount=str(claim.claimed_amount), reason=reason)
    db.session.flush()
    return claim


