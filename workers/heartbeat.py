"""Each role records that it is alive, read by `python -m workers health`."""
from __future__ import annotations

import os
import socket
import time

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.dialects.mysql import insert

from app.events.models import WorkerHeartbeat
from app.extensions import db
from app.timeutil import utcnow


class Heartbeat:
    def __init__(self, app: Flask, role: str):
        self.app = app
        self.role = role
        self.interval = app.config["HMS_HEARTBEAT_SECONDS"]
        self._last = 0.0
        self._processed = 0
        self._last_event_at = None
        self.assigned: int | None = None

    def processed(self, applied: bool) -> None:
        if applied:
            self._processed += 1
        self._last_event_at = utcnow()

    def maybe_beat(self) -> None:
        if time.monotonic() - self._last >= self.interval:
            self.beat()

    def beat(self) -> None:
        self._last = time.monotonic()
        values = {"role": self.role, "host": socket.gethostname()[:255], "pid": os.getpid(), "beat_at": utcnow(),
                  "last_event_at": self._last_event_at, "processed": self._processed}
        statement = insert(WorkerHeartbeat).values(**values)
        statement = statement.on_duplicate_key_update(
            host=statement.inserted.host, pid=statement.inserted.pid, beat_at=statement.inserted.beat_at,
            processed=statement.inserted.processed,
            last_event_at=sa.func.coalesce(statement.inserted.last_event_at, WorkerHeartbeat.last_event_at))
        with self.app.app_context():
            try:
                db.session.execute(statement)
                db.session.commit()
            except sa.exc.SQLAlchemyError:
                db.session.rollback()
            finally:
                db.session.remove()
