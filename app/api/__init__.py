"""The public REST API, `/api/v1`: the hospital's operations for programs (see docs/api.md).

Each module declares its operations with `app.api.framework.operation`, calls the same domain services as the
pages, and asks the same access policy through `app.api.auth`. This package wires them into one blueprint:
rate limits and the bearer token before every operation, the rate-limit and cache headers after.
"""
from __future__ import annotations

from flask import Blueprint, Flask, current_app, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.routing import BaseConverter
from werkzeug.wrappers import Response

from app.extensions import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)


class IdConverter(BaseConverter):
    """A database id in a path: a positive integer of at most 18 digits (anything else is a 404)."""
    regex = r"[1-9][0-9]{0,17}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(int(value))


# The programs' doors that only a bearer token opens: the API and the FHIR endpoint (app.fhir).
BEARER_ONLY_PREFIXES = (bp.url_prefix + "/", "/fhir/")


class CookieSessionsOutsideTheApi(SecureCookieSessionInterface):
    """Under `/api/` and `/fhir/` the cookie session is neither read nor written: a browser's session never
    authorizes a program's request (no CSRF surface), and a bearer request never touches the session."""

    def open_session(self, app, request):
        if request.path.startswith(BEARER_ONLY_PREFIXES):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app, session, response) -> None:
        if request.path.startswith(BEARER_ONLY_PREFIXES):
            return
        super().save_session(app, session, response)


@bp.before_request
def before_operation() -> None:
    from app.api import auth

    auth.admit(getattr(current_app.view_functions.get(request.endpoint), "operation", None))


@bp.after_request
def after_operation(response: Response) -> Response:
    from app.api import ratelimit

    response.headers.setdefault("Cache-Control", "no-store")
    response.vary.add("Authorization")
    return ratelimit.add_headers(response)


def init_app(app: Flask) -> None:
    app.url_map.converters["id"] = IdConverter
    app.session_interface = CookieSessionsOutsideTheApi()
    # declare their operations on bp
    from app.api import appointments, audit, billing, doctors, openapi, patients, records  # noqa: F401

    app.register_blueprint(bp)
