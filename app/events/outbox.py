"""`emit`: the one way domain code announces a change.

The event is an outbox row in the caller's transaction: it commits or rolls back with the change.
After the commit, the in-process relay is woken so the event reaches Kafka within milliseconds.
"""
from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from flask import current_app, g, has_app_context, has_request_context, request
from flask_login import current_user

from app.events.models import OutboxEvent
from app.extensions import db
from app.timeutil import utcnow

ENVELOPE_VERSION = 1
_SESSION_FLAG = "hms_outbox_pending"


def _actor() -> dict | None:
    if has_request_context() and current_user and current_user.is_authenticated:
        return {"id": current_user.id, "role": current_user.role.value}
    return None


def emit(type: str, aggregate_type: str, aggregate_id: Any, data: dict | None = None, *,
         actor: dict | None = None, patient_id: int | None = None, outcome: str = "success",
         version: int = ENVELOPE_VERSION) -> OutboxEvent:
    """Add an event to the current transaction. `actor` defaults to the signed-in user (or the API token's
    user); a request through the API adds its OAuth `client_id` to the actor."""
    occurred_at = utcnow()
    actor = actor if actor is not None else _actor()
    client_id = g.get("api_client_id") if has_request_context() else None
    if actor is not None and client_id is not None:
        actor = {**actor, "client_id": client_id}  # a program acting for the user: the audit names it
    envelope = {
        "id": str(uuid.uuid4()),
        "type": type,
        "version": version,
        "occurred_at": occurred_at.isoformat(),
        "actor": actor,
        "aggregate_type": aggregate_type,
        "aggregate_id": str(aggregate_id),
        "patient_id": patient_id,
        "source_ip": request.remote_addr if has_request_context() else None,
        "outcome": outcome,
        "data": data or {},
    }
    row = OutboxEvent(id=envelope["id"], type=type, version=version, aggregate_type=aggregate_type,
                      aggregate_id=str(aggregate_id), occurred_at=occurred_at, envelope=envelope)
    db.session.add(row)
    db.session.info[_SESSION_FLAG] = True
    return row


@sa.event.listens_for(sa.orm.Session, "after_commit")
def _wake_relay_after_commit(session: sa.orm.Session) -> None:
    if session.info.pop(_SESSION_FLAG, False):
        relay = current_app.extensions.get("hms_relay") if has_app_context() else None
        if relay is not None:
            relay.wake()


@sa.event.listens_for(sa.orm.Session, "after_soft_rollback")
def _forget_after_rollback(session: sa.orm.Session, previous_transaction) -> None:
    session.info.pop(_SESSION_FLAG, None)
