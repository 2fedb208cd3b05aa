from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db_types import UTCDateTime
from app.extensions import db

GENESIS_HASH = "0" * 64


class AuditEntry(db.Model):
    """One append-only audit row. `hash` chains it to the row before (see app/audit/chain.py);
    triggers created by the migration reject UPDATE and DELETE."""

    __tablename__ = "audit_log"
    __table_args__ = (
        sa.Index("ix_audit_log_occurred_at", "occurred_at"),
        sa.Index("ix_audit_log_actor_id_occurred_at", "actor_id", "occurred_at"),
        sa.Index("ix_audit_log_patient_id_occurred_at", "patient_id", "occurred_at"),
        sa.Index("ix_audit_log_action_occurred_at", "action", "occurred_at"),
        sa.Index("ix_audit_log_entity_type_entity_id", "entity_type", "entity_id"),
    )

    seq: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    event_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor_id: Mapped[int | None]
    actor_role: Mapped[str | None] = mapped_column(sa.String(16))
    action: Mapped[str] = mapped_column(sa.String(64))
    entity_type: Mapped[str] = mapped_column(sa.String(32))
    entity_id: Mapped[str] = mapped_column(sa.String(64))
    patient_id: Mapped[int | None]
    source_ip: Mapped[str | None] = mapped_column(sa.String(45))
    outcome: Mapped[str] = mapped_column(sa.String(16))
    details: Mapped[dict] = mapped_column(sa.JSON)
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64))


class AuditChainHead(db.Model):
    """The last link of the chain: writers lock this row, so two workers cannot fork the chain,
    and verify compares it with the last row, so deleting the newest rows is detected too."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(sa.BigInteger)
    hash: Mapped[str] = mapped_column(sa.String(64))
