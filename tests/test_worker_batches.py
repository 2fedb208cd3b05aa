"""Batches through the event consumer, in this process, against the real broker, database and SMTP server.

The worker applies what it consumes in batches (the handlers do their reads and writes once per batch).
These tests hand `EventConsumer.process_batch` messages read back from the broker, so each test knows
exactly which events shared a batch.
"""
from __future__ import annotations

import json
import logging
import threading
import uuid
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from confluent_kafka import Consumer, Message, Producer, TopicPartition

from app.audit.chain import append_all, verify
from app.audit.models import AuditEntry
from app.events.kafka import consumer_settings, producer_settings
from app.extensions import db
from app.notifications.models import Channel, Notification
from app.notifications.services import dispatch_due, record_all_deliveries
from devtools.mailbox import read_mailbox
from tests.services import wait_until
from workers.consumer import EventConsumer

pytestmark = pytest.mark.usefixtures("default_templates")

HANDLERS = {"audit": append_all, "notifications": record_all_deliveries}
ONE_BY_ONE = "applying one by one"


@pytest.fixture(autouse=True)
def _worker_log(caplog):
    caplog.set_level(logging.INFO, "hms.worker")


def profile_changed(patient, occurred_at: str | None = None) -> dict:
    return {"id": str(uuid.uuid4()), "type": "patient.profile_changed", "version": 1,
            "occurred_at": occurred_at or datetime.now(timezone.utc).isoformat(), "actor": None,
            "aggregate_type": "patient", "aggregate_id": str(patient.id), "patient_id": patient.id,
            "source_ip": None, "outcome": "success", "data": {"sections": ["contact"], "fields": ["phone"]}}


def broker_batch(app, events: list[dict]) -> list[Message]:
    """The events produced under one key (so one partition, in order) and read back from the broker."""
    topic, key = app.config["HMS_EVENTS_TOPIC"], f"batch-{uuid.uuid4()}".encode()
    delivered: list[tuple[int, int]] = []

    def on_delivery(error, message):
        assert error is None, error
        delivered.append((message.partition(), message.offset()))

    producer = Producer(producer_settings(app.config))
    for event in events:
        producer.produce(topic, key=key, value=json.dumps(event).encode(), on_delivery=on_delivery)
    assert producer.flush(10) == 0
    partition, first = min(delivered)
    consumer = Consumer(consumer_settings(app.config, f"test-{uuid.uuid4()}"))
    messages: list[Message] = []

    def read_all() -> bool:
        messages.extend(m for m in consumer.consume(100, timeout=0.2) if not m.error() and m.key() == key)
        return len(messages) == len(events)

    try:
        consumer.assign([TopicPartition(topic, partition, first)])
        wait_until(read_all, timeout=20, interval=0, message="the batch back from the broker")
    finally:
        consumer.close()
    return messages


def apply(app, messages: list[Message]) -> None:
    """What each consumer role does with one batch; every offset of it may then be committed."""
    dead_letters = Producer(producer_settings(app.config))
    for role, handler in HANDLERS.items():
        assert EventConsumer(app, role, handler, threading.Event()).process_batch(messages, dead_letters)


def chain(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(sa.select(AuditEntry.event_id).order_by(AuditEntry.seq)))


def emails(app) -> list[Notification]:
    with app.app_context():
        rows = list(db.session.scalars(sa.select(Notification).where(Notification.channel == Channel.EMAIL)
                                       .order_by(Notification.id)))
        db.session.expunge_all()
        return rows


@pytest.fixture
def smtp(app, mailbox, monkeypatch):
    """This process's mail goes to the session's SMTP server (the test app suppresses sending otherwise)."""
    monkeypatch.setattr(app.extensions["mail"], "suppress", False)
    return mailbox


def delivered_emails(app, mailbox) -> dict[str, list]:
    """Send what is due, then the mailbox's messages by event id (the first part of the Message-ID)."""
    with app.app_context():
        dispatch_due()
        db.session.remove()
    by_event: dict[str, list] = {}
    for message in read_mailbox(mailbox):
        by_event.setdefault(message["Message-ID"].strip("<>").split(".")[0], []).append(message)
    return by_event


def test_a_batch_for_several_patients_is_applied_at_once_in_event_order(app, create_patient, smtp, caplog):
    patients = [create_patient() for _ in range(3)]
    first = [profile_changed(p) for p in patients] + [profile_changed(patients[0])]
    second = [profile_changed(patients[2]), profile_changed(patients[1])]
    apply(app, broker_batch(app, first))
    apply(app, broker_batch(app, second))
    assert ONE_BY_ONE not in caplog.text
    assert chain(app) == [e["id"] for e in first + second]
    with app.app_context():
        assert str(verify()) == "intact, 6 rows"
    email_of = {p.id: p.email for p in patients}
    assert [(n.event_id, n.recipient) for n in emails(app)] == [(e["id"], email_of[e["patient_id"]])
                                                                for e in first + second]
    by_event = delivered_emails(app, smtp)
    assert {event_id: len(copies) for event_id, copies in by_event.items()} == {e["id"]: 1 for e in first + second}


def test_a_duplicate_in_a_batch_and_an_event_already_processed_have_one_effect_each(app, create_patient, smtp,
                                                                                    caplog):
    patient, other = create_patient(), create_patient()
    done, fresh = profile_changed(patient), profile_changed(other)
    apply(app, broker_batch(app, [done]))
    apply(app, broker_batch(app, [done, fresh, fresh, done]))
    assert ONE_BY_ONE not in caplog.text
    assert chain(app) == [done["id"], fresh["id"]]
    with app.app_context():
        assert verify().intact
    assert [n.event_id for n in emails(app)] == [done["id"], fresh["id"]]
    by_event = delivered_emails(app, smtp)
    assert {event_id: len(copies) for event_id, copies in by_event.items()} == {done["id"]: 1, fresh["id"]: 1}


def test_a_poison_event_is_dead_lettered_and_the_rest_of_its_batch_is_applied(app, create_patient, caplog):
    patients = [create_patient(), create_patient()]
    before, after = profile_changed(patients[0]), profile_changed(patients[1])
    poison = profile_changed(patients[0], occurred_at="yesterday")  # valid JSON; both handlers fail on it
    messages = broker_batch(app, [before, poison, after])
    apply(app, messages)
    assert ONE_BY_ONE in caplog.text
    assert chain(app) == [before["id"], after["id"]]
    with app.app_context():
        assert verify().intact
    assert [n.event_id for n in emails(app)] == [before["id"], after["id"]]
    dead = dead_letters(app, messages[0].key(), count=2)
    assert {h["consumer"] for h in dead} == {"audit", "notifications"}
    for headers in dead:
        assert headers["origin_offset"] == str(messages[1].offset())
        assert headers["attempts"] == str(app.config["HMS_WORKER_MAX_ATTEMPTS"]) and "yesterday" in headers["error"]


def dead_letters(app, key: bytes, count: int) -> list[dict[str, str]]:
    """The headers of the dead letters produced under `key`."""
    topic = app.config["HMS_DLQ_TOPIC"]
    consumer = Consumer(consumer_settings(app.config, f"test-{uuid.uuid4()}"))
    found: list[dict[str, str]] = []

    def read_all() -> bool:
        found.extend({k: v.decode() for k, v in m.headers()} for m in consumer.consume(100, timeout=0.2)
                     if not m.error() and m.key() == key)
        return len(found) >= count

    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        wait_until(read_all, timeout=20, interval=0, message="the dead letters")
    finally:
        consumer.close()
    return found
