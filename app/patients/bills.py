"""A patient's bills: the list with status and balance, one bill in detail, its PDF, and the billing history.

Routes of the patients blueprint. Drafts are the clinic's work in progress and are never shown. Another
patient's bill answers 404 (the access policy, audited), the PDF too. Opening a bill and downloading its PDF
are recorded as events (`invoice.viewed`, `invoice.pdf_downloaded`), so the audit trail shows who read it.
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app, make_response
from flask_login import current_user

from app.billing.models import Claim, Invoice, InvoiceHistory, InvoiceStatus, Payment, Refund
from app.billing.pdf import render_pdf
from app.billing.queries import (Share, patient_bill, patient_bill_filter, patient_bills_query, patient_totals,
                                refunds_shown_to_patient, share)
from app.events.outbox import emit
from app.patients.views import bp
from app.policy import Resource, Verb
from app.timeutil import utcnow
from app.web.access import authorize
from app.web.pagination import paginate
from app.web.rendering import render

PER_PAGE = 20


@dataclass(frozen=True)
class BillSummary:
    """What a bill's page and PDF show beside the stored figures."""

    payments: list[Payment]
    refunds: list[Refund]  # recorded ones: money paid back to the patient
    claims: list[Claim]
    history: list[InvoiceHistory]
    share: Share  # who is expected to pay what (queries.share)

    @classmethod
    def of(cls, invoice: Invoice) -> BillSummary:
        return cls(payments=list(invoice.payments),
                   refunds=refunds_shown_to_patient(invoice),
                   claims=list(invoice.claims), share=share(invoice),
                   history=[h for h in invoice.history if h.to_status is not InvoiceStatus.DRAFT])


def _own_bill(invoice_id: int) -> Invoice:
    """The signed-in patient's issued bill with everything its page shows; 404 for anyone else's or a draft."""
    invoice = patient_bill(invoice_id)
    authorize(Verb.READ, Resource.invoice(invoice_id, invoice))
    return invoice


@bp.route("/bills")
def bills():
    page = paginate(patient_bills_query(current_user.id).options(sa.orm.joinedload(Invoice.doctor_user)),
                    per_page=PER_PAGE)
    return render("patients/bills/list.html", fragment="patients/bills/_list.html", page=page,
                  totals=patient_totals(current_user.id))


@bp.route("/bills/history")
def bills_history():
    """Every change to the patient's bills since they were issued, newest first: issued, payments, refunds,
    claims and insurers' decisions (editing a draft is the clinic's business)."""
    query = (sa.select(InvoiceHistory).join(Invoice, Invoice.id == InvoiceHistory.invoice_id)
             .where(patient_bill_filter(current_user.id), InvoiceHistory.to_status != InvoiceStatus.DRAFT)
             .options(sa.orm.contains_eager(InvoiceHistory.invoice))
             .order_by(InvoiceHistory.at.desc(), InvoiceHistory.id.desc()))
    page = paginate(query, per_page=PER_PAGE * 2)
    return render("patients/bills/history.html", fragment="patients/bills/_history.html", page=page)


@bp.route("/bills/<int:invoice_id>")
def bill(invoice_id: int):
    invoice = _own_bill(invoice_id)
    emit("invoice.viewed", "invoice", invoice.id, {"number": invoice.number}, patient_id=invoice.patient_id)
    return render("patients/bills/detail.html", invoice=invoice, summary=BillSummary.of(invoice))


@bp.route("/bills/<int:invoice_id>/pdf")
def bill_pdf(invoice_id: int):
    invoice = _own_bill(invoice_id)
    pdf = render_pdf("patients/bills/invoice_pdf.html", invoice=invoice, summary=BillSummary.of(invoice),
                     clinic_name=current_app.config["HMS_CLINIC_NAME"],
                     clinic_timezone=current_app.config["HMS_TIMEZONE"], printed_at=utcnow())
    emit("invoice.pdf_downloaded", "invoice", invoice.id, {"number": invoice.number}, patient_id=invoice.patient_id)
    response = make_response(pdf)
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = f'attachment; filename="{invoice.number or invoice.id}.pdf"'
    response.headers["Content-Length"] = str(len(pdf))
    return response
