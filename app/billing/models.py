"""Billing: the price list, invoices and their lines, payments, refunds, insurance claims, and each
invoice's history.

Money is `Decimal` in Python and DECIMAL(12, 2) in MySQL. An invoice stores its computed figures
(subtotal, discount, tax, total) and its running ones (patient_paid, insurer_paid, balance), kept in
step by the billing services (`invoices`, `payments`, `claims`) under a lock on the invoice row, and checked
by the database:

    total   = subtotal − discount + tax
    balance = total − patient_paid − insurer_paid ≥ 0,   patient_paid = Σ payments − Σ recorded refunds

Reports aggregate these stored columns in SQL instead of re-adding lines for every invoice.
"""
from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.accounts.models import User
from app.appointments.models import Appointment
from app.clinic.models import Department
from app.db_types import UTCDateTime, enum_column
from app.extensions import db
from app.timeutil import utcnow

Money = sa.Numeric(12, 2)
ZERO = Decimal("0.00")


class InvoiceStatus(enum.StrEnum):
    DRAFT = "draft"
    ISSUED = "issued"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    VOID = "void"

    @property
    def label(self) -> str:
        return {"partially_paid": "Partially paid"}.get(self.value, self.value.capitalize())


OPEN_STATUSES = (InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID)


class PaymentMethod(enum.StrEnum):
    CASH = "cash"
    CARD = "card"
    BANK_TRANSFER = "bank_transfer"

    @property
    def label(self) -> str:
        return {"bank_transfer": "Bank transfer"}.get(self.value, self.value.capitalize())


