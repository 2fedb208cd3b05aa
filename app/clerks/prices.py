"""The price list: clerks and admins keep it; a service is never deleted, only taken off the list."""
from __future__ import annotations

from flask import abort, flash, request, url_for

from app.billing import invoices, queries
from app.billing.common import BillingError
from app.billing.models import PriceItem
from app.clerks.forms import PriceItemForm, show_error
from app.clerks.views import actor, bp
from app.clinic.services import departments
from app.extensions import db
from app.web.rendering import redirect_to, render, render_form_errors


@bp.route("/prices")
def prices():
    show_all = request.args.get("show") == "all"
    return render("billing/prices.html", items=queries.price_items(include_inactive=show_all), show_all=show_all)


def _save(item: PriceItem | None):
    form = PriceItemForm(obj=item, departments=departments()) if request.method == "POST" else PriceItemForm(
        formdata=None, obj=item, departments=departments(),
        data={"department_id": str(item.department_id or "") if item else "", "price": f"{item.price:.2f}"} if item
        else {"active": True})
    if request.method == "GET":
        return render("billing/price_form.html", form=form, item=item)
    if form.validate_on_submit():
        values = {"code": form.code.data, "name": form.name.data, "price": form.price.data.strip(),
                  "active": form.active.data,
                  "department_id": int(form.department_id.data) if form.department_id.data else None}
        try:
            if item is None:
                saved = invoices.create_price_item(actor(), **values)
            else:
                saved = invoices.update_price_item(item, actor(), **values)
            flash(f"{saved.code} · {saved.name} saved.", "success")
            return redirect_to(url_for("billing.prices"))
        except BillingError as error:
            db.session.rollback()
            show_error(form, error)
    return render_form_errors("billing/price_form.html", form=form, item=item)


@bp.route("/prices/new", methods=["GET", "POST"])
def new_price():
    return _save(None)


@bp.route("/prices/<int:item_id>/edit", methods=["GET", "POST"])
def edit_price(item_id: int):
    item = db.session.get(PriceItem, item_id)
    if item is None:
        abort(404)
    return _save(item)
