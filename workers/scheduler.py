"""The scheduler role: every HMS_SCHEDULER_INTERVAL_SECONDS, send the reminders that are due and mark the
visits nobody came to. Any number of schedulers may run (see `app.appointments.reminders`)."""
from __future__ import annotations

import logging
import threading
import time

from flask import Flask

from app.appointments.reminders import send_due_reminders, sweep_no_shows
from app.extensions import db
from app.timeutil import utcnow
from workers.heartbeat import Heartbeat

logger = logging.getLogger("hms.worker")


def run_once(app: Flask) -> tuple[int, int]:
    """One pass: (reminders sent, visits marked no-show)."""
    with app.app_context():
        try:
            now = utcnow()
            return send_due_reminders(now), sweep_no_shows(now)
        except BaseException:
            db.session.rollback()
            raise
        finally:
            db.session.remove()


def scheduler_role(app: Flask, stop: threading.Event) -> None:
    heartbeat = Heartbeat(app, "scheduler")
    interval = max(0.05, float(app.config["HMS_SCHEDULER_INTERVAL_SECONDS"]))
    logger.info("scheduler: running every %s s", interval)
    next_run = time.monotonic()
    while not stop.is_set():
        heartbeat.maybe_beat()
        if time.monotonic() >= next_run:
            try:
                sent, marked = run_once(app)
                if sent or marked:
                    logger.info("scheduler: %d reminder(s) sent, %d visit(s) marked no-show", sent, marked)
                for _ in range(sent + marked):
                    heartbeat.processed(True)
            except Exception:
                logger.exception("scheduler: run failed; trying again in %s s", interval)
            next_run = time.monotonic() + interval
        # Wake for the heartbeat too, so `workers health` sees the role alive between long intervals.
        stop.wait(max(0.0, min(next_run - time.monotonic(), heartbeat.interval)))
    heartbeat.beat()
