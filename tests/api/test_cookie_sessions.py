"""A browser's cookie session never authorizes the API, whoever is signed in: every operation but the public
ones answers 401 and sets no cookie (no CSRF surface). The route matrix (tests/test_route_matrix.py) counts
the API's routes as covered by this test."""
from __future__ import annotations

import re

from app.accounts.models import Role
from app.api.framework import REGISTRY
from tests.conftest import DEFAULT_PASSWORD
from tests.helpers import Client


def _url(rule: str) -> str:
    return "/api/v1" + re.sub(r"<(?:\w+:)?\w+>", "1", rule)


def test_no_signed_in_role_reaches_an_operation_with_its_cookie(app, create_patient, create_doctor, create_user):
    people = [create_patient(), create_doctor(), create_user(Role.CLERK), create_user(Role.ADMIN)]
    operations = [op for op in REGISTRY if not op.public]
    assert len(operations) > 40
    for person in people:
        browser = Client(app)
        assert browser.sign_in(person.email, DEFAULT_PASSWORD).status_code == 303
        assert browser.session_cookie()
        csrf = {"X-CSRFToken": browser.csrf_token("/")}  # even with the page's CSRF token
        for op in operations:
            answer = browser.http.open(_url(op.rule), method=op.method, json={}, headers=csrf)
            assert answer.status_code == 401, (person.role, op.method, op.rule, answer.status_code)
            assert answer.mimetype == "application/problem+json"
            assert "Set-Cookie" not in answer.headers, (op.method, op.rule)
