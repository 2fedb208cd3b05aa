"""Reading the audit trail: the filters of the admin page and its CSV and JSON exports."""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa

from app.audit.models import AuditEntry
from app.extensions import db
from app.timeutil import clinic_zone

CSV_COLUMNS = ("seq", "occurred_at", "actor_id", "actor_role", "action", "entity_type", "entity_id", "patient_id",
               "source_ip", "outcome", "details", "hash")


@dataclass(frozen=True)
class AuditFilter:
    actor_id: int | None = None
    patient_id: int | None = None
    action: str | None = None
    entity_type: str | None = None
    entity_id: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    break_glass: bool = False

    def select(self) -> sa.Select:
        query = sa.select(AuditEntry)
        if self.actor_id is not None:
            query = query.where(AuditEntry.actor_id == self.actor_id)
        if self.patient_id is not None:
            query = query.where(AuditEntry.patient_id == self.patient_id)
        if self.action:
            query = query.where(AuditEntry.action == self.action)
        if self.entity_type:
            query = query.where(AuditEntry.entity_type == self.entity_type)
        if self.entity_id:
            query = query.where(AuditEntry.entity_id == self.entity_id)
        query = within_days(query, self.date_from, self.date_to)
        if self.break_glass:
            query = query.where(is_break_glass())
        return query.order_by(AuditEntry.seq.desc())

    def as_data(self) -> dict:
        return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in self.__dict__.items()
                if v not in (None, "", False)}


BREAK_GLASS_ACTION = "record.break_glass"
# The days a filter may name (the forms refuse others, beside the field): a range the database and Python's dates
# can both hold, whatever the clinic's zone.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2100, 12, 31)


def clinic_day_start(day: date) -> datetime:
    """The instant `day` begins in the clinic's zone."""
    return datetime.combine(day, time.min, tzinfo=clinic_zone())


def within_days(query: sa.Select, date_from: date | None, date_to: date | None) -> sa.Select:
    """Rows from the start of `date_from` to the end of `date_to`, both days in the clinic's zone."""
    if date_from:
        query = query.where(AuditEntry.occurred_at >= clinic_day_start(date_from))
    if date_to:
        query = query.where(AuditEntry.occurred_at < clinic_day_start(date_to + timedelta(days=1)))
    return query


def is_break_glass() -> sa.ColumnElement[bool]:
    """A break-glass grant, or a read of a record that only a break-glass grant allowed: the rows the admin
    reviews (flagged on the audit page)."""
    return sa.or_(AuditEntry.action == BREAK_GLASS_ACTION,
                  sa.func.json_value(AuditEntry.details, "$.break_glass").in_(("1", "true")))  # MariaDB, MySQL


def flagged(entry: AuditEntry) -> bool:
    return entry.action == BREAK_GLASS_ACTION or (entry.details or {}).get("break_glass") is True


def known_actions() -> list[str]:
    return list(db.session.scalars(sa.select(AuditEntry.action).distinct().order_by(AuditEntry.action)))


def count_rows(audit_filter: AuditFilter) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(audit_filter.select().order_by(None).subquery()))


def spreadsheet_safe(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula (=, +, -, @, tab, CR first) is kept as text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def export_record(entry: AuditEntry) -> dict:
    """One row as the JSON export gives it: every stored field (the chain's links too, to check them against
    `flask audit verify`), the program that acted and the break-glass flag."""
    details = entry.details or {}
    return {"seq": entry.seq, "event_id": entry.event_id, "occurred_at": entry.occurred_at.isoformat(),
            "recorded_at": entry.recorded_at.isoformat(), "actor_id": entry.actor_id, "actor_role": entry.actor_role,
            "client_id": details.get("client_id"), "action": entry.action, "entity_type": entry.entity_type,
            "entity_id": entry.entity_id, "patient_id": entry.patient_id, "source_ip": entry.source_ip,
            "outcome": entry.outcome, "break_glass": flagged(entry), "details": details,
            "prev_hash": entry.prev_hash, "hash": entry.hash}


def _entries(audit_filter: AuditFilter) -> Iterator[AuditEntry]:
    return iter(db.session.scalars(audit_filter.select().execution_options(yield_per=1000)))


def csv_rows(audit_filter: AuditFilter) -> Iterator[str]:
    """The filtered rows as CSV text, streamed in chunks."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for entry in _entries(audit_filter):
        writer.writerow([spreadsheet_safe(value) for value in (
            entry.seq, entry.occurred_at.isoformat(), entry.actor_id, entry.actor_role, entry.action,
            entry.entity_type, entry.entity_id, entry.patient_id, entry.source_ip, entry.outcome,
            json.dumps(entry.details, sort_keys=True), entry.hash)])
        if buffer.tell() > 64_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def json_rows(audit_filter: AuditFilter, *, exported_at: datetime) -> Iterator[str]:
    """The filtered rows as one JSON document, streamed in chunks: {"exported_at", "time_zone", "filters",
    "events": [export_record, ...]} (times in UTC; the filters' days in `time_zone`)."""
    head = {"exported_at": exported_at.isoformat(), "time_zone": clinic_zone().key, "filters": audit_filter.as_data()}
    chunk = [json.dumps(head, sort_keys=True)[:-1] + ', "events": [']
    size, separator = 0, "\n"
    for entry in _entries(audit_filter):
        line = separator + json.dumps(export_record(entry), sort_keys=True, ensure_ascii=False)
        chunk.append(line)
        size, separator = size + len(line), ",\n"
        if size > 64_000:
            yield "".join(chunk)
            chunk, size = [], 0
    chunk.append("\n]}\n")
    yield "".join(chunk)
