"""HMS_ENV=production: HSTS, the `__Host-` session cookie, Secure cookies, and the Origin check of every
state-changing request of the cookie-authenticated pages (the programs' doors are not affected)."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from joserfc.jwk import ECKey

from app import create_app
from app.extensions import db
from tests.conftest import DEFAULT_PASSWORD
from tests.helpers import text

SITE = "https://hms.example"
EVIL = "https://evil.example"


@pytest.fixture
def production_app(app, monkeypatch):
    """The app as production starts it (its required secrets set), on the test database."""
    monkeypatch.setenv("HMS_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "p" * 40)
    monkeypatch.setenv("AUDIT_HMAC_KEY", "q" * 40)
    monkeypatch.setenv("HMS_JWT_PRIVATE_KEYS", ECKey.generate_key("P-256").as_pem(private=True).decode())
    monkeypatch.setenv("HMS_PUBLIC_URL", SITE)
    monkeypatch.setenv("HMS_RELAY_IN_PROCESS", "0")
    production = create_app({"TESTING": True})
    yield production
    with production.app_context():
        db.engine.dispose()


def _csrf(response) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', text(response)).group(1)


def _attributes(cookie: str) -> dict[str, str]:
    return {part.split("=")[0].strip().lower(): part.partition("=")[2] for part in cookie.split(";")[1:]}


def _denials(app) -> list[dict]:
    from app.events.models import OutboxEvent

    with app.app_context():
        return [row.envelope["data"] for row in db.session.scalars(
            sa.select(OutboxEvent).where(OutboxEvent.type == "access.denied").order_by(OutboxEvent.seq))]


def test_production_sends_hsts_a_host_only_secure_cookie_and_refuses_cross_site_requests(
        app, client, production_app, create_patient):
    assert "Strict-Transport-Security" not in client.get("/login").headers  # development and tests: plain HTTP
    patient = create_patient()
    http = production_app.test_client()
    same_site = {"Origin": SITE, "Referer": f"{SITE}/login"}

    page = http.get("/login", base_url=SITE)
    assert page.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    [cookie] = page.headers.getlist("Set-Cookie")
    assert cookie.startswith("__Host-hms_session=")
    attributes = _attributes(cookie)
    assert "secure" in attributes and "httponly" in attributes and attributes["path"] == "/"
    assert "domain" not in attributes and attributes["samesite"] == "Lax"
    form = {"email": patient.email, "password": DEFAULT_PASSWORD, "csrf_token": _csrf(page)}

    # another site's form posting to ours, or a request that names no origin at all: refused before anything else
    forged = http.post("/login", base_url=SITE, data=form, headers={"Origin": EVIL, "Referer": f"{EVIL}/x"})
    assert forged.status_code == 403 and "did not come from this site" in text(forged)
    assert forged.headers["Strict-Transport-Security"]
    assert http.post("/login", base_url=SITE, data=form, headers={"Origin": "null"}).status_code == 403
    assert http.post("/login", base_url=SITE, data=form).status_code == 403
    assert http.post("/login", base_url=SITE, data=form, headers={"Referer": f"{EVIL}/login"}).status_code == 403
    assert [(d["reason"], d["status"], d["path"]) for d in _denials(production_app)] == [
        ("cross_origin", 403, "/login"), ("cross_origin", 403, "/login"), ("no_origin", 403, "/login"),
        ("cross_origin_referer", 403, "/login")]

    signed_in = http.post("/login", base_url=SITE, data=form, headers=same_site)
    assert signed_in.status_code == 303
    assert all("Secure" in c and c.startswith("__Host-") for c in signed_in.headers.getlist("Set-Cookie"))
    home = http.get("/patient/", base_url=SITE)
    assert home.status_code == 200
    token = _csrf(home)
    assert http.post("/logout", base_url=SITE, data={"csrf_token": token},
                     headers={"Origin": EVIL}).status_code == 403
    assert http.get("/patient/", base_url=SITE).status_code == 200  # still signed in

    # the programs' doors take no cookie: the token endpoint answers a client without credentials as before
    token_answer = http.post("/oauth/token", base_url=SITE, data={"grant_type": "client_credentials"},
                             headers={"Origin": EVIL})
    assert token_answer.status_code == 401 and token_answer.get_json()["error"] == "invalid_client"

    assert http.post("/logout", base_url=SITE, data={"csrf_token": token},
                     headers={"Referer": f"{SITE}/patient/"}).status_code in (302, 303)
    assert http.get("/patient/", base_url=SITE).status_code == 302  # signed out: to the sign-in page
