"""Billing reports: the figures against totals computed by hand on a small fixture built through the services,
the CSV against the table, the date filter, and who may read them."""
from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from app.accounts.models import Role
from app.appointments.models import Appointment, Status
from app.billing import claims, invoices, payments
from app.billing.models import Invoice
from app.billing.reports import REPORTS, Period
from app.extensions import db
from app.timeutil import clinic_today, utcnow
from tests.billing.conftest import actor
from tests.helpers import text

pytestmark = pytest.mark.clock  # the outcome depends on the clock: see `make test-clock`

D = Decimal


def _backdate(invoice_id: int, days: int) -> None:
    """As if issued `days` ago (the services always issue today)."""
    invoice = db.session.get(Invoice, invoice_id)
    invoice.issued_on = invoice.issued_on - timedelta(days=days)
    invoice.issued_at = invoice.issued_at - timedelta(days=days)
    invoice.due_on = invoice.issued_on + timedelta(days=30)


@pytest.fixture
def books(app, create_user, create_department, create_doctor, clerk, admin):
    """Five invoices, payments by three methods, a refund and four claims, at known days before today (T).

    Inv1 Cardiology/Dr Heart, T-40: consultation 100 + ECG 2 × 25.50 = 151.00, discount 11.00, tax 10 % = 14.00
         → total 154.00. Paid 54.00 cash (T-40) and 100.00 card (T-10); 20.00 of the card payment refunded
         (recorded T) → balance 20.00.
    Inv2 Pediatrics/Dr Small, T-100: consultation 80.00 + tax 8.00 = 88.00. Claim 50.00 approved, paid by the
         insurer T-5; 8.00 by bank transfer T-5 → balance 30.00.
    Inv3 no visit, T: 30.00 + tax 3.00 = 33.00, unpaid; a claim of 20.00 pending, one of 10.00 denied and one
         of 3.00 withdrawn.
    Inv4 a draft of 500.00; Inv5 77.00 issued then voided: neither counts anywhere.
    """
    cardiology, pediatrics = create_department("Cardiology"), create_department("Pediatrics")
    heart = create_doctor(full_name="Dr Heart", department_ids=[cardiology], fee="100.00")
    small = create_doctor(full_name="Dr Small", department_ids=[pediatrics], fee="80.00")
    ann = create_user.patient(full_name="Ann Billed")
    bob = create_user.patient(full_name="Bob Billed")
    today = None
    app.config["HMS_TAX_RATE"] = "10"
    try:
        with app.app_context():
            today = clinic_today()
            by, boss = actor(clerk.id), actor(admin.id)

            def visit(patient, doctor, department) -> int:
                start = (utcnow() - timedelta(days=120)).replace(microsecond=0)
                appointment = Appointment(patient_id=patient.id, doctor_id=doctor.id, department_id=department,
                                          starts_at=start, ends_at=start + timedelta(minutes=30),
                                          status=Status.COMPLETED, reason="Check-up", active=None)
                db.session.add(appointment)
                db.session.flush()
                return appointment.id

            def pay(invoice_id, amount, method, days_ago):
                return payments.record_payment(invoice_id, by, amount=D(amount), method=method,
                                               paid_on=today - timedelta(days=days_ago),
                                               idempotency_key=payments.new_idempotency_key())

            inv1 = invoices.create_invoice(ann.id, by, appointment_id=visit(ann, heart, cardiology)).id
            invoices.add_line(inv1, by, description="ECG", quantity=2, unit_price="25.50")
            invoices.set_discount(inv1, by, "11.00", "Returning patient")
            invoices.issue_invoice(inv1, by)
            _backdate(inv1, 40)
            pay(inv1, "54.00", "cash", 40)
            card = pay(inv1, "100.00", "card", 10)
            refund = payments.request_refund(card.id, by, "20.00", "Charged twice for the ECG lead")
            payments.approve_refund(refund.id, boss)
            payments.record_refund(refund.id, by, "RF-1")

            inv2 = invoices.create_invoice(bob.id, by, appointment_id=visit(bob, small, pediatrics)).id
            invoices.issue_invoice(inv2, by)
            _backdate(inv2, 100)
            claim = claims.submit_claim(inv2, by, payer="Acme Health", policy_number="AC-1", claimed_amount="50.00")
            claims.decide_claim(claim.id, by, status="approved", payer_reference="ACME-77")
            claims.mark_claim_paid(claim.id, by, paid_on=today - timedelta(days=5))
            pay(inv2, "8.00", "bank_transfer", 5)

            inv3 = invoices.create_invoice(ann.id, by).id
            invoices.add_line(inv3, by, description="Dressing", quantity=1, unit_price="30.00")
            invoices.issue_invoice(inv3, by)
            claims.submit_claim(inv3, by, payer="Acme Health", policy_number="AC-2", claimed_amount="20.00")
            denied = claims.submit_claim(inv3, by, payer="Other Mutual", policy_number="OM-9", claimed_amount="10.00")
            claims.decide_claim(denied.id, by, status="denied", reason_code="CO-50")
            wrong = claims.submit_claim(inv3, by, payer="Acme Health", policy_number="AC-3", claimed_amount="3.00")
            claims.withdraw_claim(wrong.id, by, "Filed under the wrong policy")

            inv4 = invoices.create_invoice(bob.id, by).id
            invoices.add_line(inv4, by, description="Surgery", quantity=1, unit_price="500.00")

            inv5 = invoices.create_invoice(bob.id, by).id
            invoices.add_line(inv5, by, description="Cast", quantity=1, unit_price="70.00")
            invoices.issue_invoice(inv5, by)
            invoices.void_invoice(inv5, by, "Billed to the wrong patient")
            db.session.commit()
            balances = [db.session.get(Invoice, i).balance for i in (inv1, inv2, inv3)]
            assert balances == [D("20.00"), D("30.00"), D("33.00")]  # the fixture is what the docstring says
    finally:
        app.config["HMS_TAX_RATE"] = "0"
    return today


