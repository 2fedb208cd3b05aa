"""Payments and refunds: money from the patient, and money given back to them.

Public API (functions add and flush; the request's unit of work commits, see `app.web.unit_of_work`):

  payments          new_idempotency_key(),
                    record_payment(invoice_id, actor, amount=, method=, paid_on=, idempotency_key=, reference=)
  refunds           request_refund(payment_id, actor, amount, reason), approve_refund(refund_id, actor, note),
                    reject_refund(refund_id, actor, note), record_refund(refund_id, actor, reference)

Rules (with those of `app.billing.common`: the invoice lock, the balance and the status that follows it):
  - A payment is at most the balance, on an issued or partially paid invoice, never dated in the future.
  - A payment's idempotency key is unique: the same key again returns the first payment (looked up after
    taking the invoice lock); a key used on another invoice is refused.
  - A refund is requested by one person and decided by another administrator (also a CHECK); only once
    recorded does it raise the balance. Refunds on a payment never exceed that payment (`queries.refundable`).
`payment.received` also emails the patient.
"""
from __future__ import annotations

import uuid
from datetime import date

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.accounts.models import Role, User
from app.billing.common import (BillingError, actor_id, add_history, emit_change, lock_invoice, money_text,
                                parse_amount, require_open, required_text, settle)
from app.billing.models import Invoice, InvoiceStatus, Payment, PaymentMethod, Refund, RefundStatus
from app.billing.queries import refundable
from app.extensions import db
from app.timeutil import clinic_today, utcnow


def new_idempotency_key() -> str:
    return str(uuid.uuid4())


def _payment_with_key(key: str) -> Payment | None:
    return db.session.scalar(sa.select(Payment).where(Payment.idempotency_key == key))


def record_payment(invoice_id: int, actor: User | None, *, amount, method: PaymentMethod | str,
                   paid_on: date | None = None, idempotency_key: str, reference: str | None = None) -> Payment:
    """Record money received, at most the balance. The same idempotency key returns the first payment."""
    key = (idempotency_key or "").strip()
    if not 8 <= len(key) <= 64:
        raise BillingError("This form has expired. Reload the page and try again.", "no_key")
    invoice = lock_invoice(invoice_id)
    existing = _payment_with_key(key)  # after the lock: a concurrent twin has committed or not started
    if existing is not None:
        if existing.invoice_id != invoice.id:
            raise BillingError("This form was already used for another invoice. Reload the page.", "key_reused")
        return existing
    amount = parse_amount(amount)
    try:
        method = PaymentMethod(method)
    except ValueError:
        raise BillingError("Choose how the patient paid.", "invalid_method", "method") from None
    require_open(invoice, "take a payment")
    if amount > invoice.balance:
        raise BillingError(f"The amount is more than the balance ({money_text(invoice.balance)}).", "over_balance",
                           "amount")
    paid_on = paid_on or clinic_today()
    if paid_on > clinic_today():
        raise BillingError("The payment date cannot be in the future.", "future_date", "paid_on")
    payment = Payment(invoice_id=invoice.id, amount=amount, method=method, paid_on=paid_on, idempotency_key=key,
                      reference=(reference or "").strip()[:100] or None, recorded_by_id=actor_id(actor))
    try:
        with db.session.begin_nested():
            db.session.add(payment)
            db.session.flush()
    except IntegrityError:  # the key was used on another invoice in the meantime
        existing = _payment_with_key(key)
        if existing is not None and existing.invoice_id == invoice.id:
            return existing
        raise BillingError("This form was already used. Reload the page.", "key_reused") from None
    invoice.patient_paid += amount
    note = method.label + (f", ref. {payment.reference}" if payment.reference else "")
    settle(invoice, actor, "payment", amount=amount, note=note)
    emit_change("payment.received", invoice, actor, payment_id=payment.id, amount=str(amount),
                amount_text=money_text(amount), method=method.value, method_text=method.label,
                paid_on=paid_on.isoformat())
    db.session.flush()
    return payment


# --- refunds ---------------------------------------------------------------------------------------

