"""Benchmark: an event from the committing transaction to the SMTP server, and a bare Kafka loop beside it.

    .venv/bin/python -m bench.events [--events 1000] [--burst 2000] [--rate 0] [--split-roles] [--dump PATH]

Self-contained: it makes its own database (`hms_bench`, dropped at the end), its own tansu broker and SMTP
server on free ports, and runs `python -m workers run` against them (--split-roles: one process per role).
Only one run at a time (a lock file): every run creates and drops the same database. Phases:

1. latency: N `patient.profile_changed` events, one commit each, paced open-loop at --rate events/s
   (--rate 0: closed loop, each event after the previous one's email arrived); per event, the time from
   `db.session.commit()` returning to the SMTP server accepting the email (handle_DATA, same clock).
2. throughput: M events committed as fast as possible (--batch per commit); the worker's rate from the
   first commit until the last audit row is written (SQL polling) and the last email is accepted.
3. baseline: on the same broker, a bare confluent-kafka idempotent producer (acks=all) and consumer with the
   app's settings: produce->consume latency paced like phase 1, and the consume rate over a burst of M.

It measures; it never fails because something is slow. Exit status 1 means it could not run.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from bench.common import (ROOT, BenchError, CpuMeter, Database, begin_run, broker_pids, clean_up, close_app,
                          cpu_meter, database_url, fmt, free_port, machine_facts_line, push_app, ratio, run_date,
                          summary, take_run_lock, wait_for)

DB_NAME = "hms_bench"
BENCH_URL = database_url(DB_NAME)
EVENT_TYPE = "patient.profile_changed"
MESSAGE_ID = re.compile(rb"^Message-ID:\s*<([0-9a-f-]{36})\.email\.\d+@hms>", re.IGNORECASE | re.MULTILINE)

log = logging.getLogger("bench")


def epoch(value) -> float | None:
    """A DATETIME(6) read through a text query (naive UTC) or a UTCDateTime column (aware) as epoch seconds."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


# --- the SMTP server: records when each email was accepted ---------------------------------------------

