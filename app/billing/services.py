"""Billing: the rules for invoices, payments, refunds and insurance claims.

Public API (functions add and flush; the request's unit of work commits, see `app.web.unit_of_work`):

  money             round_money(value), tax_rate_from_config()
  price list        create_price_item(...), update_price_item(item, ...), active_price_items()
  invoices          create_invoice(patient_id, actor, appointment_id=None, ...), add_line(invoice_id, actor, ...),
                    remove_line(invoice_id, line_id, actor), set_discount(invoice_id, actor, amount, reason),
                    issue_invoice(invoice_id, actor, due_on=None), void_invoice(invoice_id, actor, reason)
  payments          record_payment(invoice_id, actor, amount=, method=, paid_on=, idempotency_key=, reference=)
  refunds           request_refund(payment_id, actor, amount, reason), approve_refund(refund_id, actor, note),
                    reject_refund(refund_id, actor, note), record_refund(refund_id, actor, reference)
  claims            submit_claim(invoice_id, actor, payer=, policy_number=, claimed_amount=),
                    decide_claim(claim_id, actor, status=, approved_amount=, payer_reference=, reason_code=),
                    mark_claim_paid(claim_id, actor, amount=None, paid_on=None, payer_reference=None),
                    withdraw_claim(claim_id, actor, reason)
  reading           invoice_query(...), share(invoice), refundable(payment), claimable(invoice), worklist(),
                    patient_bills_query(patient_id), patient_bill_filter(patient_id), shown_to_patient(invoice),
                    completed_appointments_to_bill(), consultation_fee(appointment)

Rules, checked here and (for the sums) by CHECK constraints in MySQL:
  - Money is Decimal, rounded once, half-up, to cents: each line (qty × unit price) and the tax on
    (subtotal − discount). total = Σ lines − discount + tax.
  - balance = total − patient_paid − insurer_paid ≥ 0, where patient_paid = Σ payments − Σ recorded refunds.
  - Draft → issued (number `INV-<year>-<nnnnnn>` from a counter row locked in the issuing transaction;
    drafts have no number) → partially_paid → paid, moved by the balance; void (with a reason) from a
    draft, or from an issued invoice with no net payment, no insurer payment and no open claim.
    An issued invoice is never edited: void it and bill again.
  - Every change to an invoice's money locks the invoice row first (SELECT … FOR UPDATE) and re-checks
    under the lock, so concurrent payments cannot together exceed the balance.
  - A payment's idempotency key is unique: the same key again returns the first payment.
  - A refund is requested by one person and decided by another (also a CHECK); only once recorded does
    it raise the balance. Refunds on a payment never exceed that payment.
  - Claims: submitted → approved / partially_approved / denied; approved ones → paid, which reduces the
    balance by what the insurer paid. A submitted claim (no answer from the insurer yet) can be withdrawn,
    with a reason: it then expects nothing from the insurer and is no longer open, like a denied one.
Every change appends an `InvoiceHistory` row and emits an event (audited by the worker);
`invoice.issued`, `payment.received` and `claim.decided` also email the patient. `claim.withdrawn` does not:
the patient was not told of the filing either, and their bill shows the new share.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app.accounts.models import Role, User
from app.appointments.models import Appointment, Status as AppointmentStatus
from app.billing.models import (OPEN_CLAIM_STATUSES, OPEN_STATUSES, ZERO, Claim, ClaimStatus, Invoice,
                                InvoiceCounter, InvoiceHistory, InvoiceLine, InvoiceStatus, Payment, PaymentMethod,
                                PriceItem, Refund, RefundStatus)
from app.clinic.models import DoctorProfile
from app.events.outbox import emit
from app.extensions import db
from app.timeutil import clinic_today, clinic_zone, utcnow

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("9999999999.99")


class BillingError(Exception):
    """A change the billing rules refuse. `field` names the form field the message belongs to, if any."""

    def __init__(self, message: str, code: str = "refused", field: str | None = None):
        super().__init__(message)
        self.code = code
        self.field = field


# --- money -----------------------------------------------------------------------------------------

def round_money(value: Decimal | int | str) -> Decimal:
    """Half-up to cents: the only rounding billing does."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def tax_rate_from_config() -> Decimal:
    try:
        rate = Decimal(str(current_app.config.get("HMS_TAX_RATE", "0")))
    except InvalidOperation:
        raise ValueError("HMS_TAX_RATE must be a percentage such as 8.25") from None
    if not Decimal(0) <= rate < 100:
        raise ValueError("HMS_TAX_RATE must be between 0 and 100")
    return rate.quantize(CENT)