class RefundStatus(enum.StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    RECORDED = "recorded"

    @property
    def label(self) -> str:
        return {"requested": "Awaiting approval", "recorded": "Refunded"}.get(self.value, self.value.capitalize())


class ClaimStatus(enum.StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    PARTIALLY_APPROVED = "partially_approved"
    DENIED = "denied"
    PAID = "paid"
    WITHDRAWN = "withdrawn"  # taken back by the clinic before the insurer decided

    @property
    def label(self) -> str:
        return {"partially_approved": "Partially approved"}.get(self.value, self.value.capitalize())


OPEN_CLAIM_STATUSES = (ClaimStatus.SUBMITTED, ClaimStatus.APPROVED, ClaimStatus.PARTIALLY_APPROVED)


class PriceItem(db.Model):
    """A billable service. Lines copy its name and price, so later price changes leave invoices alone."""

    __tablename__ = "price_items"
    __table_args__ = (sa.CheckConstraint("price >= 0", name="price_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(20), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    price: Mapped[Decimal] = mapped_column(Money)
    active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("departments.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    department: Mapped[Department | None] = relationship()


class InvoiceCounter(db.Model):
    """The last invoice number given out per year; the issuing transaction locks its row, so numbers are
    sequential without gaps from concurrent issues (a rolled-back issue gives its number back)."""

    __tablename__ = "invoice_counters"

    year: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    last_number: Mapped[int] = mapped_column(default=0)


class Invoice(db.Model):
    """A bill for one patient. A draft has no number; issuing gives it the next `INV-<year>-<nnnnnn>`.

    `live` is 1 while the invoice is not void and NULL once it is (unique keys ignore NULLs), so an
    appointment has at most one live invoice whatever the timing of two clerks."""

    __tablename__ = "invoices"
    __table_args__ = (
        sa.UniqueConstraint("appointment_id", "live", name="uq_invoices_appointment_live"),
        sa.Index("ix_invoices_status_issued_on", "status", "issued_on"),
        sa.Index("ix_invoices_status_due_on", "status", "due_on"),  # the worklist's overdue invoices
        sa.Index("ix_invoices_issued_on", "issued_on"),
        sa.Index("ix_invoices_patient_id_created_at", "patient_id", "created_at"),
        sa.Index("ix_invoices_doctor_id_issued_on", "doctor_id", "issued_on"),
        sa.Index("ix_invoices_department_id_issued_on", "department_id", "issued_on"),
        sa.CheckConstraint("total = subtotal - discount + tax", name="total_adds_up"),
        sa.CheckConstraint("balance = total - patient_paid - insurer_paid", name="balance_adds_up"),
        sa.CheckConstraint("balance >= 0", name="balance_not_negative"),
        sa.CheckConstraint("discount >= 0 AND discount <= subtotal", name="discount_within_subtotal"),
        sa.CheckConstraint("patient_paid >= 0 AND insurer_paid >= 0", name="paid_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str | None] = mapped_column(sa.String(20), unique=True)
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    appointment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("appointments.id"))
    live: Mapped[bool | None] = mapped_column(default=True)
    doctor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("doctor_profiles.user_id"))
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("departments.id"))
    status: Mapped[InvoiceStatus] = mapped_column(enum_column(InvoiceStatus, "invoice_status"), default=InvoiceStatus.DRAFT)
    subtotal: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    discount: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    discount_reason: Mapped[str | None] = mapped_column(sa.String(200))
    tax_rate: Mapped[Decimal] = mapped_column(sa.Numeric(5, 2), default=ZERO)  # percent
    tax: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    total: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    patient_paid: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    insurer_paid: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    balance: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    notes: Mapped[str | None] = mapped_column(sa.String(500))
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    issued_on: Mapped[date | None]  # the clinic-local day of issued_at, for reports by day and month
    due_on: Mapped[date | None]
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    void_reason: Mapped[str | None] = mapped_column(sa.String(500))

    patient: Mapped[User] = relationship(foreign_keys=[patient_id])
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    appointment: Mapped[Appointment | None] = relationship()
    doctor_user: Mapped[User | None] = relationship(foreign_keys=[doctor_id], viewonly=True,
                                                    primaryjoin="Invoice.doctor_id == User.id")
    department: Mapped[Department | None] = relationship()
    lines: Mapped[list[InvoiceLine]] = relationship(order_by="InvoiceLine.id", back_populates="invoice",
                                                    cascade="all, delete-orphan")
    payments: Mapped[list[Payment]] = relationship(order_by="Payment.id", back_populates="invoice")
    refunds: Mapped[list[Refund]] = relationship(order_by="Refund.id", back_populates="invoice")
    claims: Mapped[list[Claim]] = relationship(order_by="Claim.id", back_populates="invoice")
    history: Mapped[list[InvoiceHistory]] = relationship(order_by="InvoiceHistory.id", back_populates="invoice")

    @property
    def label(self) -> str:
        return self.number or f"Draft #{self.id}"


class InvoiceLine(db.Model):
    __tablename__ = "invoice_lines"
    __table_args__ = (
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
        sa.CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(sa.ForeignKey("invoices.id"), index=True)
    price_item_id: Mapped[int | None] = mapped_column(sa.ForeignKey("price_items.id"))
    description: Mapped[str] = mapped_column(sa.String(200))
    quantity: Mapped[int]
    unit_price: Mapped[Decimal] = mapped_column(Money)
    line_total: Mapped[Decimal] = mapped_column(Money)

    invoice: Mapped[Invoice] = relationship(back_populates="lines")
    price_item: Mapped[PriceItem | None] = relationship()


class Payment(db.Model):
    """Money received from the patient. `idempotency_key` comes from the form (a uuid made when it was
    rendered): a double submit or a retry finds the first payment instead of recording a second."""

    __tablename__ = "payments"
    __table_args__ = (
        sa.Index("ix_payments_paid_on", "paid_on"),
        sa.Index("ix_payments_method_paid_on", "method", "paid_on"),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(sa.ForeignKey("invoices.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    method: Mapped[PaymentMethod] = mapped_column(enum_column(PaymentMethod, "payment_method"))
    reference: Mapped[str | None] = mapped_column(sa.String(100))
    paid_on: Mapped[date]
    idempotency_key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    invoice: Mapped[Invoice] = relationship(back_populates="payments")
    recorded_by: Mapped[User | None] = relationship()
    refunds: Mapped[list[Refund]] = relationship(order_by="Refund.id", back_populates="payment")


class Refund(db.Model):
    """Maker-checker: a clerk requests, another person (an admin) decides, then it is recorded as paid
    back; only a recorded refund raises the balance. The database refuses a decider who is the requester."""

    __tablename__ = "refunds"
    __table_args__ = (
        sa.Index("ix_refunds_status", "status"),
        sa.Index("ix_refunds_recorded_on", "recorded_on"),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint("decided_by_id IS NULL OR decided_by_id <> requested_by_id", name="checker_not_maker"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(sa.ForeignKey("invoices.id"), index=True)
    payment_id: Mapped[int] = mapped_column(sa.ForeignKey("payments.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    reason: Mapped[str] = mapped_column(sa.String(500))
    status: Mapped[RefundStatus] = mapped_column(enum_column(RefundStatus, "refund_status"), default=RefundStatus.REQUESTED)
    requested_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_note: Mapped[str | None] = mapped_column(sa.String(500))
    recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    recorded_on: Mapped[date | None]
    reference: Mapped[str | None] = mapped_column(sa.String(100))

    invoice: Mapped[Invoice] = relationship(back_populates="refunds")
    payment: Mapped[Payment] = relationship(back_populates="refunds")
    requested_by: Mapped[User] = relationship(foreign_keys=[requested_by_id])
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])
    recorded_by: Mapped[User | None] = relationship(foreign_keys=[recorded_by_id])


class Claim(db.Model):
    """An insurance claim on an invoice. The insurer's payment (`paid_amount`) reduces the balance.

    A claim still awaiting the insurer can be withdrawn by the clinic: who, when and why are kept, and the
    database refuses a withdrawn claim without them or with an insurer's decision or payment."""

    __tablename__ = "claims"
    __table_args__ = (
        sa.Index("ix_claims_status_submitted_at", "status", "submitted_at"),
        sa.CheckConstraint("claimed_amount > 0", name="claimed_positive"),
        sa.CheckConstraint("approved_amount IS NULL OR (approved_amount >= 0 AND approved_amount <= claimed_amount)",
                           name="approved_within_claimed"),
        sa.CheckConstraint("paid_amount >= 0", name="paid_not_negative"),
        sa.CheckConstraint("status <> 'withdrawn' OR (withdrawn_at IS NOT NULL AND withdrawal_reason IS NOT NULL"
                           " AND approved_amount IS NULL AND paid_amount = 0)", name="withdrawn_recorded_undecided"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(sa.ForeignKey("invoices.id"), index=True)
    payer: Mapped[str] = mapped_column(sa.String(120))
    policy_number: Mapped[str] = mapped_column(sa.String(64))
    claimed_amount: Mapped[Decimal] = mapped_column(Money)
    approved_amount: Mapped[Decimal | None] = mapped_column(Money)
    paid_amount: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    status: Mapped[ClaimStatus] = mapped_column(enum_column(ClaimStatus, "claim_status"), default=ClaimStatus.SUBMITTED)
    payer_reference: Mapped[str | None] = mapped_column(sa.String(100))
    reason_code: Mapped[str | None] = mapped_column(sa.String(40))
    submitted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paid_on: Mapped[date | None]
    withdrawn_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    withdrawal_reason: Mapped[str | None] = mapped_column(sa.String(500))

    invoice: Mapped[Invoice] = relationship(back_populates="claims")
    submitted_by: Mapped[User | None] = relationship(foreign_keys=[submitted_by_id])
    withdrawn_by: Mapped[User | None] = relationship(foreign_keys=[withdrawn_by_id])


class InvoiceHistory(db.Model):
    """One row per change to an invoice (created, lines, issued, payment, refund, claim, void)."""

    __tablename__ = "invoice_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(sa.ForeignKey("invoices.id"), index=True)
    action: Mapped[str] = mapped_column(sa.String(40))
    from_status: Mapped[InvoiceStatus | None] = mapped_column(enum_column(InvoiceStatus, "invoice_status"))
    to_status: Mapped[InvoiceStatus | None] = mapped_column(enum_column(InvoiceStatus, "invoice_status"))
    amount: Mapped[Decimal | None] = mapped_column(Money)
    note: Mapped[str | None] = mapped_column(sa.String(500))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    invoice: Mapped[Invoice] = relationship(back_populates="history")
    actor: Mapped[User | None] = relationship()
