"""Invoices: the price list, drafts and their lines, the discount, issuing (with its number) and voiding.

Public API (functions add and flush; the request's unit of work commits, see `app.web.unit_of_work`):

  price list        create_price_item(...), update_price_item(item, ...)
  invoices          create_invoice(patient_id, actor, appointment_id=None, ...), add_line(invoice_id, actor, ...),
                    remove_line(invoice_id, line_id, actor), set_discount(invoice_id, actor, amount, reason),
                    issue_invoice(invoice_id, actor, due_on=None), void_invoice(invoice_id, actor, reason)
  settings          tax_rate_from_config()

Rules (the money rules shared with payments and claims are in `app.billing.common`):
  - Each line is quantity × unit price, rounded; tax is `HMS_TAX_RATE` percent (copied onto the invoice when it
    is created) of (subtotal − discount), rounded once. total = Σ lines − discount + tax.
  - One live invoice per appointment (also a unique key); from a completed appointment, the doctor's
    consultation fee is the first line.
  - Draft → issued (number `INV-<year>-<nnnnnn>` from a counter row locked in the issuing transaction;
    drafts have no number); void (with a reason) from a draft, or from an issued invoice with no net payment,
    no insurer payment, no pending refund and no open claim. An issued invoice is never edited: void it and
    bill again.
`invoice.issued` also emails the patient.
"""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.exc import IntegrityError

from app.accounts.models import Role, User
from app.appointments.models import Appointment, Status as AppointmentStatus
from app.billing.common import (CENT, MAX_AMOUNT, BillingError, actor_id, add_history, emit_change, lock_invoice,
                                parse_amount, required_text, round_money, settle)
from app.billing.models import (OPEN_CLAIM_STATUSES, ZERO, Invoice, InvoiceCounter, InvoiceLine, InvoiceStatus,
                                PriceItem, RefundStatus)
from app.billing.queries import consultation_fee
from app.events.outbox import emit
from app.extensions import db
from app.timeutil import clinic_zone, utcnow


def tax_rate_from_config() -> Decimal:
    try:
        rate = Decimal(str(current_app.config.get("HMS_TAX_RATE", "0")))
    except InvalidOperation:
        raise ValueError("HMS_TAX_RATE must be a percentage such as 8.25") from None
    if not Decimal(0) <= rate < 100:
        raise ValueError("HMS_TAX_RATE must be between 0 and 100")
    return rate.quantize(CENT)


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
    if max(subtotal, total) > MAX_AMOUNT:  # the columns' limit: the database would refuse it
        raise BillingError("The invoice's total would be too large. Bill the rest on another invoice.",
                           "invalid_amount", "unit_price")
    invoice.subtotal, invoice.discount, invoice.tax, invoice.total = subtotal, discount, tax, total
    invoice.balance = total - invoice.patient_paid - invoice.insurer_paid


def _require_draft(invoice: Invoice) -> None:
    if invoice.status is not InvoiceStatus.DRAFT:
        raise BillingError("An issued invoice cannot be edited. Void it and create a new one.", "not_draft")


# --- price list ------------------------------------------------------------------------------------

def create_price_item(actor: User | None, *, code: str, name: str, price, active: bool = True,
                      department_id: int | None = None) -> PriceItem:
    code = required_text(code, "code", "Enter a code.", 20).upper()
    if db.session.scalar(sa.select(PriceItem.id).where(PriceItem.code == code)) is not None:
        raise BillingError("Another service already has this code.", "duplicate_code", "code")
    item = PriceItem(code=code, name=required_text(name, "name", "Enter a name.", 120),
                     price=parse_amount(price, "price", allow_zero=True), active=active, department_id=department_id)
    db.session.add(item)
    db.session.flush()
    emit("price_item.created", "price_item", item.id, {"code": item.code, "price": str(item.price)},
         **({"actor": {"id": actor.id, "role": actor.role.value}} if actor else {}))
    return item


def update_price_item(item: PriceItem, actor: User | None, *, code: str, name: str, price, active: bool,
                      department_id: int | None = None) -> PriceItem:
    code = required_text(code, "code", "Enter a code.", 20).upper()
    if db.session.scalar(sa.select(PriceItem.id).where(PriceItem.code == code, PriceItem.id != item.id)) is not None:
        raise BillingError("Another service already has this code.", "duplicate_code", "code")
    item.code, item.name = code, required_text(name, "name", "Enter a name.", 120)
    item.price, item.active, item.department_id = parse_amount(price, "price", allow_zero=True), active, department_id
    db.session.flush()
    emit("price_item.updated", "price_item", item.id, {"code": item.code, "price": str(item.price),
                                                       "active": item.active},
         **({"actor": {"id": actor.id, "role": actor.role.value}} if actor else {}))
    return item


