"""Administration. Doctors, departments, templates and the audit log arrive with their issues."""
from __future__ import annotations

from flask import Blueprint

from app.accounts.models import Role
from app.accounts.services import accounts_by_role, recent_accounts
from app.web.access import guard_blueprint
from app.web.rendering import render

bp = Blueprint("admin", __name__, url_prefix="/admin")
guard_blueprint(bp, Role.ADMIN)


@bp.route("/")
def home():
    return render("admin/home.html", counts=accounts_by_role(), recent=recent_accounts(limit=10))
