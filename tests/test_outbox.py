"""Events are outbox rows in the business transaction; the relay publishes them to Kafka."""
from __future__ import annotations

import json
import uuid

import sqlalchemy as sa
from confluent_kafka import Consumer, TopicPartition

from app.accounts.models import Role
from app.events.kafka import consumer_settings
from app.events.models import OutboxEvent
from app.events.outbox import emit
from app.events.relay import OutboxRelay
from app.extensions import db
from tests.services import wait_until
from tests.test_signup import VALID


def outbox_rows(app) -> list[OutboxEvent]:
    with app.app_context():
        rows = list(db.session.scalars(sa.select(OutboxEvent).order_by(OutboxEvent.seq)))
        db.session.expunge_all()
        return rows


def read_topic(app, count: int, key: str | None = None, timeout: float = 20) -> list[dict]:
    """Every envelope on the events topic (from the start), optionally only those with `key`."""
    topic = app.config["HMS_EVENTS_TOPIC"]
    consumer = Consumer(consumer_settings(app.config, f"test-{uuid.uuid4()}"))
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        found: list[dict] = []

        def enough():
            message = consumer.poll(0.1)
            if message is not None and not message.error():
                if key is None or message.key() == key.encode():
                    found.append(json.loads(message.value()))
            return len(found) >= count

        wait_until(enough, timeout=timeout, interval=0, message=f"{count} messages on {topic}")
        return found
    finally:
        consumer.close()


def test_signup_writes_its_event_in_the_same_transaction(app, client):
    client.post_form("/signup", VALID)
    [row] = [r for r in outbox_rows(app) if r.type == "patient.registered"]
    envelope = row.envelope
    assert envelope["aggregate_type"] == "patient" and envelope["aggregate_id"] == str(envelope["patient_id"])
    assert envelope["actor"] == {"id": envelope["patient_id"], "role": "patient"}
    assert envelope["source_ip"] == "127.0.0.1"
    assert set(envelope) >= {"id", "type", "occurred_at", "actor", "aggregate_type", "aggregate_id", "data", "version"}
    assert "password" not in json.dumps(envelope)


def test_a_rolled_back_change_emits_nothing(app):
    with app.app_context():
        emit("test.happened", "test", 1, {"n": 1})
        db.session.rollback()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxEvent)) == 0


def test_refused_signup_emits_nothing(app, client):
    client.post_form("/signup", VALID | {"email": "broken"})
    assert outbox_rows(app) == []


def test_login_success_and_failure_are_events(app, client, create_user):
    user = create_user(Role.CLERK)
    client.sign_in(user.email, "wrong guess here")
    client.sign_in("nobody@example.com", "wrong guess here")
    client.sign_in(user.email, "correct horse battery")
    events = [(r.type, r.envelope["outcome"], r.envelope["data"].get("reason")) for r in outbox_rows(app)
              if r.type.startswith("user.login")]
    assert events == [("user.login_failed", "failure", "wrong password"),
                      ("user.login_failed", "failure", "unknown email"),
                      ("user.login_succeeded", "success", None)]


def test_profile_change_event_names_fields_not_values(app, client, create_patient, login):
    patient = create_patient()
    login(patient)
    client.post_form(f"/patient/{patient.id}/profile/contact", {"phone": "202 555 0177", "address": "1 Main Street"})
    [row] = [r for r in outbox_rows(app) if r.type == "patient.profile_changed"]
    assert row.envelope["data"] == {"sections": ["contact"], "fields": ["phone"]}
    assert "0177" not in json.dumps(row.envelope)


def test_saving_an_unchanged_section_emits_nothing(app, client, create_patient, login):
    patient = create_patient()
    login(patient)
    client.post_form(f"/patient/{patient.id}/profile/contact", {"phone": "+12025550123", "address": "1 Main Street"})
    assert [r for r in outbox_rows(app) if r.type == "patient.profile_changed"] == []


def test_the_relay_publishes_keyed_by_aggregate_and_marks_rows_from_delivery_reports(app):
    key = f"agg-{uuid.uuid4()}"
    with app.app_context():
        for n in range(5):
            emit("test.counted", "test", key, {"n": n})
        db.session.commit()
    result = OutboxRelay(app).drain()
    assert result.failed == 0
    rows = [r for r in outbox_rows(app) if r.aggregate_id == key]
    assert all(r.published_at is not None for r in rows)
    envelopes = read_topic(app, 5, key=key)
    assert [e["data"]["n"] for e in envelopes] == [0, 1, 2, 3, 4]  # one key, one partition, in order


