"""The scheduler's work: reminders before confirmed visits, and marking the visits nobody came to.

Reminders go out exactly once per (appointment, offset, start time), however many schedulers run and
however often they restart: the `appointment_reminders` row and the `appointment.reminder` outbox event
commit in one transaction, and the row's primary key lets only one transaction insert it. A scheduler
that loses the race gets a duplicate key (or waits for the winner and then gets it), rolls back, and
emits nothing. A rescheduled visit has a new start time, so its reminders are new rows.

Both functions take `now`, so tests (and a catch-up run) control the clock, and commit their own work.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError, OperationalError

from app.appointments.models import Appointment, ReminderSent, Status
from app.appointments.services import event_data, transition
from app.events.outbox import emit
from app.extensions import db
from app.transactions import RETRYABLE

logger = logging.getLogger("hms.scheduler")

SWEEP_BATCH = 100


def reminder_offsets() -> list[int]:
    """The configured offsets in minutes, largest first, without duplicates or non-positive values."""
    return sorted({int(m) for m in current_app.config["HMS_REMINDER_OFFSETS_MINUTES"] if int(m) > 0}, reverse=True)


def due_offset(starts_at: datetime, now: datetime, offsets: list[int]) -> int | None:
    """The one reminder due now: the smallest offset whose time has come, before the start.

    A larger offset is skipped once a smaller one is due too (a visit confirmed an hour before its start
    gets the 2-hour reminder only, not the 24-hour one as well)."""
    if now >= starts_at:
        return None
    due = [m for m in offsets if now >= starts_at - timedelta(minutes=m)]
    return min(due) if due else None


def _candidates(now: datetime, offsets: list[int]) -> list[tuple[int, datetime, int]]:
    """(appointment id, starts_at, offset) of confirmed visits with a reminder due and not yet sent.

    One range read on (status, starts_at) and one primary-key read of the reminders already sent."""
    rows = db.session.execute(
        sa.select(Appointment.id, Appointment.starts_at)
        .where(Appointment.status == Status.CONFIRMED, Appointment.starts_at > now,
               Appointment.starts_at <= now + timedelta(minutes=max(offsets)))
        .order_by(Appointment.starts_at, Appointment.id)).all()
    wanted = [(id_, starts_at, due_offset(starts_at, now, offsets)) for id_, starts_at in rows]
    wanted = [w for w in wanted if w[2] is not None]
    if not wanted:
        return []
    sent = set(db.session.execute(
        sa.select(ReminderSent.appointment_id, ReminderSent.starts_at, ReminderSent.offset_minutes)
        .where(ReminderSent.appointment_id.in_([w[0] for w in wanted]))).all())
    return [w for w in wanted if w not in sent]


def _send_one(appointment_id: int, starts_at: datetime, offset: int) -> bool:
    """Record and emit one reminder in one transaction; False if another scheduler did, or the visit changed."""
    try:
        # A locking read sees the latest committed state: a visit cancelled or moved since the candidate
        # query is skipped; one a request is changing right now is left for the next run.
        appointment = db.session.scalar(
            sa.select(Appointment)
            .where(Appointment.id == appointment_id, Appointment.status == Status.CONFIRMED,
                   Appointment.starts_at == starts_at)
            .with_for_update(skip_locked=True).execution_options(populate_existing=True))
        if appointment is None:
            db.session.rollback()
            return False
        db.session.add(ReminderSent(appointment_id=appointment_id, offset_minutes=offset, starts_at=starts_at))
        db.session.flush()  # the primary key decides which scheduler sends it
        emit("appointment.reminder", "appointment", appointment.id, event_data(appointment, offset_minutes=offset),
             patient_id=appointment.patient_id)
        db.session.commit()
        return True
    except IntegrityError:
        db.session.rollback()  # already sent, by another scheduler or an earlier run
        return False
    except OperationalError as error:
        db.session.rollback()
        code = error.orig.args[0] if error.orig is not None and error.orig.args else None
        if code not in RETRYABLE:
            raise
        logger.info("reminder for appointment %s left for the next run (MySQL error %s)", appointment_id, code)
        return False


def send_due_reminders(now: datetime) -> int:
    """Send every reminder due at `now`; returns how many this call sent."""
    offsets = reminder_offsets()
    if not offsets:
        return 0
    candidates = _candidates(now, offsets)
    db.session.rollback()  # end the read transaction: each reminder is its own
    return sum(_send_one(*candidate) for candidate in candidates)


def sweep_no_shows(now: datetime) -> int:
    """Mark confirmed visits that ended more than HMS_NO_SHOW_AFTER_MINUTES ago, never checked in, as no-shows.

    Rows are claimed with FOR UPDATE SKIP LOCKED and the status is re-read under the lock, so concurrent
    sweepers never change the same visit twice. Returns how many this call marked."""
    cutoff = now - timedelta(minutes=current_app.config["HMS_NO_SHOW_AFTER_MINUTES"])
    marked = 0
    while True:
        # ends_at > starts_at, so "starts_at < cutoff" bounds the (status, starts_at) index range.
        batch = list(db.session.scalars(
            sa.select(Appointment)
            .where(Appointment.status == Status.CONFIRMED, Appointment.starts_at < cutoff,
                   Appointment.ends_at < cutoff)
            .order_by(Appointment.starts_at, Appointment.id).limit(SWEEP_BATCH)
            .with_for_update(skip_locked=True).execution_options(populate_existing=True)))
        for appointment in batch:
            if appointment.status is Status.CONFIRMED:
                transition(appointment, Status.NO_SHOW, None, now=now)
                marked += 1
        db.session.commit()
        if len(batch) < SWEEP_BATCH:
            return marked