def _lock_refund(refund_id: int) -> tuple[Refund, Invoice]:
    invoice_id = db.session.scalar(sa.select(Refund.invoice_id).where(Refund.id == refund_id))
    if invoice_id is None:
        raise BillingError("No such refund.", "not_found")
    invoice = lock_invoice(invoice_id)
    refund = db.session.scalar(sa.select(Refund).where(Refund.id == refund_id)
                               .execution_options(populate_existing=True))
    return refund, invoice


def request_refund(payment_id: int, actor: User, amount, reason: str | None) -> Refund:
    invoice_id = db.session.scalar(sa.select(Payment.invoice_id).where(Payment.id == payment_id))
    if invoice_id is None:
        raise BillingError("No such payment.", "not_found")
    invoice = lock_invoice(invoice_id)
    if invoice.status is InvoiceStatus.VOID:
        raise BillingError("The invoice is void.", "not_open")
    payment = db.session.scalar(sa.select(Payment).where(Payment.id == payment_id)
                                .execution_options(populate_existing=True))
    db.session.refresh(payment, ["refunds"])
    amount = parse_amount(amount)
    reason = required_text(reason, "reason", "Give the reason for the refund.", 500)
    left = refundable(payment)
    if amount > left:
        raise BillingError(f"At most {money_text(left)} of this payment can be refunded.", "over_payment", "amount")
    refund = Refund(invoice_id=invoice.id, payment_id=payment.id, amount=amount, reason=reason,
                    requested_by_id=actor.id, status=RefundStatus.REQUESTED)
    db.session.add(refund)
    db.session.flush()
    add_history(invoice, "refund_requested", actor, from_status=invoice.status, amount=amount, note=reason)
    emit_change("refund.requested", invoice, actor, refund_id=refund.id, payment_id=payment.id, amount=str(amount),
                reason=reason)
    db.session.flush()
    return refund


def _decide_refund(refund_id: int, actor: User, approve: bool, note: str | None) -> Refund:
    refund, invoice = _lock_refund(refund_id)
    if actor.role is not Role.ADMIN:
        raise BillingError("Only an administrator can decide a refund.", "not_admin")
    if refund.requested_by_id == actor.id:
        raise BillingError("You requested this refund: another administrator must decide it.", "same_person")
    if refund.status is not RefundStatus.REQUESTED:
        raise BillingError("This refund was already decided.", "already_decided")
    note = (note or "").strip()[:500] or None
    if not approve and not note:
        raise BillingError("Say why the refund is rejected.", "required", "note")
    refund.status = RefundStatus.APPROVED if approve else RefundStatus.REJECTED
    refund.decided_by_id, refund.decided_at, refund.decision_note = actor.id, utcnow(), note
    action = "refund_approved" if approve else "refund_rejected"
    add_history(invoice, action, actor, from_status=invoice.status, amount=refund.amount, note=note)
    emit_change(action.replace("_", ".", 1), invoice, actor, refund_id=refund.id, amount=str(refund.amount), note=note)
    db.session.flush()
    return refund


def approve_refund(refund_id: int, actor: User, note: str | None = None) -> Refund:
    return _decide_refund(refund_id, actor, True, note)


def reject_refund(refund_id: int, actor: User, note: str | None) -> Refund:
    return _decide_refund(refund_id, actor, False, note)


def record_refund(refund_id: int, actor: User, reference: str | None = None) -> Refund:
    """The approved money went back to the patient: the balance rises by it."""
    refund, invoice = _lock_refund(refund_id)
    if refund.status is not RefundStatus.APPROVED:
        raise BillingError("Only an approved refund can be recorded.", "not_approved")
    if refund.amount > invoice.patient_paid:  # guarded by refundable(); kept for the invariant
        raise BillingError("The refund is more than the patient has paid.", "over_payment")
    refund.status = RefundStatus.RECORDED
    refund.recorded_by_id, refund.recorded_at = actor.id, utcnow()
    refund.recorded_on = clinic_today()
    refund.reference = (reference or "").strip()[:100] or None
    invoice.patient_paid -= refund.amount
    settle(invoice, actor, "refund_recorded", amount=refund.amount, note=refund.reference)
    emit_change("refund.recorded", invoice, actor, refund_id=refund.id, amount=str(refund.amount))
    db.session.flush()
    return refund


