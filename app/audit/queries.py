"""Reading the audit trail: the filters of the admin page and its CSV export."""
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

    def _utc_start(self, day: date) -> datetime:
        return datetime.combine(day, time.min, tzinfo=clinic_zone())

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
        if self.date_from:
            query = query.where(AuditEntry.occurred_at >= self._utc_start(self.date_from))
        if self.date_to:
            query = query.where(AuditEntry.occurred_at < self._utc_start(self.date_to + timedelta(days=1)))
        if self.break_glass:
            query = query.where(is_break_glass())
        return query.order_by(AuditEntry.seq.desc())

    def as_data(self) -> dict:
        return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in self.__dict__.items()
                if v not in (None, "", False)}


BREAK_GLASS_ACTION = "record.break_glass"


def is_break_glass() -> sa.ColumnElement[bool]:
    """A break-glass grant, or a read of a record that only a break-glass grant allowed: the rows the admin
    reviews (flagged on the audit page)."""
    return sa.or_(AuditEntry.action == BREAK_GLASS_ACTION,
                  sa.func.json_value(AuditEntry.details, "$.break_glass").in_(("1", "true")))  # MariaDB, MySQL


def flagged(entry: AuditEntry) -> bool:
    return entry.action == BREAK_GLASS_ACTION or (entry.details or {}).get("break_glass") is True


def known_actions() -> list[str]:
    return list(db.session.scalars(sa.select(AuditEntry.action).distinct().order_by(AuditEntry.action)))


def csv_rows(audit_filter: AuditFilter) -> Iterator[str]:
    """The filtered rows as CSV text, streamed in chunks."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for entry in db.session.scalars(audit_filter.select().execution_options(yield_per=1000)):
        writer.writerow([entry.seq, entry.occurred_at.isoformat(), entry.actor_id, entry.actor_role, entry.action,
                         entry.entity_type, entry.entity_id, entry.patient_id, entry.source_ip, entry.outcome,
                         json.dumps(entry.details, sort_keys=True), entry.hash])
        if buffer.tell() > 64_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
