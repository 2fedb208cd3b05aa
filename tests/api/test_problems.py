"""Error answers of the programs' doors (`/api/`, `/oauth/`, `/.well-known/`) are RFC 9457 problem+json, never
an HTML page or a stack trace; the pages keep their HTML error pages."""
from __future__ import annotations

import pytest
from flask import request

from app import create_app
from app.api.problems import FieldError, Problem, is_api_path
from app.extensions import csrf

PROBLEMS = "https://hms.example/problems/"


def assert_problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["type"] == PROBLEMS + slug
    assert body["status"] == status
    assert body["title"] and body["detail"]
    text = response.get_data(as_text=True)
    assert "<html" not in text.lower() and "Traceback" not in text
    return body


@pytest.fixture
def api_app(app):
    """A second application with a few throw-away routes that fail, for these tests only."""
    test_app = create_app({"TESTING": True, "HMS_RELAY_IN_PROCESS": False, "MAX_CONTENT_LENGTH": 64})

    @test_app.get("/api/_test/boom")
    def boom():
        raise RuntimeError("secret internals: password=hunter2")

    @test_app.get("/api/_test/read-only")
    def read_only():
        return {"read": "only"}

    @test_app.get("/_test/page-boom")
    def page_boom():
        raise RuntimeError("a page fails")

    @test_app.post("/api/_test/fields")
    @csrf.exempt
    def fields():
        raise Problem(422, "Some fields could not be accepted.",
                      errors=[FieldError("/email", "Not an email address."), FieldError("/name", "Required.")])

    @test_app.post("/api/_test/upload")
    @csrf.exempt
    def upload():
        return str(len(request.get_data()))

    @test_app.post("/api/_test/guarded")
    def guarded():
        return "never without a CSRF token"

    return test_app


def test_api_prefixes_are_decided_in_one_place():
    assert all(is_api_path(path) for path in ("/api/v1/patients", "/api", "/oauth/token", "/.well-known/x"))
    assert not any(is_api_path(path) for path in ("/", "/apis", "/patients/api/", "/oauthx", "/login"))


@pytest.mark.parametrize("path", ["/api/v1/no-such-thing", "/api", "/oauth/no-such-thing", "/.well-known/nothing"])
def test_an_unknown_api_path_is_a_problem_not_a_page(app, path):
    assert_problem(app.test_client().get(path), 404, "not-found")


def test_a_wrong_method_is_a_problem_that_names_the_allowed_ones(api_app):
    response = api_app.test_client().delete("/api/_test/read-only")
    assert_problem(response, 405, "method-not-allowed")
    assert "GET" in response.headers["Allow"]


def test_an_unexpected_error_in_an_api_route_is_a_problem_without_internals(api_app):
    response = api_app.test_client().get("/api/_test/boom")
    body = assert_problem(response, 500, "internal-error")
    assert "hunter2" not in response.get_data(as_text=True) and "RuntimeError" not in body["detail"]


def test_field_errors_point_at_the_fields(api_app):
    body = assert_problem(api_app.test_client().post("/api/_test/fields", json={}), 422, "invalid-input")
    assert body["detail"] == "Some fields could not be accepted."
    assert body["errors"] == [{"pointer": "/email", "detail": "Not an email address."},
                              {"pointer": "/name", "detail": "Required."}]


def test_a_body_over_the_limit_is_a_problem(api_app):
    client = api_app.test_client()
    assert client.post("/api/_test/upload", data=b"x" * 10).get_data(as_text=True) == "10"
    assert_problem(client.post("/api/_test/upload", data=b"x" * 1000), 413, "too-large")


def test_a_missing_csrf_token_is_a_problem(api_app):
    assert_problem(api_app.test_client().post("/api/_test/guarded"), 400, "csrf-failed")


def test_pages_keep_their_html_error_pages(app, api_app):
    for response, status in ((app.test_client().get("/no-such-page"), 404),
                             (api_app.test_client().get("/_test/page-boom"), 500)):
        assert response.status_code == status
        assert response.mimetype == "text/html"
        assert "a page fails" not in response.get_data(as_text=True)
