"""The billing clerk's workspace. Invoices, payments and claims arrive with the billing issue."""
from __future__ import annotations

from flask import Blueprint
from flask_login import current_user

from app.accounts.models import Role
from app.web.access import guard_blueprint
from app.web.rendering import render

bp = Blueprint("billing", __name__, url_prefix="/billing")
guard_blueprint(bp, Role.CLERK)


@bp.route("/")
def home():
    return render("billing/home.html", clerk=current_user)
