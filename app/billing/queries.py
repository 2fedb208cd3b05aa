"""Read models of billing, by audience. Nothing here changes a row.

  billing desk      worklist(), invoice_query(status=, patient_id=, date_from=, date_to=, search=),
                    completed_appointments_to_bill(), consultation_fee(appointment), active_price_items()
  an invoice        share(invoice), refundable(payment), claimable(invoice)
  the patient       shown_to_patient(invoice), refunds_shown_to_patient(invoice), patient_bill_filter(patient_id),
                    patient_bills_query(patient_id)

The reports' queries are in `app.billing.reports`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from app.accounts.models import User
from app.appointments.models import Appointment, Status as AppointmentStatus
from app.billing.common import round_money
from app.billing.models import (OPEN_CLAIM_STATUSES, OPEN_STATUSES, ZERO, Claim, ClaimStatus, Invoice, InvoiceStatus,
                                Payment, PriceItem, Refund, RefundStatus)
from app.clinic.models import DoctorProfile
from app.extensions import db
from app.timeutil import clinic_today


# --- the billing desk (clerks and admins) ---------------------------------------------------------

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


def consultation_fee(appointment: Appointment) -> Decimal:
    fee = db.session.scalar(sa.select(DoctorProfile.consultation_fee)
                            .where(DoctorProfile.user_id == appointment.doctor_id))
    return round_money(fee or 0)


def active_price_items() -> list[PriceItem]:
    return list(db.session.scalars(sa.select(PriceItem).where(PriceItem.active.is_(True)).order_by(PriceItem.name)))


# --- an invoice's figures (the invoice page, the patient's bill, and the services' checks) --------

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


def refundable(payment: Payment) -> Decimal:
    """What may still be asked back on this payment: its amount less refunds not rejected."""
    taken = sum((r.amount for r in payment.refunds if r.status is not RefundStatus.REJECTED), ZERO)
    return payment.amount - taken


def claimable(invoice: Invoice) -> Decimal:
    """What may still be claimed: the balance less what open claims are expected to bring."""
    pending = sum((_expected_from_insurer(c) for c in invoice.claims if c.status is not ClaimStatus.PAID), ZERO)
    return max(invoice.balance - pending, ZERO)


# --- the patient's bills --------------------------------------------------------------------------

def shown_to_patient(invoice: Invoice) -> bool:
    """A bill the patient sees: one that was issued (also if voided later); a draft, or a draft voided before
    issue, never was."""
    return invoice.issued_at is not None and invoice.status is not InvoiceStatus.DRAFT


def refunds_shown_to_patient(invoice: Invoice) -> list[Refund]:
    """The refunds a patient's bill lists: money paid back to them (requested, approved or rejected ones are
    the clinic's own business until then)."""
    return [r for r in invoice.refunds if r.status is RefundStatus.RECORDED]


def patient_bill_filter(patient_id: int) -> sa.ColumnElement[bool]:
    """`shown_to_patient` as SQL, for the patient's own invoices."""
    return sa.and_(Invoice.patient_id == patient_id, Invoice.issued_at.is_not(None),
                   Invoice.status != InvoiceStatus.DRAFT)


def patient_bills_query(patient_id: int) -> sa.Select:
    """The patient's bills, newest first."""
    return (sa.select(Invoice).where(patient_bill_filter(patient_id))
            .order_by(Invoice.issued_at.desc(), Invoice.id.desc()))


def patient_bill(invoice_id: int) -> Invoice | None:
    """One bill with everything the patient's bill page and its PDF show (whose it is: the access policy's
    question)."""
    return db.session.scalar(
        sa.select(Invoice).where(Invoice.id == invoice_id)
        .options(selectinload(Invoice.lines), selectinload(Invoice.payments), selectinload(Invoice.refunds),
                 selectinload(Invoice.claims), selectinload(Invoice.history), sa.orm.joinedload(Invoice.doctor_user),
                 sa.orm.joinedload(Invoice.department), sa.orm.joinedload(Invoice.patient)))


def patient_totals(patient_id: int) -> sa.Row:
    """(due, open): what the patient owes on their open bills, and how many they are."""
    return db.session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(Invoice.balance), 0).label("due"), sa.func.count().label("open"))
        .where(Invoice.patient_id == patient_id,
               Invoice.status.in_((InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID)))).one()


def refunds_in(*statuses: RefundStatus, limit: int = 100) -> list[Refund]:
    """Refunds in these states, newest first."""
    return list(db.session.scalars(sa.select(Refund).where(Refund.status.in_(statuses))
                                   .order_by(Refund.id.desc()).limit(limit)))


def price_items(*, include_inactive: bool = False) -> list[PriceItem]:
    """The price list, active items first, by code."""
    query = sa.select(PriceItem).order_by(PriceItem.active.desc(), PriceItem.code)
    if not include_inactive:
        query = query.where(PriceItem.active.is_(True))
    return list(db.session.scalars(query))
