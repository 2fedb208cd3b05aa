"""`flask seed demo` gives the demo patients a price list and invoices in each state, once."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.accounts.services import find_user_by_email
from app.billing import queries
from app.billing.models import ClaimStatus, Invoice, InvoiceStatus, PriceItem, RefundStatus
from app.extensions import db

pytestmark = pytest.mark.clock  # the outcome depends on the clock: see `make test-clock`


def test_demo_billing_covers_each_state_and_runs_once(app):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["seed", "demo"]).exit_code == 0
    assert runner.invoke(args=["seed", "demo"]).exit_code == 0
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