def build(app, key: str, start: date, end: date):
    with app.app_context():
        return REPORTS[key].build(Period(start, end))


def test_revenue_by_day_matches_the_hand_computed_figures(app, books):
    today = books
    table = build(app, "revenue-by-day", today - timedelta(days=120), today)
    assert len(table.rows) == 121  # every day of the range, empty ones included
    active = {row[0]: row[1:] for row in table.rows if any(row[1:])}
    assert active == {
        today - timedelta(days=100): (1, D("88.00"), D("0"), D("0"), D("0"), D("0")),
        today - timedelta(days=40): (1, D("154.00"), D("54.00"), D("0"), D("0"), D("54.00")),
        today - timedelta(days=10): (0, D("0"), D("100.00"), D("0"), D("0"), D("100.00")),
        today - timedelta(days=5): (0, D("0"), D("8.00"), D("0"), D("50.00"), D("58.00")),
        today: (1, D("33.00"), D("0"), D("20.00"), D("0"), D("-20.00")),
    }
    assert table.total == ("Total", 3, D("275.00"), D("162.00"), D("20.00"), D("50.00"), D("192.00"))


def test_revenue_by_month_adds_up_the_days_per_calendar_month(app, books):
    today = books
    days = build(app, "revenue-by-day", today - timedelta(days=120), today)
    months = build(app, "revenue-by-month", today - timedelta(days=120), today)
    expected: dict[str, list] = {}
    for row in days.rows:
        sums = expected.setdefault(row[0].strftime("%Y-%m"), [0, D(0), D(0), D(0), D(0), D(0)])
        for i, value in enumerate(row[1:]):
            sums[i] += value
    assert {row[0]: list(row[1:]) for row in months.rows} == expected
    assert months.total == days.total


def test_revenue_by_department_and_by_doctor(app, books):
    today = books
    period = (today - timedelta(days=365), today)
    assert build(app, "revenue-by-department", *period).rows == [
        ("Cardiology", 1, D("154.00"), D("134.00"), D("20.00")),
        ("Pediatrics", 1, D("88.00"), D("58.00"), D("30.00")),
        ("No department", 1, D("33.00"), D("0.00"), D("33.00")),
    ]
    doctors = build(app, "revenue-by-doctor", *period)
    assert doctors.rows == [
        ("Dr Heart", 1, D("154.00"), D("134.00"), D("20.00")),
        ("Dr Small", 1, D("88.00"), D("58.00"), D("30.00")),
        ("No doctor", 1, D("33.00"), D("0.00"), D("33.00")),
    ]
    assert doctors.total == ("Total", 3, D("275.00"), D("192.00"), D("83.00"))