def _amount(value, field: str = "amount", *, allow_zero: bool = False) -> Decimal:
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise BillingError("Enter an amount such as 120.50.", "invalid_amount", field) from None
    if not amount.is_finite():
        raise BillingError("Enter an amount such as 120.50.", "invalid_amount", field)
    if amount != amount.quantize(CENT):
        raise BillingError("Amounts have at most two decimals.", "invalid_amount", field)
    if amount < 0 or (amount == 0 and not allow_zero):
        raise BillingError("The amount must be more than zero." if not allow_zero else "The amount cannot be negative.",
                           "invalid_amount", field)
    if amount > MAX_AMOUNT:
        raise BillingError("That amount is too large.", "invalid_amount", field)
    return amount


def _fmt(amount: Decimal) -> str:
    return f"{current_app.config['HMS_CURRENCY']} {amount:,.2f}"


# --- helpers ---------------------------------------------------------------------------------------

def _lock_invoice(invoice_id: int) -> Invoice:
    """The invoice row, locked until the transaction ends, with its latest committed values."""
    invoice = db.session.scalar(sa.select(Invoice).where(Invoice.id == invoice_id).with_for_update()
                                .execution_options(populate_existing=True))
    if invoice is None:
        raise BillingError("No such invoice.", "not_found")
    db.session.expire(invoice, ["lines", "payments", "refunds", "claims"])
    return invoice


def _actor_id(actor: User | None) -> int | None:
    return actor.id if actor is not None else None


def _history(invoice: Invoice, action: str, actor: User | None, *, from_status: InvoiceStatus | None = None,
             amount: Decimal | None = None, note: str | None = None) -> None:
    db.session.add(InvoiceHistory(invoice_id=invoice.id, action=action, from_status=from_status,
                                  to_status=invoice.status, amount=amount, note=note, actor_id=_actor_id(actor)))


def invoice_url(invoice_id: int) -> str:
    """Where the patient sees the invoice ("My bills")."""
    return f"{current_app.config['HMS_PUBLIC_URL'].rstrip('/')}/patient/bills/{invoice_id}"


def _emit(type: str, invoice: Invoice, actor: User | None, **data) -> None:
    payload = {"invoice_id": invoice.id, "invoice_number": invoice.label, "status": invoice.status.value,
               "total": str(invoice.total), "balance": str(invoice.balance),
               "total_text": _fmt(invoice.total), "balance_text": _fmt(invoice.balance),
               "invoice_url": invoice_url(invoice.id), **data}
    emit(type, "invoice", invoice.id, payload, patient_id=invoice.patient_id,
         **({"actor": {"id": actor.id, "role": actor.role.value}} if actor is not None else {}))


def _recompute(invoice: Invoice, discount: Decimal | None = None) -> None:
    """Subtotal, tax and total from the lines (and the new discount, if given); only drafts change.
    All columns are assigned together, so no flush ever sees them disagree (the CHECKs would refuse it)."""
    subtotal = sum((line.line_total for line in invoice.lines), ZERO)
    discount = invoice.discount if discount is None else discount
    if discount > subtotal:
        raise BillingError("The discount would be larger than the lines. Lower the discount first.",
                           "discount_too_large", "discount")
    tax = round_money((subtotal - discount) * invoice.tax_rate / 100)
    total = subtotal - discount + tax
    invoice.subtotal, invoice.discount, invoice.tax, invoice.total = subtotal, discount, tax, total
    invoice.balance = total - invoice.patient_paid - invoice.insurer_paid


def _settle(invoice: Invoice, actor: User | None, action: str, amount: Decimal | None = None,
            note: str | None = None) -> None:
    """Move an issued invoice's status with its balance and record the step in the history."""
    before = invoice.status
    invoice.balance = invoice.total - invoice.patient_paid - invoice.insurer_paid
    if invoice.balance < 0:  # every caller checks first; this is the last line of defence
        raise BillingError("That would make the balance negative.", "negative_balance")
    if invoice.balance == 0:
        invoice.status = InvoiceStatus.PAID
        invoice.paid_at = invoice.paid_at or utcnow()
    else:
        invoice.status = InvoiceStatus.PARTIALLY_PAID if invoice.balance < invoice.total else InvoiceStatus.ISSUED
        invoice.paid_at = None
    _history(invoice, action, actor, from_status=before, amount=amount, note=note)


