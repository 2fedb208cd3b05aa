"""The audit trail through the API (admins): the admin page's filters (`app.audit.queries.AuditFilter`), newest
first, a cursor on the chain's sequence number, so new rows never shift a page being read."""
from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import Field

from app.api import bp
from app.api.auth import require_area
from app.api.framework import MAX_LIMIT, ApiModel, Reply, decode_cursor, operation, page_model, paged
from app.api.problems import FieldError, Problem
from app.audit.models import AuditEntry
from app.audit.queries import AuditFilter, flagged
from app.extensions import db
from app.policy import Kind, Verb

Id = Annotated[int, Field(ge=1, le=10**18)]
Day = Annotated[date, Field(ge=date(2000, 1, 1), le=date(2100, 12, 31))]


class AuditEventOut(ApiModel):
    seq: int = Field(description="The row's place in the hash chain.")
    event_id: str
    occurred_at: datetime
    recorded_at: datetime
    actor_id: int | None
    actor_role: str | None
    client_id: str | None = Field(description="The program (OAuth client) that acted for the actor, if any.")
    action: str
    entity_type: str
    entity_id: str
    patient_id: int | None
    source_ip: str | None
    outcome: str
    break_glass: bool = Field(description="Emergency access to a record, or a read it allowed.")
    details: dict[str, Any]
    hash: str


AuditEventPage = page_model(AuditEventOut)


class AuditQuery(ApiModel):
    actor_id: Id | None = None
    patient_id: Id | None = None
    action: str | None = Field(None, max_length=64, description="e.g. patient.profile_changed")
    entity_type: str | None = Field(None, max_length=32)
    entity_id: str | None = Field(None, max_length=64)
    date_from: Day | None = Field(None, description="From this day on (clinic time zone).")
    date_to: Day | None = Field(None, description="Up to and including this day.")
    break_glass: bool = False
    limit: int = Field(50, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(None, max_length=200)


def out(entry: AuditEntry) -> AuditEventOut:
    details = entry.details or {}
    return AuditEventOut(seq=entry.seq, event_id=entry.event_id, occurred_at=entry.occurred_at,
                         recorded_at=entry.recorded_at, actor_id=entry.actor_id, actor_role=entry.actor_role,
                         client_id=details.get("client_id"), action=entry.action, entity_type=entry.entity_type,
                         entity_id=entry.entity_id, patient_id=entry.patient_id, source_ip=entry.source_ip,
                         outcome=entry.outcome, break_glass=flagged(entry), details=details, hash=entry.hash)


@operation(bp, "GET", "/audit-events", tag="Audit", summary="List audit events", query=AuditQuery,
           response=AuditEventPage, scope="AuditEvent.s", errors=(403, 422))
def list_audit_events(query: AuditQuery):
    """The audit trail, newest first, with the admin page's filters; a cursor gives the next (older) page."""
    require_area("admin", Kind.AUDIT, Verb.READ)
    if query.date_from and query.date_to and query.date_to < query.date_from:
        raise Problem(422, "The end date is before the start date.",
                      errors=[FieldError("date_to", "Before date_from.", in_query=True)])
    select = AuditFilter(actor_id=query.actor_id, patient_id=query.patient_id, action=query.action,
                         entity_type=query.entity_type, entity_id=query.entity_id, date_from=query.date_from,
                         date_to=query.date_to, break_glass=query.break_glass).select()
    position = decode_cursor(query.cursor, (int,))
    if position is not None:
        select = select.where(AuditEntry.seq < position[0])
    rows = list(db.session.scalars(select.limit(query.limit + 1)))
    items, cursor, headers = paged(rows, query.limit, lambda e: [e.seq], "api.list_audit_events")
    return Reply(AuditEventPage(items=[out(e) for e in items], next_cursor=cursor), headers=headers)
