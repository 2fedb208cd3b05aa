"""Invoices: totals computed by the server, rounding, numbering, the draft → issued → paid life cycle, void."""
from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from app.billing import invoices, payments
from app.billing.common import BillingError, round_money
from app.billing.models import Invoice, InvoiceHistory, InvoiceStatus
from app.events.models import OutboxEvent
from app.extensions import db
from app.transactions import retrying
from tests.billing.conftest import actor

pytestmark = pytest.mark.clock  # the outcome depends on the clock: see `make test-clock`


def test_totals_are_lines_less_discount_plus_tax_rounded_half_up_at_the_line(app, make_invoice):
    app.config["HMS_TAX_RATE"] = "8.25"
    try:
        invoice_id = make_invoice([("Blood test", 3, "10.00"), ("Bandage", 3, "0.35"), ("X-ray", 1, "80.00")],
                                  discount="5.00", issue=False)
    finally:
        app.config["HMS_TAX_RATE"] = "0"
    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        assert [line.line_total for line in invoice.lines] == [Decimal("30.00"), Decimal("1.05"), Decimal("80.00")]
        assert invoice.subtotal == Decimal("111.05")
        assert invoice.discount == Decimal("5.00")
        # (111.05 − 5.00) × 8.25 % = 8.749125 → 8.75 (half-up, once)
        assert invoice.tax_rate == Decimal("8.25") and invoice.tax == Decimal("8.75")
        assert invoice.total == Decimal("114.80") == invoice.balance


def test_half_a_cent_rounds_up():
    assert round_money(Decimal("2.675")) == Decimal("2.68")
    assert round_money(Decimal("0.005")) == Decimal("0.01")
    assert round_money(Decimal("0.0049")) == Decimal("0.00")


def test_issuing_numbers_invoices_sequentially_and_drafts_have_none(app, make_invoice):
    draft_id = make_invoice(issue=False)
    first, second = make_invoice(), make_invoice()
    with app.app_context():
        assert db.session.get(Invoice, draft_id).number is None
        a, b = db.session.get(Invoice, first), db.session.get(Invoice, second)
        year = a.issued_on.year
        assert a.number.startswith(f"INV-{year}-") and len(a.number) == len(f"INV-{year}-000001")
        assert int(b.number.rsplit("-", 1)[1]) == int(a.number.rsplit("-", 1)[1]) + 1
        assert a.status is InvoiceStatus.ISSUED and a.due_on > a.issued_on


def test_an_issued_invoice_is_never_edited(app, make_invoice, clerk):
    invoice_id = make_invoice()
    with app.app_context():
        by = actor(clerk.id)
        with pytest.raises(BillingError, match="cannot be edited"):
            invoices.add_line(invoice_id, by, description="Extra", quantity=1, unit_price="5.00")
        with pytest.raises(BillingError, match="cannot be edited"):
            invoices.set_discount(invoice_id, by, "1.00", "late")
        line_id = db.session.get(Invoice, invoice_id).lines[0].id
        with pytest.raises(BillingError, match="cannot be edited"):
            invoices.remove_line(invoice_id, line_id, by)


def test_an_empty_draft_cannot_be_issued(app, make_invoice, clerk):
    invoice_id = make_invoice(lines=(), issue=False)
    with app.app_context(), pytest.raises(BillingError, match="at least one line"):
        invoices.issue_invoice(invoice_id, actor(clerk.id))


def test_a_total_beyond_the_money_columns_is_refused_not_a_database_error(app, make_invoice, clerk):
    invoice_id = make_invoice(lines=(("Big", 1, "9999999999.99"),), issue=False)
    with app.app_context():
        with pytest.raises(BillingError, match="too large") as error:
            invoices.add_line(invoice_id, actor(clerk.id), description="Bigger", quantity=1, unit_price="0.01")
        assert error.value.field == "unit_price"
        db.session.rollback()
        assert db.session.get(Invoice, invoice_id).total == Decimal("9999999999.99")


def test_a_discount_needs_a_reason_and_cannot_exceed_the_lines(app, make_invoice, clerk):
    invoice_id = make_invoice(issue=False)
    with app.app_context():
        by = actor(clerk.id)
        with pytest.raises(BillingError) as error:
            invoices.set_discount(invoice_id, by, "10.00", "")
        assert error.value.field == "discount_reason"
        with pytest.raises(BillingError) as error:
            invoices.set_discount(invoice_id, by, "100.01", "too much")
        assert error.value.field == "discount"


