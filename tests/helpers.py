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
