"""Money on an invoice: payments, refunds (clerk requests, admin decides, clerk records) and insurance claims.

Each form is its own small page (readable on a phone). HTMX posts it in place: a refusal re-renders the form
with messages beside the fields (422); success redirects to the invoice.
"""
from __future__ import annotations

from flask import abort, flash, request, url_for

from app.billing import claims, payments, queries
from app.billing.common import BillingError
from app.billing.models import Claim, ClaimStatus, Payment, Refund, RefundStatus
from app.clerks.forms import (ClaimDecisionForm, ClaimForm, ClaimPaidForm, ClaimWithdrawalForm, PaymentForm,
                              RecordRefundForm, RefundDecisionForm, RefundRequestForm, show_error)
from app.clerks.invoices import blank_claim_form, blank_payment_form, require_open
from app.clerks.views import actor, bp, invoice_or_404
from app.extensions import db
from app.timeutil import clinic_today
from app.web.access import requires
from app.web.rendering import redirect_to, render, render_form_errors, safe_next


def _or_404(model, object_id: int):
    row = db.session.get(model, object_id)
    if row is None:
        abort(404)
    return row


def _back_to_invoice(invoice_id: int, message: str):
    flash(message, "success")
    return redirect_to(url_for("billing.invoice", invoice_id=invoice_id))


# --- payments ----------------------------------------------------------------------------------------

@bp.route("/invoices/<int:invoice_id>/payments/new", methods=["GET", "POST"])
@requires("billing_desk")
def new_payment(invoice_id: int):
    invoice = invoice_or_404(invoice_id)
    if request.method == "GET":
        require_open(invoice)
        return render("billing/payment_form.html", invoice=invoice, form=blank_payment_form(invoice))
    form = PaymentForm()
    if form.validate_on_submit():
        try:
            payment = payments.record_payment(invoice_id, actor(), amount=form.amount.data.strip(),
                                              method=form.method.data, paid_on=form.paid_on.data,
                                              idempotency_key=form.idempotency_key.data,
                                              reference=form.reference.data)
            return _back_to_invoice(invoice_id, f"Payment of {payment.amount:,.2f} recorded.")
        except BillingError as error:
            db.session.rollback()
            show_error(form, error)
    form.form_errors.extend(form.idempotency_key.errors)  # a hidden field: its message goes on top
    db.session.expire_all()
    return render_form_errors("billing/payment_form.html", fragment="billing/_payment_form.html",
                              invoice=invoice_or_404(invoice_id), form=form)


# --- refunds -----------------------------------------------------------------------------------------

@bp.route("/payments/<int:payment_id>/refund", methods=["GET", "POST"])
@requires("billing_desk")
def request_refund(payment_id: int):
    payment = _or_404(Payment, payment_id)
    left = queries.refundable(payment)
    form = RefundRequestForm() if request.method == "POST" else RefundRequestForm(
        formdata=None, data={"amount": f"{left:.2f}"})
    context = {"payment": payment, "invoice": payment.invoice, "left": left, "form": form}
    if request.method == "GET":
        return render("billing/refund_form.html", **context)
    if form.validate_on_submit():
        try:
            payments.request_refund(payment_id, actor(), form.amount.data.strip(), form.reason.data)
            return _back_to_invoice(payment.invoice_id, "Refund requested. An administrator must approve it.")
        except BillingError as error:
            db.session.rollback()
            show_error(form, error)
    return render_form_errors("billing/refund_form.html", fragment="billing/_refund_form.html", **context)


@bp.route("/refunds")
def refunds():
    return render("billing/refunds.html", to_decide=queries.refunds_in(RefundStatus.REQUESTED),
                  to_record=queries.refunds_in(RefundStatus.APPROVED),
                  done=queries.refunds_in(RefundStatus.RECORDED, RefundStatus.REJECTED, limit=20),
                  decision_form=RefundDecisionForm(formdata=None), record_form=RecordRefundForm(formdata=None))


def _refund_answer(refund: Refund, error: BillingError | None, done: str, form=None):
    if error is None:
        flash(done, "success")
        return redirect_to(safe_next(request.form.get("next"), url_for("billing.refunds")))
    if form is not None:
        show_error(form, error)
    db.session.expire_all()
    refund = db.session.get(Refund, refund.id)
    return render_form_errors("billing/refund_decision.html", refund=refund, form=form or RefundDecisionForm(),
                              error=error, record_form=RecordRefundForm(formdata=None))


@bp.route("/refunds/<int:refund_id>", methods=["GET"])
def refund(refund_id: int):
    return render("billing/refund_decision.html", refund=_or_404(Refund, refund_id), error=None,
                  form=RefundDecisionForm(formdata=None), record_form=RecordRefundForm(formdata=None))


@bp.route("/refunds/<int:refund_id>/<any(approve, reject):decision>", methods=["POST"])
@requires("refund_decisions")
def decide_refund(refund_id: int, decision: str):
    refund = _or_404(Refund, refund_id)
    form = RefundDecisionForm()
    if not form.validate_on_submit():
        return render_form_errors("billing/refund_decision.html", refund=refund, form=form, error=None,
                                  record_form=RecordRefundForm(formdata=None))
    try:
        decide = payments.approve_refund if decision == "approve" else payments.reject_refund
        decide(refund_id, actor(), form.note.data)
    except BillingError as error:
        db.session.rollback()
        return _refund_answer(refund, error, "", form)
    return _refund_answer(refund, None, "Refund approved: the clerk can now pay it back." if decision == "approve"
                          else "Refund rejected.")