def test_a_row_that_commits_late_with_a_lower_seq_is_still_published(app):
    """No "highest id seen" watermark: auto-increment values commit out of order."""
    late_key, early_key = f"late-{uuid.uuid4()}", f"early-{uuid.uuid4()}"
    relay = OutboxRelay(app)
    with app.app_context():
        late = db.session.begin()  # takes a seq now, commits last
        db.session.add(OutboxEvent(id=str(uuid.uuid4()), type="test.late", aggregate_type="test",
                                   aggregate_id=late_key, envelope=_envelope("test.late", late_key)))
        db.session.flush()
        with app.app_context():  # a second request, committing first
            emit("test.early", "test", early_key, {})
            db.session.commit()
        relay.drain()
        wait_until(lambda: any(r.aggregate_id == early_key and r.published_at for r in outbox_rows(app)),
                   message="the early row to be published")
        late.commit()
    relay.drain()
    assert {r.aggregate_id for r in outbox_rows(app) if r.published_at} >= {late_key, early_key}
    assert read_topic(app, 1, key=late_key)


def _envelope(type_: str, key: str) -> dict:
    from datetime import datetime, timezone

    return {"id": str(uuid.uuid4()), "type": type_, "version": 1, "occurred_at": datetime.now(timezone.utc).isoformat(),
            "actor": None, "aggregate_type": "test", "aggregate_id": key, "patient_id": None, "source_ip": None,
            "outcome": "success", "data": {}}


def test_the_in_process_relay_is_woken_by_the_commit(app):
    """The web process's relay publishes right after the commit, long before its polling backstop."""
    relay = app.extensions["hms_relay"]
    key = f"woken-{uuid.uuid4()}"
    app.config["HMS_RELAY_POLL_SECONDS"] = 60.0
    try:
        relay.stop()
        with app.app_context():
            emit("test.woken", "test", key, {})
            db.session.commit()
        wait_until(lambda: all(r.published_at for r in outbox_rows(app) if r.aggregate_id == key),
                   timeout=10, message="the woken relay to publish")
    finally:
        app.config["HMS_RELAY_POLL_SECONDS"] = 0.5
        relay.stop()


def test_while_the_broker_is_down_rows_wait_and_go_out_when_it_returns(app, services, client, create_patient, login):
    # The web process's relay has a producer that the broker knows before the outage.
    with app.app_context():
        emit("test.before_outage", "test", "outage", {})
        db.session.commit()
    wait_until(lambda: all(r.published_at for r in outbox_rows(app)), message="the event before the outage")
    services.broker.kill()
    try:
        patient = create_patient()
        login(patient)  # the app keeps answering
        response = client.post_form(f"/patient/{patient.id}/profile/contact",
                                    {"phone": "202 555 0166", "address": "2 Side Street"})
        assert response.status_code == 303
        wait_until(lambda: [r for r in outbox_rows(app) if r.published_at is None and r.attempts >= 1],
                   timeout=30, message="a failed publish attempt to be recorded")
        waiting = [r for r in outbox_rows(app) if r.published_at is None]
        assert {r.type for r in waiting} >= {"patient.profile_changed"}
        assert all(r.last_error for r in waiting if r.attempts)
    finally:
        services.restart_broker(app)
    wait_until(lambda: all(r.published_at for r in outbox_rows(app)), timeout=30,
               message="the waiting events to be published after the broker returned")
    assert read_topic(app, 1, key=str(patient.id))


def test_a_published_password_link_is_scrubbed_from_the_outbox(app, create_user):
    from app.accounts.models import Role, User
    from app.accounts.tokens import issue_password_token

    user = create_user(Role.CLERK)
    with app.app_context():
        issue_password_token(db.session.get(User, user.id), "reset")
        db.session.commit()
    OutboxRelay(app).drain()
    [row] = [r for r in outbox_rows(app) if r.type == "user.password_link_issued"]
    assert row.published_at is not None
    assert "link" not in row.envelope["data"] and row.envelope["data"]["purpose"] == "reset"
    [published] = [e for e in read_topic(app, 2, key=str(user.id)) if e["type"] == "user.password_link_issued"]
    assert published["data"]["link"].startswith("http")  # the worker still receives it