def test_payments_by_method_with_refunds_under_the_payments_method(app, books):
    today = books
    table = build(app, "payments-by-method", today - timedelta(days=365), today)
    assert table.rows == [
        ("Cash", 1, D("54.00"), 0, D("0"), D("54.00")),
        ("Card", 1, D("100.00"), 1, D("20.00"), D("80.00")),
        ("Bank transfer", 1, D("8.00"), 0, D("0"), D("8.00")),
        ("Insurers (claims)", 1, D("50.00"), 0, D("0"), D("50.00")),
    ]
    assert table.total == ("Total", 4, D("212.00"), 1, D("20.00"), D("192.00"))


def test_outstanding_balances_by_age_from_the_issue_day(app, books):
    today = books
    table = build(app, "outstanding-by-age", today - timedelta(days=730), today)
    assert table.rows == [
        ("0–30 days", 1, D("33.00")),
        ("31–60 days", 1, D("20.00")),
        ("61–90 days", 0, D("0")),
        ("Over 90 days", 1, D("30.00")),
    ]
    assert table.total == ("Total", 3, D("83.00"))


def test_claims_by_status(app, books):
    today = books
    table = build(app, "claims-by-status", today - timedelta(days=30), today)
    assert table.rows == [
        ("Submitted", 1, D("20.00"), D("0.00"), D("0.00")),
        ("Approved", 0, D("0.00"), D("0.00"), D("0.00")),
        ("Partially approved", 0, D("0.00"), D("0.00"), D("0.00")),
        ("Denied", 1, D("10.00"), D("0.00"), D("0.00")),
        ("Paid", 1, D("50.00"), D("50.00"), D("50.00")),
        ("Withdrawn", 1, D("3.00"), D("0.00"), D("0.00")),
    ]
    assert table.total == ("Total", 4, D("83.00"), D("50.00"), D("50.00"))


def test_the_date_range_limits_every_figure(app, books):
    today = books
    start, end = today - timedelta(days=45), today - timedelta(days=6)
    assert build(app, "revenue-by-day", start, end).total == (
        "Total", 1, D("154.00"), D("154.00"), D("0"), D("0"), D("154.00"))
    assert build(app, "revenue-by-department", start, end).rows == [
        ("Cardiology", 1, D("154.00"), D("134.00"), D("20.00"))]
    assert build(app, "payments-by-method", start, end).total == ("Total", 2, D("154.00"), 0, D("0"), D("154.00"))
    assert build(app, "outstanding-by-age", start, end).total == ("Total", 1, D("20.00"))
    assert build(app, "claims-by-status", start, end).total[1] == 0


# --- the pages -------------------------------------------------------------------------------------------

def _table_cells(html: str) -> list[list[str]]:
    """The report table's header labels, then the data-value of every body and footer cell, row by row."""
    import html as html_lib

    table = html[html.index('data-testid="report-table"'):html.index("</table>")]
    out = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S):
        headers = re.findall(r"<th[^>]*>(.*?)</th>", row, re.S)
        cells = headers if headers else re.findall(r'<td data-value="([^"]*)"', row)
        out.append([html_lib.unescape(c.strip()) for c in cells])
    return out


@pytest.mark.parametrize("key", list(REPORTS))
def test_each_reports_csv_has_exactly_the_rows_of_its_table(app, books, clerk, login, key):
    today = books
    client = login(clerk)
    query = f"start={(today - timedelta(days=120)).isoformat()}&end={today.isoformat()}"
    page = client.get(f"/billing/reports/{key}?{query}")
    assert page.status_code == 200
    export = client.get(f"/billing/reports/{key}.csv?{query}")
    assert export.status_code == 200
    assert export.mimetype == "text/csv"
    assert export.headers["Content-Disposition"].startswith(f'attachment; filename="{key}_')
    rows = list(csv.reader(io.StringIO(export.get_data(as_text=True))))
    assert rows == _table_cells(text(page))
    assert len(rows) >= 3  # header, at least one row, the total
    assert 'data-chart="' in text(page) and "chart-4.6.1.umd.min.js" in text(page)


