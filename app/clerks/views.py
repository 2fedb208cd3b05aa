"""The billing workspace: clerks bill and take money; admins read, keep the price list and decide refunds.

Routing and access only; the rules are in `app.billing.invoices`, `payments` and `claims`, the reads in
`app.billing.queries`. The views are split by subject: `invoices` (list, new, draft editing, issue, void,
detail), `money` (payments, refunds, claims) and `prices` (the price list); the forms are in `forms`. The reports
have their own blueprint in `reports`; the patient's bills are in `app.patients.bills`.
"""
from __future__ import annotations

from flask import Blueprint, abort
from flask_login import current_user

from app.billing import queries
from app.billing.models import Invoice
from app.extensions import db
from app.web.access import guard_blueprint
from app.web.rendering import render

bp = Blueprint("billing", __name__, url_prefix="/billing")
guard_blueprint(bp, "billing")


def invoice_or_404(invoice_id: int) -> Invoice:
    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None:
        abort(404)
    return invoice


def actor():
    """The signed-in user as a model of this session (current_user may come from another session)."""
    from app.accounts.models import User

    return db.session.get(User, current_user.id)


@bp.route("/")
def home():
    return render("billing/home.html", work=queries.worklist())


from app.clerks import invoices, money, prices  # noqa: E402,F401  (register their routes)
