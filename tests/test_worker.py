"""The worker against the real broker, SMTP server, SMS gateway and database."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from confluent_kafka import Consumer, Producer, TopicPartition

from app.accounts.models import PatientProfile, User
from app.audit.models import AuditEntry
from app.events.kafka import consumer_settings, producer_settings
from app.events.outbox import emit
from app.extensions import db
from app.notifications.models import Channel, DeliveryStatus, Notification
from app.notifications.services import install_default_templates
from devtools.mailbox import read_mailbox, wait_for_messages
from tests.services import ROOT, wait_until
from tests.test_signup import VALID

pytestmark = pytest.mark.usefixtures("templates")


@pytest.fixture
def templates(app):
    with app.app_context():
        install_default_templates()
        db.session.commit()


def count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def audit_rows(app, *where) -> list[AuditEntry]:
    with app.app_context():
        rows = list(db.session.scalars(sa.select(AuditEntry).where(*where).order_by(AuditEntry.seq)))
        db.session.expunge_all()
        return rows


def notifications(app, *where) -> list[Notification]:
    with app.app_context():
        rows = list(db.session.scalars(sa.select(Notification).where(*where).order_by(Notification.id)))
        db.session.expunge_all()
        return rows


def envelope(type_: str, aggregate_id, patient_id=None, data=None) -> dict:
    return {"id": str(uuid.uuid4()), "type": type_, "version": 1,
            "occurred_at": datetime.now(timezone.utc).isoformat(), "actor": None, "aggregate_type": "patient",
            "aggregate_id": str(aggregate_id), "patient_id": patient_id, "source_ip": None, "outcome": "success",
            "data": data or {}}


def produce(app, messages: list[tuple[str, bytes]]) -> None:
    producer = Producer(producer_settings(app.config))
    for key, value in messages:
        producer.produce(app.config["HMS_EVENTS_TOPIC"], key=key.encode(), value=value)
    assert producer.flush(10) == 0


def to(address: str):
    return lambda message: message["To"] == address


def test_signup_sends_the_welcome_email_and_writes_an_audit_row(app, worker, client, mailbox):
    client.post_form("/signup", VALID | {"email": "welcome@example.com"})
    [message] = wait_for_messages(mailbox, 1, timeout=30, predicate=to("welcome@example.com"))
    assert message["Subject"] == "Welcome to HMS Clinic"
    assert "Dear Ada Lovelace" in message.get_body(("plain",)).get_content()
    assert "<strong>HMS Clinic</strong>" in message.get_body(("html",)).get_content()
    with app.app_context():
        patient_id = db.session.scalar(sa.select(User.id).where(User.email == "welcome@example.com"))
    [row] = wait_until(lambda: audit_rows(app, AuditEntry.action == "patient.registered",
                                          AuditEntry.patient_id == patient_id), timeout=30, message="the audit row")
    assert row.actor_role == "patient" and row.patient_id == row.actor_id and row.outcome == "success"
    assert row.source_ip == "127.0.0.1"
    [sent] = wait_until(lambda: notifications(app, Notification.status == DeliveryStatus.SENT,
                                              Notification.recipient == "welcome@example.com"),
                        timeout=10, message="the delivery to be recorded")
    assert sent.provider_id == message["Message-ID"]


def test_the_same_event_delivered_three_times_has_one_effect(app, worker, create_patient, mailbox):
    patient = create_patient()
    key = str(patient.id)
    duplicate = envelope("patient.profile_changed", key, patient.id, {"sections": ["contact"], "fields": ["phone"]})
    sentinel = envelope("test.sentinel", key, patient.id)
    produce(app, [(key, json.dumps(duplicate).encode())] * 3 + [(key, json.dumps(sentinel).encode())])
    # Same key, same partition: once the sentinel is audited, the three copies have been consumed.
    wait_until(lambda: audit_rows(app, AuditEntry.event_id == sentinel["id"]), timeout=30, message="the sentinel")
    wait_until(lambda: notifications(app, Notification.event_id == duplicate["id"],
                                     Notification.status == DeliveryStatus.SENT), timeout=10, message="the email")
    assert len(audit_rows(app, AuditEntry.event_id == duplicate["id"])) == 1
    assert len(notifications(app, Notification.event_id == duplicate["id"], Notification.channel == Channel.EMAIL)) == 1
    assert len([m for m in read_mailbox(mailbox) if duplicate["id"] in m["Message-ID"]]) == 1


def test_a_malformed_message_is_dead_lettered_and_the_partition_keeps_flowing(app, worker):
    key = f"poison-{uuid.uuid4()}"
    after = envelope("test.after_poison", key)
    produce(app, [(key, b"{not json"), (key, json.dumps(after).encode())])
    wait_until(lambda: audit_rows(app, AuditEntry.event_id == after["id"]), timeout=30,
               message="the event after the malformed one")
    topic = app.config["HMS_DLQ_TOPIC"]
    consumer = Consumer(consumer_settings(app.config, f"test-{uuid.uuid4()}"))
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        dead: list = []

        def found_both():
            message = consumer.poll(0.1)
            if message is not None and not message.error() and message.key() == key.encode():
                dead.append(message)
            return len(dead) >= 2

        wait_until(found_both, timeout=30, interval=0, message="both consumers' dead letters")
    finally:
        consumer.close()
    for message in dead:
        headers = {k: v.decode() for k, v in message.headers()}
        assert message.value() == b"{not json"
        assert headers["origin_topic"] == app.config["HMS_EVENTS_TOPIC"]
        assert int(headers["origin_offset"]) >= 0 and headers["origin_partition"].isdigit()
        assert "not JSON" in headers["error"] and headers["attempts"] == "1"
    assert {dict(m.headers())["consumer"] for m in dead} == {b"audit", b"notifications"}


def test_patients_channel_choice_is_honoured(app, worker, create_patient, services):
    patient = create_patient(phone="+12025550188")
    with app.app_context():
        profile = db.session.get(PatientProfile, patient.id)
        profile.notify_email, profile.notify_sms = False, True
        emit("patient.profile_changed", "patient", patient.id, {"sections": ["contact"], "fields": ["phone"]},
             patient_id=patient.id)
        db.session.commit()
    [sms] = wait_until(lambda: [m for m in services.sms.messages
                                if m["to"] == "+12025550188" and "your profile (Contact) was changed" in m["body"]],
                       timeout=30, message="the SMS at the gateway")
    changed = Notification.event_type == "patient.profile_changed"
    def both_recorded():  # the SMS reached the gateway before its row says SENT: wait for both rows' outcomes
        rows = notifications(app, Notification.user_id == patient.id, changed)
        done = len(rows) == 2 and all(n.status in (DeliveryStatus.SENT, DeliveryStatus.SKIPPED) for n in rows)
        return rows if done else None

    rows = wait_until(both_recorded, timeout=10, message="both deliveries recorded")
    by_channel = {n.channel: n for n in rows}
    assert by_channel[Channel.SMS].status is DeliveryStatus.SENT and by_channel[Channel.SMS].provider_id == sms["sid"]
    assert by_channel[Channel.EMAIL].status is DeliveryStatus.SKIPPED
    assert "chose not to receive email" in by_channel[Channel.EMAIL].last_error


def test_smtp_outage_is_retried_until_the_mail_is_delivered(app, worker, services, client, mailbox):
    services.mailbox.stop()
    try:
        client.post_form("/signup", VALID | {"email": "outage@example.com"})
        mine = Notification.recipient == "outage@example.com"
        failing = wait_until(lambda: [n for n in notifications(app, mine) if n.attempts >= 2 and n.last_error],
                             timeout=30, message="two failed attempts")
        assert failing[0].status in (DeliveryStatus.PENDING, DeliveryStatus.SENDING)
        assert [m for m in read_mailbox(mailbox) if m["To"] == "outage@example.com"] == []
    finally:
        services.mailbox.start()
    wait_for_messages(mailbox, 1, timeout=30, predicate=to("outage@example.com"))
    [sent] = wait_until(lambda: notifications(app, mine, Notification.status == DeliveryStatus.SENT), timeout=10,
                        message="the delivery recorded as sent")
    assert sent.attempts >= 3 and sent.last_error is None


def test_health_reports_each_role_alive_with_its_lag(app, worker):
    wait_until(lambda: _roles_alive(app), timeout=30, message="every role's heartbeat")
    result = subprocess.run([sys.executable, "-m", "workers", "health"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60, env=worker.env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for role in ("relay", "notifications", "audit", "dispatcher"):
        assert any(line.startswith(role) and "alive" in line for line in lines), result.stdout
    assert any("notifications" in line and "lag" in line for line in lines), result.stdout


def _roles_alive(app) -> bool:
    from app.events.models import WorkerHeartbeat

    with app.app_context():
        return len(db.session.scalars(sa.select(WorkerHeartbeat.role)).all()) >= 4


def test_health_says_down_when_no_worker_runs(app, worker):
    from app.events.models import WorkerHeartbeat

    worker.terminate()
    with app.app_context():
        db.session.execute(sa.delete(WorkerHeartbeat))
        db.session.commit()
    result = subprocess.run([sys.executable, "-m", "workers", "health"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, env=worker.env)
    assert result.returncode == 1
    assert "audit          DOWN" in result.stdout


def test_sigterm_finishes_and_exits_cleanly(app, worker):
    wait_until(lambda: _roles_alive(app), timeout=30, message="the worker to be up")
    assert worker.terminate(timeout=30) == 0
    assert "finishing the current events" in worker.log()


def test_killed_worker_loses_and_repeats_nothing_across_a_stream_of_500_events(app, worker, create_patient, mailbox):
    patients = [create_patient() for _ in range(10)]
    total = 500
    ids: list[str] = []

    def stream():
        with app.app_context():
            for n in range(total):
                patient = patients[n % len(patients)]
                event = emit("patient.profile_changed", "patient", patient.id,
                             {"sections": ["contact"], "fields": ["phone"]}, patient_id=patient.id)
                ids.append(event.id)
                db.session.commit()

    producer = threading.Thread(target=stream)
    producer.start()
    wait_until(lambda: count(app, AuditEntry) >= 100, timeout=60, message="the first 100 events")
    worker.kill()
    worker.start(wait=False)  # the same groups: it resumes from the offsets committed before the kill
    producer.join(120)
    assert len(ids) == total
    mine_audited = AuditEntry.event_id.in_(ids)
    mine_sent = (Notification.event_id.in_(ids), Notification.channel == Channel.EMAIL,
                 Notification.status == DeliveryStatus.SENT)
    wait_until(lambda: count(app, AuditEntry, mine_audited) >= total, timeout=120, message="every event audited")
    wait_until(lambda: count(app, Notification, *mine_sent) >= total, timeout=120, message="every email sent")
    assert count(app, AuditEntry, mine_audited) == total
    assert count(app, Notification, Notification.event_id.in_(ids), Notification.channel == Channel.EMAIL) == total
    wanted = set(ids)

    def event_of(message) -> str:
        return message["Message-ID"].split(".")[0].lstrip("<")

    def all_arrived():
        by_event: dict[str, list] = {}
        for message in read_mailbox(mailbox):
            if event_of(message) in wanted:
                by_event.setdefault(event_of(message), []).append(message)
        return by_event if set(by_event) == wanted else None

    by_event = wait_until(all_arrived, timeout=30, interval=0.5, message="every event's email in the mailbox")
    repeats = sum(len(copies) - 1 for copies in by_event.values())
    # SMTP cannot join our transaction: only a message accepted by the server in the instant before the
    # kill, and not yet recorded as sent, is sent again (with the same Message-ID).
    assert repeats <= 1