class Arrivals:
    """aiosmtpd handler: the moment handle_DATA runs (the server accepts the message), per event id."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self.total = 0
        self.duplicates = 0
        self.unparsed = 0
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        now = time.time()
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        match = MESSAGE_ID.search(content)
        with self._lock:
            self.total += 1
            if match is None:
                self.unparsed += 1
            else:
                event_id = match.group(1).decode()
                if event_id in self.times:
                    self.duplicates += 1
                else:
                    self.times[event_id] = now
        return "250 OK"

    def have(self, event_ids) -> int:
        with self._lock:
            return sum(1 for e in event_ids if e in self.times)


# --- the worker -----------------------------------------------------------------------------------------

class Worker:
    """`python -m workers run` (all roles in one process), or one process per role with --split-roles."""

    def __init__(self, env: dict[str, str], log_dir: Path, split: bool) -> None:
        self.env, self.log_dir = env, log_dir
        from workers.roles import ROLES

        self.commands = [["--role", role] for role in ROLES] if split else [[]]
        self.processes: list[subprocess.Popen] = []
        self._logs: list = []

    def start(self) -> None:
        for i, extra in enumerate(self.commands):
            log_file = open(self.log_dir / f"worker-{i}.log", "ab")  # noqa: SIM115 - closed in stop()
            self._logs.append(log_file)
            self.processes.append(subprocess.Popen([sys.executable, "-m", "workers", "run", *extra], cwd=ROOT,
                                                   env=self.env, stdout=log_file, stderr=subprocess.STDOUT,
                                                   stdin=subprocess.DEVNULL))

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def alive(self) -> bool:
        return bool(self.processes) and all(process.poll() is None for process in self.processes)

    def stop(self, timeout: float = 30) -> None:
        processes, self.processes = self.processes, []
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        for log_file in self._logs:
            log_file.close()
        self._logs = []

    def tail(self, lines: int = 30) -> str:
        out = []
        for path in sorted(self.log_dir.glob("worker-*.log")):
            try:
                out.append(f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
            except OSError:
                continue
        return "\n".join(out)


# --- the HMS phases -------------------------------------------------------------------------------------

@dataclass
class Results:
    latency: dict = field(default_factory=dict)
    latency_lost: int = 0
    latency_behind_ms: float = 0.0
    commit_ms: dict = field(default_factory=dict)
    stages: dict = field(default_factory=dict)
    throughput: dict = field(default_factory=dict)
    stage_rates: dict = field(default_factory=dict)
    cpu: dict = field(default_factory=dict)
    latency_cpu: dict = field(default_factory=dict)
    baseline_cpu: dict = field(default_factory=dict)
    bare_latency: dict = field(default_factory=dict)
    bare_latency_lost: int = 0
    bare_throughput: dict = field(default_factory=dict)
    bare_commit_throughput: dict = field(default_factory=dict)


class Hms:
    """The benchmark's side of the app: emits events in an app context, reads the worker's tables."""

    def __init__(self, app, arrivals: Arrivals, patients: list[int]) -> None:
        self.app, self.arrivals, self.patients = app, arrivals, patients
        self._next = 0

    def emit_one(self):
        from app.events.outbox import emit

        user_id = self.patients[self._next % len(self.patients)]
        self._next += 1
        return emit(EVENT_TYPE, "patient", user_id, {"sections": ["contact"], "fields": ["phone"]},
                    patient_id=user_id).id

    def audit_max_seq(self, conn) -> int:
        return conn.exec_driver_sql("SELECT COALESCE(MAX(seq), 0) FROM audit_log").scalar()

    def stage_times(self, event_ids: list[str]) -> dict[str, dict[str, float]]:
        """Per event: the worker's own timestamps (outbox published, consumed, notification recorded/sent, audited)."""
        from app.extensions import db

        out: dict[str, dict[str, float]] = {e: {} for e in event_ids}
        ids = list(event_ids)
        queries = {
            "published": "SELECT id, published_at FROM outbox_events WHERE id IN :ids",
            "notif_consumed": "SELECT event_id, processed_at FROM processed_events"
                              " WHERE consumer = 'notifications' AND event_id IN :ids",
            "audit_consumed": "SELECT event_id, processed_at FROM processed_events"
                              " WHERE consumer = 'audit' AND event_id IN :ids",
            "notif_recorded": "SELECT event_id, created_at FROM notifications WHERE channel = 'email' AND event_id IN :ids",
            "notif_sent": "SELECT event_id, sent_at FROM notifications WHERE channel = 'email' AND event_id IN :ids",
            "audited": "SELECT event_id, recorded_at FROM audit_log WHERE event_id IN :ids",
        }
        for name, sql in queries.items():
            statement = sa.text(sql).bindparams(sa.bindparam("ids", expanding=True))
            for start in range(0, len(ids), 1000):
                for event_id, value in db.session.execute(statement, {"ids": ids[start:start + 1000]}):
                    if value is not None:
                        out[event_id][name] = epoch(value)
        db.session.rollback()
        return out


def stage_breakdown(commits: dict[str, float], arrivals: Arrivals, stamps: dict[str, dict[str, float]]) -> dict:
    """p50/p99 of each leg of the path, from the commit (bench clock) through the worker's DB timestamps."""
    legs = {
        "commit → outbox row marked published (relay)": ("commit", "published"),
        "commit → notifications consumer starts the event": ("commit", "notif_consumed"),
        "consumer start → notification row flushed (handler)": ("notif_consumed", "notif_recorded"),
        "notification row → SMTP accepted (commit, wake, claim, send)": ("notif_recorded", "smtp"),
        "commit → SMTP accepted (total)": ("commit", "smtp"),
        "commit → audit row written": ("commit", "audited"),
    }
    result = {}
    for label, (a, b) in legs.items():
        values = []
        for event_id, committed in commits.items():
            times = dict(stamps.get(event_id, {}), commit=committed)
            if event_id in arrivals.times:
                times["smtp"] = arrivals.times[event_id]
            if a in times and b in times:
                values.append(times[b] - times[a])
        result[label] = summary(values)
    return result


