"""Response headers that every answer carries."""
from __future__ import annotations

from flask import Flask, g, request
from werkzeug.wrappers import Response

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    # Bootstrap draws its form and navbar icons as data: SVG images.
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'self'",
])


_FORM_ACTIONS = "hms_form_actions"


def allow_form_action(origin: str) -> None:
    """Let this page's forms lead to `origin` too: the consent page's answer redirects to the client's address,
    and browsers hold a form's redirects to `form-action`."""
    g.setdefault(_FORM_ACTIONS, []).append(origin)


def add_security_headers(response: Response) -> Response:
    policy = CONTENT_SECURITY_POLICY
    extra = g.get(_FORM_ACTIONS)
    if extra:
        policy = policy.replace("form-action 'self'", " ".join(["form-action 'self'", *extra]))
    response.headers["Content-Security-Policy"] = policy
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if request.endpoint != "static":
        # Pages may hold patient data: never keep them in a shared or back/forward cache.
        response.headers["Cache-Control"] = "no-store"
        response.vary.add("HX-Request")
    return response


def init_app(app: Flask) -> None:
    app.after_request(add_security_headers)
