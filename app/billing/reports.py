"""Billing reports: every figure is aggregated by MySQL (GROUP BY over indexed ranges), never by a Python
loop over invoices. Python only merges a few small grouped results by their key and fills empty days.

Definitions (shown on each report page as well):

- **Invoiced**: the `total` of invoices that were issued and not voided (status issued, partially paid or
  paid), by their issue day `issued_on` (the clinic-local day of `issued_at`). Drafts and void invoices
  never count.
- **Received from patients**: payments by the day they were paid (`payments.paid_on`), whatever the state
  of their invoice. **Refunded**: refunds recorded as paid back, by `refunds.recorded_on`. **Paid by
  insurers**: `claims.paid_amount` by `claims.paid_on`. **Net collected** = received − refunded + paid by
  insurers.
- **By department / by doctor**: invoices issued in the range, grouped by the invoice's department and
  doctor (copied from the appointment when the invoice was made); *paid to date* and *outstanding* are
  those invoices' current `patient_paid + insurer_paid` and `balance`.
- **Outstanding by age**: invoices open today (issued or partially paid, balance > 0) that were issued in
  the range, aged in days from the issue day to today (clinic time): 0–30, 31–60, 61–90, over 90.
- **Claims by status**: claims submitted in the range (clinic-local days of `submitted_at`), by status.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import sqlalchemy as sa

from app.accounts.models import User
from app.billing.models import (Claim, ClaimStatus, Invoice, InvoiceStatus, Payment, PaymentMethod, Refund,
                                RefundStatus)
from app.clinic.models import Department
from app.extensions import db
from app.timeutil import clinic_today, clinic_zone

ZERO = Decimal("0.00")
BILLED = (InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.PAID)
OPEN = (InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID)
AGE_BUCKETS = (("0–30 days", 0, 30), ("31–60 days", 31, 60), ("61–90 days", 61, 90), ("Over 90 days", 91, None))
MAX_DAYS = 3 * 366  # the longest range a report accepts


# Covering indexes for the statements below (migration 0009): each holds every column its statements read, so
# MariaDB answers from the index alone. Declared here, beside the queries that need them.
sa.Index("ix_invoices_report", Invoice.status, Invoice.issued_on, Invoice.department_id, Invoice.doctor_id,
         Invoice.total, Invoice.patient_paid, Invoice.insurer_paid, Invoice.balance)
sa.Index("ix_payments_paid_on_method_amount", Payment.paid_on, Payment.method, Payment.amount)
sa.Index("ix_refunds_report", Refund.status, Refund.recorded_on, Refund.payment_id, Refund.amount)
sa.Index("ix_claims_paid_on_paid_amount", Claim.paid_on, Claim.paid_amount)
sa.Index("ix_claims_report", Claim.submitted_at, Claim.status, Claim.claimed_amount, Claim.approved_amount,
         Claim.paid_amount)


# --- tables -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str = "text"  # text | int | money

    @property
    def numeric(self) -> bool:
        return self.kind in ("int", "money")


@dataclass
class Table:
    """What a report shows: the HTML table, the chart and the CSV are all drawn from these rows."""

    columns: list[Column]
    rows: list[tuple]
    total: tuple | None = None

    def cell(self, column: Column, value) -> str:
        """A value as the CSV writes it (and as the table's `data-value` holds it): plain, no currency."""
        if value is None:
            return ""
        if column.kind == "money":
            return f"{Decimal(value):.2f}"
        if isinstance(value, date):
            return value.isoformat()
        return str(value)

    def csv_rows(self) -> list[list[str]]:
        out = [[c.label for c in self.columns]]
        out += [[self.cell(c, v) for c, v in zip(self.columns, row)] for row in self.rows]
        if self.total is not None:
            out.append([self.cell(c, v) for c, v in zip(self.columns, self.total)])
        return out

    def csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerows(self.csv_rows())
        return buffer.getvalue()

    def with_total(self, label: str = "Total") -> Table:
        """Add a total row: the sum of every numeric column."""
        total = [label] + [sum((row[i] for row in self.rows), ZERO if c.kind == "money" else 0) if c.numeric else ""
                           for i, c in enumerate(self.columns) if i > 0]
        self.total = tuple(total)
        return self


# --- the period -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Period:
    """Clinic-local days, both ends included."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def utc_bounds(self) -> tuple[datetime, datetime]:
        """[start 00:00, day after end 00:00) in the clinic's zone, as UTC instants (for UTC datetime columns)."""
        from datetime import timezone

        zone = clinic_zone()
        first = datetime.combine(self.start, time(0), tzinfo=zone).astimezone(timezone.utc)
        after = datetime.combine(self.end + timedelta(days=1), time(0), tzinfo=zone).astimezone(timezone.utc)
        return first, after


def months_back(today: date, months: int) -> date:
    """The first day of the month `months` months before today's month."""
    index = today.year * 12 + today.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def _money(value) -> Decimal:
    return Decimal(value or 0).quantize(Decimal("0.01"))


def _execute(statement) -> list[sa.Row]:
    return list(db.session.execute(statement))


# --- revenue over time ------------------------------------------------------------------------------------

def _invoiced_by(key, period: Period) -> dict:
    rows = _execute(
        sa.select(key.label("k"), sa.func.count().label("n"), sa.func.sum(Invoice.total).label("total"))
        .where(Invoice.status.in_(BILLED), Invoice.issued_on.between(period.start, period.end))
        .group_by(key))
    return {row.k: (row.n, _money(row.total)) for row in rows}


def _sum_by(key, amount, *conditions) -> dict:
    rows = _execute(sa.select(key.label("k"), sa.func.sum(amount).label("total")).where(*conditions).group_by(key))
    return {row.k: _money(row.total) for row in rows}


def _month(column):
    return sa.func.date_format(column, "%Y-%m")


REVENUE_COLUMNS = [Column("invoices", "Invoices issued", "int"), Column("invoiced", "Invoiced", "money"),
                   Column("received", "Received from patients", "money"), Column("refunded", "Refunded", "money"),
                   Column("insurers", "Paid by insurers", "money"), Column("net", "Net collected", "money")]


def _revenue(period: Period, key: Callable, keys: list, label: Column) -> Table:
    invoiced = _invoiced_by(key(Invoice.issued_on), period)
    received = _sum_by(key(Payment.paid_on), Payment.amount, Payment.paid_on.between(period.start, period.end))
    refunded = _sum_by(key(Refund.recorded_on), Refund.amount, Refund.status == RefundStatus.RECORDED,
                       Refund.recorded_on.between(period.start, period.end))
    insurers = _sum_by(key(Claim.paid_on), Claim.paid_amount, Claim.paid_on.between(period.start, period.end),
                       Claim.paid_amount > 0)
    rows = []
    for k in keys:
        count, total = invoiced.get(k, (0, ZERO))
        r, f, i = received.get(k, ZERO), refunded.get(k, ZERO), insurers.get(k, ZERO)
        rows.append((k, count, total, r, f, i, r - f + i))
    return Table([label, *REVENUE_COLUMNS], rows).with_total()


def revenue_by_day(period: Period) -> Table:
    days = [period.start + timedelta(days=n) for n in range(period.days)]
    return _revenue(period, lambda column: column, days, Column("day", "Day"))


def revenue_by_month(period: Period) -> Table:
    months, month = [], date(period.start.year, period.start.month, 1)
    while month <= period.end:
        months.append(month.strftime("%Y-%m"))
        month = (month + timedelta(days=32)).replace(day=1)
    return _revenue(period, _month, months, Column("month", "Month"))


# --- revenue by department and by doctor -------------------------------------------------------------------

BY_GROUP_COLUMNS = [Column("invoices", "Invoices issued", "int"), Column("invoiced", "Invoiced", "money"),
                    Column("paid", "Paid to date", "money"), Column("outstanding", "Outstanding", "money")]


def _invoices_grouped(period: Period, key, name, join_target, join_on, unnamed: str, label: Column) -> Table:
    grouped = (sa.select(key.label("k"), sa.func.count().label("n"), sa.func.sum(Invoice.total).label("total"),
                         sa.func.sum(Invoice.patient_paid + Invoice.insurer_paid).label("paid"),
                         sa.func.sum(Invoice.balance).label("balance"))
               .where(Invoice.status.in_(BILLED), Invoice.issued_on.between(period.start, period.end))
               .group_by(key).subquery())
    rows = _execute(sa.select(grouped, name.label("name")).select_from(grouped)
                    .outerjoin(join_target, join_on(grouped.c.k))
                    .order_by(grouped.c.total.desc(), name))
    table = Table([label, *BY_GROUP_COLUMNS],
                  [(row.name or unnamed, row.n, _money(row.total), _money(row.paid), _money(row.balance))
                   for row in rows])
    return table.with_total()


def revenue_by_department(period: Period) -> Table:
    return _invoices_grouped(period, Invoice.department_id, Department.name, Department,
                             lambda k: Department.id == k, "No department", Column("department", "Department"))


def revenue_by_doctor(period: Period) -> Table:
    return _invoices_grouped(period, Invoice.doctor_id, User.full_name, User, lambda k: User.id == k,
                             "No doctor", Column("doctor", "Doctor"))


# --- payments by method -------------------------------------------------------------------------------------

INSURERS = "Insurers (claims)"


def payments_by_method(period: Period) -> Table:
    payments = {row.method: (row.n, _money(row.total)) for row in _execute(
        sa.select(Payment.method, sa.func.count().label("n"), sa.func.sum(Payment.amount).label("total"))
        .where(Payment.paid_on.between(period.start, period.end)).group_by(Payment.method))}
    refunds = {row.method: (row.n, _money(row.total)) for row in _execute(
        sa.select(Payment.method, sa.func.count().label("n"), sa.func.sum(Refund.amount).label("total"))
        .join(Payment, Payment.id == Refund.payment_id)
        .where(Refund.status == RefundStatus.RECORDED, Refund.recorded_on.between(period.start, period.end))
        .group_by(Payment.method))}
    insurers = _execute(
        sa.select(sa.func.count().label("n"), sa.func.sum(Claim.paid_amount).label("total"))
        .where(Claim.paid_on.between(period.start, period.end), Claim.paid_amount > 0))[0]
    rows = []
    for method in PaymentMethod:
        n, received = payments.get(method, (0, ZERO))
        rn, refunded = refunds.get(method, (0, ZERO))
        rows.append((method.label, n, received, rn, refunded, received - refunded))
    insured = _money(insurers.total)
    rows.append((INSURERS, insurers.n, insured, 0, ZERO, insured))
    columns = [Column("method", "Method"), Column("payments", "Payments", "int"),
               Column("received", "Received", "money"), Column("refunds", "Refunds", "int"),
               Column("refunded", "Refunded", "money"), Column("net", "Net", "money")]
    return Table(columns, rows).with_total()


# --- outstanding balances by age ------------------------------------------------------------------------------

def outstanding_by_age(period: Period, today: date | None = None) -> Table:
    today = today or clinic_today()
    age = sa.func.datediff(sa.literal(today, sa.Date), Invoice.issued_on)
    bucket = sa.case(*[(age <= high, index) for index, (_, _, high) in enumerate(AGE_BUCKETS) if high is not None],
                     else_=len(AGE_BUCKETS) - 1)
    found = {row.bucket: (row.n, _money(row.total)) for row in _execute(
        sa.select(bucket.label("bucket"), sa.func.count().label("n"), sa.func.sum(Invoice.balance).label("total"))
        .where(Invoice.status.in_(OPEN), Invoice.issued_on.between(period.start, period.end), Invoice.balance > 0)
        .group_by(bucket))}
    rows = [(label, *found.get(index, (0, ZERO))) for index, (label, _, _) in enumerate(AGE_BUCKETS)]
    columns = [Column("age", "Age (from the issue day)"), Column("invoices", "Open invoices", "int"),
               Column("outstanding", "Outstanding", "money")]
    return Table(columns, rows).with_total()


# --- claims by status ----------------------------------------------------------------------------------------

def claims_by_status(period: Period) -> Table:
    first, after = period.utc_bounds()
    found = {row.status: row for row in _execute(
        sa.select(Claim.status, sa.func.count().label("n"), sa.func.sum(Claim.claimed_amount).label("claimed"),
                  sa.func.sum(sa.func.coalesce(Claim.approved_amount, 0)).label("approved"),
                  sa.func.sum(Claim.paid_amount).label("paid"))
        .where(Claim.submitted_at >= first, Claim.submitted_at < after).group_by(Claim.status))}
    rows = []
    for status in ClaimStatus:
        row = found.get(status)
        rows.append((status.label, row.n if row else 0, _money(row.claimed if row else 0),
                     _money(row.approved if row else 0), _money(row.paid if row else 0)))
    columns = [Column("status", "Status"), Column("claims", "Claims", "int"), Column("claimed", "Claimed", "money"),
               Column("approved", "Approved", "money"), Column("paid", "Paid by insurer", "money")]
    return Table(columns, rows).with_total()


# --- the catalogue -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Chart:
    type: str  # bar | line | doughnut
    series: tuple[str, ...]  # column keys drawn, one dataset each

    def spec(self, table: Table) -> dict:
        index = {c.key: i for i, c in enumerate(table.columns)}
        labels = [table.cell(table.columns[0], row[0]) for row in table.rows]
        money = all(table.columns[index[key]].kind == "money" for key in self.series)
        empty = not any(row[index[key]] for key in self.series for row in table.rows)
        return {"type": self.type, "labels": labels, "money": money, "empty": empty,
                "datasets": [{"label": table.columns[index[key]].label,
                              "data": [table.cell(table.columns[index[key]], row[index[key]]) for row in table.rows]}
                             for key in self.series]}


@dataclass(frozen=True)
class Report:
    key: str
    title: str
    definition: str
    build: Callable[[Period], Table]
    chart: Chart
    default_start: Callable[[date], date] = field(default=lambda today: months_back(today, 11))


REPORTS: dict[str, Report] = {report.key: report for report in [
    Report("revenue-by-day", "Revenue by day",
           "Invoiced: totals of issued, not voided invoices by issue day. Collected: payments received, refunds paid"
           " back and insurers' payments, each by the day it happened.",
           revenue_by_day, Chart("line", ("invoiced", "net")), lambda today: today - timedelta(days=29)),
    Report("revenue-by-month", "Revenue by month",
           "As by day, added up per calendar month (clinic time).",
           revenue_by_month, Chart("bar", ("invoiced", "net"))),
    Report("revenue-by-department", "Revenue by department",
           "Invoices issued in the range (not voided), by the department of the visit; paid to date and outstanding"
           " are those invoices' figures today.",
           revenue_by_department, Chart("bar", ("invoiced", "outstanding"))),
    Report("revenue-by-doctor", "Revenue by doctor",
           "Invoices issued in the range (not voided), by the doctor of the visit; paid to date and outstanding are"
           " those invoices' figures today.",
           revenue_by_doctor, Chart("bar", ("invoiced", "outstanding"))),
    Report("payments-by-method", "Payments by method",
           "Payments by the day they were received, refunds by the day they were paid back (under the method of"
           " the payment they return), and insurers' claim payments.",
           payments_by_method, Chart("doughnut", ("net",))),
    Report("outstanding-by-age", "Outstanding balances by age",
           "Invoices still open today (issued or partially paid, with a balance) that were issued in the range,"
           " aged from their issue day to today.",
           outstanding_by_age, Chart("bar", ("outstanding",)), lambda today: today - timedelta(days=730)),
    Report("claims-by-status", "Claims by status",
           "Insurance claims submitted in the range, by their current status.",
           claims_by_status, Chart("bar", ("claimed", "approved", "paid"))),
]}


def default_period(report: Report, today: date | None = None) -> Period:
    today = today or clinic_today()
    return Period(report.default_start(today), today)
