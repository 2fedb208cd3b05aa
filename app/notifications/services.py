"""Notifications: turn an event into messages (in the consumer's transaction), then deliver them.

Recording and delivering are separate steps. The notifications consumer records one row per
recipient and channel, in the same transaction as the event id it processed, so a redelivered
event records nothing new. The dispatcher then claims due rows, sends them, and records each
attempt; a failure is retried with exponential backoff. Email cannot be sent exactly once (SMTP
has no transaction with our database): a crash between the server's acceptance and our commit
re-sends that one message, with the same Message-ID, after HMS_NOTIFY_SENDING_TIMEOUT.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from app.accounts.models import Role, User
from app.accounts.tokens import PURPOSES as PASSWORD_LINK_PURPOSES
from app.clinic.models import Department
from app.extensions import db, mail
from app.notifications.catalog import EVENTS, NotifyingEvent
from app.notifications.email import build_message, is_retryable
from app.notifications.models import Channel, DeliveryStatus, Notification, NotificationTemplate
from app.notifications.rendering import TemplateProblem, render
from app.notifications.sms import SmsClient, SmsError, sms_settings_from_config
from app.events.outbox import emit
from app.timeutil import format_datetime, utcnow

logger = logging.getLogger("hms.notifications")

SECTION_TITLES = {"personal": "Personal details", "contact": "Contact", "emergency": "Emergency contact",
                  "insurance": "Insurance", "account": "Sign-in email", "notifications": "Notifications"}


# --- templates ------------------------------------------------------------------------------------

def install_default_templates() -> int:
    """Insert the shipped default of every (event, channel) that has no template yet."""
    existing = set(db.session.execute(sa.select(NotificationTemplate.event_type, NotificationTemplate.channel)).all())
    added = 0
    for event in EVENTS.values():
        for channel, default in event.defaults.items():
            if (event.type, channel) not in existing:
                db.session.add(NotificationTemplate(event_type=event.type, channel=channel, subject=default.subject,
                                                    body_text=default.body_text, body_html=default.body_html))
                added += 1
    db.session.flush()
    return added


def check_template(event: NotifyingEvent, subject: str | None, body_text: str, body_html: str | None):
    """Render with the event's sample data; raises TemplateProblem when it does not render."""
    return render(subject, body_text, body_html, event.sample_context())


# --- recording ------------------------------------------------------------------------------------

APPOINTMENT_TIME_FORMAT = "%a %d %b %Y, %H:%M"  # "Wed 25 Nov 2026, 09:30 EST"


def appointment_url(audience: str, appointment_id) -> str:
    """Where the recipient sees the appointment: the patient's own page, or the doctor's list of requests."""
    base = current_app.config["HMS_PUBLIC_URL"].rstrip("/")
    return f"{base}/doctor/appointments" if audience == "doctor" else f"{base}/patient/appointments/{appointment_id}"


def _time_until(starts_at: datetime, at: datetime) -> str:
    minutes = max(0, round((starts_at - at).total_seconds() / 60))
    if minutes < 90:
        return f"in {minutes} minutes" if minutes != 1 else "in 1 minute"
    hours = round(minutes / 60)
    if hours <= 48:
        return f"in {hours} hours"
    return f"in {round(hours / 24)} days"


def _appointment_context(event: NotifyingEvent, envelope: dict) -> dict:
    """Names of the doctor, patient and department in one query; times in the clinic's zone."""
    data = envelope.get("data") or {}
    patient, doctor = sa.orm.aliased(User), sa.orm.aliased(User)
    names = db.session.execute(sa.select(
        sa.select(patient.full_name).where(patient.id == data.get("patient_id")).scalar_subquery(),
        sa.select(doctor.full_name).where(doctor.id == data.get("doctor_id")).scalar_subquery(),
        sa.select(Department.name).where(Department.id == data.get("department_id")).scalar_subquery())).one()
    starts_at = datetime.fromisoformat(data["starts_at"])
    context = {"patient_name": names[0] or "", "doctor_name": names[1] or "", "department": names[2] or "",
               "appointment_time": format_datetime(starts_at, APPOINTMENT_TIME_FORMAT),
               "appointment_url": appointment_url(event.audience, envelope["aggregate_id"])}
    if "reason" in event.variables:
        context["reason"] = data.get("reason") or ""
    if event.type == "appointment.cancelled":
        context["cancelled_by"] = "you" if data.get("status") == "cancelled_by_patient" else "the clinic"
    elif event.type == "appointment.rescheduled":
        previous = data.get("previous_starts_at")
        context["previous_time"] = format_datetime(datetime.fromisoformat(previous), APPOINTMENT_TIME_FORMAT) \
            if previous else ""
    elif event.type == "appointment.reminder":
        context["time_until"] = _time_until(starts_at, datetime.fromisoformat(envelope["occurred_at"]))
    return context


