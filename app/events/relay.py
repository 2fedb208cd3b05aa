"""The outbox relay: publishes committed outbox rows to Kafka and marks them published.

Only one relay publishes at a time (a MySQL named lock), so events leave in `seq` order and one
aggregate's events stay in order. Any number of processes may run a relay: the web processes wake
theirs right after a commit that wrote events, the worker's relay polls as the backstop.
Rows are read without row locks and marked from the producer's delivery reports, so a broker
outage never blocks the requests that write new events.
"""
from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field

import sqlalchemy as sa
from confluent_kafka import KafkaError, Producer
from flask import Flask

from app.events.kafka import producer_settings
from app.events.models import OutboxEvent
from app.extensions import db
from app.timeutil import utcnow

logger = logging.getLogger("hms.relay")

SECRET_BEARING = ("user.password_link_issued",)


@dataclass
class DrainResult:
    published: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


class OutboxRelay:
    def __init__(self, app: Flask, *, lock_wait: float = 2.0):
        """`lock_wait`: how long to wait for a relay that is already draining. The web processes' relays
        wait a little (that relay may miss rows committed at its very end); the worker's polling relay
        does not wait at all: whoever holds the lock is publishing already."""
        self.app = app
        self.lock_wait = lock_wait
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._producer: Producer | None = None
        self._fatal = False
        self._start_lock = threading.Lock()

    # --- lifecycle ------------------------------------------------------------------------------

    def wake(self) -> None:
        """Called after a commit that wrote events; starts the background thread on first use."""
        if self._thread is None:
            self.start()
        self._wake.set()

    def start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._producer is not None:
            self._producer.flush(timeout)
            self._producer = None

    def run_forever(self, stop: threading.Event, on_tick=None) -> None:
        """The worker's relay role: the same loop, in the caller's thread."""
        self._stop = stop
        self._run(on_tick)

    def _run(self, on_tick=None) -> None:
        poll = self.app.config["HMS_RELAY_POLL_SECONDS"]
        while not self._stop.is_set():
            if on_tick is not None:
                on_tick()
            self._wake.wait(poll)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                result = self.drain()
            except Exception:  # keep relaying; the next wake or poll tries again
                logger.exception("outbox relay failed")
                self._stop.wait(poll)
                continue
            if result.failed:
                self._stop.wait(poll)  # the broker is unreachable: back off to the polling pace

    # --- publishing -----------------------------------------------------------------------------

    def _lock_name(self) -> str:
        return f"hms_outbox_relay:{db.engine.url.database}"

    def drain(self) -> DrainResult:
        """Publish every unpublished row, in batches, while holding the relay lock."""
        result = DrainResult()
        self._producer_instance()  # connect before taking the lock: a first connection can take 0.5 s
        with self.app.app_context():
            with db.engine.connect() as lock_conn:
                if not lock_conn.scalar(sa.text("SELECT GET_LOCK(:name, :wait)"),
                                        {"name": self._lock_name(), "wait": self.lock_wait}):
                    return result
                try:
                    while not self._stop.is_set():
                        rows = self._unpublished(self.app.config["HMS_RELAY_BATCH"])
                        if not rows:
                            break
                        delivered, failed = self._publish(rows)
                        self._record(delivered, failed)
                        result.published += len(delivered)
                        result.failed += len(failed)
                        result.errors.extend(failed.values())
                        if failed:
                            break
                finally:
                    lock_conn.scalar(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": self._lock_name()})
                    lock_conn.rollback()
            db.session.remove()
        return result

    def _unpublished(self, limit: int) -> list[tuple[int, str, dict]]:
        with db.engine.connect() as conn:
            rows = conn.execute(
                sa.select(OutboxEvent.seq, OutboxEvent.aggregate_id, OutboxEvent.envelope)
                .where(OutboxEvent.published_at.is_(None))
                .order_by(OutboxEvent.seq)
                .limit(limit)
            ).all()
            conn.rollback()
        return [(seq, key, envelope) for seq, key, envelope in rows]

    def _producer_instance(self) -> Producer:
        if self._producer is None or self._fatal:
            settings = producer_settings(self.app.config)
            settings["error_cb"] = self._on_error
            self._producer = Producer(settings)
            self._fatal = False
        return self._producer

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            logger.error("fatal producer error, the producer will be recreated: %s", error)
            self._fatal = True
        else:
            logger.warning("producer: %s", error)

    def _publish(self, rows: list[tuple[int, str, dict]]) -> tuple[list[int], dict[int, str]]:
        producer = self._producer_instance()
        topic = self.app.config["HMS_EVENTS_TOPIC"]
        delivered: list[int] = []
        failed: dict[int, str] = {}

        def report(seq: int):
            def on_delivery(error, message) -> None:
                if error is None:
                    delivered.append(seq)
                else:
                    failed[seq] = str(error)[:500]
            return on_delivery

        for seq, key, envelope in rows:
            try:
                producer.produce(topic, key=key.encode(), value=json.dumps(envelope).encode(),
                                 headers={"event_type": envelope["type"], "event_id": envelope["id"]},
                                 on_delivery=report(seq))
            except BufferError as error:
                failed[seq] = f"local queue full: {error}"
            producer.poll(0)
        # Every message gets a definitive report within message.timeout.ms.
        producer.flush(self.app.config["KAFKA_MESSAGE_TIMEOUT_MS"] / 1000 + 5)
        if failed and not delivered:
            # A broker that lost its state (a restart of the in-memory one) no longer knows this idempotent
            # producer's id, and librdkafka retries with it forever: start again with a new producer.
            self._producer = None
        return delivered, failed

    def _record(self, delivered: list[int], failed: dict[int, str]) -> None:
        with db.engine.begin() as conn:
            if delivered:
                conn.execute(sa.update(OutboxEvent).where(OutboxEvent.seq.in_(delivered))
                             .values(published_at=utcnow()))
                # Once published, an event's secret (a live set-password link) has no reason to stay here.
                conn.execute(sa.update(OutboxEvent)
                             .where(OutboxEvent.seq.in_(delivered), OutboxEvent.type.in_(SECRET_BEARING))
                             .values(envelope=sa.func.json_remove(OutboxEvent.envelope, "$.data.link")))
            for seq, error in failed.items():
                conn.execute(sa.update(OutboxEvent).where(OutboxEvent.seq == seq)
                             .values(attempts=OutboxEvent.attempts + 1, last_error=error))
        if failed:
            logger.warning("%d events not published yet: %s", len(failed), next(iter(failed.values())))


def init_app(app: Flask) -> None:
    if app.config["HMS_RELAY_IN_PROCESS"]:
        app.extensions["hms_relay"] = OutboxRelay(app)
