"""`flask users create` and `flask seed demo`."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.accounts.models import Role, User
from app.appointments.models import Appointment
from app.extensions import db
from tests.helpers import text

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


def test_seed_demo_creates_every_role_and_prints_logins_and_can_run_again(app, runner):
    first = runner.invoke(args=["seed", "demo"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(args=["seed", "demo"])
    assert second.exit_code == 0
    roles = sorted(u.role.value for u in users(app))
    from app.demo.reports import HISTORY_PATIENTS  # patients with a year of past bills, for the reports

    assert roles == ["admin", "clerk", "doctor", "doctor"] + ["patient"] * (2 + len(HISTORY_PATIENTS))
    assert "admin@example.com" in first.output and "demo-patient-pass" in first.output


def test_the_demo_doctor_has_a_day_to_run_once_seeded_and_seeding_again_adds_no_visits(app, runner, login):
    assert runner.invoke(args=["seed", "demo"]).exit_code == 0
    with app.app_context():
        count = db.session.scalar(sa.select(sa.func.count()).select_from(Appointment))
    assert runner.invoke(args=["seed", "demo"]).exit_code == 0
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Appointment)) == count
        doctor = db.session.scalar(sa.select(User).where(User.email == "amara.okafor@example.com"))
    html = text(login(doctor, "demo-doctor-pass").get("/doctor/"))
    agenda, pending = html[html.index('data-testid="agenda"'):html.index('data-testid="pending"')], \
        html[html.index('data-testid="pending"'):html.index('data-testid="week"')]
    assert "Shortness of breath" in agenda and "Open encounter" in agenda
    assert pending.count('data-testid="appointment"') >= 2 and "Accept" in pending