# --- invoices --------------------------------------------------------------------------------------

def create_invoice(patient_id: int, actor: User | None, *, appointment_id: int | None = None,
                   notes: str | None = None) -> Invoice:
    """A draft for the patient. From a completed appointment, the doctor's consultation fee is the first
    line and the doctor and department are copied (reports group by them)."""
    patient = db.session.get(User, patient_id)
    if patient is None or patient.role is not Role.PATIENT:
        raise BillingError("Choose a patient.", "no_patient", "patient_id")
    invoice = Invoice(patient_id=patient.id, status=InvoiceStatus.DRAFT, tax_rate=tax_rate_from_config(),
                      created_by_id=actor_id(actor), notes=(notes or "").strip()[:500] or None,
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
    add_history(invoice, "created", actor, note=f"From appointment #{appointment_id}" if appointment_id else None)
    emit_change("invoice.created", invoice, actor, appointment_id=appointment_id)
    db.session.flush()
    return invoice


def add_line(invoice_id: int, actor: User | None, *, description: str | None = None, quantity=1,
             unit_price=None, price_item_id: int | None = None) -> InvoiceLine:
    """A line from the price list (its name and current price unless given) or a free-text one."""
    invoice = lock_invoice(invoice_id)
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
    price = parse_amount(unit_price, "unit_price", allow_zero=True)
    text = (description or "").strip() or (item.name if item else "")
    line = InvoiceLine(price_item_id=item.id if item else None,
                       description=required_text(text, "description", "Describe the service.", 200),
                       quantity=quantity, unit_price=price, line_total=round_money(price * quantity))
    if line.line_total > MAX_AMOUNT:
        raise BillingError("That line is too large.", "invalid_amount", "quantity")
    invoice.lines.append(line)
    _recompute(invoice)
    add_history(invoice, "line_added", actor, from_status=invoice.status, amount=line.line_total,
                note=line.description)
    emit_change("invoice.line_added", invoice, actor, description=line.description, quantity=quantity,
                unit_price=str(price), line_total=str(line.line_total))
    db.session.flush()
    return line


def remove_line(invoice_id: int, line_id: int, actor: User | None) -> None:
    invoice = lock_invoice(invoice_id)
    _require_draft(invoice)
    line = next((line for line in invoice.lines if line.id == line_id), None)
    if line is None:
        raise BillingError("That line is not on this invoice.", "no_line")
    invoice.lines.remove(line)
    _recompute(invoice)
    add_history(invoice, "line_removed", actor, from_status=invoice.status, amount=line.line_total,
                note=line.description)
    emit_change("invoice.line_removed", invoice, actor, description=line.description, line_total=str(line.line_total))
    db.session.flush()


def set_discount(invoice_id: int, actor: User | None, amount, reason: str | None) -> Invoice:
    invoice = lock_invoice(invoice_id)
    _require_draft(invoice)
    discount = parse_amount(amount if amount not in (None, "") else "0", "discount", allow_zero=True)
    reason = (reason or "").strip()[:200] or None
    if discount > 0 and not reason:
        raise BillingError("Give the reason for the discount.", "required", "discount_reason")
    if discount > invoice.subtotal:
        raise BillingError("The discount cannot be more than the lines add up to.", "discount_too_large", "discount")
    with db.session.no_autoflush:
        _recompute(invoice, discount)
        invoice.discount_reason = reason if discount > 0 else None
    add_history(invoice, "discount_set", actor, from_status=invoice.status, amount=discount, note=reason)
    emit_change("invoice.discount_set", invoice, actor, discount=str(discount), reason=reason)
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
    invoice = lock_invoice(invoice_id)
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
    settle(invoice, actor, "issued", amount=invoice.total, note=invoice.number)
    emit_change("invoice.issued", invoice, actor, due_on=invoice.due_on.isoformat(),
                due_text=invoice.due_on.strftime("%d %b %Y"))
    db.session.flush()
    return invoice


def void_invoice(invoice_id: int, actor: User | None, reason: str | None) -> Invoice:
    """Void a draft, or an issued invoice nobody has (net) paid anything on and with no open claim."""
    invoice = lock_invoice(invoice_id)
    reason = required_text(reason, "reason", "Give the reason for voiding.", 500)
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
    add_history(invoice, "voided", actor, from_status=before, note=reason)
    emit_change("invoice.voided", invoice, actor, reason=reason)
    db.session.flush()
    return invoice