def _context(event: NotifyingEvent, envelope: dict, user: User) -> dict:
    data = envelope.get("data") or {}
    context = {"clinic_name": current_app.config["HMS_CLINIC_NAME"], "recipient_name": user.full_name,
               "site_url": current_app.config["HMS_PUBLIC_URL"]}
    if event.type.startswith("appointment."):
        context.update(_appointment_context(event, envelope))
    elif event.type.startswith(("invoice.", "payment.", "claim.")):
        context.update({name: data.get(name, "") for name in event.variables})  # billing puts them in the event
    elif event.type == "patient.registered":
        context["email"] = user.email
    elif event.type == "patient.profile_changed":
        context["changed"] = ", ".join(SECTION_TITLES.get(s, s) for s in data.get("sections", []))
        context["changed_at"] = format_datetime(datetime.fromisoformat(envelope["occurred_at"]))
    elif event.type == "user.new_browser_sign_in":
        from app.accounts.models import UserSession
        from app.accounts.sessions import end_link

        live = db.session.get(UserSession, data.get("session_id"))
        context.update(browser=data.get("browser", ""), ip=data.get("ip", ""),
                       signed_in_at=format_datetime(datetime.fromisoformat(envelope["occurred_at"])),
                       end_link=end_link(live) if live is not None else context["site_url"])
    elif event.type == "user.password_link_issued":
        context["link"] = data["link"]
        context["expires_at"] = format_datetime(datetime.fromisoformat(data["expires_at"]))
        context["purpose_text"] = PASSWORD_LINK_PURPOSES.get(data.get("purpose"), "set your password")
    return context


def _skip_reason(event: NotifyingEvent, channel: Channel, user: User) -> str | None:
    profile = user.patient if user.role is Role.PATIENT else None
    if channel is Channel.EMAIL:
        if profile is not None and not profile.notify_email and not event.essential:
            return "skipped: the patient chose not to receive email"
        return None
    if user.role is not Role.PATIENT:
        return "skipped: staff receive email only"
    if profile is None or not profile.notify_sms:
        return "skipped: SMS not chosen"
    if not user.phone:
        return "skipped: no phone number"
    if sms_settings_from_config(current_app.config) is None:
        return "not sent: no gateway"
    return None


def _recipient_id(event: NotifyingEvent, envelope: dict):
    """The user an event addresses: the doctor of an appointment, or the patient (or user) it concerns.
    Only a patient or user aggregate's id names a person: an appointment's id must never be taken for one."""
    data = envelope.get("data") or {}
    if event.audience == "doctor":
        return data.get("doctor_id")
    if envelope.get("patient_id"):
        return envelope["patient_id"]
    if envelope.get("aggregate_type") in ("patient", "user"):
        return envelope["aggregate_id"]
    return data.get("patient_id")


