"""The hash chain: append an event as the next row, and verify the whole chain."""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask import current_app

from app.audit.models import GENESIS_HASH, AuditChainHead, AuditEntry
from app.extensions import db
from app.timeutil import utcnow

HASHED_FIELDS = ("seq", "event_id", "occurred_at", "actor_id", "actor_role", "action", "entity_type", "entity_id",
                 "patient_id", "source_ip", "outcome", "details")


def canonical(entry: AuditEntry) -> str:
    values = {}
    for name in HASHED_FIELDS:
        value = getattr(entry, name)
        values[name] = value.isoformat() if isinstance(value, datetime) else value
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def link_hash(prev_hash: str, entry: AuditEntry) -> str:
    key = current_app.config["AUDIT_HMAC_KEY"].encode()
    return hmac.new(key, (prev_hash + canonical(entry)).encode(), hashlib.sha256).hexdigest()


def _lock_head() -> AuditChainHead:
    query = sa.select(AuditChainHead).where(AuditChainHead.id == 1).with_for_update()
    head = db.session.scalar(query)
    if head is None:
        db.session.execute(sa.insert(AuditChainHead).prefix_with("IGNORE").values(id=1, seq=0, hash=GENESIS_HASH))
        head = db.session.scalar(query)
    return head


def _entry(envelope: dict) -> AuditEntry:
    actor = envelope.get("actor") or {}
    details = dict(envelope.get("data") or {})
    if envelope["type"] == "user.password_link_issued":
        details.pop("link", None)  # a live single-use secret; the trail records that a link was sent, not the link
    if actor.get("client_id"):
        details["client_id"] = actor["client_id"]  # the program that acted for the user (the API)
    return AuditEntry(
        event_id=envelope["id"],
        occurred_at=datetime.fromisoformat(envelope["occurred_at"]),
        recorded_at=utcnow(),
        actor_id=actor.get("id"),
        actor_role=actor.get("role"),
        action=envelope["type"],
        entity_type=envelope["aggregate_type"],
        entity_id=str(envelope["aggregate_id"]),
        patient_id=envelope.get("patient_id"),
        source_ip=envelope.get("source_ip"),
        outcome=envelope.get("outcome") or "success",
        details=details,
    )


def append_all(envelopes: list[dict]) -> list[AuditEntry]:
    """Add the events, in order, as the next rows of the chain; the caller commits.

    The rows are built and linked in memory first, so a batch locks the head once, inserts its rows
    in one statement and moves the head once, however many events it holds."""
    entries = [_entry(envelope) for envelope in envelopes]
    if not entries:
        return []
    head = _lock_head()
    seq, prev_hash = head.seq, head.hash
    for entry in entries:
        seq += 1
        entry.seq, entry.prev_hash = seq, prev_hash
        entry.hash = prev_hash = link_hash(prev_hash, entry)
    db.session.add_all(entries)
    head.seq, head.hash = seq, prev_hash
    return entries


def append(envelope: dict) -> AuditEntry:
    """Add the event as the next row of the chain; the caller commits."""
    return append_all([envelope])[0]


@dataclass(frozen=True)
class Verification:
    intact: bool
    rows: int
    first_bad_seq: int | None = None
    problem: str | None = None

    def __str__(self) -> str:
        if self.intact:
            return f"intact, {self.rows} rows"
        return f"broken at sequence {self.first_bad_seq}: {self.problem}"


def verify(batch: int = 2000) -> Verification:
    """Walk the chain in order; name the first row that was edited, deleted or reordered."""
    expected_seq, prev_hash, rows = 1, GENESIS_HASH, 0
    last_seq = 0
    while True:
        entries = db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.seq >= expected_seq).order_by(AuditEntry.seq).limit(batch)).all()
        if not entries:
            break
        for entry in entries:
            if entry.seq != expected_seq:
                return Verification(False, rows, expected_seq, f"row {expected_seq} is missing (deleted)")
            if entry.prev_hash != prev_hash:
                return Verification(False, rows, entry.seq, "its link to the previous row does not match (reordered)")
            if link_hash(prev_hash, entry) != entry.hash:
                return Verification(False, rows, entry.seq, "its content does not match its hash (edited)")
            prev_hash, expected_seq, last_seq, rows = entry.hash, entry.seq + 1, entry.seq, rows + 1
        db.session.expunge_all()
    head = db.session.get(AuditChainHead, 1)
    if head is not None and (head.seq != last_seq or head.hash != prev_hash):
        if head.seq > last_seq:
            return Verification(False, rows, last_seq + 1, f"rows {last_seq + 1}–{head.seq} are missing (deleted)")
        return Verification(False, rows, head.seq, "the chain head does not match the last row")
    return Verification(True, rows)
