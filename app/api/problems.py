"""Error answers of the programs' doors (`/api/`, `/oauth/`, `/.well-known/`): RFC 9457 problem details.

Every error answer under those prefixes is `application/problem+json` with a stable `type`
(`https://hms.example/problems/<slug>`), `title`, `status` and `detail`; a field error adds `errors`, a list of
`{"pointer": "/field", "detail": ...}`. Never HTML, never a stack trace. `app/web/errors.py` asks
`is_api_path` (the one place that decides) and answers with `problem_response` instead of an error page.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import json
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

PROBLEM_BASE = "https://hms.example/problems/"
MEDIA_TYPE = "application/problem+json"
API_PREFIXES = ("/api/", "/oauth/", "/.well-known/")
PAGE_PATHS = ("/oauth/authorize",)  # the consent page: a person's browser, answered with the site's pages

# status -> (type slug, title). The slugs are part of the API: clients may switch on them; never rename one.
STANDARD = {
    400: ("bad-request", "Bad request"),
    428: ("precondition-required", "Precondition required"),
    412: ("precondition-failed", "Precondition failed"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    413: ("too-large", "Request too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("invalid-input", "Invalid input"),
    429: ("too-many-requests", "Too many requests"),
    500: ("internal-error", "Internal error"),
    503: ("unavailable", "Service unavailable"),
}
CSRF_FAILED = ("csrf-failed", "Missing or invalid CSRF token")
INTERNAL_DETAIL = "An unexpected error stopped this request. Nothing was changed."


def is_api_path(path: str) -> bool:
    """Whether an error at this path is answered as problem+json rather than an HTML page."""
    if path.rstrip("/") in PAGE_PATHS:
        return False
    return path.startswith(API_PREFIXES) or path.rstrip("/") in {prefix.rstrip("/") for prefix in API_PREFIXES}


@dataclass(frozen=True)
class FieldError:
    pointer: str  # a JSON Pointer (RFC 6901) into the request body ("/email"), or a query parameter's name
    detail: str
    in_query: bool = False  # a query parameter: answered as {"parameter": name} (RFC 9457 section 3)

    def as_dict(self) -> dict:
        return {"parameter" if self.in_query else "pointer": self.pointer, "detail": self.detail}


class Problem(HTTPException):
    """Raised by an API view to answer a problem, with field errors if any: `raise Problem(422, errors=[...])`."""

    def __init__(self, status: int, detail: str | None = None, *, slug: str | None = None,
                 title: str | None = None, errors: list[FieldError] | None = None,
                 headers: dict[str, str] | None = None, extensions: dict | None = None):
        super().__init__(description=detail)
        self.extensions = extensions or {}  # RFC 9457 extension members, e.g. "alternatives"
        self.code = status
        self.slug = slug
        self.title = title
        self.errors = errors or []
        self.extra_headers = headers or {}

    def get_headers(self, environ=None, scope=None) -> list[tuple[str, str]]:
        return [*super().get_headers(environ, scope), *self.extra_headers.items()]


def problem_response(status: int, detail: str | None = None, *, slug: str | None = None, title: str | None = None,
                     errors: list[FieldError] | None = None, headers: dict | None = None,
                     extensions: dict | None = None) -> Response:
    default_slug, default_title = STANDARD.get(status, STANDARD[500] if status >= 500 else STANDARD[400])
    body = {"type": PROBLEM_BASE + (slug or default_slug), "title": title or default_title, "status": status,
            "detail": detail or (INTERNAL_DETAIL if status >= 500 else default_title)}
    if errors:
        body["errors"] = [error.as_dict() for error in errors]
    for name, value in (extensions or {}).items():
        body.setdefault(name, value)
    response = Response(json.dumps(body), status=status, mimetype=MEDIA_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def problem_for_http_error(error: HTTPException) -> Response:
    """The problem answer of a raised HTTP error; a 5xx never shows its description (it may hold internals)."""
    status = error.code or 500
    # Keep what the error says about the protocol (Allow on a 405, Retry-After on a 429), not its content type.
    headers = {name: value for name, value in error.get_headers() if name.lower() != "content-type"}
    if isinstance(error, Problem):
        return problem_response(status, error.description, slug=error.slug, title=error.title,
                                errors=error.errors, headers=headers, extensions=error.extensions)
    detail = error.description if status < 500 else None
    return problem_response(status, detail, headers=headers)
