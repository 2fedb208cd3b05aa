"""Invoices: the filtered list, a new invoice (a patient or a completed visit), draft editing, issue, void,
and the invoice page with its payments, refunds, claims and history."""
from __future__ import annotations

from flask import abort, flash, request, url_for

from app.accounts.queries import find_patients
from app.billing import invoices as invoicing, payments, queries
from app.billing.common import BillingError
from app.billing.models import Invoice, InvoiceStatus
from app.clerks.forms import (ClaimForm, DiscountForm, InvoiceFilterForm, IssueForm, LineForm, NewInvoiceForm,
                              PatientSearchForm, PaymentForm, VoidForm, show_error)
from app.clerks.views import actor, bp, invoice_or_404
from app.extensions import db
from app.timeutil import clinic_today
from app.web.access import requires
from app.web.pagination import paginate
from app.web.rendering import is_htmx, redirect_to, render

PER_PAGE = 25


@bp.route("/invoices")
def invoices():
    form = InvoiceFilterForm(request.args)
    valid = form.validate()
    query = queries.invoice_query(status=form.status.data or None, date_from=form.date_from.data,
                                  date_to=form.date_to.data, search=form.q.data) if valid \
        else queries.invoice_query()
    page = paginate(query, per_page=PER_PAGE)
    return render("billing/invoices.html", fragment="billing/_invoices_table.html", form=form, page=page,
                  today=clinic_today(), status=200 if valid else 422)


# --- new invoice -------------------------------------------------------------------------------------

@bp.route("/invoices/new")
@requires("billing_desk")
def new_invoice():
    search = PatientSearchForm(request.args)
    search.validate()
    patients = find_patients(search.q.data, limit=10)
    return render("billing/new_invoice.html", fragment="billing/_patient_results.html", search=search,
                  patients=patients, visits=queries.completed_appointments_to_bill(), form=NewInvoiceForm())


@bp.route("/invoices", methods=["POST"])
@requires("billing_desk")
def create_invoice():
    form = NewInvoiceForm()
    if form.validate_on_submit():
        try:
            invoice = invoicing.create_invoice(form.patient_id.data, actor(), appointment_id=form.appointment_id.data)
            flash("Draft invoice created. Add the services, then issue it.", "success")
            return redirect_to(url_for("billing.invoice", invoice_id=invoice.id))
        except BillingError as error:
            db.session.rollback()
            flash(str(error), "danger")
    else:
        flash(" ".join(e for errors in form.errors.values() for e in errors), "danger")
    return redirect_to(url_for("billing.new_invoice"))


# --- the invoice page --------------------------------------------------------------------------------

def _forms(invoice: Invoice, **given) -> dict:
    """Every form the invoice page may show, blank unless one is given (with its errors)."""
    forms = {}
    if invoice.status is InvoiceStatus.DRAFT:
        forms["line_form"] = given.get("line_form") or LineForm(items=queries.active_price_items(),
                                                                formdata=None)
        forms["discount_form"] = given.get("discount_form") or DiscountForm(
            formdata=None, data={"discount": f"{invoice.discount:.2f}" if invoice.discount else "",
                                 "discount_reason": invoice.discount_reason or ""})
        forms["issue_form"] = given.get("issue_form") or IssueForm(formdata=None)
    if invoice.status is not InvoiceStatus.VOID:
        forms["void_form"] = given.get("void_form") or VoidForm(formdata=None)
    return forms


def _page(invoice: Invoice, *, status: int = 200, fragment: str | None = None, oob: bool = False, **given):
    """The invoice page; `oob` makes the draft editor fragment carry the history too (swapped out of band)."""
    return render("billing/invoice.html", fragment=fragment, status=status, invoice=invoice, oob=oob,
                  share=queries.share(invoice), refundable=queries.refundable,
                  today=clinic_today(), **_forms(invoice, **given))


@bp.route("/invoices/<int:invoice_id>")
def invoice(invoice_id: int):
    return _page(invoice_or_404(invoice_id))


def _draft_answer(invoice_id: int, form_name: str, form, error: BillingError | None = None):
    """The draft editor again: in place for HTMX, the whole page otherwise; 422 when the form was refused."""
    db.session.expire_all()
    invoice = invoice_or_404(invoice_id)
    if error is not None:
        show_error(form, error)
    failed = bool(form.errors or form.form_errors)
    if not failed and not is_htmx():
        return redirect_to(url_for("billing.invoice", invoice_id=invoice.id))
    return _page(invoice, status=422 if failed else 200, fragment="billing/_draft_editor.html", oob=is_htmx(),
                 **({form_name: form} if failed else {}))


