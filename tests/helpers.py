"""A test client that behaves like the site's own pages: it sends the CSRF token they carry."""
from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


class Client:
    def __init__(self, app: Flask):
        self.app = app
        self.http: FlaskClient = app.test_client()

    def csrf_token(self, page: str = "/login") -> str:
        html = self.http.get(page, follow_redirects=True).get_data(as_text=True)
        match = _CSRF_META.search(html)
        assert match, f"no CSRF token on {page}"
        return match.group(1)

    def get(self, url: str, *, htmx: bool = False, **kwargs):
        return self.http.get(url, headers=htmx_headers() if htmx else None, **kwargs)

    def post_form(self, url: str, data: dict, *, htmx: bool = False, csrf: bool = True, **kwargs):
        data = dict(data)
        if csrf:
            data.setdefault("csrf_token", self.csrf_token())
        return self.http.post(url, data=data, headers=htmx_headers() if htmx else None, **kwargs)

    def session_cookie(self) -> str | None:
        cookie = self.http.get_cookie(self.app.config["SESSION_COOKIE_NAME"])
        return cookie.value if cookie else None


def htmx_headers() -> dict[str, str]:
    return {"HX-Request": "true"}


def text(response) -> str:
    return response.get_data(as_text=True)


def page_without_csrf(response) -> str:
    """The page's text without its CSRF token, which is signed anew each second: two answers compared as pages."""
    page = text(response)
    token = _CSRF_META.search(page)
    return page.replace(token.group(1), "") if token else page


def count_statements(app: Flask, client: "Client", url: str) -> int:
    """How many SQL statements a GET of `url` runs (this thread's only, not the background relay's)."""
    import threading

    import sqlalchemy as sa

    from app.extensions import db

    statements = []
    me = threading.get_ident()

    def record(conn, cursor, statement, *args):
        if threading.get_ident() == me:
            statements.append(statement)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        response = client.get(url)
        assert response.status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return len(statements)
