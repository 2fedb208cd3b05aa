"""Billing through the API: invoices and their lines, issue and void, payments, refunds and insurance claims.

The same services as the billing desk's pages (`app.billing.invoices`, `payments`, `claims`, `queries`) and the
same policy areas: "billing" (clerks and admins) reads, "billing_desk" (clerks) writes, "refund_decisions"
(admins) approves or rejects refunds; a patient's token reads the patient's own issued bills (never a draft).

- Money is a decimal string with two places in every answer ("120.00"), in the invoice's `currency`
  (`HMS_CURRENCY`); a request may send an amount as a string or a number, with at most two decimals.
- An invoice's ETag covers everything it shows: its lines, payments, refunds and claims. Every change to an
  invoice's money, refunds and claims included, takes the invoice's ETag in `If-Match` and answers with the
  invoice as it now is (and its new ETag). Creating a payment, refund request or claim needs no If-Match (the
  services check the balance under the invoice's lock); they answer 201 with what was created.
- A payment requires an `Idempotency-Key`; the key (with the client and user) is also the payment service's own
  key, so a retry never records a second payment, even through another process after the API's record of the
  key is gone.
- A refusal of the billing rules (`BillingError`) is 422 with a pointer when it is about a field of the request,
  409 (`billing-conflict`) when the invoice's state does not allow the change; both carry the service's `code`.
"""
from __future__ import annotations

import hashlib
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

import sqlalchemy as sa
from flask import current_app, request, url_for
from pydantic import Field, PlainSerializer
from sqlalchemy.orm import selectinload

from app.accounts.models import Role
from app.api import bp
from app.api.auth import actor, authorize, require_area
from app.api.framework import (MAX_LIMIT, ApiModel, Reply, check_if_match, decode_cursor, operation, page_model,
                               paged)
from app.api.problems import FieldError, Problem
from app.appointments.models import Appointment
from app.billing import claims as claiming, invoices as invoicing, payments as paying, queries
from app.billing.common import BillingError
from app.billing.models import (Claim, ClaimStatus, Invoice, InvoiceStatus, Payment, PaymentMethod, Refund,
                                RefundStatus)
from app.events.outbox import emit
from app.extensions import db
from app.policy import Kind, Resource, Verb

TAG = "Billing"
Money = Annotated[Decimal, PlainSerializer(lambda amount: f"{amount:.2f}", return_type=str)]
MoneyIn = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=2, description='e.g. "120.50"')]
Id = Annotated[int, Field(ge=1, le=10**18)]
Reason = Annotated[str, Field(min_length=1, max_length=500)]
Reference = Annotated[str, Field(max_length=100)]
MAX_LINES = 100
NOT_FOUND_CODES = {"not_found", "no_line"}
FORBIDDEN_CODES = {"not_admin", "same_person"}
CONFLICT_CODES = {"already_billed"}  # about a field, but the state of another row: 409 as well


# --- representations ---------------------------------------------------------------------------------

class InvoiceLineOut(ApiModel):
    id: int
    description: str
    quantity: int
    unit_price: Money
    line_total: Money
    price_item_id: int | None


class PaymentOut(ApiModel):
    id: int
    invoice_id: int
    amount: Money
    method: PaymentMethod
    paid_on: date
    reference: str | None
    refundable: Money = Field(description="What may still be asked back on this payment.")
    created_at: datetime


class RefundOut(ApiModel):
    id: int
    invoice_id: int
    payment_id: int
    amount: Money
    reason: str
    status: RefundStatus
    requested_at: datetime
    decided_at: datetime | None
    decision_note: str | None
    recorded_on: date | None
    reference: str | None


class ClaimOut(ApiModel):
    id: int
    invoice_id: int
    payer: str
    policy_number: str
    status: ClaimStatus
    claimed_amount: Money
    approved_amount: Money | None
    paid_amount: Money
    payer_reference: str | None
    reason_code: str | None
    submitted_at: datetime
    decided_at: datetime | None
    paid_on: date | None
    withdrawn_at: datetime | None
    withdrawal_reason: str | None


class InvoiceSummaryOut(ApiModel):
    id: int
    number: str | None = Field(description="INV-<year>-<nnnnnn> once issued; a draft has none.")
    status: InvoiceStatus
    patient_id: int
    patient_name: str
    appointment_id: int | None
    currency: str
    total: Money
    balance: Money
    issued_on: date | None
    due_on: date | None


