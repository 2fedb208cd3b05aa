"""Error answers of the FHIR endpoint: an `OperationOutcome` (application/fhir+json) with the HTTP status, never
HTML and never a stack trace. `app/web/errors.py` asks `is_fhir_path` (with `app.api.problems.is_api_path`, the
one place that decides an error's shape) and answers with `outcome_for_http_error`.

The refusals of the access policy reach here as the API's `Problem` (`app.api.auth`): the same status, detail and
`WWW-Authenticate` header, in FHIR's shape.
"""
from __future__ import annotations

import json

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from app.api.problems import INTERNAL_DETAIL, STANDARD, Problem

PREFIX = "/fhir/"
MEDIA_TYPE = "application/fhir+json"

# HTTP status -> the OperationOutcome issue type (http://hl7.org/fhir/issue-type)
ISSUE_CODES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported",
               406: "not-supported", 409: "conflict", 410: "deleted", 412: "conflict", 413: "too-costly",
               415: "not-supported", 422: "processing", 428: "required", 429: "throttled"}


class FhirError(HTTPException):
    """Raised by the FHIR views: `raise FhirError(400, "Unknown parameter: foo", code="not-supported")`."""

    def __init__(self, status: int, detail: str, *, code: str | None = None, expression: str | None = None):
        super().__init__(description=detail)
        self.code = status
        self.issue_code = code
        self.expression = expression


def is_fhir_path(path: str) -> bool:
    return path.startswith(PREFIX) or path == PREFIX.rstrip("/")


def operation_outcome(status: int, detail: str | None = None, *, code: str | None = None,
                      expression: str | None = None) -> dict:
    title = STANDARD.get(status, STANDARD[500] if status >= 500 else STANDARD[400])[1]
    issue = {"severity": "error" if status < 500 else "fatal",
             "code": code or ISSUE_CODES.get(status, "exception" if status >= 500 else "invalid"),
             "diagnostics": detail or (INTERNAL_DETAIL if status >= 500 else title)}
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def outcome_response(status: int, detail: str | None = None, *, code: str | None = None,
                     expression: str | None = None, headers: dict | None = None) -> Response:
    body = operation_outcome(status, detail, code=code, expression=expression)
    response = Response(json.dumps(body), status=status, mimetype=MEDIA_TYPE)
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def outcome_for_http_error(error: HTTPException) -> Response:
    """The OperationOutcome of a raised HTTP error; a 5xx never shows its description (it may hold internals)."""
    status = error.code or 500
    headers = {name: value for name, value in error.get_headers() if name.lower() != "content-type"}
    detail = error.description if status < 500 else None
    if isinstance(error, FhirError):
        return outcome_response(status, detail, code=error.issue_code, expression=error.expression, headers=headers)
    if isinstance(error, Problem) and error.slug == "insufficient-scope":
        return outcome_response(status, detail, code="forbidden", headers=headers)
    return outcome_response(status, detail, headers=headers)
