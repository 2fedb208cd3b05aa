"""`python -m workers health`: is each role alive, and how far behind is each consumer group?"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from confluent_kafka import Consumer, TopicPartition
from flask import Flask

from app.events.kafka import consumer_settings, group_name
from app.events.models import WorkerHeartbeat
from app.extensions import db
from app.timeutil import utcnow
from workers.roles import CONSUMER_ROLES, ROLES


@dataclass
class RoleHealth:
    role: str
    alive: bool
    last_beat: str
    lag: int | None = None

    def line(self) -> str:
        state = "alive" if self.alive else "DOWN"
        lag = "" if self.lag is None else f", lag {self.lag} events"
        return f"{self.role:<14} {state:<5} (last heartbeat {self.last_beat}{lag})"


def consumer_lag(app: Flask, group: str) -> int | None:
    """Messages in the events topic that the group has not committed yet; None if the broker does not answer."""
    settings = consumer_settings(app.config, group)
    consumer = Consumer(settings)
    try:
        topic = app.config["HMS_EVENTS_TOPIC"]
        metadata = consumer.list_topics(topic, timeout=5)
        partitions = [TopicPartition(topic, p) for p in metadata.topics[topic].partitions]
        committed = consumer.committed(partitions, timeout=5)
        lag = 0
        for tp in committed:
            low, high = consumer.get_watermark_offsets(tp, timeout=5)
            position = tp.offset if tp.offset >= 0 else low
            lag += max(0, high - position)
        return lag
    except Exception:  # noqa: BLE001 - the report says "unknown"
        return None
    finally:
        consumer.close()


def check(app: Flask) -> list[RoleHealth]:
    stale_after = timedelta(seconds=app.config["HMS_HEARTBEAT_SECONDS"] * 3)
    with app.app_context():
        beats = {b.role: b for b in db.session.scalars(sa.select(WorkerHeartbeat))}
    report = []
    for role in [*ROLES, "dispatcher"]:
        beat = beats.get(role)
        alive = beat is not None and utcnow() - beat.beat_at <= stale_after
        last = f"{int((utcnow() - beat.beat_at).total_seconds())} s ago" if beat else "never"
        lag = consumer_lag(app, group_name(app.config, role)) if role in CONSUMER_ROLES else None
        report.append(RoleHealth(role, alive, last, lag))
    return report
