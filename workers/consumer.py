"""The consumer loop shared by every event-handling role.

A handler's effect and the id of the event it processed commit in one transaction; the Kafka offset
is committed only after that. Messages are taken in batches and a batch is applied in one transaction
(one commit, one offset commit): the handler gets the batch's new events, in order, so that it can do
its database work once per batch; if anything in it fails, its messages are applied one by one. A
redelivered event finds its id already processed and changes nothing. An event that keeps failing goes
to the dead-letter topic with its origin, and the partition keeps flowing.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable

import sqlalchemy as sa
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from flask import Flask
from sqlalchemy.exc import IntegrityError

from app.events.kafka import consumer_settings, group_name, producer_settings
from app.events.models import ProcessedEvent
from app.extensions import db
from workers.heartbeat import Heartbeat

logger = logging.getLogger("hms.worker")

REQUIRED_FIELDS = ("id", "type", "occurred_at", "aggregate_type", "aggregate_id")


def _next_offsets(messages: list[Message]) -> list[TopicPartition]:
    """The offset after the last message of each partition in the batch."""
    last: dict[tuple[str, int], int] = {}
    for message in messages:
        key = (message.topic(), message.partition())
        last[key] = max(last.get(key, -1), message.offset())
    return [TopicPartition(topic, partition, offset + 1) for (topic, partition), offset in last.items()]


class MalformedEvent(ValueError):
    pass


def parse_envelope(raw: bytes | None) -> dict:
    try:
        envelope = json.loads(raw or b"")
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MalformedEvent(f"not JSON: {error}") from None
    if not isinstance(envelope, dict):
        raise MalformedEvent("not a JSON object")
    missing = [name for name in REQUIRED_FIELDS if not envelope.get(name)]
    if missing:
        raise MalformedEvent(f"missing {', '.join(missing)}")
    try:
        uuid.UUID(str(envelope["id"]))
    except ValueError:
        raise MalformedEvent("id is not a UUID") from None
    return envelope


class EventConsumer:
    """`handler` applies a list of new events, in order, in the caller's transaction (it must not commit)."""

    def __init__(self, app: Flask, role: str, handler: Callable[[list[dict]], object], stop: threading.Event,
                 after_commit: Callable[[], None] | None = None):
        self.app = app
        self.role = role
        self.handler = handler
        self.stop = stop
        self.after_commit = after_commit
        self.config = app.config
        self.heartbeat = Heartbeat(app, role)

    def run(self) -> None:
        consumer = Consumer(consumer_settings(self.config, group_name(self.config, self.role)))
        dead_letters = Producer(producer_settings(self.config))
        consumer.subscribe([self.config["HMS_EVENTS_TOPIC"]], on_assign=self._assigned, on_revoke=self._revoked)
        logger.info("%s: consuming %s", self.role, self.config["HMS_EVENTS_TOPIC"])
        # Leaving a group in the middle of a join can leave the group waiting for us (seen on tansu):
        # a stop that arrives before the first assignment waits for it, within a bound.
        join_deadline = time.monotonic() + 2 * self.config["KAFKA_SESSION_TIMEOUT_MS"] / 1000
        try:
            while not self.stop.is_set() or (self.heartbeat.assigned is None and time.monotonic() < join_deadline):
                self.heartbeat.maybe_beat()
                messages = self._next_batch(consumer)
                for message in messages:
                    if message.error() and message.error().code() != KafkaError._PARTITION_EOF:
                        logger.warning("%s: %s", self.role, message.error())
                messages = [m for m in messages if not m.error()]
                if messages and self.process_batch(messages, dead_letters):
                    consumer.commit(offsets=_next_offsets(messages), asynchronous=False)
        finally:
            consumer.close()
            dead_letters.flush(10)
            self.heartbeat.beat()

    def _next_batch(self, consumer: Consumer) -> list:
        """Wait for one message, then take whatever else is already fetched, without waiting: a batch
        never holds a message back to fill itself, so batching costs no latency."""
        messages = consumer.consume(1, timeout=0.2)
        if messages and self.config["HMS_WORKER_BATCH_SIZE"] > 1:
            messages += consumer.consume(self.config["HMS_WORKER_BATCH_SIZE"] - 1, timeout=0)
        return messages

    def _assigned(self, consumer: Consumer, partitions: list) -> None:
        logger.info("%s: assigned partitions %s", self.role, sorted(p.partition for p in partitions))
        self.heartbeat.assigned = len(partitions)

    def _revoked(self, consumer: Consumer, partitions: list) -> None:
        logger.info("%s: partitions revoked %s", self.role, sorted(p.partition for p in partitions))

    def process_batch(self, messages: list[Message], dead_letters: Producer) -> bool:
        """Apply a batch in one transaction; if anything in it fails, apply the messages one by one
        (with retries and dead letters). True when every offset of the batch may be committed."""
        parsed: list[dict] = []
        for message in messages:
            try:
                parsed.append(parse_envelope(message.value()))
            except MalformedEvent:
                break
        else:
            try:
                applied = self.apply_many(parsed)
            except Exception as error:  # noqa: BLE001 - isolate the failing event below
                logger.info("%s: batch of %d failed (%s); applying one by one", self.role, len(parsed), error)
            else:
                for _ in range(applied):
                    self.heartbeat.processed(True)
                if applied and self.after_commit:
                    self.after_commit()
                return True
        return all(self.process(message, dead_letters) for message in messages)

    def apply_many(self, envelopes: list[dict]) -> int:
        """The batch's new events and their effects in one transaction; returns how many were new."""
        with self.app.app_context():
            try:
                ids = [e["id"] for e in envelopes]
                done = set(db.session.scalars(sa.select(ProcessedEvent.event_id).where(
                    ProcessedEvent.consumer == self.role, ProcessedEvent.event_id.in_(ids))))
                fresh = []
                for envelope in envelopes:
                    if envelope["id"] not in done:
                        done.add(envelope["id"])
                        fresh.append(envelope)
                db.session.add_all([ProcessedEvent(consumer=self.role, event_id=e["id"]) for e in fresh])
                if fresh:
                    self.handler(fresh)
                db.session.commit()
                return len(fresh)
            except BaseException:
                db.session.rollback()
                raise
            finally:
                db.session.remove()

    def process(self, message: Message, dead_letters: Producer) -> bool:
        """Apply the message; True when its offset may be committed."""
        try:
            envelope = parse_envelope(message.value())
        except MalformedEvent as error:
            return self.dead_letter(message, dead_letters, error, attempts=1)
        max_attempts = self.config["HMS_WORKER_MAX_ATTEMPTS"]
        for attempt in range(1, max_attempts + 1):
            try:
                applied = self.apply(envelope)
            except Exception as error:  # noqa: BLE001 - retried, then dead-lettered with the error
                logger.warning("%s: event %s failed (attempt %d/%d): %s", self.role, envelope["id"], attempt,
                               max_attempts, error)
                if attempt == max_attempts:
                    return self.dead_letter(message, dead_letters, error, attempts=attempt)
                if self.stop.wait(self.config["HMS_WORKER_BACKOFF_SECONDS"] * 2 ** (attempt - 1)):
                    return False  # shutting down: leave it for the next run
                continue
            self.heartbeat.processed(applied)
            if applied and self.after_commit:
                self.after_commit()
            return True
        return False

    def apply(self, envelope: dict) -> bool:
        """Run the handler and record the event id in one transaction; False if already done."""
        with self.app.app_context():
            try:
                db.session.add(ProcessedEvent(consumer=self.role, event_id=envelope["id"]))
                try:
                    db.session.flush()
                except IntegrityError:
                    db.session.rollback()
                    return False
                self.handler([envelope])
                db.session.commit()
                return True
            except BaseException:
                db.session.rollback()
                raise
            finally:
                db.session.remove()

    def dead_letter(self, message: Message, producer: Producer, error: Exception, attempts: int) -> bool:
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        logger.error("%s: dead-lettering %s[%d]@%d after %d attempt(s): %s", self.role, topic, partition, offset,
                     attempts, error)
        outcome: list = []
        producer.produce(
            self.config["HMS_DLQ_TOPIC"], key=message.key(), value=message.value(),
            headers={"origin_topic": topic, "origin_partition": str(partition), "origin_offset": str(offset),
                     "consumer": self.role, "error": f"{type(error).__name__}: {error}"[:1000],
                     "attempts": str(attempts)},
            on_delivery=lambda err, msg: outcome.append(err))
        producer.flush(self.config["KAFKA_MESSAGE_TIMEOUT_MS"] / 1000 + 5)
        if not outcome or outcome[0] is not None:
            logger.error("%s: dead-letter topic unavailable; will retry the message", self.role)
            return False
        return True
