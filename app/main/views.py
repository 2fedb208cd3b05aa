"""Landing page, the role-aware home redirect, and the load balancer's probes."""
from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, redirect, url_for
from flask_login import current_user

from app.extensions import db
from app.web.rendering import render

bp = Blueprint("main", __name__)

ROLE_HOMES = {"patient": "patients.home", "doctor": "doctors.home", "clerk": "billing.home", "admin": "admin.home"}


@bp.route("/")
def home():
    if current_user.is_authenticated:
        return redirect(url_for(ROLE_HOMES[current_user.role.value]))
    return render("main/landing.html")


@bp.route("/healthz")
def healthz():
    return {"status": "ok"}


@bp.route("/readyz")
def readyz():
    try:
        db.session.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        db.session.rollback()
        return {"status": "unavailable", "database": "unreachable"}, 503
    return {"status": "ok", "database": "ok"}