def record_all_deliveries(envelopes: list[dict]) -> list[Notification]:
    """The messages a batch of events asks for, as rows the dispatcher will deliver. The recipients, with
    their patient profiles, and the templates are read once for the whole batch. The caller commits."""
    addressed = []
    for envelope in envelopes:
        event = EVENTS.get(envelope["type"])
        user_id = _recipient_id(event, envelope) if event is not None else None
        if user_id:
            addressed.append((event, envelope, int(user_id)))
    if not addressed:
        return []
    users = {user.id: user for user in db.session.scalars(
        sa.select(User).where(User.id.in_({user_id for _, _, user_id in addressed}))
        .options(sa.orm.joinedload(User.patient)))}
    templates = {(t.event_type, t.channel): t for t in db.session.scalars(
        sa.select(NotificationTemplate).where(NotificationTemplate.event_type.in_({e.type for e, _, _ in addressed}),
                                              NotificationTemplate.active.is_(True)))}
    now = utcnow()
    rows = []
    for event, envelope, user_id in addressed:
        user = users.get(user_id)
        if user is not None:
            rows += _deliveries(event, envelope, user, templates, now)
    db.session.add_all(rows)
    db.session.flush()
    return rows


def _deliveries(event: NotifyingEvent, envelope: dict, user: User, templates: dict,
                now: datetime) -> list[Notification]:
    context = _context(event, envelope, user)
    rows = []
    for channel in Channel:
        template = templates.get((event.type, channel))
        if template is None:
            continue
        recipient = user.email if channel is Channel.EMAIL else (user.phone or "")
        row = Notification(event_id=envelope["id"], event_type=event.type, channel=channel, user_id=user.id,
                           recipient=recipient, body_text="", status=DeliveryStatus.PENDING, next_attempt_at=now)
        reason = _skip_reason(event, channel, user)
        if reason:
            row.status, row.last_error = DeliveryStatus.SKIPPED, reason
        else:
            try:
                rendered = render(template.subject, template.body_text,
                                  template.body_html if channel is Channel.EMAIL else None, context)
                row.subject, row.body_text, row.body_html = rendered.subject, rendered.body_text, rendered.body_html
            except TemplateProblem as problem:
                row.status, row.last_error = DeliveryStatus.FAILED, f"template: {problem}"[:500]
        rows.append(row)
    return rows


# --- delivering -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outgoing:
    """A claimed message, copied out of its row so that sending it needs no further reads."""

    id: int
    event_id: str
    channel: Channel
    recipient: str
    subject: str | None
    body_text: str
    body_html: str | None
    attempts: int


def message_id(message: Notification | Outgoing) -> str:
    return f"<{message.event_id}.{message.channel.value}.{message.id}@hms>"


def reclaim_stuck() -> int:
    """Rows left in 'sending' by a process that died: try them again (at-least-once)."""
    cutoff = utcnow() - timedelta(seconds=current_app.config["HMS_NOTIFY_SENDING_TIMEOUT"])
    result = db.session.execute(
        sa.update(Notification).where(Notification.status == DeliveryStatus.SENDING, Notification.updated_at < cutoff)
        .values(status=DeliveryStatus.PENDING, next_attempt_at=utcnow(), updated_at=utcnow()))
    db.session.commit()
    return result.rowcount


def _claim(limit: int) -> list[Outgoing]:
    rows = list(db.session.scalars(
        sa.select(Notification)
        .where(Notification.status == DeliveryStatus.PENDING, Notification.next_attempt_at <= utcnow())
        .order_by(Notification.next_attempt_at, Notification.id).limit(limit)
        .with_for_update(skip_locked=True)))
    claimed = []
    for row in rows:
        row.status = DeliveryStatus.SENDING
        row.attempts += 1
        claimed.append(Outgoing(row.id, row.event_id, row.channel, row.recipient, row.subject, row.body_text,
                                row.body_html, row.attempts))
    db.session.commit()
    return claimed


def _record(log: sa.Connection, message: Outgoing, **values) -> None:
    """One attempt's outcome, durable at once: `log` autocommits, so this is one round trip, and a process that
    dies leaves at most the message it was sending accepted but unrecorded."""
    log.execute(sa.update(Notification.__table__).where(Notification.id == message.id)
                .values(updated_at=utcnow(), **values))