@bp.route("/refunds/<int:refund_id>/record", methods=["POST"])
@requires("billing_desk")
def record_refund(refund_id: int):
    refund = _or_404(Refund, refund_id)
    form = RecordRefundForm()
    if form.validate_on_submit():
        try:
            payments.record_refund(refund_id, actor(), form.reference.data)
            return _back_to_invoice(refund.invoice_id, f"Refund of {refund.amount:,.2f} recorded; the balance rose"
                                                        " by it.")
        except BillingError as error:
            db.session.rollback()
            return _refund_answer(refund, error, "", None)
    return render_form_errors("billing/refund_decision.html", refund=refund, form=RefundDecisionForm(formdata=None),
                              error=None, record_form=form)


# --- claims ------------------------------------------------------------------------------------------

@bp.route("/invoices/<int:invoice_id>/claims/new", methods=["GET", "POST"])
@requires("billing_desk")
def new_claim(invoice_id: int):
    invoice = invoice_or_404(invoice_id)
    if request.method == "GET":
        require_open(invoice)
        return render("billing/claim_form.html", invoice=invoice, form=blank_claim_form(invoice),
                      room=queries.claimable(invoice))
    form = ClaimForm()
    if form.validate_on_submit():
        try:
            claims.submit_claim(invoice_id, actor(), payer=form.payer.data, policy_number=form.policy_number.data,
                                claimed_amount=form.claimed_amount.data.strip())
            return _back_to_invoice(invoice_id, "Claim filed with the insurer.")
        except BillingError as error:
            db.session.rollback()
            show_error(form, error)
    db.session.expire_all()
    invoice = invoice_or_404(invoice_id)
    return render_form_errors("billing/claim_form.html", fragment="billing/_claim_form.html", invoice=invoice,
                              form=form, room=queries.claimable(invoice))


def _claim_step(claim_id: int, *, allowed: tuple[ClaimStatus, ...], form_class, page: str, initial, act,
                done: str):
    """One step on a claim, as its own small page: GET shows the form (409 unless the claim is in an
    `allowed` state; `initial(claim)` fills it), POST runs `act(form)` and returns to the invoice with
    `done`, or shows the refusal beside the field (422). `page` names billing/<page>.html and its form
    partial billing/_<page>_form.html."""
    claim = _or_404(Claim, claim_id)
    if request.method == "GET":
        if claim.status not in allowed:
            abort(409)
        return render(f"billing/{page}.html", claim=claim, invoice=claim.invoice,
                      form=form_class(formdata=None, data=initial(claim)))
    form = form_class()
    if form.validate_on_submit():
        try:
            act(form)
            return _back_to_invoice(claim.invoice_id, done)
        except BillingError as error:
            db.session.rollback()
            show_error(form, error)
    db.session.expire_all()
    claim = _or_404(Claim, claim_id)
    return render_form_errors(f"billing/{page}.html", fragment=f"billing/_{page}_form.html", claim=claim,
                              invoice=claim.invoice, form=form)


@bp.route("/claims/<int:claim_id>/decide", methods=["GET", "POST"])
@requires("billing_desk")
def decide_claim(claim_id: int):
    return _claim_step(
        claim_id, allowed=(ClaimStatus.SUBMITTED,), form_class=ClaimDecisionForm, page="claim_decision",
        initial=lambda claim: {"payer_reference": claim.payer_reference or ""},
        act=lambda form: claims.decide_claim(
            claim_id, actor(), status=form.status.data,
            approved_amount=(form.approved_amount.data or "").strip() or None,
            payer_reference=form.payer_reference.data, reason_code=form.reason_code.data),
        done="Decision recorded; the patient is told by email.")


@bp.route("/claims/<int:claim_id>/paid", methods=["GET", "POST"])
@requires("billing_desk")
def claim_paid(claim_id: int):
    return _claim_step(
        claim_id, allowed=(ClaimStatus.APPROVED, ClaimStatus.PARTIALLY_APPROVED), form_class=ClaimPaidForm,
        page="claim_paid",
        initial=lambda claim: {"amount": f"{min(claim.approved_amount, claim.invoice.balance):.2f}",
                               "paid_on": clinic_today(), "payer_reference": claim.payer_reference or ""},
        act=lambda form: claims.mark_claim_paid(claim_id, actor(), amount=form.amount.data.strip(),
                                                paid_on=form.paid_on.data, payer_reference=form.payer_reference.data),
        done="The insurer's payment is recorded.")


@bp.route("/claims/<int:claim_id>/withdraw", methods=["GET", "POST"])
@requires("billing_desk")
def withdraw_claim(claim_id: int):
    return _claim_step(
        claim_id, allowed=(ClaimStatus.SUBMITTED,), form_class=ClaimWithdrawalForm, page="claim_withdraw",
        initial=lambda claim: {},
        act=lambda form: claims.withdraw_claim(claim_id, actor(), form.reason.data),
        done="Claim withdrawn: it no longer counts towards the insurer's share. Tell the insurer too.")
