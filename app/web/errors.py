"""Error pages in the site's layout, for every status a user can meet.

Under the programs' prefixes (`/api/`, `/oauth/`, `/.well-known/`) the same handlers answer RFC 9457
problem+json instead (`app/api/problems.py`), and under `/fhir/` a FHIR OperationOutcome (`app/fhir/outcomes.py`):
a program never gets an HTML page or a stack trace. `_program_error` is the one place that decides.
"""
from __future__ import annotations

from flask import Flask, current_app, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

MESSAGES = {
    400: ("Bad request", "The request could not be understood. Go back and try again."),
    403: ("Not allowed", "Your account does not have access to this page."),
    404: ("Not found", "There is nothing here. The link may be old or mistyped."),
    405: ("Not allowed", "This page cannot be used that way."),
    409: ("Not possible now", "This change does not fit the current state. Reload the page and try again."),
    413: ("Too large", "What you sent is larger than we accept."),
    422: ("Check your input", "Some of what you entered could not be accepted."),
    429: ("Too many attempts", "Too many requests in a short time. Wait a few minutes and try again."),
    500: ("Something went wrong", "An unexpected error stopped this request. Nothing was changed; try again."),
}


def render_error(status: int, detail: str | None = None):
    title, message = MESSAGES.get(status, MESSAGES[500] if status >= 500 else MESSAGES[400])
    return render_template("errors/error.html", status=status, title=title,
                           message=detail or message), status


def _program_error(error: HTTPException):
    """The answer of an error under a program's prefix (problem+json, or a FHIR OperationOutcome); None for a
    page."""
    from app.api import problems
    from app.fhir import outcomes

    if outcomes.is_fhir_path(request.path):
        return outcomes.outcome_for_http_error(error)
    if problems.is_api_path(request.path):
        if isinstance(error, CSRFError):
            slug, title = problems.CSRF_FAILED
            return problems.problem_response(400, error.description, slug=slug, title=title)
        return problems.problem_for_http_error(error)
    return None


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        answer = _program_error(error)
        if answer is not None:
            return answer
        return render_error(400, "The form was sent without a valid security token. "
                                 "Reload the page and try again.")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if error.code is None or error.code < 400:
            return error
        answer = _program_error(error)
        if answer is not None:
            return answer
        detail = error.description if getattr(error, "friendly", False) else None
        return render_error(error.code, detail)

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        if isinstance(error, HTTPException):
            return http_error(error)
        current_app.logger.exception("unhandled error", exc_info=error)
        from app.extensions import db

        db.session.rollback()
        answer = _program_error(InternalServerError())
        if answer is not None:
            return answer
        return render_error(InternalServerError.code)