def test_the_filter_answers_the_report_fragment_to_htmx(app, books, clerk, login):
    today = books
    client = login(clerk)
    response = client.get(f"/billing/reports/revenue-by-day?start={(today - timedelta(days=45)).isoformat()}"
                          f"&end={(today - timedelta(days=6)).isoformat()}", htmx=True)
    assert response.status_code == 200
    body = text(response)
    assert body.lstrip().startswith('<section class="card shadow-sm" id="report-body"')
    assert "<html" not in body
    assert "(40 days)" in body and 'data-value="154.00"' in body


def test_a_bad_range_is_refused_beside_the_field(app, clerk, login):
    client = login(clerk)
    response = client.get("/billing/reports/revenue-by-day?start=2026-02-10&end=2026-02-01")
    assert response.status_code == 422
    assert "The end must not be before the start." in text(response)
    response = client.get("/billing/reports/revenue-by-day?start=yesterday")
    assert response.status_code == 422
    assert "Enter a date as YYYY-MM-DD." in text(response)
    assert client.get("/billing/reports/claims-by-status.csv?start=2026-02-10&end=2026-02-01").status_code == 422


def test_an_empty_clinic_shows_zero_rows_not_an_error(app, clerk, login):
    client = login(clerk)
    for key in REPORTS:
        response = client.get(f"/billing/reports/{key}")
        assert response.status_code == 200, key
        assert "Total" in text(response)


def test_reports_are_for_clerks_and_admins_only(app, create_user, create_doctor, clerk, admin, client):
    assert client.get("/billing/reports/revenue-by-day").status_code == 302  # to the sign-in page
    from tests.conftest import DEFAULT_PASSWORD

    def status_for(user, url):
        from tests.helpers import Client

        c = Client(app)
        assert c.sign_in(user.email, DEFAULT_PASSWORD).status_code == 303
        return c.get(url).status_code

    doctor, patient = create_doctor(), create_user(Role.PATIENT)
    for url in ("/billing/reports/revenue-by-day", "/billing/reports/revenue-by-day.csv"):
        assert status_for(clerk, url) == 200
        assert status_for(admin, url) == 200
        assert status_for(doctor, url) == 403
        assert status_for(patient, url) == 403
    assert status_for(clerk, "/billing/reports/no-such-report") == 404


def test_reports_appear_in_the_clerks_and_admins_navigation(app, clerk, admin, login):
    client = login(clerk)
    assert 'href="/billing/reports/"' in text(client.get("/billing/"))
    index = client.get("/billing/reports/")
    assert index.status_code in (302, 303) and index.headers["Location"].endswith("/billing/reports/revenue-by-day")
    client.post_form("/logout", {})
    login(admin)
    page = text(client.get("/billing/reports/claims-by-status"))
    assert re.search(r'<a class="nav-link[^"]* active fw-semibold" href="/billing/reports/"\s+'
                     r'aria-current="page">Billing reports</a>', page)


def test_the_demo_history_gives_every_report_figures_once(app, clerk, admin, create_doctor, create_department):
    from app.demo.reports import seed_report_history
    from app.billing.reports import default_period
    from app.events.models import OutboxEvent

    create_doctor(full_name="Dr Demo", department_ids=[create_department("General Practice")])
    with app.app_context():
        assert seed_report_history(actor(clerk.id), actor(admin.id)) == 150
        db.session.commit()
        assert seed_report_history(actor(clerk.id), actor(admin.id)) == 0
        for report in REPORTS.values():
            table = report.build(default_period(report))
            assert any(value for value in table.total[1:]), report.key
        by_status = REPORTS["claims-by-status"]
        assert dict(row[:2] for row in by_status.build(default_period(by_status)).rows)["Withdrawn"] == 5
        invoice_events = db.session.scalar(sa.select(sa.func.count()).select_from(OutboxEvent)
                                           .where(OutboxEvent.aggregate_type == "invoice"))
        assert invoice_events == 0  # back-dated history: no emails, no audit rows for things that did not happen now