@bp.route("/invoices/<int:invoice_id>/lines", methods=["POST"])
@requires("billing_desk")
def add_line(invoice_id: int):
    invoice_or_404(invoice_id)
    form = LineForm(items=queries.active_price_items())
    if not form.validate_on_submit():
        return _draft_answer(invoice_id, "line_form", form)
    try:
        invoicing.add_line(invoice_id, actor(), description=form.description.data, quantity=form.quantity.data,
                           unit_price=(form.unit_price.data or "").strip() or None,
                           price_item_id=int(form.price_item_id.data) if form.price_item_id.data else None)
        return _draft_answer(invoice_id, "line_form", form)
    except BillingError as error:
        db.session.rollback()
        return _draft_answer(invoice_id, "line_form", form, error)


@bp.route("/invoices/<int:invoice_id>/lines/<int:line_id>/delete", methods=["POST"])
@requires("billing_desk")
def remove_line(invoice_id: int, line_id: int):
    invoice = invoice_or_404(invoice_id)
    try:
        invoicing.remove_line(invoice_id, line_id, actor())
    except BillingError as error:  # e.g. the discount would exceed the remaining lines: say so beside it
        db.session.rollback()
        form = DiscountForm(formdata=None, data={"discount": f"{invoice.discount:.2f}",
                                                 "discount_reason": invoice.discount_reason or ""})
        return _draft_answer(invoice_id, "discount_form", form, error)
    return _draft_answer(invoice_id, "discount_form", DiscountForm(formdata=None))


@bp.route("/invoices/<int:invoice_id>/discount", methods=["POST"])
@requires("billing_desk")
def set_discount(invoice_id: int):
    invoice_or_404(invoice_id)
    form = DiscountForm()
    if not form.validate_on_submit():
        return _draft_answer(invoice_id, "discount_form", form)
    try:
        invoicing.set_discount(invoice_id, actor(), (form.discount.data or "").strip() or "0",
                               form.discount_reason.data)
        return _draft_answer(invoice_id, "discount_form", form)
    except BillingError as error:
        db.session.rollback()
        return _draft_answer(invoice_id, "discount_form", form, error)


@bp.route("/invoices/<int:invoice_id>/issue", methods=["POST"])
@requires("billing_desk")
def issue(invoice_id: int):
    invoice = invoice_or_404(invoice_id)
    form = IssueForm()
    if form.validate_on_submit():
        try:
            invoicing.issue_invoice(invoice_id, actor(), due_on=form.due_on.data)
            flash(f"Invoice {invoice.number} issued; the patient is told by email.", "success")
            return redirect_to(url_for("billing.invoice", invoice_id=invoice_id))
        except BillingError as error:
            db.session.rollback()
            show_error(form, error)
    db.session.expire_all()
    return _page(invoice_or_404(invoice_id), status=422, issue_form=form)


@bp.route("/invoices/<int:invoice_id>/void", methods=["POST"])
@requires("billing_desk")
def void(invoice_id: int):
    invoice_or_404(invoice_id)
    form = VoidForm()
    if form.validate_on_submit():
        try:
            invoice = invoicing.void_invoice(invoice_id, actor(), form.reason.data)
            flash(f"{invoice.label} is void.", "success")
            return redirect_to(url_for("billing.invoice", invoice_id=invoice_id))
        except BillingError as error:
            db.session.rollback()
            show_error(form, error)
    db.session.expire_all()
    return _page(invoice_or_404(invoice_id), status=422, void_form=form)


def blank_payment_form(invoice: Invoice) -> PaymentForm:
    """A payment form for the balance, with a fresh idempotency key made now, as the form is shown."""
    return PaymentForm(formdata=None, data={"amount": f"{invoice.balance:.2f}", "method": "card",
                                            "paid_on": clinic_today(),
                                            "idempotency_key": payments.new_idempotency_key()})


def blank_claim_form(invoice: Invoice) -> ClaimForm:
    profile = invoice.patient.patient
    return ClaimForm(formdata=None, data={
        "payer": (profile.insurance_provider if profile else None) or "",
        "policy_number": (profile.insurance_policy_number if profile else None) or "",
        "claimed_amount": f"{queries.claimable(invoice):.2f}"})


def require_open(invoice: Invoice) -> None:
    if invoice.status not in (InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID):
        abort(409)