class InvoiceOut(InvoiceSummaryOut):
    doctor_id: int | None
    department_id: int | None
    subtotal: Money
    discount: Money
    discount_reason: str | None
    tax_rate: Money = Field(description="Percent.")
    tax: Money
    patient_paid: Money = Field(description="Payments less recorded refunds.")
    insurer_paid: Money
    insurance_expected: Money = Field(description="What claims are expected to bring (claimed while pending, "
                                                  "approved once decided, paid once paid).")
    patient_due: Money = Field(description="What the patient still owes after the insurer's expected share.")
    notes: str | None
    created_at: datetime
    issued_at: datetime | None
    paid_at: datetime | None
    voided_at: datetime | None
    void_reason: str | None
    lines: list[InvoiceLineOut]
    payments: list[PaymentOut]
    refunds: list[RefundOut] = Field(description="A patient sees only the refunds paid back to them.")
    claims: list[ClaimOut]


InvoicePage = page_model(InvoiceSummaryOut)


# --- requests ----------------------------------------------------------------------------------------

class InvoiceLineIn(ApiModel):
    price_item_id: Id | None = Field(None, description="A service of the price list: its name and price "
                                                       "unless given.")
    description: str | None = Field(None, max_length=200, description="Required without price_item_id.")
    quantity: int = Field(1, ge=1, le=10_000)
    unit_price: Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)] | None = Field(
        None, description="Required without price_item_id.")


class InvoiceIn(ApiModel):
    appointment_id: Id | None = Field(None, description="A completed visit: its consultation fee is the first "
                                                        "line, its patient the invoice's.")
    patient_id: Id | None = Field(None, description="Required without appointment_id.")
    lines: list[InvoiceLineIn] = Field(default_factory=list, max_length=MAX_LINES)
    notes: str | None = Field(None, max_length=500)


class DiscountIn(ApiModel):
    discount: Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)]
    discount_reason: str | None = Field(None, max_length=200, description="Required for a discount above zero.")


class IssueIn(ApiModel):
    due_on: date | None = Field(None, description="Empty: the usual payment terms (HMS_INVOICE_DUE_DAYS).")


class VoidIn(ApiModel):
    reason: Reason


class PaymentIn(ApiModel):
    amount: MoneyIn
    method: PaymentMethod
    paid_on: date | None = Field(None, description="The clinic's today when left out; never in the future.")
    reference: Reference | None = None


class RefundIn(ApiModel):
    amount: MoneyIn
    reason: Reason


class RefundDecisionIn(ApiModel):
    note: str | None = Field(None, max_length=500, description="Required to reject.")


class RefundPaidIn(ApiModel):
    reference: Reference | None = None


class ClaimIn(ApiModel):
    payer: str = Field(min_length=1, max_length=120)
    policy_number: str = Field(min_length=1, max_length=64)
    claimed_amount: MoneyIn


class ClaimDecisionIn(ApiModel):
    status: Literal["approved", "partially_approved", "denied"]
    approved_amount: MoneyIn | None = Field(None, description="Only for a partial approval.")
    payer_reference: Reference | None = None
    reason_code: str | None = Field(None, max_length=40, description="Required for a partial approval or a "
                                                                     "denial, e.g. CO-45.")


class ClaimPaidIn(ApiModel):
    amount: MoneyIn | None = Field(None, description="The approved amount when left out.")
    paid_on: date | None = None
    payer_reference: Reference | None = None


class ClaimWithdrawalIn(ApiModel):
    reason: Reason


