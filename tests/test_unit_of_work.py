"""One unit of work per request (`app/web/unit_of_work.py`): a success is committed, an error answer rolled
back (but for what a view keeps, and the audit of a refusal), a deadlocked view runs again, and no view
commits by hand."""
from __future__ import annotations

import ast
from pathlib import Path

import pymysql
import pytest
import sqlalchemy as sa
from flask import flash, get_flashed_messages

from app import create_app
from app.clinic.models import Department
from app.extensions import db
from app.web.unit_of_work import after_rollback, keep_despite_error

APP_DIR = Path(__file__).resolve().parent.parent / "app"


@pytest.fixture
def uow_app(app):
    """A second application on the suite's database with a few routes that write, for these tests only."""
    test_app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False})
    calls: list[int] = []

    @test_app.post("/_uow/write/<name>/<int:status>")
    def write(name: str, status: int):
        db.session.add(Department(name=name))
        if name.startswith("keep"):
            keep_despite_error()
        if name.startswith("audit"):
            after_rollback(lambda: db.session.add(Department(name=f"{name}-after-rollback")))
        return "written", status

    @test_app.post("/_uow/deadlock-once")
    def deadlock_once():
        calls.append(1)
        flash("done once")
        db.session.add(Department(name=f"attempt-{len(calls)}"))
        db.session.flush()
        if len(calls) == 1:
            raise sa.exc.OperationalError("INSERT", {}, pymysql.err.OperationalError(1213, "Deadlock found"))
        return "|".join(get_flashed_messages())

    test_app.deadlock_calls = calls
    return test_app


def departments(app) -> set[str]:
    with app.app_context():
        names = set(db.session.scalars(sa.select(Department.name)))
        db.session.remove()
        return names


@pytest.mark.parametrize(("status", "saved"), [(200, True), (303, True), (409, False), (422, False), (500, False)])
def test_a_success_is_committed_and_an_error_answer_is_rolled_back(uow_app, status, saved):
    response = uow_app.test_client().post(f"/_uow/write/plain-{status}/{status}")
    assert response.status_code == status
    assert (f"plain-{status}" in departments(uow_app)) is saved


def test_a_view_may_keep_what_it_wrote_despite_an_error_answer(uow_app):
    assert uow_app.test_client().post("/_uow/write/keep-failure/422").status_code == 422
    assert "keep-failure" in departments(uow_app)


def test_what_is_registered_after_rollback_is_written_alone_on_an_error(uow_app):
    client = uow_app.test_client()
    assert client.post("/_uow/write/audit-refused/403").status_code == 403
    assert client.post("/_uow/write/audit-fine/200").status_code == 200
    names = departments(uow_app)
    assert "audit-refused" not in names and "audit-refused-after-rollback" in names
    assert "audit-fine" in names and "audit-fine-after-rollback" not in names


def test_a_deadlocked_view_runs_again_from_the_start(uow_app):
    response = uow_app.test_client().post("/_uow/deadlock-once")
    assert response.status_code == 200 and uow_app.deadlock_calls == [1, 1]
    assert response.get_data(as_text=True) == "done once"  # the first attempt's flash is gone
    names = departments(uow_app)
    assert "attempt-2" in names and "attempt-1" not in names


def _route_modules() -> list[Path]:
    return [path for path in APP_DIR.rglob("*.py") if ".route(" in path.read_text() or ".post(" in path.read_text()]


def test_no_view_commits():
    """The request's unit of work is the only commit point of a request: no module with views commits."""
    modules = _route_modules()
    assert len(modules) > 10
    offenders = []
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "commit":
                offenders.append(f"{path.relative_to(APP_DIR.parent)}:{node.lineno}")
    assert offenders == []
