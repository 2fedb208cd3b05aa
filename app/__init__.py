"""HMS: the application factory."""
from __future__ import annotations

from flask import Flask, make_response, redirect, session

from app.config import load_config
from app.extensions import csrf, db, login_manager, mail, migrate


def create_app(overrides: dict | None = None) -> Flask:
    from app.timeutil import pin_clock_from_environment

    from app.web.unit_of_work import UnitOfWorkFlask

    app = UnitOfWorkFlask(__name__)
    app.config.update(load_config(overrides))
    pin_clock_from_environment()

    from app import models  # noqa: F401  (registers every table)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(_migrations_dir()), compare_type=True,
                      render_as_batch=False)
    csrf.init_app(app)
    mail.init_app(app)
    _init_login(app)

    from app.events import relay

    relay.init_app(app)

    from app.oauth import keys as oauth_keys
    from app.web import errors, security

    oauth_keys.init_app(app)
    security.init_app(app)
    errors.init_app(app)
    _init_templates(app)
    _register_blueprints(app)
    from app import api, fhir

    api.init_app(app)
    fhir.init_app(app)
    _register_cli(app)
    return app


def _migrations_dir():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "migrations"


def _init_login(app: Flask) -> None:
    from app.accounts.sessions import session_user
    from app.web.rendering import is_htmx

    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Sign in to continue."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(user_id: str):
        # "id:version": bumping users.session_version revokes every session issued before; the session's own
        # token must name a session that has not been ended (signed out).
        ident, _, version = user_id.partition(":")
        if not ident.isdigit() or not version.isdigit() or len(ident) > 18 or len(version) > 18:
            return None
        return session_user(int(ident), int(version), session.get("sid"))

    @login_manager.unauthorized_handler
    def unauthorized():
        from app.accounts.sessions import sign_in_again

        target = sign_in_again()
        if is_htmx():
            return make_response("", 401, {"HX-Redirect": target})
        return redirect(target)


def _init_templates(app: Flask) -> None:
    from app.accounts.models import Role
    from app.accounts.phones import format_phone
    from app.oauth.scopes import describe as describe_scopes
    from app.timeutil import format_datetime
    from app.web.access import may
    from app.web.navigation import navigation

    app.jinja_env.filters["localtime"] = format_datetime
    app.jinja_env.filters["phone"] = format_phone
    app.jinja_env.filters["describe_scopes"] = describe_scopes
    app.jinja_env.filters["money"] = lambda amount: f"{app.config['HMS_CURRENCY']} {amount:,.2f}"
    app.jinja_env.globals["Role"] = Role
    app.jinja_env.globals["may"] = may

    @app.context_processor
    def clinic():
        return {"clinic_name": app.config["HMS_CLINIC_NAME"], "clinic_timezone": app.config["HMS_TIMEZONE"],
                "navigation": navigation}


def _register_blueprints(app: Flask) -> None:
    from app.accounts.session_pages import bp as sessions_bp, link_bp as session_link_bp
    from app.admin.views import bp as admin_bp
    from app.auth.views import bp as auth_bp
    from app.clerks.reports import bp as reports_bp
    from app.clerks.views import bp as billing_bp
    from app.directory.views import bp as directory_bp
    from app.doctors.views import bp as doctors_bp
    from app.main.views import bp as main_bp
    from app.oauth.pages import bp as oauth_pages_bp
    from app.oauth.views import bp as oauth_bp
    from app.patients.views import bp as patients_bp
    from app.auth.second_factor import bp as second_factor_bp

    for bp in (main_bp, auth_bp, patients_bp, doctors_bp, billing_bp, reports_bp, admin_bp, directory_bp,
               oauth_bp, oauth_pages_bp, second_factor_bp, sessions_bp, session_link_bp):
        app.register_blueprint(bp)


def _register_cli(app: Flask) -> None:
    from app.accounts.cli import users_cli
    from app.audit.cli import audit_cli
    from app.demo import seed_cli, totp_code
    from app.notifications.cli import notifications_cli
    from app.oauth.cli import oauth_cli

    for command in (users_cli, seed_cli, audit_cli, notifications_cli, oauth_cli, totp_code):
        app.cli.add_command(command)