def _require_draft(invoice: Invoice) -> None:
    if invoice.status is not InvoiceStatus.DRAFT:
        raise BillingError("An issued invoice cannot be edited. Void it and create a new one.", "not_draft")


def _require_open(invoice: Invoice, what: str) -> None:
    if invoice.status not in OPEN_STATUSES:
        reasons = {InvoiceStatus.DRAFT: "the invoice is still a draft; issue it first",
                   InvoiceStatus.PAID: "the invoice is already paid",
                   InvoiceStatus.VOID: "the invoice is void"}
        raise BillingError(f"Cannot {what}: {reasons[invoice.status]}.", "not_open")


def _text(value: str | None, field: str, message: str, limit: int) -> str:
    value = (value or "").strip()
    if not value:
        raise BillingError(message, "required", field)
    return value[:limit]


# --- price list ------------------------------------------------------------------------------------

def create_price_item(actor: User | None, *, code: str, name: str, price, active: bool = True,
                      department_id: int | None = None) -> PriceItem:
    code = _text(code, "code", "Enter a code.", 20).upper()
    if db.session.scalar(sa.select(PriceItem.id).where(PriceItem.code == code)) is not None:
        raise BillingError("Another service already has this code.", "duplicate_code", "code")
    item = PriceItem(code=code, name=_text(name, "name", "Enter a name.", 120),
                     price=_amount(price, "price", allow_zero=True), active=active, department_id=department_id)
    db.session.add(item)
    db.session.flush()
    emit("price_item.created", "price_item", item.id, {"code": item.code, "price": str(item.price)},
         **({"actor": {"id": actor.id, "role": actor.role.value}} if actor else {}))
    return item


def update_price_item(item: PriceItem, actor: User | None, *, code: str, name: str, price, active: bool,
                      department_id: int | None = None) -> PriceItem:
    code = _text(code, "code", "Enter a code.", 20).upper()
    if db.session.scalar(sa.select(PriceItem.id).where(PriceItem.code == code, PriceItem.id != item.id)) is not None:
        raise BillingError("Another service already has this code.", "duplicate_code", "code")
    item.code, item.name = code, _text(name, "name", "Enter a name.", 120)
    item.price, item.active, item.department_id = _amount(price, "price", allow_zero=True), active, department_id
    db.session.flush()
    emit("price_item.updated", "price_item", item.id, {"code": item.code, "price": str(item.price),
                                                       "active": item.active},
         **({"actor": {"id": actor.id, "role": actor.role.value}} if actor else {}))
    return item


def active_price_items() -> list[PriceItem]:
    return list(db.session.scalars(sa.select(PriceItem).where(PriceItem.active.is_(True)).order_by(PriceItem.name)))


# --- invoices --------------------------------------------------------------------------------------

def consultation_fee(appointment: Appointment) -> Decimal:
    fee = db.session.scalar(sa.select(DoctorProfile.consultation_fee)
                            .where(DoctorProfile.user_id == appointment.doctor_id))
    return round_money(fee or 0)


def create_invoice(patient_id: int, actor: User | None, *, appointment_id: int | None = None,
                   notes: str | None = None) -> Invoice:
    """A draft for the patient. From a completed appointment, the doctor's consultation fee is the first
    line and the doctor and department are copied (reports group by them)."""
    patient = db.session.get(User, patient_id)
    if patient is None or patient.role is not Role.PATIENT:
        raise BillingError("Choose a patient.", "no_patient", "patient_id")
    invoice = Invoice(patient_id=patient.id, status=InvoiceStatus.DRAFT, tax_rate=tax_rate_from_config(),
                      created_by_id=_actor_id(actor), notes=(notes or "").strip()[:500] or None,
                      subtotal=ZERO, discount=ZERO, tax=ZERO, total=ZERO, patient_paid=ZERO, insurer_paid=ZERO,
                      balance=ZERO, live=True)
    line = None
    if appointment_id is not None:
        appointment = db.session.scalar(sa.select(Appointment).where(Appointment.id == appointment_id)
                                        .with_for_update())
        if appointment is None or appointment.patient_id != patient.id:
            raise BillingError("That appointment is not this patient's.", "wrong_appointment", "appointment_id")
        if appointment.status is not AppointmentStatus.COMPLETED:
            raise BillingError("Only a completed appointment can be billed.", "not_completed", "appointment_id")
        if db.session.scalar(sa.select(Invoice.id).where(Invoice.appointment_id == appointment.id,
                                                         Invoice.live.is_(True))) is not None:
            raise BillingError("This appointment already has an invoice.", "already_billed", "appointment_id")
        invoice.appointment_id = appointment.id
        invoice.doctor_id, invoice.department_id = appointment.doctor_id, appointment.department_id
        fee = consultation_fee(appointment)
        line = InvoiceLine(description=f"Consultation — {appointment.doctor_user.full_name}"
                                       f" ({appointment.department.name})"[:200],
                           quantity=1, unit_price=fee, line_total=fee)
    try:
        with db.session.begin_nested():
            db.session.add(invoice)
            if line is not None:
                invoice.lines.append(line)
            _recompute(invoice)
            db.session.flush()
    except IntegrityError:
        raise BillingError("This appointment already has an invoice.", "already_billed", "appointment_id") from None
    _history(invoice, "created", actor, note=f"From appointment #{appointment_id}" if appointment_id else None)
    _emit("invoice.created", invoice, actor, appointment_id=appointment_id)
    db.session.flush()
    return invoice


