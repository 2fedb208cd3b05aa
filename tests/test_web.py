"""Cross-cutting web behaviour: security headers on every route, error pages, probes, config."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from joserfc.jwk import ECKey

from app import create_app
from app.accounts.models import Role
from app.config import ConfigError
from app.web.security import CONTENT_SECURITY_POLICY
from tests.helpers import Client, text

def every_route(app, patient_id: int):
    from app.extensions import db
    from app.notifications.models import NotificationTemplate
    from app.notifications.services import install_default_templates

    with app.app_context():
        install_default_templates()
        db.session.commit()
        template_id = db.session.scalar(sa.select(NotificationTemplate.id).limit(1))
    arguments = {"patient_id": patient_id, "key": "contact", "filename": "css/app.css", "template_id": template_id,
                 "token": "not-a-token", "department_id": 1, "doctor_id": 1, "window_id": 1, "entry_id": 1,
                 "action": "activate", "appointment_id": 1, "encounter_id": 1, "diagnosis_id": 1, "prescription_id": 1,
                 "allergy_id": 1, "invoice_id": 1, "line_id": 1, "payment_id": 1,
                 "refund_id": 1, "decision": "approve", "claim_id": 1, "item_id": 1, "user_id": 1,
                 "client_pk": 1, "grant_id": 1, "session_id": 1,
                 "resource_type": "Patient", "resource_id": str(patient_id)}  # the FHIR routes
    for rule in app.url_map.iter_rules():
        args = {name: arguments[name] for name in rule.arguments}
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, rule.build(args)[1]


def assert_security_headers(response, where: str) -> None:
    headers = response.headers
    assert headers.get("Content-Security-Policy") == CONTENT_SECURITY_POLICY, where
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY and "unsafe-eval" not in CONTENT_SECURITY_POLICY
    assert headers.get("X-Content-Type-Options") == "nosniff", where
    assert headers.get("Referrer-Policy"), where


@pytest.mark.parametrize("role", [None, *Role])
def test_every_route_carries_the_security_headers(app, client, create_user, create_patient, login, role):
    patient = create_patient()
    if role is Role.PATIENT:
        login(patient)
    elif role is not None:
        login(create_user(role))
    routes = list(every_route(app, patient.id))
    assert len(routes) >= 12
    for method, url in routes:
        response = client.http.open(url, method=method)
        response.close()
        assert response.status_code < 500, f"{method} {url} answered {response.status_code}"
        assert_security_headers(response, f"{method} {url}")
        if not url.startswith("/static/"):
            assert response.headers["Cache-Control"] == "no-store", url


def test_error_pages_carry_the_headers_too(client):
    assert_security_headers(client.get("/no-such-page"), "404")


CSP_CONSTANTS = ("default-src 'self'", "object-src 'none'", "base-uri 'none'",
                 "frame-ancestors 'none'", "form-action 'self'")


def test_policy_has_every_required_directive():
    for directive in CSP_CONSTANTS:
        assert directive in CONTENT_SECURITY_POLICY


def test_templates_have_no_inline_script_or_style(app):
    from pathlib import Path
    import re

    templates = Path(app.root_path, "templates").rglob("*.html")
    for path in templates:
        source = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", source), path
        assert "<style" not in source and " style=" not in source, path
        assert not re.search(r"\son[a-z]+=", source), path  # no inline event handlers
        assert "hx-on" not in source, path


@pytest.mark.parametrize("status,url", [(404, "/missing"), (405, "/logout")])
def test_error_pages_use_the_site_layout(client, status, url):
    response = client.get(url)
    assert response.status_code == status
    html = text(response)
    assert 'data-testid="error-page"' in html and "navbar" in html


def test_unexpected_errors_show_a_friendly_500_without_details():
    app = create_app({"TESTING": False, "PROPAGATE_EXCEPTIONS": False})

    @app.route("/boom")
    def boom():
        raise RuntimeError("secret internals")

    app.logger.disabled = True
    response = app.test_client().get("/boom")
    assert response.status_code == 500
    html = text(response)
    assert "Something went wrong" in html and "secret internals" not in html and "Traceback" not in html


def test_healthz_and_readyz(client):
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/readyz").json == {"status": "ok", "database": "ok"}


def test_readyz_reports_an_unreachable_database():
    app = create_app({"SQLALCHEMY_DATABASE_URI": "mysql+pymysql://hms:hms@127.0.0.1:1/hms_test"})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["database"] == "unreachable"


def test_production_refuses_to_start_without_secret_key(monkeypatch):
    monkeypatch.setenv("HMS_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app()


def test_production_refuses_to_start_without_audit_key(monkeypatch):
    monkeypatch.setenv("HMS_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    monkeypatch.delenv("AUDIT_HMAC_KEY", raising=False)
    with pytest.raises(ConfigError, match="AUDIT_HMAC_KEY"):
        create_app()


def test_production_cookies_are_secure(monkeypatch):
    monkeypatch.setenv("HMS_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    monkeypatch.setenv("AUDIT_HMAC_KEY", "y" * 40)
    monkeypatch.setenv("HMS_JWT_PRIVATE_KEYS", ECKey.generate_key("P-256").as_pem(private=True).decode())
    app = create_app()
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_unknown_timezone_is_refused_at_start(monkeypatch):
    monkeypatch.setenv("HMS_TIMEZONE", "Mars/Olympus_Mons")
    with pytest.raises(Exception, match="Mars"):
        create_app()


def test_htmx_config_is_safe(client):
    html = text(client.get("/login"))
    for setting in ('"selfRequestsOnly":true', '"allowEval":false', '"allowScriptTags":false',
                    '"includeIndicatorStyles":false', '"historyCacheSize":0', '"code":"422","swap":true'):
        assert setting in html
    assert 'hx-headers=\'{"X-CSRFToken": ' in html


def test_a_fresh_client_without_session_gets_400_on_post(app):
    response = Client(app).http.post("/login", data={"email": "a@example.com", "password": "x"})
    assert response.status_code == 400


@pytest.mark.parametrize(("target", "expected"), [
    ("/doctor/appointments?page=2", "/doctor/appointments?page=2"),
    ("/billing/", "/fallback"),  # outside the area asked for
    ("https://evil.example/doctor/", "/fallback"),
    ("//evil.example/doctor/", "/fallback"),
    ("/\\evil.example/", "/fallback"),
    ("/doctor/\r\nLocation: https://evil.example/", "/fallback"),
    ("doctor/", "/fallback"),
    ("", "/fallback"),
    (None, "/fallback"),
])
def test_safe_next_keeps_only_paths_of_this_site(target, expected):
    from app.web.rendering import safe_next

    assert safe_next(target, "/fallback", within="/doctor/") == expected