def _failed(log: sa.Connection, message: Outgoing, error: Exception | str, retryable: bool) -> None:
    last_error = str(error)[:500] or type(error).__name__
    if retryable and message.attempts < current_app.config["HMS_NOTIFY_MAX_ATTEMPTS"]:
        delay = current_app.config["HMS_NOTIFY_BACKOFF_SECONDS"] * 2 ** (message.attempts - 1)
        _record(log, message, status=DeliveryStatus.PENDING, last_error=last_error,
                next_attempt_at=utcnow() + timedelta(seconds=min(delay, 600)))
    else:
        _record(log, message, status=DeliveryStatus.FAILED, last_error=last_error)


def _sent(log: sa.Connection, message: Outgoing, provider_id: str) -> None:
    _record(log, message, status=DeliveryStatus.SENT, sent_at=utcnow(), provider_id=provider_id, last_error=None)


def _send_emails(log: sa.Connection, messages: list[Outgoing]) -> None:
    connection = None
    try:
        for message in messages:
            try:
                if connection is None:
                    connection = mail.connect().__enter__()
                msg_id = message_id(message)
                connection.send(build_message(recipient=message.recipient, subject=message.subject or "",
                                              message_id=msg_id, body_text=message.body_text,
                                              body_html=message.body_html))
            except Exception as error:  # noqa: BLE001 - every failure is recorded on the row
                _failed(log, message, error, is_retryable(error))
                if connection is not None and is_retryable(error):
                    connection.__exit__(None, None, None)
                    connection = None
                continue
            _sent(log, message, msg_id)
    finally:
        if connection is not None:
            connection.__exit__(None, None, None)


def _send_sms(log: sa.Connection, messages: list[Outgoing]) -> None:
    settings = sms_settings_from_config(current_app.config)
    client = SmsClient(settings) if settings else None
    for message in messages:
        if client is None:
            _record(log, message, status=DeliveryStatus.SKIPPED, last_error="not sent: no gateway")
            continue
        try:
            receipt = client.send(message.recipient, message.body_text)
        except SmsError as error:
            _failed(log, message, error.message, error.retryable)
            continue
        _sent(log, message, receipt.sid)


def dispatch_due(limit: int = 100) -> int:
    """Deliver the messages that are due; returns how many were attempted."""
    messages = _claim(limit)
    if messages:
        with db.engine.connect() as connection:
            log = connection.execution_options(isolation_level="AUTOCOMMIT")
            _send_emails(log, [m for m in messages if m.channel is Channel.EMAIL])
            _send_sms(log, [m for m in messages if m.channel is Channel.SMS])
    return len(messages)


def next_due_at() -> datetime | None:
    return db.session.scalar(sa.select(sa.func.min(Notification.next_attempt_at))
                             .where(Notification.status == DeliveryStatus.PENDING))


# --- administration -------------------------------------------------------------------------------

def templates_by_event() -> list[tuple[NotifyingEvent, list[NotificationTemplate]]]:
    templates = list(db.session.scalars(sa.select(NotificationTemplate).order_by(NotificationTemplate.event_type,
                                                                               NotificationTemplate.channel)))
    return [(event, [t for t in templates if t.event_type == event.type]) for event in EVENTS.values()]


def update_template(template: NotificationTemplate, *, subject: str | None, body_text: str, body_html: str | None,
                    active: bool, editor: User) -> None:
    """Save an admin's edit; raises TemplateProblem (nothing saved) if it does not render."""
    event = EVENTS[template.event_type]
    check_template(event, subject, body_text, body_html)
    template.subject, template.body_text, template.body_html = subject, body_text, body_html or None
    template.active, template.updated_by_id = active, editor.id
    db.session.flush()
    emit("notification_template.updated", "notification_template", template.id,
         {"event_type": template.event_type, "channel": template.channel.value, "active": active})


def notification_log(*, status: str | None, channel: str | None, recipient: str | None) -> sa.Select:
    query = sa.select(Notification).order_by(Notification.created_at.desc(), Notification.id.desc())
    if status:
        query = query.where(Notification.status == DeliveryStatus(status))
    if channel:
        query = query.where(Notification.channel == Channel(channel))
    if recipient:
        query = query.where(Notification.recipient.contains(recipient.strip(), autoescape=True))
    return query
