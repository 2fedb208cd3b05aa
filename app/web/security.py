"""Response headers that every answer carries, and the Origin check of state-changing requests."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, current_app, g, request
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
    if hsts := current_app.config.get("HMS_HSTS_SECONDS"):
        response.headers["Strict-Transport-Security"] = f"max-age={hsts}; includeSubDomains"
    if request.endpoint != "static":
        # Pages may hold patient data: never keep them in a shared or back/forward cache.
        response.headers["Cache-Control"] = "no-store"
        response.vary.add("HX-Request")
    return response


# --- the Origin check (HMS_CHECK_ORIGIN, on in production) ---------------------------------------------------

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Doors that a cookie never opens, so a forged cross-site request carries nothing they accept: the API and FHIR
# (bearer tokens only) and the authorization server's token, revocation and introspection endpoints (client
# authentication).
BEARER_BLUEPRINTS = frozenset({"api", "fhir", "oauth"})


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def trusted_origins() -> set[str]:
    """This site as the browser names it: the address the request came to, and HMS_PUBLIC_URL (the address users
    type, which differs behind a TLS-terminating proxy)."""
    return {origin for origin in (_origin(request.host_url), _origin(current_app.config["HMS_PUBLIC_URL"]))
            if origin}


def cross_origin_problem() -> str | None:
    """Why this request must be refused as cross-site, or None. The `Origin` header decides (browsers send it
    with every POST); without it, the `Referer` (kept on same-site requests by our Referrer-Policy); a request
    with neither is refused, as is `Origin: null` (a sandboxed or privacy-sensitive context)."""
    if request.method not in STATE_CHANGING or request.blueprint in BEARER_BLUEPRINTS:
        return None
    origin = request.headers.get("Origin")
    if origin is not None:
        return None if _origin(origin) in trusted_origins() else "cross_origin"
    referrer = request.headers.get("Referer")
    if referrer is not None:
        return None if _origin(referrer) in trusted_origins() else "cross_origin_referer"
    return "no_origin"


def check_origin() -> Response | None:
    problem = cross_origin_problem()
    if problem is None:
        return None
    from app.audit.denials import record_denial
    from app.policy import Decision
    from app.web.rendering import failure

    record_denial(Decision(False, 403, problem), None, None)
    return failure(403, "Request refused", "This request did not come from this site's own pages, so it was "
                                           "refused. Reload the page and try again.")


def init_app(app: Flask) -> None:
    app.after_request(add_security_headers)
    if app.config["HMS_CHECK_ORIGIN"]:
        # First of all before-request functions: before the CSRF check and the role guards, so a forged request
        # is refused for what it is.
        app.before_request_funcs.setdefault(None, []).insert(0, check_origin)