def latency_phase(hms: Hms, n: int, rate: float, wait_timeout: float, meter: CpuMeter,
                  results: Results) -> dict[str, float]:
    from app.extensions import db

    meter.start()
    commits: dict[str, float] = {}
    commit_durations: list[float] = []
    behind = 0.0
    start = time.perf_counter()
    for i in range(n):
        if rate > 0:
            target = start + i / rate
            delay = target - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            else:
                behind = max(behind, -delay)
        event_id = hms.emit_one()
        before = time.perf_counter()
        db.session.commit()
        commits[event_id] = time.time()
        commit_durations.append(time.perf_counter() - before)
        if rate <= 0:
            wait_for(lambda: event_id in hms.arrivals.times, wait_timeout / 10)
    wait_for(lambda: hms.arrivals.have(commits) == len(commits), wait_timeout, 0.02)
    results.latency_cpu = meter.stop()
    latencies = [hms.arrivals.times[e] - t for e, t in commits.items() if e in hms.arrivals.times]
    results.latency = summary(latencies)
    results.latency_lost = len(commits) - len(latencies)
    results.latency_behind_ms = behind * 1000
    results.commit_ms = summary(commit_durations)
    return commits


def throughput_phase(hms: Hms, m: int, batch: int, wait_timeout: float, meter: CpuMeter, results: Results) -> dict[str, float]:
    from app.extensions import db

    poll_engine = sa.create_engine(BENCH_URL, poolclass=sa.pool.NullPool)
    with poll_engine.connect() as conn:
        base_seq = hms.audit_max_seq(conn)
        conn.rollback()
    target_seq = base_seq + m
    audit_done: list[float] = []
    stop_polling = threading.Event()

    def poll_audit() -> None:
        with poll_engine.connect() as conn:
            while not stop_polling.is_set():
                seq = hms.audit_max_seq(conn)
                conn.rollback()
                if seq >= target_seq:
                    audit_done.append(time.time())
                    return
                stop_polling.wait(0.02)

    meter.start()
    poller = threading.Thread(target=poll_audit, name="audit-poller", daemon=True)
    poller.start()
    commits: dict[str, float] = {}
    first_commit = None
    emitted = 0
    while emitted < m:
        ids = [hms.emit_one() for _ in range(min(batch, m - emitted))]
        db.session.commit()
        now = time.time()
        first_commit = first_commit or now
        commits.update((event_id, now) for event_id in ids)
        emitted += len(ids)
    last_commit = time.time()
    deadline = last_commit + wait_timeout
    wait_for(lambda: hms.arrivals.have(commits) == m, wait_timeout, 0.02)
    poller.join(max(1.0, deadline - time.time()))
    stop_polling.set()
    poller.join(5)
    results.cpu = meter.stop()
    poll_engine.dispose()

    email_times = sorted(hms.arrivals.times[e] for e in commits if e in hms.arrivals.times)
    last_email = email_times[-1] if len(email_times) == m else None
    last_audit = audit_done[0] if audit_done else None
    both = max(last_email, last_audit) if last_email and last_audit else None
    tp = results.throughput
    tp.update(events=m, batch=batch, emails_arrived=len(email_times), emit_seconds=last_commit - first_commit,
              emit_rate=m / (last_commit - first_commit) if last_commit > first_commit else None,
              audit_rate=m / (last_audit - first_commit) if last_audit else None,
              email_rate=m / (last_email - first_commit) if last_email else None,
              worker_rate=m / (both - first_commit) if both else None,
              seconds=(both - first_commit) if both else None)
    # Steady state: the rate between the 10th and the 90th percentile arrival (no ramp-up, no tail).
    if len(email_times) >= 20:
        lo, hi = email_times[len(email_times) // 10], email_times[len(email_times) * 9 // 10]
        tp["email_rate_steady"] = (len(email_times) * 8 // 10) / (hi - lo) if hi > lo else None
    return commits


def stage_rates(commits: dict[str, float], arrivals: Arrivals, stamps: dict[str, dict[str, float]]) -> dict:
    """How long each stage took to get through the whole burst, as events/s from the first commit."""
    first = min(commits.values())
    ends = {}
    for name, label in (("published", "relay: outbox → Kafka (published_at)"),
                        ("notif_consumed", "notifications consumer (processed_events)"),
                        ("notif_sent", "dispatcher: emails marked sent"),
                        ("audited", "audit consumer (audit_log.recorded_at)")):
        values = [s[name] for s in stamps.values() if name in s]
        if len(values) == len(commits):
            ends[label] = len(commits) / (max(values) - first)
        else:
            ends[label] = None
    emails = [arrivals.times[e] for e in commits if e in arrivals.times]
    ends["SMTP server: emails accepted"] = len(commits) / (max(emails) - first) if len(emails) == len(commits) else None
    return ends


# --- the baseline: bare confluent-kafka on the same broker ----------------------------------------------

class BareConsumer(threading.Thread):
    def __init__(self, config, topic: str, commit_each: bool) -> None:
        super().__init__(name="bare-consumer", daemon=True)
        from app.events.kafka import consumer_settings

        self.settings = consumer_settings(config, f"bench-bare-{uuid.uuid4().hex[:8]}")
        self.topic, self.commit_each = topic, commit_each
        self.times: dict[str, float] = {}
        self.assigned = threading.Event()
        self.stop_flag = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        from confluent_kafka import Consumer

        try:
            consumer = Consumer(self.settings)
            consumer.subscribe([self.topic], on_assign=lambda c, parts: self.assigned.set())
            try:
                while not self.stop_flag.is_set():
                    message = consumer.poll(0.2)
                    if message is None or message.error():
                        continue
                    now = time.time()
                    for key, value in message.headers() or ():
                        if key == "event_id":
                            self.times[value.decode()] = now
                    if self.commit_each:
                        consumer.commit(message=message, asynchronous=False)
            finally:
                if self.assigned.is_set():
                    consumer.close()
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            self.error = error

    def have(self, ids) -> int:
        return sum(1 for i in ids if i in self.times)


def envelope_bytes(user_id: int) -> tuple[str, bytes]:
    event_id = str(uuid.uuid4())
    envelope = {"id": event_id, "type": EVENT_TYPE, "version": 1, "occurred_at": datetime.now(timezone.utc).isoformat(),
                "actor": None, "aggregate_type": "patient", "aggregate_id": str(user_id), "patient_id": user_id,
                "source_ip": None, "outcome": "success", "data": {"sections": ["contact"], "fields": ["phone"]}}
    return event_id, json.dumps(envelope).encode()


def baseline(config, patients: list[int], n: int, m: int, rate: float, wait_timeout: float, results: Results) -> None:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    from app.events.kafka import admin_settings, producer_settings

    topic = "bench.bare"
    admin = AdminClient(admin_settings(config))
    for future in admin.create_topics([NewTopic(topic, num_partitions=config["HMS_EVENTS_PARTITIONS"],
                                                replication_factor=1)]).values():
        future.result(30)
    if not wait_for(lambda: topic in admin.list_topics(timeout=5).topics, 30, 0.1):
        raise BenchError(f"topic {topic} not visible")
    producer = Producer(producer_settings(config))

    def produce(user_id: int) -> str:
        event_id, value = envelope_bytes(user_id)
        while True:
            try:
                producer.produce(topic, key=str(user_id).encode(), value=value,
                                 headers={"event_type": EVENT_TYPE, "event_id": event_id})
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
        return event_id

    def start_consumer(commit_each: bool) -> BareConsumer:
        consumer = BareConsumer(config, topic, commit_each)
        consumer.start()
        if not consumer.assigned.wait(60):
            consumer.stop_flag.set()
            raise BenchError(f"bare consumer got no partitions within 60 s ({consumer.error})")
        time.sleep(0.5)  # let the first fetches go out
        return consumer

    def burst(consumer: BareConsumer) -> dict:
        ids: list[str] = []
        first = time.time()
        for i in range(m):
            ids.append(produce(patients[i % len(patients)]))
        producer.flush(30)
        produced = time.time()
        wait_for(lambda: consumer.have(ids) == m, wait_timeout, 0.02)
        got = sorted(consumer.times[i] for i in ids if i in consumer.times)
        out = {"events": m, "consumed": len(got), "produce_rate": m / (produced - first),
               "consume_rate": m / (got[-1] - first) if len(got) == m else None}
        if len(got) >= 20:
            lo, hi = got[len(got) // 10], got[len(got) * 9 // 10]
            out["consume_rate_steady"] = (len(got) * 8 // 10) / (hi - lo) if hi > lo else None
        return out

    # (a) latency, paced like the HMS phase, then (b) a burst, with the same consumer.
    consumer = start_consumer(commit_each=False)
    sent: dict[str, float] = {}
    start = time.perf_counter()
    for i in range(n):
        if rate > 0:
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        t0 = time.time()
        event_id = produce(patients[i % len(patients)])
        sent[event_id] = t0
        if rate <= 0:
            wait_for(lambda: event_id in consumer.times, wait_timeout / 10, 0.0005)
    producer.flush(30)
    wait_for(lambda: consumer.have(sent) == n, wait_timeout, 0.02)
    latencies = [consumer.times[e] - t for e, t in sent.items() if e in consumer.times]
    results.bare_latency = summary(latencies)
    results.bare_latency_lost = n - len(latencies)
    results.bare_throughput = burst(consumer)
    consumer.stop_flag.set()
    consumer.join(15)
    # The worker commits its offset synchronously after every event: the same loop with that commit.
    consumer = start_consumer(commit_each=True)
    results.bare_commit_throughput = burst(consumer)
    consumer.stop_flag.set()
    consumer.join(15)


# --- the report -----------------------------------------------------------------------------------------

def report(args, command: str, results: Results, facts: dict) -> str:
    lat, bare = results.latency, results.bare_latency
    tp, btp, bctp = results.throughput, results.bare_throughput, results.bare_commit_throughput
    pace = f"{args.rate:g} events/s open loop" if args.rate > 0 else "closed loop (next after previous arrived)"
    lines = [
        f"Command: `{command}`",
        "",
        f"Run: {facts['date']}; machine: {facts['machine']}.",
        "",
        f"Settings: {args.events} latency events paced at {pace}; burst of {args.burst} events committed"
        f" {args.batch} per transaction; {facts['patients']} patients (keys); {facts['partitions']} partitions;"
        f" worker: {'one process per role' if args.split_roles else 'one process, all roles (python -m workers run)'};"
        f" database {facts['db']}.",
        "",
        "| Measure | HMS (commit → email accepted) | Bare confluent-kafka (produce → consume) | HMS ÷ bare |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name in ("p50", "p90", "p99", "max"):
        lines.append(f"| Latency {name} (ms) | {fmt(lat.get(name))} | {fmt(bare.get(name))} |"
                     f" {fmt(ratio(lat.get(name), bare.get(name)))}× |")
    lines += [
        f"| Latency samples (lost) | {lat.get('n', 0)} ({results.latency_lost}) |"
        f" {bare.get('n', 0)} ({results.bare_latency_lost}) | |",
        f"| Throughput, audit rows/s | {fmt(tp.get('audit_rate'))} | | {fmt(ratio(tp.get('audit_rate'), btp.get('consume_rate')), 4)} |",
        f"| Throughput, emails accepted/s | {fmt(tp.get('email_rate'))} | | {fmt(ratio(tp.get('email_rate'), btp.get('consume_rate')), 4)} |",
        f"| Throughput, events/s (both done) | {fmt(tp.get('worker_rate'))} | {fmt(btp.get('consume_rate'))} |"
        f" {fmt(ratio(tp.get('worker_rate'), btp.get('consume_rate')), 4)} |",
        f"| Burst seconds (first commit/produce → last done) | {fmt(tp.get('seconds'), 2)} |"
        f" {fmt(args.burst / btp['consume_rate'] if btp.get('consume_rate') else None, 2)} | |",
        f"| Steady rate, 10th→90th percentile arrival (/s) | {fmt(tp.get('email_rate_steady'))} (emails) |"
        f" {fmt(btp.get('consume_rate_steady'))} | |",
        f"| Bare consume with a sync offset commit per message (/s) | | {fmt(bctp.get('consume_rate'))} | |",
        "",
        f"Ratios: worker events/s ÷ bare consume events/s = **{fmt(ratio(tp.get('worker_rate'), btp.get('consume_rate')), 4)}**"
        f" (aim ≥ 0.5); HMS p99 {fmt(lat.get('p99'))} ms vs bare p99 {fmt(bare.get('p99'))} ms"
        f" = **{fmt(ratio(lat.get('p99'), bare.get('p99')))}×** (aim: HMS p99 ≤ 250 ms).",
        "",
        "Where the latency goes (p50 / p99 ms, from the worker's own DB timestamps; DATETIME(6), same host clock):",
        "",
        "| Leg | p50 | p99 | max |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, s in results.stages.items():
        lines.append(f"| {label} | {fmt(s['p50'])} | {fmt(s['p99'])} | {fmt(s['max'])} |")
    lines += [
        f"| bench `db.session.commit()` itself | {fmt(results.commit_ms.get('p50'))} |"
        f" {fmt(results.commit_ms.get('p99'))} | {fmt(results.commit_ms.get('max'))} |",
        "",
        "Burst, per stage (events/s from the first commit until the stage finished the last event):",
        "",
        "| Stage | events/s |",
        "| --- | ---: |",
        f"| bench emitting + committing ({args.batch}/commit) | {fmt(tp.get('emit_rate'))} |",
    ]
    for label, rate in results.stage_rates.items():
        lines.append(f"| {label} | {fmt(rate)} |")
    lines += ["", "CPU (cores busy on average; 1.0 = one core; \"rest of machine\" = other users of this shared"
              " machine, e.g. someone's test run, plus the kernel):", "",
              "| Phase | wall s | worker | MariaDB (shared) | tansu | bench process | rest of machine |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for label, cpu in (("latency", results.latency_cpu), ("burst", results.cpu), ("baseline", results.baseline_cpu)):
        if cpu:
            lines.append(f"| {label} | {fmt(cpu.get('_elapsed'))} | {fmt(cpu.get('worker'), 2)} |"
                         f" {fmt(cpu.get('MariaDB (shared)'), 2)} | {fmt(cpu.get('tansu broker'), 2)} |"
                         f" {fmt(cpu.get('bench process'), 2)} | {fmt(cpu.get('_other'), 2)} |")
    lines.append("")
    if results.latency_behind_ms > 5:
        lines.append(f"Note: the paced emitter fell up to {results.latency_behind_ms:.0f} ms behind its schedule.")
    return "\n".join(lines)


def machine_facts() -> str:
    return machine_facts_line(BENCH_URL) + ", tansu broker in memory"


# --- main -----------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.events", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000, help="latency events (default 1000)")
    parser.add_argument("--burst", type=int, default=2000, help="throughput burst size (default 2000)")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="latency pacing: events/s, open loop; 0 (the default) = closed loop, each event"
                             " committed once the previous one's email was accepted")
    parser.add_argument("--batch", type=int, default=100, help="events per commit in the burst (default 100)")
    parser.add_argument("--patients", type=int, default=12, help="patients the events are about (default 12)")
    parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait for a phase's tail (default 120)")
    parser.add_argument("--max-seconds", type=int, default=900, help="abort the whole run after this (default 900)")
    parser.add_argument("--split-roles", action="store_true",
                        help="run each worker role in its own process (`--role NAME`) instead of one process")
    parser.add_argument("--dump", type=Path, metavar="PATH",
                        help="write every event's timestamps (commit, the worker's DB stamps, SMTP) as JSON here")
    parser.add_argument("--keep-db", action="store_true", help="keep hms_bench at the end")
    parser.add_argument("--keep-logs", action="store_true", help="keep the worker and broker logs")
    args = parser.parse_args(argv)
    command = begin_run("bench.events", argv, args.max_seconds)

    from aiosmtpd.controller import Controller

    from devtools.broker import Broker

    # One run at a time: every run creates and drops the same database.
    lock_file = take_run_lock("bench.events", f"the {DB_NAME} database")  # held until exit
    if lock_file is None:
        return 1

    tmp = Path(tempfile.mkdtemp(prefix="hms-bench-"))
    broker = Broker(log_path=tmp / "broker.log")
    arrivals = Arrivals()
    smtp = Controller(arrivals, hostname="127.0.0.1", port=free_port())
    database = Database(DB_NAME)
    worker: Worker | None = None
    app = ctx = None
    failed = True
    try:
        log.info("starting broker, SMTP server and database (work files in %s)", tmp)
        broker.start()
        smtp.start()
        database.create()
        env = {
            "HMS_ENV": "development",
            "DATABASE_URL": BENCH_URL,
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": str(smtp.port),
            "MAIL_USE_TLS": "false", "MAIL_USE_SSL": "false", "MAIL_USERNAME": "", "MAIL_PASSWORD": "",
            "SMS_GATEWAY_URL": "",  # SMS rows are recorded as skipped
            "KAFKA_AUTO_OFFSET_RESET": "earliest",  # the welcome emails of patients made before the worker: readiness
            "HMS_NOTIFY_SENDING_TIMEOUT": "30",
            "HMS_HEARTBEAT_SECONDS": "5",
            "PYTHONUNBUFFERED": "1",
        }
        app, ctx = push_app(env, relay=True)
        from flask_migrate import upgrade

        from app.accounts.models import Sex
        from app.accounts.passwords import hash_password
        from app.accounts.services import PatientRegistration, register_patient
        from app.events.kafka import create_topics
        from app.extensions import db
        from app.notifications.services import install_default_templates

        upgrade()
        create_topics(app.config)
        password_hash = hash_password(uuid.uuid4().hex)
        patients = []
        for i in range(args.patients):
            user = register_patient(PatientRegistration(
                full_name=f"Bench Patient {i}", email=f"bench{i}@example.com", password="unused-password",
                date_of_birth=date(1980, 1, 1), sex=Sex.FEMALE, phone="+12025550111", address="1 Bench Road",
                emergency_contact_name="Bench Contact", emergency_contact_phone="+12025550112"),
                password_hash=password_hash)
            patients.append(user.id)
        install_default_templates()
        db.session.commit()  # K patient.registered events: the welcome emails are the readiness signal

        worker = Worker({**os.environ, **env}, tmp, args.split_roles)
        worker.start()
        log.info("worker started (pids %s); waiting for %d welcome emails and audit rows", worker.pids,
                 len(patients))
        hms = Hms(app, arrivals, patients)

        def ready() -> bool:
            if not worker.alive():
                raise BenchError(f"a worker process exited:\n{worker.tail()}")
            if arrivals.total < len(patients):
                return False
            audited = hms.audit_max_seq(db.session.connection())
            db.session.rollback()
            return audited >= len(patients)

        if not wait_for(ready, 120, 0.1):
            raise BenchError(f"the worker was not ready within 120 s ({arrivals.total} emails):\n{worker.tail()}")
        warm = [hms.emit_one() for _ in range(20)]
        db.session.commit()
        if not wait_for(lambda: arrivals.have(warm) == len(warm), 60, 0.02):
            raise BenchError(f"warm-up events did not arrive by email:\n{worker.tail()}")
        time.sleep(1.0)

        results = Results()
        meter = cpu_meter({"worker": worker.pids, "tansu broker": broker_pids(broker)})
        log.info("latency: %d events at %s", args.events, f"{args.rate:g}/s" if args.rate > 0 else "closed loop")
        commits = latency_phase(hms, args.events, args.rate, args.wait, meter, results)
        stamps = hms.stage_times(list(commits))
        results.stages = stage_breakdown(commits, arrivals, stamps)
        dump = {"latency": [{"event_id": e, "commit": t, "smtp": arrivals.times.get(e), **stamps.get(e, {})}
                            for e, t in commits.items()]}
        time.sleep(1.0)

        log.info("throughput: burst of %d events, %d per commit", args.burst, args.batch)
        commits = throughput_phase(hms, args.burst, args.batch, args.wait, meter, results)
        stamps = hms.stage_times(list(commits))
        results.stage_rates = stage_rates(commits, arrivals, stamps)
        dump["burst"] = [{"event_id": e, "commit": t, "smtp": arrivals.times.get(e), **stamps.get(e, {})}
                         for e, t in commits.items()]
        if args.dump:
            args.dump.write_text(json.dumps(dump))

        worker.stop()
        relay = app.extensions.get("hms_relay")
        if relay is not None:
            relay.stop()
        log.info("baseline: bare produce → consume on the same broker")
        meter.groups["worker"] = []
        meter.start()
        baseline(app.config, patients, args.events, args.burst, args.rate, args.wait, results)
        results.baseline_cpu = meter.stop()

        facts = {"patients": len(patients), "partitions": app.config["HMS_EVENTS_PARTITIONS"], "db": database.how,
                 "date": run_date(), "machine": machine_facts()}
        if arrivals.duplicates or arrivals.unparsed:
            facts["db"] += f"; SMTP saw {arrivals.duplicates} duplicate and {arrivals.unparsed} unparsed messages"
        print(report(args, command, results, facts), flush=True)
        failed = False
        return 0
    except BenchError as error:
        print(f"bench.events: could not run: {error}", file=sys.stderr)
        return 1
    finally:
        signal.alarm(0)
        if worker is not None:
            worker.stop()
        if app is not None:
            relay = app.extensions.get("hms_relay")
            if relay is not None:
                relay.stop(5)
        close_app(app, ctx)
        try:
            smtp.stop()
        except (AssertionError, RuntimeError):
            pass
        broker.stop()
        clean_up("bench.events", database, args.keep_db, tmp, failed or args.keep_logs)


if __name__ == "__main__":
    sys.exit(main())
