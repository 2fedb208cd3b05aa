from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db_types import UTCDateTime
from app.extensions import db
from app.timeutil import utcnow


class OutboxEvent(db.Model):
    """A domain event written in the same transaction as the change it describes.

    `seq` orders the relay's reads; it is never used as a watermark (auto-increment values commit
    out of order), the relay looks for rows whose `published_at` is still empty.
    """

    __tablename__ = "outbox_events"
    __table_args__ = (sa.Index("ix_outbox_events_published_at_seq", "published_at", "seq"),)

    seq: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    type: Mapped[str] = mapped_column(sa.String(64))
    version: Mapped[int] = mapped_column(default=1)
    aggregate_type: Mapped[str] = mapped_column(sa.String(32))
    aggregate_id: Mapped[str] = mapped_column(sa.String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    envelope: Mapped[dict] = mapped_column(sa.JSON)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(sa.String(500))


class ProcessedEvent(db.Model):
    """Which events a consumer has applied; inserted in the same transaction as the effect."""

    __tablename__ = "processed_events"

    consumer: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    event_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WorkerHeartbeat(db.Model):
    """The last sign of life of each worker role, read by `python -m workers health`."""

    __tablename__ = "worker_heartbeats"

    role: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    host: Mapped[str] = mapped_column(sa.String(255))
    pid: Mapped[int]
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    processed: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
