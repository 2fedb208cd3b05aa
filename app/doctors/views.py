"""The doctor's workspace. Schedule, appointments and records arrive with their issues."""
from __future__ import annotations

from flask import Blueprint
from flask_login import current_user

from app.accounts.models import Role
from app.web.access import guard_blueprint
from app.web.rendering import render

bp = Blueprint("doctors", __name__, url_prefix="/doctor")
guard_blueprint(bp, Role.DOCTOR)


@bp.route("/")
def home():
    return render("doctors/home.html", doctor=current_user)