def test_invoice_from_a_completed_appointment_prefills_the_consultation_fee(app, completed_appointment, patient,
                                                                            clerk, doctor):
    appointment_id = completed_appointment()
    with app.app_context():
        invoice = invoices.create_invoice(patient.id, actor(clerk.id), appointment_id=appointment_id)
        db.session.commit()
        assert [(line.description, line.unit_price) for line in invoice.lines] == [
            ("Consultation — Dr. Dora Doctor (Cardiology)", Decimal("150.00"))]
        assert invoice.doctor_id == doctor.id and invoice.department_id is not None
        assert invoice.total == Decimal("150.00")


def test_an_appointment_has_one_live_invoice_and_a_void_frees_it(app, completed_appointment, patient, clerk):
    appointment_id = completed_appointment()
    with app.app_context():
        by = actor(clerk.id)
        first = invoices.create_invoice(patient.id, by, appointment_id=appointment_id)
        db.session.commit()
        with pytest.raises(BillingError, match="already has an invoice"):
            invoices.create_invoice(patient.id, by, appointment_id=appointment_id)
        db.session.rollback()
        invoices.void_invoice(first.id, by, "Wrong fee")
        second = invoices.create_invoice(patient.id, by, appointment_id=appointment_id)
        db.session.commit()
        assert second.id != first.id


def test_only_a_completed_appointment_of_the_patient_can_be_billed(app, completed_appointment, create_patient, clerk):
    other = create_patient()
    appointment_id = completed_appointment()
    with app.app_context():
        with pytest.raises(BillingError, match="not this patient's"):
            invoices.create_invoice(other.id, actor(clerk.id), appointment_id=appointment_id)


def test_void_needs_a_reason_and_no_money_received(app, make_invoice, clerk):
    invoice_id = make_invoice()
    with app.app_context():
        by = actor(clerk.id)
        with pytest.raises(BillingError, match="reason"):
            invoices.void_invoice(invoice_id, by, " ")
        payments.record_payment(invoice_id, by, amount="10.00", method="cash", idempotency_key="k" * 12)
        db.session.commit()
        with pytest.raises(BillingError, match="refund it before voiding"):
            invoices.void_invoice(invoice_id, by, "Duplicate")


def test_void_records_reason_frees_nothing_else_and_stops_payments(app, make_invoice, clerk):
    invoice_id = make_invoice()
    with app.app_context():
        by = actor(clerk.id)
        invoice = invoices.void_invoice(invoice_id, by, "Billed twice")
        db.session.commit()
        assert invoice.status is InvoiceStatus.VOID and invoice.void_reason == "Billed twice"
        assert invoice.number is not None  # the number stays used: no gaps, no reuse
        with pytest.raises(BillingError, match="void"):
            payments.record_payment(invoice_id, by, amount="1.00", method="cash", idempotency_key="v" * 12)


def test_every_change_is_in_the_history_and_emits_an_event(app, make_invoice, clerk):
    invoice_id = make_invoice(discount="10.00")
    with app.app_context():
        actions = db.session.scalars(sa.select(InvoiceHistory.action).where(InvoiceHistory.invoice_id == invoice_id)
                                     .order_by(InvoiceHistory.id)).all()
        assert actions == ["created", "line_added", "discount_set", "issued"]
        events = db.session.scalars(sa.select(OutboxEvent.type).where(OutboxEvent.aggregate_type == "invoice",
                                                                      OutboxEvent.aggregate_id == str(invoice_id))
                                    .order_by(OutboxEvent.occurred_at)).all()
        assert events == ["invoice.created", "invoice.line_added", "invoice.discount_set", "invoice.issued"]


def test_drafts_issued_at_the_same_time_get_distinct_consecutive_numbers(app, make_invoice, clerk):
    import threading

    drafts = [make_invoice(issue=False) for _ in range(10)]
    barrier = threading.Barrier(len(drafts))
    errors: list[BaseException] = []

    def issue(invoice_id: int) -> None:
        with app.app_context():
            barrier.wait()
            try:
                retrying(lambda: invoices.issue_invoice(invoice_id, actor(clerk.id)))
                db.session.commit()
            except BaseException as error:  # noqa: BLE001  (reported below)
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=issue, args=(i,)) for i in drafts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with app.app_context():
        numbers = sorted(db.session.scalars(sa.select(Invoice.number).where(Invoice.id.in_(drafts))))
        sequence = [int(n.rsplit("-", 1)[1]) for n in numbers]
        assert sequence == list(range(sequence[0], sequence[0] + 10))


@pytest.mark.parametrize("rate", ["abc", "-1", "100", "8.255", "NaN"])
def test_a_bad_tax_rate_is_refused_at_start(monkeypatch, rate):
    from app import create_app
    from app.config import ConfigError

    monkeypatch.setenv("HMS_TAX_RATE", rate)
    with pytest.raises(ConfigError, match="HMS_TAX_RATE"):
        create_app()