class InvoiceQuery(ApiModel):
    patient_id: Id | None = None
    status: InvoiceStatus | Literal["overdue"] | None = None
    issued_from: date | None = Field(None, description="Issued on or after this day (drafts have no issue day).")
    issued_to: date | None = Field(None, description="Issued on or before this day.")
    search: str | None = Field(None, min_length=1, max_length=120, description="A patient's name or email, or "
                                                                               "an invoice number (INV-…).")
    limit: int = Field(50, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(None, max_length=200)


class BillQuery(ApiModel):
    limit: int = Field(50, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(None, max_length=200)


# --- converters --------------------------------------------------------------------------------------

def _currency() -> str:
    return current_app.config["HMS_CURRENCY"]


def _summary(invoice: Invoice) -> dict:
    return dict(id=invoice.id, number=invoice.number, status=invoice.status, patient_id=invoice.patient_id,
                patient_name=invoice.patient.full_name, appointment_id=invoice.appointment_id, currency=_currency(),
                total=invoice.total, balance=invoice.balance, issued_on=invoice.issued_on, due_on=invoice.due_on)


def summary_out(invoice: Invoice) -> InvoiceSummaryOut:
    return InvoiceSummaryOut(**_summary(invoice))


def payment_out(payment: Payment) -> PaymentOut:
    return PaymentOut(id=payment.id, invoice_id=payment.invoice_id, amount=payment.amount, method=payment.method,
                      paid_on=payment.paid_on, reference=payment.reference,
                      refundable=queries.refundable(payment), created_at=payment.created_at)


def refund_out(refund: Refund) -> RefundOut:
    return RefundOut(id=refund.id, invoice_id=refund.invoice_id, payment_id=refund.payment_id, amount=refund.amount,
                     reason=refund.reason, status=refund.status, requested_at=refund.requested_at,
                     decided_at=refund.decided_at, decision_note=refund.decision_note,
                     recorded_on=refund.recorded_on, reference=refund.reference)


def claim_out(claim: Claim) -> ClaimOut:
    return ClaimOut(id=claim.id, invoice_id=claim.invoice_id, payer=claim.payer, policy_number=claim.policy_number,
                    status=claim.status, claimed_amount=claim.claimed_amount, approved_amount=claim.approved_amount,
                    paid_amount=claim.paid_amount, payer_reference=claim.payer_reference,
                    reason_code=claim.reason_code, submitted_at=claim.submitted_at, decided_at=claim.decided_at,
                    paid_on=claim.paid_on, withdrawn_at=claim.withdrawn_at,
                    withdrawal_reason=claim.withdrawal_reason)


def out(invoice: Invoice, *, for_patient: bool = False) -> InvoiceOut:
    """The whole invoice; `for_patient`: as the patient's bill page shows it."""
    share = queries.share(invoice)
    refunds = queries.refunds_shown_to_patient(invoice) if for_patient else invoice.refunds
    return InvoiceOut(
        **_summary(invoice), doctor_id=invoice.doctor_id, department_id=invoice.department_id,
        subtotal=invoice.subtotal, discount=invoice.discount, discount_reason=invoice.discount_reason,
        tax_rate=invoice.tax_rate, tax=invoice.tax, patient_paid=invoice.patient_paid,
        insurer_paid=invoice.insurer_paid, insurance_expected=share.insurance, patient_due=share.patient_due,
        notes=invoice.notes, created_at=invoice.created_at, issued_at=invoice.issued_at, paid_at=invoice.paid_at,
        voided_at=invoice.voided_at, void_reason=invoice.void_reason,
        lines=[InvoiceLineOut(id=line.id, description=line.description, quantity=line.quantity,
                              unit_price=line.unit_price, line_total=line.line_total,
                              price_item_id=line.price_item_id) for line in invoice.lines],
        payments=[payment_out(p) for p in invoice.payments], refunds=[refund_out(r) for r in refunds],
        claims=[claim_out(c) for c in invoice.claims])


def _refused(error: BillingError, body: type[ApiModel] | None = None, prefix: str = ""):
    """A service's refusal as a problem: 404/403 for a few codes, 422 on the field when the request has it,
    409 otherwise."""
    extensions = {"code": error.code}
    if error.code in NOT_FOUND_CODES:
        raise Problem(404, str(error)) from None
    if error.code in FORBIDDEN_CODES:
        raise Problem(403, str(error), extensions=extensions) from None
    if (error.field and error.code not in CONFLICT_CODES and body is not None
            and error.field in body.model_fields):
        raise Problem(422, str(error), errors=[FieldError(f"{prefix}/{error.field}", str(error))],
                      extensions=extensions) from None
    raise Problem(409, str(error), slug="billing-conflict", title="Not possible in the invoice's state",
                  extensions=extensions) from None


# --- loading under the policy ------------------------------------------------------------------------

def _read(invoice_id: int) -> Invoice:
    """An invoice the token may read, with everything its representation shows (404 otherwise)."""
    invoice = queries.patient_bill(invoice_id)
    authorize(Verb.READ, Resource.invoice(invoice_id, invoice))
    return invoice


def _lock(invoice_id: int | None, ident: object) -> Invoice:
    """The invoice a clerk's (or an admin's) change is about, locked and read afresh; 404 when there is none."""
    invoice = None
    if invoice_id is not None:
        invoice = db.session.scalar(sa.select(Invoice).where(Invoice.id == invoice_id).with_for_update()
                                    .execution_options(populate_existing=True))
    if invoice is None:
        authorize(Verb.WRITE, Resource.missing(Kind.INVOICE, ident))
    authorize(Verb.WRITE, Resource.invoice(invoice.id, invoice))
    db.session.expire(invoice, ["lines", "payments", "refunds", "claims"])
    return invoice


def _change(invoice_id: int, area: str = "billing_desk") -> Invoice:
    """Before a change guarded by the invoice's ETag: the area, the locked invoice, If-Match."""
    require_area(area, Kind.INVOICE)
    invoice = _lock(invoice_id, invoice_id)
    check_if_match(out(invoice))
    return invoice


def _invoice_of(model, row_id: int) -> int | None:
    return db.session.scalar(sa.select(model.invoice_id).where(model.id == row_id))


def _answer_invoice(invoice_id: int) -> InvoiceOut:
    db.session.flush()
    return out(db.session.get(Invoice, invoice_id))


# --- reading -----------------------------------------------------------------------------------------

@operation(bp, "GET", "/invoices", tag=TAG, summary="List invoices", query=InvoiceQuery, response=InvoicePage,
           scope="Invoice.s", errors=(403, 422))
def list_invoices(query: InvoiceQuery):
    """Billing staff: invoices newest first, filtered by patient, status (or `overdue`), issue days and a
    search; a cursor gives the next page."""
    require_area("billing", Kind.INVOICE, Verb.READ)
    if query.issued_from and query.issued_to and query.issued_to < query.issued_from:
        raise Problem(422, "The end day is before the start day.",
                      errors=[FieldError("issued_to", "On or after issued_from.", in_query=True)])
    select = queries.invoice_query(status=query.status, patient_id=query.patient_id, date_from=query.issued_from,
                                   date_to=query.issued_to, search=query.search)
    position = decode_cursor(query.cursor, (int,))
    if position is not None:
        select = select.where(Invoice.id < position[0])
    rows = list(db.session.scalars(select.limit(query.limit + 1)))
    items, cursor, headers = paged(rows, query.limit, lambda i: [i.id], request.endpoint)
    return Reply(InvoicePage(items=[summary_out(i) for i in items], next_cursor=cursor), headers=headers)


@operation(bp, "GET", "/patients/<id:patient_id>/invoices", tag=TAG, summary="A patient's own bills",
           query=BillQuery, response=InvoicePage, scope="Invoice.s", errors=(403, 404))
def list_patient_invoices(patient_id: int, query: BillQuery):
    """The patient's issued bills (never a draft), newest first; a patient's token reads no one else's."""
    require_area("patient", Kind.INVOICE, Verb.READ)
    if actor().user.id != patient_id:
        authorize(Verb.READ, Resource.missing(Kind.INVOICE, f"patient:{patient_id}"))
    select = queries.patient_bills_query(patient_id).options(selectinload(Invoice.patient))
    position = decode_cursor(query.cursor, (str, int))
    if position is not None:
        try:
            after = datetime.fromisoformat(position[0])
            if after.tzinfo is None:
                raise ValueError("naive")
        except ValueError:
            raise Problem(422, "The cursor is not one this API gave.",
                          errors=[FieldError("cursor", "Not a cursor of this list.", in_query=True)]) from None
        select = select.where(sa.or_(Invoice.issued_at < after,
                                     sa.and_(Invoice.issued_at == after, Invoice.id < position[1])))
    rows = list(db.session.scalars(select.limit(query.limit + 1)))
    items, cursor, headers = paged(rows, query.limit, lambda i: [i.issued_at.isoformat(), i.id],
                                   request.endpoint, patient_id=patient_id)
    return Reply(InvoicePage(items=[summary_out(i) for i in items], next_cursor=cursor), headers=headers)


@operation(bp, "GET", "/invoices/<id:invoice_id>", tag=TAG, summary="Get an invoice", response=InvoiceOut,
           scope="Invoice.r", errors=(404,))
def get_invoice(invoice_id: int):
    """With its lines, payments, refunds, claims and balance. A patient reads their own issued bill (and the
    read is recorded, as on the bill's page); billing staff read every invoice."""
    invoice = _read(invoice_id)
    if actor().role is Role.PATIENT:
        emit("invoice.viewed", "invoice", invoice.id, {"number": invoice.number}, patient_id=invoice.patient_id)
        return out(invoice, for_patient=True)
    return out(invoice)


# --- invoices ----------------------------------------------------------------------------------------

@operation(bp, "POST", "/invoices", tag=TAG, summary="Create a draft invoice", body=InvoiceIn, response=InvoiceOut,
           status=201, scope="Invoice.c", idempotent=True, errors=(403, 409, 422))
def create_invoice(body: InvoiceIn):
    """A draft, from a completed visit (its consultation fee first) or for a patient, with the given lines.
    A visit has at most one live invoice (409 `already_billed` otherwise)."""
    require_area("billing_desk", Kind.INVOICE)
    patient_id = body.patient_id
    if body.appointment_id is not None and patient_id is None:
        patient_id = db.session.scalar(sa.select(Appointment.patient_id)
                                       .where(Appointment.id == body.appointment_id))
        if patient_id is None:
            raise Problem(422, "No such appointment.", errors=[FieldError("/appointment_id", "No such appointment.")])
    if patient_id is None:
        raise Problem(422, "Name the patient or the visit.",
                      errors=[FieldError("/patient_id", "Required without appointment_id.")])
    try:
        invoice = invoicing.create_invoice(patient_id, actor().user, appointment_id=body.appointment_id,
                                           notes=body.notes)
    except BillingError as error:
        _refused(error, InvoiceIn)
    for index, line in enumerate(body.lines):
        try:
            invoicing.add_line(invoice.id, actor().user, description=line.description, quantity=line.quantity,
                               unit_price=line.unit_price, price_item_id=line.price_item_id)
        except BillingError as error:
            _refused(error, InvoiceLineIn, prefix=f"/lines/{index}")
    return Reply(_answer_invoice(invoice.id), headers={"Location": url_for("api.get_invoice", invoice_id=invoice.id)})


@operation(bp, "POST", "/invoices/<id:invoice_id>/lines", tag=TAG, summary="Add a line to a draft",
           body=InvoiceLineIn, response=InvoiceOut, scope="Invoice.u", if_match=True,
           errors=(403, 404, 409, 412, 422, 428))
def add_invoice_line(invoice_id: int, body: InvoiceLineIn):
    """A service of the price list (its name and current price unless given) or a described one."""
    _change(invoice_id)
    try:
        invoicing.add_line(invoice_id, actor().user, description=body.description, quantity=body.quantity,
                           unit_price=body.unit_price, price_item_id=body.price_item_id)
    except BillingError as error:
        _refused(error, InvoiceLineIn)
    return _answer_invoice(invoice_id)


@operation(bp, "DELETE", "/invoices/<id:invoice_id>/lines/<id:line_id>", tag=TAG, summary="Remove a draft's line",
           response=InvoiceOut, scope="Invoice.d", if_match=True, errors=(403, 404, 409, 412, 428))
def remove_invoice_line(invoice_id: int, line_id: int):
    """Only from a draft; refused (409) while the discount would exceed the remaining lines."""
    _change(invoice_id)
    try:
        invoicing.remove_line(invoice_id, line_id, actor().user)
    except BillingError as error:
        _refused(error)
    return _answer_invoice(invoice_id)


@operation(bp, "POST", "/invoices/<id:invoice_id>/discount", tag=TAG, summary="Set a draft's discount",
           body=DiscountIn, response=InvoiceOut, scope="Invoice.u", if_match=True,
           errors=(403, 404, 409, 412, 422, 428))
def set_invoice_discount(invoice_id: int, body: DiscountIn):
    """At most the lines' sum, with a reason when above zero; 0 removes it."""
    _change(invoice_id)
    try:
        invoicing.set_discount(invoice_id, actor().user, body.discount, body.discount_reason)
    except BillingError as error:
        _refused(error, DiscountIn)
    return _answer_invoice(invoice_id)


@operation(bp, "POST", "/invoices/<id:invoice_id>/issue", tag=TAG, summary="Issue a draft", body=IssueIn,
           response=InvoiceOut, scope="Invoice.u", if_match=True, errors=(403, 404, 409, 412, 422, 428))
def issue_invoice(invoice_id: int, body: IssueIn):
    """Gives the invoice its number and due day; the patient is told by email and sees the bill from now on."""
    _change(invoice_id)
    try:
        invoicing.issue_invoice(invoice_id, actor().user, due_on=body.due_on)
    except BillingError as error:
        _refused(error, IssueIn)
    return _answer_invoice(invoice_id)


@operation(bp, "POST", "/invoices/<id:invoice_id>/void", tag=TAG, summary="Void an invoice", body=VoidIn,
           response=InvoiceOut, scope="Invoice.u", if_match=True, errors=(403, 404, 409, 412, 422, 428))
def void_invoice(invoice_id: int, body: VoidIn):
    """A draft, or an issued invoice with no money received, no pending refund and no open claim."""
    _change(invoice_id)
    try:
        invoicing.void_invoice(invoice_id, actor().user, body.reason)
    except BillingError as error:
        _refused(error, VoidIn)
    return _answer_invoice(invoice_id)


# --- payments and refunds ----------------------------------------------------------------------------

def _payment_key() -> str:
    """The payment service's own idempotency key: the client, the user and their Idempotency-Key, hashed."""
    raw = f"api\n{actor().client_id}\n{actor().user.id}\n{request.headers['Idempotency-Key']}"
    return hashlib.sha256(raw.encode()).hexdigest()


@operation(bp, "POST", "/invoices/<id:invoice_id>/payments", tag=TAG, summary="Record a payment", body=PaymentIn,
           response=PaymentOut, status=201, scope="Invoice.c", idempotency_required=True,
           errors=(400, 403, 404, 409, 422))
def record_payment(invoice_id: int, body: PaymentIn):
    """Money received from the patient, at most the balance, on an issued invoice. `Idempotency-Key` is
    required: a retry answers the first payment and never records a second."""
    require_area("billing_desk", Kind.INVOICE)
    _lock(invoice_id, invoice_id)
    try:
        payment = paying.record_payment(invoice_id, actor().user, amount=body.amount, method=body.method,
                                        paid_on=body.paid_on, idempotency_key=_payment_key(),
                                        reference=body.reference)
    except BillingError as error:
        _refused(error, PaymentIn)
    return payment_out(payment)


@operation(bp, "POST", "/payments/<id:payment_id>/refunds", tag=TAG, summary="Request a refund", body=RefundIn,
           response=RefundOut, status=201, scope="Invoice.c", idempotent=True, errors=(403, 404, 409, 422))
def request_refund(payment_id: int, body: RefundIn):
    """A clerk asks to give back part or all of a payment; an administrator decides."""
    require_area("billing_desk", Kind.INVOICE)
    _lock(_invoice_of(Payment, payment_id), f"payment:{payment_id}")
    try:
        refund = paying.request_refund(payment_id, actor().user, body.amount, body.reason)
    except BillingError as error:
        _refused(error, RefundIn)
    return refund_out(refund)


def _refund_change(refund_id: int, area: str) -> None:
    require_area(area, Kind.INVOICE)
    invoice = _lock(_invoice_of(Refund, refund_id), f"refund:{refund_id}")
    check_if_match(out(invoice))


@operation(bp, "POST", "/refunds/<id:refund_id>/approve", tag=TAG, summary="Approve a refund",
           body=RefundDecisionIn, response=InvoiceOut, scope="Invoice.u", if_match=True,
           errors=(403, 404, 409, 412, 428))
def approve_refund(refund_id: int, body: RefundDecisionIn):
    """An administrator (never the requester) approves; a clerk then records it paid. If-Match: the invoice's
    ETag; the answer is the invoice."""
    _refund_change(refund_id, "refund_decisions")
    try:
        refund = paying.approve_refund(refund_id, actor().user, body.note)
    except BillingError as error:
        _refused(error, RefundDecisionIn)
    return _answer_invoice(refund.invoice_id)


@operation(bp, "POST", "/refunds/<id:refund_id>/reject", tag=TAG, summary="Reject a refund",
           body=RefundDecisionIn, response=InvoiceOut, scope="Invoice.u", if_match=True,
           errors=(403, 404, 409, 412, 422, 428))
def reject_refund(refund_id: int, body: RefundDecisionIn):
    """An administrator rejects, saying why (`note`). If-Match: the invoice's ETag."""
    _refund_change(refund_id, "refund_decisions")
    try:
        refund = paying.reject_refund(refund_id, actor().user, body.note)
    except BillingError as error:
        _refused(error, RefundDecisionIn)
    return _answer_invoice(refund.invoice_id)


@operation(bp, "POST", "/refunds/<id:refund_id>/paid", tag=TAG, summary="Record a refund paid back",
           body=RefundPaidIn, response=InvoiceOut, scope="Invoice.u", if_match=True,
           errors=(403, 404, 409, 412, 428))
def record_refund_paid(refund_id: int, body: RefundPaidIn):
    """The approved money went back to the patient: the balance rises by it. If-Match: the invoice's ETag."""
    _refund_change(refund_id, "billing_desk")
    try:
        refund = paying.record_refund(refund_id, actor().user, body.reference)
    except BillingError as error:
        _refused(error, RefundPaidIn)
    return _answer_invoice(refund.invoice_id)


# --- claims ------------------------------------------------------------------------------------------

@operation(bp, "POST", "/invoices/<id:invoice_id>/claims", tag=TAG, summary="Submit an insurance claim",
           body=ClaimIn, response=ClaimOut, status=201, scope="Invoice.c", idempotent=True,
           errors=(403, 404, 409, 422))
def submit_claim(invoice_id: int, body: ClaimIn):
    """On an issued invoice, for at most the balance less what open claims are expected to bring."""
    require_area("billing_desk", Kind.INVOICE)
    _lock(invoice_id, invoice_id)
    try:
        claim = claiming.submit_claim(invoice_id, actor().user, payer=body.payer, policy_number=body.policy_number,
                                      claimed_amount=body.claimed_amount)
    except BillingError as error:
        _refused(error, ClaimIn)
    return claim_out(claim)


def _claim_change(claim_id: int) -> None:
    require_area("billing_desk", Kind.INVOICE)
    invoice = _lock(_invoice_of(Claim, claim_id), f"claim:{claim_id}")
    check_if_match(out(invoice))


@operation(bp, "POST", "/claims/<id:claim_id>/decide", tag=TAG, summary="Record the insurer's decision",
           body=ClaimDecisionIn, response=InvoiceOut, scope="Invoice.u", if_match=True,
           errors=(403, 404, 409, 412, 422, 428))
def decide_claim(claim_id: int, body: ClaimDecisionIn):
    """Approved (in full), partially approved (less, with a reason code) or denied (with a reason code); the
    patient is told by email. If-Match: the invoice's ETag."""
    _claim_change(claim_id)
    try:
        claim = claiming.decide_claim(claim_id, actor().user, status=body.status,
                                      approved_amount=body.approved_amount, payer_reference=body.payer_reference,
                                      reason_code=body.reason_code)
    except BillingError as error:
        _refused(error, ClaimDecisionIn)
    return _answer_invoice(claim.invoice_id)


@operation(bp, "POST", "/claims/<id:claim_id>/paid", tag=TAG, summary="Record the insurer's payment",
           body=ClaimPaidIn, response=InvoiceOut, scope="Invoice.u", if_match=True,
           errors=(403, 404, 409, 412, 422, 428))
def record_claim_paid(claim_id: int, body: ClaimPaidIn):
    """At most the approved amount and the balance; the balance falls by it. If-Match: the invoice's ETag."""
    _claim_change(claim_id)
    try:
        claim = claiming.mark_claim_paid(claim_id, actor().user, amount=body.amount, paid_on=body.paid_on,
                                         payer_reference=body.payer_reference)
    except BillingError as error:
        _refused(error, ClaimPaidIn)
    return _answer_invoice(claim.invoice_id)


@operation(bp, "POST", "/claims/<id:claim_id>/withdraw", tag=TAG, summary="Withdraw a claim",
           body=ClaimWithdrawalIn, response=InvoiceOut, scope="Invoice.u", if_match=True,
           errors=(403, 404, 409, 412, 422, 428))
def withdraw_claim(claim_id: int, body: ClaimWithdrawalIn):
    """Only before the insurer's answer, with a reason. If-Match: the invoice's ETag."""
    _claim_change(claim_id)
    try:
        claim = claiming.withdraw_claim(claim_id, actor().user, body.reason)
    except BillingError as error:
        _refused(error, ClaimWithdrawalIn)
    return _answer_invoice(claim.invoice_id)