def add_line(invoice_id: int, actor: User | None, *, description: str | None = None, quantity=1,
             unit_price=None, price_item_id: int | None = None) -> InvoiceLine:
    """A line from the price list (its name and current price unless given) or a free-text one."""
    invoice = _lock_invoice(invoice_id)
    _require_draft(invoice)
    item = None
    if price_item_id is not None:
        item = db.session.get(PriceItem, price_item_id)
        if item is None or not item.active:
            raise BillingError("Choose a service from the price list.", "no_item", "price_item_id")
    try:
        quantity = int(quantity)
    except (TypeError, ValueError):
        raise BillingError("Enter a whole number.", "invalid_quantity", "quantity") from None
    if not 1 <= quantity <= 10_000:
        raise BillingError("The quantity must be between 1 and 10000.", "invalid_quantity", "quantity")
    if unit_price is None or unit_price == "":
        if item is None:
            raise BillingError("Enter a unit price.", "required", "unit_price")
        unit_price = item.price
    price = _amount(unit_price, "unit_price", allow_zero=True)
    text = (description or "").strip() or (item.name if item else "")
    line = InvoiceLine(price_item_id=item.id if item else None, description=_text(text, "description",
                                                                                   "Describe the service.", 200),
                       quantity=quantity, unit_price=price, line_total=round_money(price * quantity))
    if line.line_total > MAX_AMOUNT:
        raise BillingError("That line is too large.", "invalid_amount", "quantity")
    invoice.lines.append(line)
    _recompute(invoice)
    _history(invoice, "line_added", actor, from_status=invoice.status, amount=line.line_total, note=line.description)
    _emit("invoice.line_added", invoice, actor, description=line.description, quantity=quantity,
          unit_price=str(price), line_total=str(line.line_total))
    db.session.flush()
    return line


def remove_line(invoice_id: int, line_id: int, actor: User | None) -> None:
    invoice = _lock_invoice(invoice_id)
    _require_draft(invoice)
    line = next((line for line in invoice.lines if line.id == line_id), None)
    if line is None:
        raise BillingError("That line is not on this invoice.", "no_line")
    invoice.lines.remove(line)
    _recompute(invoice)
    _history(invoice, "line_removed", actor, from_status=invoice.status, amount=line.line_total, note=line.description)
    _emit("invoice.line_removed", invoice, actor, description=line.description, line_total=str(line.line_total))
    db.session.flush()


def set_discount(invoice_id: int, actor: User | None, amount, reason: str | None) -> Invoice:
    invoice = _lock_invoice(invoice_id)
    _require_draft(invoice)
    discount = _amount(amount if amount not in (None, "") else "0", "discount", allow_zero=True)
    reason = (reason or "").strip()[:200] or None
    if discount > 0 and not reason:
        raise BillingError("Give the reason for the discount.", "required", "discount_reason")
    if discount > invoice.subtotal:
        raise BillingError("The discount cannot be more than the lines add up to.", "discount_too_large", "discount")
    with db.session.no_autoflush:
        _recompute(invoice, discount)
        invoice.discount_reason = reason if discount > 0 else None
    _history(invoice, "discount_set", actor, from_status=invoice.status, amount=discount, note=reason)
    _emit("invoice.discount_set", invoice, actor, discount=str(discount), reason=reason)
    db.session.flush()
    return invoice


