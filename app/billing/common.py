"""What invoices, payments and claims share: the refusal (`BillingError`), amounts and their one rounding,
the invoice lock, the history row and the event of every change, and settling an issued invoice's status with
its balance. Other code needs only `BillingError` (to catch a refusal) and `round_money`; it calls `invoices`,
`payments`, `claims` and `queries`.

Rules kept here for all three:
  - Money is Decimal, rounded once, half-up, to cents (`round_money`); amounts from forms have digits and at
    most two decimals (`parse_amount`).
  - balance = total − patient_paid − insurer_paid ≥ 0, where patient_paid = Σ payments − Σ recorded refunds.
    An issued invoice's status follows its balance (`settle`): issued → partially_paid → paid, and back.
  - Every change to an invoice's money locks the invoice row first (`lock_invoice`: SELECT … FOR UPDATE) and
    re-checks under the lock, so concurrent changes cannot together exceed the balance.
  - Every change appends an `InvoiceHistory` row (`add_history`) and emits an event (`emit_change`, audited by
    the worker) in the same transaction.
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import sqlalchemy as sa
from flask import current_app

from app.accounts.models import User
from app.billing.models import OPEN_STATUSES, Invoice, InvoiceHistory, InvoiceStatus
from app.events.outbox import emit
from app.extensions import db
from app.timeutil import utcnow

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("9999999999.99")


class BillingError(Exception):
    """A change the billing rules refuse. `field` names the form field the message belongs to, if any."""

    def __init__(self, message: str, code: str = "refused", field: str | None = None):
        super().__init__(message)
        self.code = code
        self.field = field


def round_money(value: Decimal | int | str) -> Decimal:
    """Half-up to cents: the only rounding billing does."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def parse_amount(value, field: str = "amount", *, allow_zero: bool = False) -> Decimal:
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


def money_text(amount: Decimal) -> str:
    return f"{current_app.config['HMS_CURRENCY']} {amount:,.2f}"


def lock_invoice(invoice_id: int) -> Invoice:
    """The invoice row, locked until the transaction ends, with its latest committed values."""
    invoice = db.session.scalar(sa.select(Invoice).where(Invoice.id == invoice_id).with_for_update()
                                .execution_options(populate_existing=True))
    if invoice is None:
        raise BillingError("No such invoice.", "not_found")
    db.session.expire(invoice, ["lines", "payments", "refunds", "claims"])
    return invoice


def actor_id(actor: User | None) -> int | None:
    return actor.id if actor is not None else None


def add_history(invoice: Invoice, action: str, actor: User | None, *, from_status: InvoiceStatus | None = None,
                amount: Decimal | None = None, note: str | None = None) -> None:
    db.session.add(InvoiceHistory(invoice_id=invoice.id, action=action, from_status=from_status,
                                  to_status=invoice.status, amount=amount, note=note, actor_id=actor_id(actor)))


def invoice_url(invoice_id: int) -> str:
    """Where the patient sees the invoice ("My bills")."""
    return f"{current_app.config['HMS_PUBLIC_URL'].rstrip('/')}/patient/bills/{invoice_id}"


def emit_change(type: str, invoice: Invoice, actor: User | None, **data) -> None:
    """The event of a change to `invoice`, with its figures (also pre-formatted for the patient's email)."""
    payload = {"invoice_id": invoice.id, "invoice_number": invoice.label, "status": invoice.status.value,
               "total": str(invoice.total), "balance": str(invoice.balance),
               "total_text": money_text(invoice.total), "balance_text": money_text(invoice.balance),
               "invoice_url": invoice_url(invoice.id), **data}
    emit(type, "invoice", invoice.id, payload, patient_id=invoice.patient_id,
         **({"actor": {"id": actor.id, "role": actor.role.value}} if actor is not None else {}))


def settle(invoice: Invoice, actor: User | None, action: str, amount: Decimal | None = None,
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
    add_history(invoice, action, actor, from_status=before, amount=amount, note=note)


def require_open(invoice: Invoice, what: str) -> None:
    if invoice.status not in OPEN_STATUSES:
        reasons = {InvoiceStatus.DRAFT: "the invoice is still a draft; issue it first",
                   InvoiceStatus.PAID: "the invoice is already paid",
                   InvoiceStatus.VOID: "the invoice is void"}
        raise BillingError(f"Cannot {what}: {reasons[invoice.status]}.", "not_open")


def required_text(value: str | None, field: str, message: str, limit: int) -> str:
    value = (value or "").strip()
    if not value:
        raise BillingError(message, "required", field)
    return value[:limit]
