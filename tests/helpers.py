"""A test client that behaves like the site's own pages: it sends the CSRF token they carry."""
from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from functools import cache
from urllib.parse import quote, urlsplit

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.accounts import totp

_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
_TOTP_SECRET = re.compile(r'data-secret="([A-Z2-7]+)"')
# The authenticator key of the staff that the `create_user` fixture makes (tests/conftest.py).
TEST_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


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

    def sign_in(self, email: str, password: str, *, next: str | None = None):
        """Sign in as a person would: the password, then the authenticator's code when they have one, or setting
        one up from the key on the page when their role requires one and they have none. Returns the last answer:
        the 303 to the page after sign-in, or (after setting one up) the recovery codes page."""
        response = self.post_form("/login" + (f"?next={quote(next, safe='/')}" if next else ""),
                                  {"email": email, "password": password})
        step = urlsplit(response.headers.get("Location", "")).path if response.status_code == 303 else None
        if step == "/login/code":
            response = self.post_form("/login/code", {"code": authenticator_code(email)})
        elif step == "/login/setup":
            secret = _TOTP_SECRET.search(text(self.get("/login/setup"))).group(1)
            response = self.post_form("/login/setup", {"code": totp.code_at(secret, _step_now())})
            assert response.status_code == 200, text(response)[:500]
        return response

    def session_cookie(self) -> str | None:
        cookie = self.http.get_cookie(self.app.config["SESSION_COOKIE_NAME"])
        return cookie.value if cookie else None


def _step_now() -> int:
    return totp.step_at(datetime.now(timezone.utc))


@cache
def _engine() -> sa.Engine:
    return sa.create_engine(os.environ["DATABASE_URL"], poolclass=sa.NullPool)


def authenticator_code(email: str) -> str:
    """The code `email`'s authenticator app shows now (its key read from the database, as the phone holds it).
    A code is accepted once per 30-second step (RFC 6238 refuses a replay), and tests sign one person in more often
    than that: when this step is spent, its mark is cleared first. tests/test_second_factor.py tests the replay
    rule itself."""
    step = _step_now()
    with _engine().begin() as conn:
        user_id, secret, last_step = conn.execute(sa.text(
            "SELECT f.user_id, f.secret, f.last_step FROM totp_factors f JOIN users u ON u.id = f.user_id"
            " WHERE u.email = :email"), {"email": email.strip().lower()}).one()
        if last_step is not None and last_step >= step:
            conn.execute(sa.text("UPDATE totp_factors SET last_step = NULL WHERE user_id = :id"), {"id": user_id})
    return totp.code_at(secret, step)


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