def _next_number(year: int) -> str:
    """The next number of the year, from the counter row locked until the issuing transaction ends."""
    db.session.execute(mysql_insert(InvoiceCounter).values(year=year, last_number=0)
                       .on_duplicate_key_update(year=year))
    counter = db.session.scalar(sa.select(InvoiceCounter).where(InvoiceCounter.year == year).with_for_update()
                                .execution_options(populate_existing=True))
    counter.last_number += 1
    return f"INV-{year}-{counter.last_number:06d}"


def issue_invoice(invoice_id: int, actor: User | None, *, due_on: date | None = None) -> Invoice:
    invoice = _lock_invoice(invoice_id)
    _require_draft(invoice)
    if not invoice.lines:
        raise BillingError("Add at least one line before issuing.", "no_lines")
    _recompute(invoice)
    now = utcnow()
    invoice.issued_at = now
    invoice.issued_on = now.astimezone(clinic_zone()).date()
    invoice.due_on = due_on or invoice.issued_on + timedelta(days=current_app.config["HMS_INVOICE_DUE_DAYS"])
    if invoice.due_on < invoice.issued_on:
        raise BillingError("The due date cannot be before today.", "invalid_due", "due_on")
    invoice.number = _next_number(invoice.issued_on.year)
    _settle(invoice, actor, "issued", amount=invoice.total, note=invoice.number)
    _emit("invoice.issued", invoice, actor, due_on=invoice.due_on.isoformat(),
          due_text=invoice.due_on.strftime("%d %b %Y"))
    db.session.flush()
    return invoice


def void_invoice(invoice_id: int, actor: User | None, reason: str | None) -> Invoice:
    """Void a draft, or an issued invoice nobody has (net) paid anything on and with no open claim."""
    invoice = _lock_invoice(invoice_id)
    reason = _text(reason, "reason", "Give the reason for voiding.", 500)
    if invoice.status is InvoiceStatus.VOID:
        raise BillingError("The invoice is already void.", "not_open")
    if invoice.patient_paid > 0 or invoice.insurer_paid > 0:
        raise BillingError("Money was received on this invoice: refund it before voiding.", "has_payments")
    if any(r.status in (RefundStatus.REQUESTED, RefundStatus.APPROVED) for r in invoice.refunds):
        raise BillingError("A refund is still pending on this invoice.", "pending_refund")
    if any(c.status in OPEN_CLAIM_STATUSES for c in invoice.claims):
        raise BillingError("An insurance claim is still open on this invoice: withdraw it if it was filed in error.",
                           "open_claim")
    before = invoice.status
    invoice.status, invoice.live = InvoiceStatus.VOID, None
    invoice.voided_at, invoice.void_reason = utcnow(), reason
    _history(invoice, "voided", actor, from_status=before, note=reason)
    _emit("invoice.voided", invoice, actor, reason=reason)
    db.session.flush()
    return invoice


# --- payments --------------------------------------------------------------------------------------

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
    invoice = _lock_invoice(invoice_id)
    existing = _payment_with_key(key)  # after the lock: a concurrent twin has committed or not started
    if existing is not None:
        if existing.invoice_id != invoice.id:
            raise BillingError("This form was already used for another invoice. Reload the page.", "key_reused")
        return existing
    amount = _amount(amount)
    try:
        method = PaymentMethod(method)
    except ValueError:
        raise BillingError("Choose how the patient paid.", "invalid_method", "method") from None
    _require_open(invoice, "take a payment")
    if amount > invoice.balance:
        raise BillingError(f"The amount is more than the balance ({_fmt(invoice.balance)}).", "over_balance", "amount")
    paid_on = paid_on or clinic_today()
    if paid_on > clinic_today():
        raise BillingError("The payment date cannot be in the future.", "future_date", "paid_on")
    payment = Payment(invoice_id=invoice.id, amount=amount, method=method, paid_on=paid_on, idempotency_key=key,
                      reference=(reference or "").strip()[:100] or None, recorded_by_id=_actor_id(actor))
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
    _settle(invoice, actor, "payment", amount=amount, note=note)
    _emit("payment.received", invoice, actor, payment_id=payment.id, amount=str(amount), amount_text=_fmt(amount),
          method=method.value, method_text=method.label, paid_on=paid_on.isoformat())
    db.session.flush()
    return payment


# --- refunds ---------------------------------------------------------------------------------------

