"""`flask users create` (`flask seed demo`: tests/test_demo.py)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.accounts.models import Role, User
from app.extensions import db

pytestmark = pytest.mark.clock  # the outcome depends on the clock: see `make test-clock`


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def users(app):
    with app.app_context():
        return list(db.session.scalars(sa.select(User)))


def test_creates_a_staff_account(app, runner):
    result = runner.invoke(args=["users", "create", "--role", "doctor", "--email", "Gregory@Example.com",
                                 "--name", "Dr. Gregory", "--phone", "202 555 0177", "--password", "vicodin and puzzles"])
    assert result.exit_code == 0, result.output
    assert "Created doctor Dr. Gregory <gregory@example.com>" in result.output
    [user] = users(app)
    assert (user.role, user.email, user.phone) == (Role.DOCTOR, "gregory@example.com", "+12025550177")


def test_prompts_for_the_password_when_not_given(app, runner):
    result = runner.invoke(args=["users", "create", "--role", "clerk", "--email", "c@example.com", "--name", "C"],
                           input="ledger lines forever\nledger lines forever\n")
    assert result.exit_code == 0, result.output
    assert users(app)[0].role is Role.CLERK


@pytest.mark.parametrize("args,message", [
    (["--role", "wizard"], "'wizard' is not one of 'doctor', 'clerk', 'admin'"),
    (["--role", "patient"], "'patient' is not one of"),
    (["--role", "admin", "--email", "nope"], "--email"),
    (["--role", "admin", "--password", "password"], "most common"),
    (["--role", "admin", "--password", "short"], "at least 8"),
    (["--role", "admin", "--phone", "123"], "not a valid phone number"),
])
def test_bad_input_is_refused_with_a_message(app, runner, args, message):
    base = {"--email": "x@example.com", "--name": "X", "--password": "a fine passphrase"}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    flat = [item for pair in base.items() for item in pair]
    result = runner.invoke(args=["users", "create", *flat])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert users(app) == []


def test_duplicate_email_is_refused(app, runner, create_user):
    create_user(Role.ADMIN, email="boss@example.com")
    result = runner.invoke(args=["users", "create", "--role", "admin", "--email", "BOSS@example.com",
                                 "--name", "B", "--password", "a fine passphrase"])
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert len(users(app)) == 1
