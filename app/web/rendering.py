"""One URL, full page or fragment: the helpers every view uses to answer."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import flash, make_response, redirect, render_template, request
from werkzeug.wrappers import Response


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-Boosted") != "true"


def render(template_name: str, /, *, fragment: str | None = None, status: int = 200, **context) -> Response:
    """Render the full page, or only `fragment` (a partial the page includes) when HTMX asks."""
    name = fragment if fragment and is_htmx() else template_name
    return make_response(render_template(name, **context), status)


def render_form_errors(template_name: str, /, *, fragment: str | None = None, **context) -> Response:
    """A form that did not validate: the same page with messages beside the fields, as 422."""
    return render(template_name, fragment=fragment, status=422, **context)


def failure(status: int, title: str, message: str) -> Response:
    """An action that could not be done. HTMX does not swap an error answer (app.js shows a toast), so its
    body is the message itself; a plain form gets the error page."""
    if is_htmx():
        return make_response(message, status, {"Content-Type": "text/plain; charset=utf-8"})
    return make_response(render_template("errors/error.html", status=status, title=title, message=message), status)


def safe_next(target: str | None, default: str, *, within: str = "/") -> str:
    """`target` if it is a path on this site under `within`, else `default`: a crafted `next` cannot send the
    user to another site (`https://evil.example/`, `//evil.example`, `/\\evil.example`) after an action."""
    if not target or any(ch == "\\" or ord(ch) < 32 for ch in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//") or not target.startswith(within):
        return default
    return target


def redirect_to(url: str) -> Response:
    """After a successful POST: a 303 for the browser, an HX-Redirect for HTMX."""
    if is_htmx():
        response = make_response("", 204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, code=303)


def fragment_or_redirect(fragment: str, url: str, /, *, flash_message: str, **context) -> Response:
    """After a successful POST: HTMX gets the updated fragment in place; a plain browser
    gets the message flashed and a 303 to `url` (post/redirect/get)."""
    if is_htmx():
        return make_response(render_template(fragment, flash_message=flash_message, **context))
    flash(flash_message, "success")
    return redirect(url, code=303)
