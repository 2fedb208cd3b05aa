"""`flask seed demo`: every role with its printed login, a day for the demo doctor, a record and bills for the demo
patients, and a second run that adds nothing.

Seeding is the costly part, so the module seeds once, twice in a row, and every test reads that world (it
overrides `_empty_tables` and empties the tables itself, as tests/test_route_matrix.py does)."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from app.accounts.models import User
from app.accounts.services import find_user_by_email
from app.billing import queries
from app.billing.models import ClaimStatus, Invoice, InvoiceStatus, PriceItem, RefundStatus
from app.extensions import db
from tests.helpers import text
from tests.records.test_patient_records import chart_specs

pytestmark = pytest.mark.clock  # the outcome depends on the clock: see `make test-clock`



@dataclass
class Seeded:
    first_output: str
    counts_after_first: dict[str, int]


def _counts() -> dict[str, int]:
    """The rows of every table."""
    return {table.name: db.session.scalar(sa.select(sa.func.count()).select_from(table))
            for table in db.metadata.sorted_tables}


@pytest.fixture(autouse=True)
def _empty_tables():
    """The module's world is shared by its tests (see `seeded`): the tables are emptied once, after the last."""
    yield


@pytest.fixture(scope="module")
def seeded(app):
    from tests.conftest import empty_tables

    empty_tables(app)
    try:
        runner = app.test_cli_runner()
        first = runner.invoke(args=["seed", "demo"])
        assert first.exit_code == 0, first.output
        with app.app_context():
            counts = _counts()
            db.session.remove()
        second = runner.invoke(args=["seed", "demo"])
        assert second.exit_code == 0, second.output
        yield Seeded(first.output, counts)
    finally:
        empty_tables(app)


def test_seeding_again_adds_nothing(app, seeded):
    with app.app_context():
        assert _counts() == seeded.counts_after_first
        db.session.remove()


def test_every_role_is_created_and_the_logins_are_printed(app, seeded):
    from app.demo.reports import HISTORY_PATIENTS  # patients with a year of past bills, for the reports

    with app.app_context():
        roles = sorted(u.role.value for u in db.session.scalars(sa.select(User)))
        db.session.remove()
    assert roles == ["admin", "clerk", "doctor", "doctor"] + ["patient"] * (2 + len(HISTORY_PATIENTS))
    assert "admin@example.com" in seeded.first_output and "demo-patient-pass" in seeded.first_output


def test_the_demo_staff_have_a_printed_authenticator_and_a_development_code_command(app, seeded):
    from app.demo import DEMO_TOTP_SECRET
    from tests.helpers import authenticator_code

    assert DEMO_TOTP_SECRET in seeded.first_output and "flask totp-code EMAIL" in seeded.first_output
    code = app.test_cli_runner().invoke(args=["totp-code", "priya.shah@example.com"])
    assert code.exit_code == 0 and code.output.strip() == authenticator_code("priya.shah@example.com")
    assert app.test_cli_runner().invoke(args=["totp-code", "maria.garcia@example.com"]).exit_code == 1


def test_the_demo_doctor_has_a_day_to_run(app, seeded, login):
    with app.app_context():
        doctor = db.session.scalar(sa.select(User).where(User.email == "amara.okafor@example.com"))
        db.session.remove()
    html = text(login(doctor, "demo-doctor-pass").get("/doctor/"))
    agenda, pending = html[html.index('data-testid="agenda"'):html.index('data-testid="pending"')], \
        html[html.index('data-testid="pending"'):html.index('data-testid="week"')]
    assert "Shortness of breath" in agenda and "Open encounter" in agenda
    assert pending.count('data-testid="appointment"') >= 2 and "Accept" in pending


def test_the_demo_data_fills_my_records(app, seeded, client):
    with app.app_context():
        assert db.session.scalar(sa.text("SELECT COUNT(*) FROM encounters")) == 4  # three visits, one amended
        db.session.remove()
    response = client.post_form("/login", {"email": "maria.garcia@example.com", "password": "demo-patient-pass"})
    assert response.status_code == 303
    visits = text(client.get("/patient/records"))
    assert visits.count('data-testid="visit-row"') == 3
    assert "Follow-up interval corrected to 3 months." in visits and "Penicillin" in visits
    vitals = text(client.get("/patient/records/vitals"))
    assert len(chart_specs(vitals)["Blood pressure"]["labels"]) == 3


def test_demo_billing_covers_each_state(app, seeded):
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(PriceItem.id))) == 7
        people = [find_user_by_email(e).id for e in ("maria.garcia@example.com", "john.miller@example.com")]
        invoices = list(db.session.scalars(sa.select(Invoice).where(Invoice.patient_id.in_(people))))
        assert sorted(i.status.value for i in invoices) == ["draft", "issued", "paid", "partially_paid"]
        overdue = next(i for i in invoices if i.status is InvoiceStatus.ISSUED)
        assert overdue in queries.worklist().overdue
        assert [c.status for i in invoices for c in i.claims] == [ClaimStatus.SUBMITTED]
        assert [r.status for i in invoices for r in i.refunds] == [RefundStatus.REQUESTED]
        assert any(a.patient_id == people[0] for a in queries.completed_appointments_to_bill())
        db.session.remove()