def refundable(payment: Payment) -> Decimal:
    """What may still be asked back on this payment: its amount less refunds not rejected."""
    taken = sum((r.amount for r in payment.refunds if r.status is not RefundStatus.REJECTED), ZERO)
    return payment.amount - taken


def _lock_refund(refund_id: int) -> tuple[Refund, Invoice]:
    invoice_id = db.session.scalar(sa.select(Refund.invoice_id).where(Refund.id == refund_id))
    if invoice_id is None:
        raise BillingError("No such refund.", "not_found")
    invoice = _lock_invoice(invoice_id)
    refund = db.session.scalar(sa.select(Refund).where(Refund.id == refund_id)
                               .execution_options(populate_existing=True))
    return refund, invoice


def request_refund(payment_id: int, actor: User, amount, reason: str | None) -> Refund:
    invoice_id = db.session.scalar(sa.select(Payment.invoice_id).where(Payment.id == payment_id))
    if invoice_id is None:
        raise BillingError("No such payment.", "not_found")
    invoice = _lock_invoice(invoice_id)
    if invoice.status is InvoiceStatus.VOID:
        raise BillingError("The invoice is void.", "not_open")
    payment = db.session.scalar(sa.select(Payment).where(Payment.id == payment_id)
                                .execution_options(populate_existing=True))
    db.session.refresh(payment, ["refunds"])
    amount = _amount(amount)
    reason = _text(reason, "reason", "Give the reason for the refund.", 500)
    left = refundable(payment)
    if amount > left:
        raise BillingError(f"At most {_fmt(left)} of this payment can be refunded.", "over_payment", "amount")
    refund = Refund(invoice_id=invoice.id, payment_id=payment.id, amount=amount, reason=reason,
                    requested_by_id=actor.id, status=RefundStatus.REQUESTED)
    db.session.add(refund)
    db.session.flush()
    _history(invoice, "refund_requested", actor, from_status=invoice.status, amount=amount, note=reason)
    _emit("refund.requested", invoice, actor, refund_id=refund.id, payment_id=payment.id, amount=str(amount),
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
    _history(invoice, action, actor, from_status=invoice.status, amount=refund.amount, note=note)
    _emit(action.replace("_", ".", 1), invoice, actor, refund_id=refund.id, amount=str(refund.amount), note=note)
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
    _settle(invoice, actor, "refund_recorded", amount=refund.amount, note=refund.reference)
    _emit("refund.recorded", invoice, actor, refund_id=refund.id, amount=str(refund.amount))
    db.session.flush()
    return refund


# --- claims ----------------------------------------------------------------------------------------

def _expected_from_insurer(claim: Claim) -> Decimal:
    """What a claim is expected to bring in: the claimed amount while pending, the approved amount once
    decided, what was paid once paid, nothing when denied or withdrawn."""
    if claim.status is ClaimStatus.SUBMITTED:
        return claim.claimed_amount
    if claim.status in (ClaimStatus.APPROVED, ClaimStatus.PARTIALLY_APPROVED):
        return claim.approved_amount or ZERO
    if claim.status is ClaimStatus.PAID:
        return claim.paid_amount
    return ZERO


def claimable(invoice: Invoice) -> Decimal:
    """What may still be claimed: the balance less what open claims are expected to bring."""
    pending = sum((_expected_from_insurer(c) for c in invoice.claims if c.status is not ClaimStatus.PAID), ZERO)
    return max(invoice.balance - pending, ZERO)


def _lock_claim(claim_id: int) -> tuple[Claim, Invoice]:
    invoice_id = db.session.scalar(sa.select(Claim.invoice_id).where(Claim.id == claim_id))
    if invoice_id is None:
        raise BillingError("No such claim.", "not_found")
    invoice = _lock_invoice(invoice_id)
    claim = db.session.scalar(sa.select(Claim).where(Claim.id == claim_id).execution_options(populate_existing=True))
    return claim, invoice


def submit_claim(invoice_id: int, actor: User | None, *, payer: str, policy_number: str, claimed_amount) -> Claim:
    invoice = _lock_invoice(invoice_id)
    _require_open(invoice, "file a claim")
    payer = _text(payer, "payer", "Name the insurer.", 120)
    policy_number = _text(policy_number, "policy_number", "Enter the policy number.", 64)
    amount = _amount(claimed_amount, "claimed_amount")
    room = claimable(invoice)
    if amount > room:
        raise BillingError(f"At most {_fmt(room)} can be claimed (the balance less open claims).",
                           "over_balance", "claimed_amount")
    claim = Claim(invoice_id=invoice.id, payer=payer, policy_number=policy_number, claimed_amount=amount,
                  paid_amount=ZERO, status=ClaimStatus.SUBMITTED, submitted_by_id=_actor_id(actor))
    db.session.add(claim)
    db.session.flush()
    _history(invoice, "claim_submitted", actor, from_status=invoice.status, amount=amount, note=payer)
    _emit("claim.submitted", invoice, actor, claim_id=claim.id, payer=payer, amount=str(amount))
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
        approved = _amount(approved_amount, "approved_amount")
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
    _history(invoice, "claim_decided", actor, from_status=invoice.status, amount=approved,
             note=f"{claim.payer}: {status.label}" + (f" ({reason_code})" if reason_code else ""))
    share_now = share(invoice)
    _emit("claim.decided", invoice, actor, claim_id=claim.id, payer=claim.payer, decision=status.value,
          decision_text=status.label.lower(), claimed_text=_fmt(claim.claimed_amount), approved_text=_fmt(approved),
          reason_code=reason_code or "", patient_due_text=_fmt(share_now.patient_due))
    db.session.flush()
    return claim


def mark_claim_paid(claim_id: int, actor: User | None, *, amount=None, paid_on: date | None = None,
                    payer_reference: str | None = None) -> Claim:
    """The insurer paid: at most the approved amount and the balance; the balance falls by it."""
    claim, invoice = _lock_claim(claim_id)
    if claim.status not in (ClaimStatus.APPROVED, ClaimStatus.PARTIALLY_APPROVED):
        raise BillingError("Only an approved claim can be marked paid.", "not_approved")
    _require_open(invoice, "record the insurer's payment")
    paid = _amount(amount if amount not in (None, "") else claim.approved_amount, "amount")
    if paid > claim.approved_amount:
        raise BillingError(f"The insurer approved {_fmt(claim.approved_amount)}.", "over_approved", "amount")
    if paid > invoice.balance:
        raise BillingError(f"The amount is more than the balance ({_fmt(invoice.balance)}); refund the patient's"
                           " overpayment first or record less.", "over_balance", "amount")
    paid_on = paid_on or clinic_today()
    if paid_on > clinic_today():
        raise BillingError("The payment date cannot be in the future.", "future_date", "paid_on")
    claim.status, claim.paid_amount, claim.paid_at, claim.paid_on = ClaimStatus.PAID, paid, utcnow(), paid_on
    claim.payer_reference = (payer_reference or "").strip()[:100] or claim.payer_reference
    invoice.insurer_paid += paid
    _settle(invoice, actor, "claim_paid", amount=paid, note=claim.payer)
    _emit("claim.paid", invoice, actor, claim_id=claim.id, payer=claim.payer, amount=str(paid))
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
    reason = _text(reason, "reason", "Give the reason for withdrawing the claim.", 500)
    # Assigned together, after reading the actor (which may load it and autoflush): no flush sees a withdrawn
    # claim without its time and reason, which the CHECK would refuse.
    by_id, now = _actor_id(actor), utcnow()
    claim.status, claim.withdrawn_by_id, claim.withdrawn_at, claim.withdrawal_reason = (
        ClaimStatus.WITHDRAWN, by_id, now, reason)
    _history(invoice, "claim_withdrawn", actor, from_status=invoice.status, amount=claim.claimed_amount,
             note=f"{claim.payer}: {reason}")
    _emit("claim.withdrawn", invoice, actor, claim_id=claim.id, payer=claim.payer, amount=str(claim.claimed_amount),
          reason=reason)
    db.session.flush()
    return claim


# --- reading ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Share:
    """Who is expected to pay what. insurance = what claims are expected to bring (claimed while pending,
    approved once decided, paid once paid, nothing if denied or withdrawn); patient_share = total − insurance;
    patient_due = patient_share − what the patient has paid (net of refunds), never below zero."""

    total: Decimal
    insurance: Decimal
    insurer_paid: Decimal
    patient_share: Decimal
    patient_paid: Decimal
    patient_due: Decimal
    balance: Decimal
    pending_claims: bool


def share(invoice: Invoice) -> Share:
    insurance = min(sum((_expected_from_insurer(c) for c in invoice.claims), ZERO), invoice.total)
    patient_share = invoice.total - insurance
    return Share(total=invoice.total, insurance=insurance, insurer_paid=invoice.insurer_paid,
                 patient_share=patient_share, patient_paid=invoice.patient_paid,
                 patient_due=min(max(patient_share - invoice.patient_paid, ZERO), invoice.balance),
                 balance=invoice.balance,
                 pending_claims=any(c.status is ClaimStatus.SUBMITTED for c in invoice.claims))


def invoice_query(*, status: str | None = None, patient_id: int | None = None, date_from: date | None = None,
                  date_to: date | None = None, search: str | None = None) -> sa.Select:
    """Invoices newest first. The date range is on the issue date (drafts have none)."""
    query = sa.select(Invoice).options(selectinload(Invoice.patient)).order_by(Invoice.id.desc())
    if status == "overdue":
        query = query.where(Invoice.status.in_(OPEN_STATUSES), Invoice.due_on < clinic_today())
    elif status:
        query = query.where(Invoice.status == InvoiceStatus(status))
    if patient_id:
        query = query.where(Invoice.patient_id == patient_id)
    if date_from:
        query = query.where(Invoice.issued_on >= date_from)
    if date_to:
        query = query.where(Invoice.issued_on <= date_to)
    if search:
        term = search.strip()
        if term.upper().startswith("INV-"):
            query = query.where(Invoice.number.like(f"{term.upper()}%"))
        else:
            query = query.join(User, User.id == Invoice.patient_id).where(
                sa.or_(User.full_name.like(f"%{term}%"), User.email.like(f"%{term}%")))
    return query


def completed_appointments_to_bill(limit: int = 50) -> list[Appointment]:
    """Completed appointments without a live invoice, most recent first."""
    billed = sa.select(Invoice.id).where(Invoice.appointment_id == Appointment.id, Invoice.live.is_(True)).exists()
    return list(db.session.scalars(sa.select(Appointment).where(
        Appointment.status == AppointmentStatus.COMPLETED, ~billed).order_by(Appointment.starts_at.desc())
        .options(selectinload(Appointment.patient), selectinload(Appointment.doctor_user),
                 selectinload(Appointment.department)).limit(limit)))


@dataclass
class Worklist:
    drafts: list[Invoice]
    overdue: list[Invoice]
    overdue_count: int
    refunds_to_decide: list[Refund]
    refunds_to_record: list[Refund]
    open_claims: list[Claim]
    to_bill: list[Appointment]


def worklist(limit: int = 10) -> Worklist:
    today = clinic_today()
    overdue = sa.select(Invoice).where(Invoice.status.in_(OPEN_STATUSES), Invoice.due_on < today)
    with_patient = selectinload(Invoice.patient)
    return Worklist(
        drafts=list(db.session.scalars(sa.select(Invoice).where(Invoice.status == InvoiceStatus.DRAFT)
                                       .options(with_patient).order_by(Invoice.id.desc()).limit(limit))),
        overdue=list(db.session.scalars(overdue.options(with_patient).order_by(Invoice.due_on).limit(limit))),
        overdue_count=db.session.scalar(sa.select(sa.func.count()).select_from(overdue.subquery())),
        refunds_to_decide=list(db.session.scalars(sa.select(Refund).where(Refund.status == RefundStatus.REQUESTED)
                                                  .order_by(Refund.id))),
        refunds_to_record=list(db.session.scalars(sa.select(Refund).where(Refund.status == RefundStatus.APPROVED)
                                                  .order_by(Refund.id))),
        open_claims=list(db.session.scalars(sa.select(Claim).where(Claim.status.in_(OPEN_CLAIM_STATUSES))
                                            .order_by(Claim.id).limit(limit))),
        to_bill=completed_appointments_to_bill(limit),
    )


def shown_to_patient(invoice: Invoice) -> bool:
    """A bill the patient sees: one that was issued (also if voided later); a draft, or a draft voided before
    issue, never was."""
    return invoice.issued_at is not None and invoice.status is not InvoiceStatus.DRAFT


def patient_bill_filter(patient_id: int) -> sa.ColumnElement[bool]:
    """`shown_to_patient` as SQL, for the patient's own invoices."""
    return sa.and_(Invoice.patient_id == patient_id, Invoice.issued_at.is_not(None),
                   Invoice.status != InvoiceStatus.DRAFT)


def patient_bills_query(patient_id: int) -> sa.Select:
    """The patient's bills, newest first."""
    return (sa.select(Invoice).where(patient_bill_filter(patient_id))
            .order_by(Invoice.issued_at.desc(), Invoice.id.desc()))
