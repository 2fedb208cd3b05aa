"""The roles a worker process can run. `python -m workers run` runs them all, one thread each;
`--role NAME` picks some, so production can run one role per process and scale each apart."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from flask import Flask

from app.audit.chain import append_all as append_audit_rows
from app.events.relay import OutboxRelay
from app.extensions import db
from app.notifications.services import dispatch_due, next_due_at, reclaim_stuck, record_all_deliveries
from app.timeutil import utcnow
from workers.consumer import EventConsumer
from workers.heartbeat import Heartbeat
from workers.scheduler import scheduler_role

logger = logging.getLogger("hms.worker")

CONSUMER_ROLES = ("notifications", "audit")


def relay_role(app: Flask, stop: threading.Event) -> None:
    OutboxRelay(app, lock_wait=0).run_forever(stop, on_tick=Heartbeat(app, "relay").maybe_beat)


def audit_role(app: Flask, stop: threading.Event) -> None:
    EventConsumer(app, "audit", append_audit_rows, stop).run()


def notifications_role(app: Flask, stop: threading.Event) -> None:
    """The consumer records the messages an event asks for; the dispatcher, beside it, delivers them."""
    wake = threading.Event()
    dispatcher = threading.Thread(target=_dispatch_loop, args=(app, stop, wake), name="dispatcher", daemon=True)
    dispatcher.start()
    try:
        EventConsumer(app, "notifications", record_all_deliveries, stop, after_commit=wake.set).run()
    finally:
        wake.set()
        dispatcher.join(30)


def _dispatch_loop(app: Flask, stop: threading.Event, wake: threading.Event) -> None:
    heartbeat = Heartbeat(app, "dispatcher")
    reclaim_every = timedelta(seconds=max(1.0, app.config["HMS_NOTIFY_SENDING_TIMEOUT"] / 2))
    next_reclaim = utcnow()
    while not stop.is_set():
        heartbeat.maybe_beat()
        wait = 1.0
        with app.app_context():
            try:
                if utcnow() >= next_reclaim:
                    reclaim_stuck()
                    next_reclaim = utcnow() + reclaim_every
                if dispatch_due():
                    heartbeat.processed(True)
                    continue
                due = next_due_at()
                if due is not None:
                    wait = min(wait, max(0.0, (due - utcnow()).total_seconds()))
            except Exception:
                logger.exception("dispatcher failed; retrying")
                db.session.rollback()
            finally:
                db.session.remove()
        wake.wait(wait)
        wake.clear()


ROLES: dict[str, Callable[[Flask, threading.Event], None]] = {
    "relay": relay_role,
    "notifications": notifications_role,
    "audit": audit_role,
    "scheduler": scheduler_role,
}
