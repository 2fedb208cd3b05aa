"""The API's own bookkeeping: idempotency keys and rate-limit counters (shared by every web process)."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from app.db_types import UTCDateTime
from app.extensions import db
from app.timeutil import utcnow


class IdempotencyKey(db.Model):
    """A creating request under an `Idempotency-Key`: claimed while it runs, then its answer, to replay."""
    __tablename__ = "api_idempotency_keys"
    __table_args__ = (sa.UniqueConstraint("principal", "idem_key", name="uq_api_idempotency_keys_principal"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    principal: Mapped[str] = mapped_column(sa.String(100))  # "<client_id>:<user id>"
    idem_key: Mapped[str] = mapped_column(sa.String(255))
    fingerprint: Mapped[str] = mapped_column(sa.String(64))  # SHA-256 of method, path and body
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status_code: Mapped[int | None]
    headers: Mapped[dict | None] = mapped_column(sa.JSON)
    body: Mapped[str | None] = mapped_column(sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb"))


class RateLimitCounter(db.Model):
    """Requests of one bucket (a client, an address) in one fixed window. A MEMORY table: a count is written on
    every request, and needs no durability (a restart forgets the current windows), so no redo log is flushed
    for it; every web process still shares it."""
    __tablename__ = "api_rate_limits"
    __table_args__ = {"mysql_engine": "MEMORY"}

    bucket: Mapped[str] = mapped_column(sa.String(120), primary_key=True)
    window_start: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)  # epoch s
    hits: Mapped[int] = mapped_column(default=0)
