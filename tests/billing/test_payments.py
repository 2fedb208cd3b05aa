"""Payments: partial payments move the status, bad amounts are refused, and concurrency cannot overpay."""
from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from app.billing import payments
from app.billing.common import BillingError
from app.billing.models import Invoice, InvoiceStatus, Payment
from app.extensions import db
from app.timeutil import clinic_today
from tests.billing.conftest import actor

pytestmark = pytest.mark.clock  # the outcome depends on the clock: see `make test-clock`


def pay(invoice_id: int, user_id: int, amount: str, key: str | None = None, method: str = "cash") -> Payment:
    payment = payments.record_payment(invoice_id, actor(user_id), amount=amount, method=method,
                                      idempotency_key=key or payments.new_idempotency_key())
    db.session.commit()
    return payment


def test_partial_payments_move_issued_to_partially_paid_to_paid(app, make_invoice, clerk):
    invoice_id = make_invoice([("Consultation", 1, "100.00")])
    with app.app_context():
        pay(invoice_id, clerk.id, "30.00")
        invoice = db.session.get(Invoice, invoice_id)
        assert (invoice.status, invoice.balance) == (InvoiceStatus.PARTIALLY_PAID, Decimal("70.00"))
        pay(invoice_id, clerk.id, "70.00", method="card")
        db.session.refresh(invoice)
        assert (invoice.status, invoice.balance, invoice.patient_paid) == (InvoiceStatus.PAID, 0, Decimal("100.00"))
        assert invoice.paid_at is not None


@pytest.mark.parametrize("amount, message", [("0", "more than zero"), ("-5.00", "more than zero"),
                                             ("100.01", "more than the balance"), ("abc", "Enter an amount"),
                                             ("1.001", "two decimals"), ("NaN", "Enter an amount")])
def test_zero_negative_malformed_or_over_balance_amounts_are_refused(app, make_invoice, clerk, amount, message):
    invoice_id = make_invoice([("Consultation", 1, "100.00")])
    with app.app_context():
        with pytest.raises(BillingError, match=message) as error:
            pay(invoice_id, clerk.id, amount)
        assert error.value.field == "amount"
        db.session.rollback()
        assert db.session.scalar(sa.select(sa.func.count(Payment.id))) == 0


def test_a_draft_or_paid_invoice_takes_no_payment(app, make_invoice, clerk):
    draft = make_invoice(issue=False)
    paid = make_invoice([("Consultation", 1, "10.00")])
    with app.app_context():
        with pytest.raises(BillingError, match="still a draft"):
            pay(draft, clerk.id, "1.00")
        db.session.rollback()
        pay(paid, clerk.id, "10.00")
        with pytest.raises(BillingError, match="already paid"):
            pay(paid, clerk.id, "1.00")


def test_a_payment_dated_in_the_future_is_refused(app, make_invoice, clerk):
    invoice_id = make_invoice()
    with app.app_context(), pytest.raises(BillingError, match="future") as error:
        payments.record_payment(invoice_id, actor(clerk.id), amount="1.00", method="card",
                                paid_on=clinic_today() + timedelta(days=1), idempotency_key="f" * 16)
    assert error.value.field == "paid_on"


def test_the_same_idempotency_key_twice_records_one_payment(app, make_invoice, clerk):
    invoice_id = make_invoice()
    with app.app_context():
        first = pay(invoice_id, clerk.id, "10.00", key="same-key-123")
        again = pay(invoice_id, clerk.id, "10.00", key="same-key-123")
        assert again.id == first.id
        assert db.session.get(Invoice, invoice_id).balance == Decimal("90.00")


def test_a_key_used_on_another_invoice_is_refused(app, make_invoice, clerk):
    one, two = make_invoice(), make_invoice()
    with app.app_context():
        pay(one, clerk.id, "10.00", key="form-key-abc")
        with pytest.raises(BillingError, match="another invoice"):
            pay(two, clerk.id, "10.00", key="form-key-abc")


def _race(app, clerk_id: int, invoice_id: int, amount: str, keys: list[str]) -> list[object]:
    """Run one payment per key, all at once, each thread with its own session; the outcome of each."""
    barrier = threading.Barrier(len(keys))
    outcomes: list[object] = [None] * len(keys)

    def attempt(index: int, key: str) -> None:
        with app.app_context():
            barrier.wait()
            try:
                payment = payments.record_payment(invoice_id, actor(clerk_id), amount=amount, method="card",
                                                  idempotency_key=key)
                db.session.commit()
                outcomes[index] = payment.id
            except BillingError as error:
                db.session.rollback()
                outcomes[index] = error.code
            finally:
                db.session.remove()

    threads = [threading.Thread(target=attempt, args=(i, key)) for i, key in enumerate(keys)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_twenty_concurrent_payments_of_the_full_balance_record_exactly_one(app, make_invoice, clerk):
    invoice_id = make_invoice([("Surgery", 1, "500.00")])
    outcomes = _race(app, clerk.id, invoice_id, "500.00", [payments.new_idempotency_key() for _ in range(20)])
    recorded = [o for o in outcomes if isinstance(o, int)]
    assert len(recorded) == 1
    assert sorted(set(o for o in outcomes if not isinstance(o, int))) == ["not_open"]  # paid by the winner
    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        assert db.session.scalar(sa.select(sa.func.count(Payment.id))) == 1
        assert (invoice.status, invoice.balance, invoice.patient_paid) == (InvoiceStatus.PAID, 0, Decimal("500.00"))


def test_the_same_key_sent_twenty_times_at_once_records_one_payment(app, make_invoice, clerk):
    invoice_id = make_invoice([("Surgery", 1, "500.00")])
    outcomes = _race(app, clerk.id, invoice_id, "50.00", ["one-form-key-0001"] * 20)
    assert len(set(outcomes)) == 1 and isinstance(outcomes[0], int)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Payment.id))) == 1
        assert db.session.get(Invoice, invoice_id).balance == Decimal("450.00")
