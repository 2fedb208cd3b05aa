"""Benchmark: booking and the doctor's dashboard over real HTTP under gunicorn, against a bare Flask app.

    .venv/bin/python -m bench.booking [--clients 16] [--dash-clients 8] [--duration 20] [--workers 2]
                                      [--no-broker] [--keep-logs]

Self-contained: it makes its own database (`hms_bench_booking`, dropped at the end), runs the migrations,
seeds it directly (patients, doctors with weekly hours, a doctor with 50 appointments this week), starts
its own tansu broker (the web processes' in-process outbox relay publishes the booking events to it, as in
production; --no-broker: no broker and HMS_RELAY_IN_PROCESS=false, the events stay in the outbox), then
serves the real app (`wsgi:app`) and a bare Flask + PyMySQL app (defined below) with the command of
scripts/Procfile: `gunicorn --workers N --access-logfile … `, each on a free loopback port. The load comes
from threads of this process, one persistent client each with its own session cookie (signed in over
HTTP) and the CSRF token of its page's `<meta name="csrf-token">`; `http.client`, a new connection per
request (gunicorn's sync workers close after every response). Phases, each for --duration seconds after
a short warm-up with the same load:

1. booking, distinct: --clients patients POST /patient/book, each for its own doctor, walking that doctor's
   free slots in order (no collisions expected);
2. booking, race: the same clients, all for one doctor; each round every client POSTs the *same* slot at
   the same moment (a barrier), so one should win and the rest get 409 "slot taken";
3. the dashboard: --dash-clients sessions of one doctor with 50 appointments this week GET /doctor/ (the
   full page), then the same with `HX-Request: true` (the whole fragment), then as the page's 30 s refresh
   sends it, with the version the page shows (`X-Schedule-Version`): the schedule is unchanged, so 204;
4. the baseline: the bare app's one indexed SELECT (the dashboard doctor's 50 appointments) with
   --dash-clients clients, and with --clients clients.

Latency is the time of one request (connect, send, whole response read) in the client; the session
cookie stays the one the client got at sign-in (a booking's flash message, which the redirect's page would
show, is dropped). It measures; it never fails because something is slow. Exit status 1: it could not run.
"""
from __future__ import annotations

import argparse
import fcntl
import http.client
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time as clock, timedelta, timezone
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

from app.doctors.appointments import VERSION_HEADER
from bench.common import (DB_HOST, DB_PASSWORD, DB_PORT, DB_USER, ROOT, BenchError, CpuMeter, Database, find_pid,
                          fmt, free_port, machine_facts_line, percentile, ratio, wait_for)

DB_NAME = "hms_bench_booking"
PASSWORD = "bench-password-1234"
CSRF_META = re.compile(rb'<meta name="csrf-token" content="([^"]+)"')
BARE_QUERY = "SELECT id, starts_at FROM appointments WHERE doctor_id=%s ORDER BY starts_at LIMIT 50"
HOST = "127.0.0.1"

log = logging.getLogger("bench")


# --- the bare baseline app (served by gunicorn as `bench.booking:bare_app()`) -----------------------------

def bare_app():
    """Flask + PyMySQL and nothing else: one connection per worker process, one indexed SELECT per request."""
    import pymysql
    from flask import Flask, jsonify, request

    app = Flask("bare")
    url = os.environ["BARE_DATABASE"]  # host:port/user/password/database
    where, user, password, database = url.split("/")
    host, port = where.split(":")
    state: dict = {}

    def connection():
        if "conn" not in state:
            state["conn"] = pymysql.connect(host=host, port=int(port), user=user, password=password,
                                            database=database, charset="utf8mb4", autocommit=True)
        return state["conn"]

    @app.get("/bare")
    def bare():
        with connection().cursor() as cursor:
            cursor.execute(BARE_QUERY, (int(request.args["doctor"]),))
            rows = cursor.fetchall()
        return jsonify([[row_id, starts_at.isoformat()] for row_id, starts_at in rows])

    return app


# --- a client: one session, one connection at a time ------------------------------------------------------

class Client:
    def __init__(self, port: int, timeout: float) -> None:
        self.port, self.timeout = port, timeout
        self.conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
        self.cookies: dict[str, str] = {}
        self.keep_cookies = True  # False once signed in: the session stays the one from sign-in
        self.csrf = ""

    def request(self, method: str, path: str, form: dict | None = None,
                headers: dict | None = None) -> tuple[int, bytes, http.client.HTTPMessage, float]:
        body = urlencode(form).encode() if form is not None else None
        send = {"Host": f"{HOST}:{self.port}", **(headers or {})}
        if body is not None:
            send["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookies:
            send["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        started = time.perf_counter()
        try:
            self.conn.request(method, path, body=body, headers=send)
            response = self.conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            raise
        elapsed = time.perf_counter() - started
        if response.will_close:
            self.conn.close()
        if self.keep_cookies:
            for header in response.msg.get_all("Set-Cookie") or ():
                for name, morsel in SimpleCookie(header).items():
                    self.cookies[name] = morsel.value
        return response.status, data, response.msg, elapsed

    def csrf_from(self, path: str) -> str:
        status, body, _, _ = self.request("GET", path)
        match = CSRF_META.search(body)
        if status != 200 or not match:
            raise BenchError(f"GET {path}: status {status}, no <meta name=csrf-token>")
        self.csrf = match.group(1).decode()
        return self.csrf

    def sign_in(self, email: str, landing: str) -> None:
        token = self.csrf_from("/login")
        status, body, _, _ = self.request("POST", "/login", {"csrf_token": token, "email": email, "password": PASSWORD})
        if status != 303:
            raise BenchError(f"sign-in of {email} answered {status}: {body[:300]!r}")
        self.csrf_from(landing)  # the session now holds the CSRF secret of this token
        self.keep_cookies = False


# --- running a phase --------------------------------------------------------------------------------------

@dataclass
class Sample:
    started: float
    seconds: float
    outcome: str


@dataclass
class PhaseResult:
    name: str
    clients: int
    samples: list[Sample] = field(default_factory=list)
    wall: float = 0.0
    cpu: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warmup: Counter = field(default_factory=Counter)  # outcomes of the unrecorded warm-up requests

    @property
    def ok(self) -> list[float]:
        return [s.seconds for s in self.samples]

    def rate(self) -> float | None:
        return len(self.samples) / self.wall if self.wall > 0 and self.samples else None

    def pct(self, q: float) -> float | None:
        value = percentile(self.ok, q)
        return None if value is None else value * 1000

    def outcomes(self) -> Counter:
        return Counter(s.outcome for s in self.samples)

    def as_dict(self) -> dict:
        """The phase as the `--json` dumps write it."""
        return {"name": self.name, "clients": self.clients, "requests": len(self.samples), "rate": self.rate(),
                "p50": self.pct(50), "p95": self.pct(95), "p99": self.pct(99), "max": self.pct(100),
                "outcomes": dict(self.outcomes()), "cpu": self.cpu, "notes": self.notes}


def classify_booking(status: int, body: bytes) -> str:
    if status == 303:
        return "booked"
    if status == 409:
        if b"already have an appointment" in body:
            return "patient overlap (409)"
        return "slot taken (409)"
    if status >= 500:
        return f"server error ({status})"
    return f"other ({status})"


def classify_page(status: int, body: bytes) -> str:
    return "ok" if status == 200 else (f"server error ({status})" if status >= 500 else f"other ({status})")


def run_phase(name: str, clients: list[Client], step, *, duration: float, warmup: float, meter: CpuMeter,
              hard_timeout: float, barrier_rounds: bool = False) -> PhaseResult:
    """Each client thread calls `step(i, client, round)` -> (outcome, seconds) until the time is up; the
    first `warmup` seconds are not recorded. With `barrier_rounds`, all clients start each round together."""
    result = PhaseResult(name, len(clients))
    per_client: list[list[Sample]] = [[] for _ in clients]
    warm: list[Counter] = [Counter() for _ in clients]
    state = {"round": 0, "stop": False, "record": False}
    t_start = time.perf_counter()
    t_record = t_start + warmup
    t_end = t_record + duration

    def next_round() -> None:
        now = time.perf_counter()
        state["round"] += 1
        state["stop"] = now >= t_end
        state["record"] = now >= t_record

    barrier = threading.Barrier(len(clients), action=next_round, timeout=hard_timeout) if barrier_rounds else None
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        own = per_client[i]
        try:
            while True:
                if barrier is not None:
                    barrier.wait()
                    if state["stop"]:
                        return
                    record, round_no = state["record"], state["round"]
                else:
                    now = time.perf_counter()
                    if now >= t_end:
                        return
                    record, round_no = now >= t_record, None
                started = time.perf_counter()
                try:
                    outcome, seconds = step(i, clients[i], round_no)
                except (OSError, http.client.HTTPException) as error:
                    outcome, seconds = f"connection error ({type(error).__name__})", time.perf_counter() - started
                if record:
                    own.append(Sample(started, seconds, outcome))
                else:
                    warm[i][outcome] += 1
        except threading.BrokenBarrierError:
            return
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
            if barrier is not None:
                barrier.abort()

    threads = [threading.Thread(target=worker, args=(i,), name=f"client-{i}", daemon=True) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    # CPU is metered over the recorded window only.
    wait_for(lambda: time.perf_counter() >= t_record, warmup + 5, 0.005)
    meter.start()
    deadline = t_end + hard_timeout
    for thread in threads:
        thread.join(max(0.1, deadline - time.perf_counter()))
    result.cpu = meter.stop()
    if any(thread.is_alive() for thread in threads):
        if barrier is not None:
            barrier.abort()
        result.notes.append(f"some clients were still busy {hard_timeout:.0f} s after the end; their requests are"
                            " not counted")
    if errors:
        raise BenchError(f"{name}: a client failed: {errors[0]!r}")
    for own in per_client:
        result.samples.extend(own)
    for counts in warm:
        result.warmup.update(counts)
    bad = {k: v for k, v in result.warmup.items() if "error" in k}
    if bad:
        result.notes.append("during the warm-up (not in the table): "
                            + ", ".join(f"{k} {v}" for k, v in sorted(bad.items())))
    if result.samples:
        # From the start of the recorded window (rounds: the first recorded round) to the last answer.
        first = t_record if barrier is None else min(s.started for s in result.samples)
        result.wall = max(s.started + s.seconds for s in result.samples) - first
    return result


# --- gunicorn ---------------------------------------------------------------------------------------------

def stop_all(servers: list["Gunicorn"], app, ctx) -> None:
    """The end of an HTTP benchmark: its servers stopped, the seeding app's connections closed, its context popped."""
    for server in servers:
        server.stop()
    if app is not None:
        from app.extensions import db

        db.session.remove()
        db.engine.dispose()
    if ctx is not None:
        ctx.pop()


class Gunicorn:
    def __init__(self, name: str, target: str, env: dict[str, str], workers: int, log_dir: Path) -> None:
        self.name, self.target, self.env, self.workers, self.log_dir = name, target, env, workers, log_dir
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self._log = None

    @property
    def command(self) -> list[str]:
        return [str(Path(sys.executable).with_name("gunicorn")), "--bind", f"{HOST}:{self.port}", "--workers",
                str(self.workers), "--access-logfile", str(self.log_dir / f"{self.name}-access.log"), self.target]

    def start(self, ready_path: str, timeout: float = 60) -> None:
        self._log = open(self.log_dir / f"{self.name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=self._log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

        def answering() -> bool:
            if self.process.poll() is not None:
                raise BenchError(f"gunicorn ({self.name}) exited:\n{self.tail()}")
            try:
                conn = http.client.HTTPConnection(HOST, self.port, timeout=5)
                conn.request("GET", ready_path)
                status = conn.getresponse().status
                conn.close()
                return status == 200 and len(self.worker_pids()) == self.workers
            except OSError:
                return False

        if not wait_for(answering, timeout, 0.1):
            raise BenchError(f"gunicorn ({self.name}) did not answer {ready_path} within {timeout} s:\n{self.tail()}")

    def worker_pids(self) -> list[int]:
        if self.process is None:
            return []
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        except OSError:
            return []
        return [int(pid) for pid in children]

    def pids(self) -> list[int]:
        return [self.process.pid, *self.worker_pids()] if self.process is not None else []

    def stop(self, timeout: float = 30) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # our own session: gunicorn and its workers
                process.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join((self.log_dir / f"{self.name}.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def statuses(self) -> Counter:
        """HTTP statuses in the access log (the whole run, warm-ups and sign-ins included)."""
        try:
            text = (self.log_dir / f"{self.name}-access.log").read_text(errors="replace")
        except OSError:
            return Counter()
        return Counter(match.group(1) for match in re.finditer(r'" (\d{3}) ', text))


# --- the data ---------------------------------------------------------------------------------------------

@dataclass
class Seed:
    department_id: int = 0
    patients: list[tuple[int, str]] = field(default_factory=list)  # (id, email)
    doctors: list[int] = field(default_factory=list)  # with weekly hours, for booking
    dashboard_doctor: tuple[int, str] = (0, "")
    dashboard_patients: list[int] = field(default_factory=list)
    dashboard_appointments: int = 0
    slots: dict[int, list[str]] = field(default_factory=dict)  # doctor -> free slot starts (ISO, UTC)


def seed(n_patients: int, n_doctors: int, dashboard_count: int) -> Seed:
    """Directly in the database, through the app's models and services (as tests/conftest.py does)."""
    from decimal import Decimal

    from app.accounts.models import Role, Sex
    from app.accounts.passwords import hash_password
    from app.accounts.services import PatientRegistration, create_user, register_patient
    from app.appointments.models import Appointment, Status, StatusChange
    from app.appointments.services import bookable_slots
    from app.clinic.models import DoctorProfile
    from app.clinic.services import save_department
    from app.extensions import db
    from app.scheduling.models import WeeklyAvailability
    from app.timeutil import clinic_today, clinic_zone, utcnow

    out = Seed()
    password_hash = hash_password(PASSWORD)
    department = save_department(None, name="Bench Medicine", description=None)
    out.department_id = department.id

    def patient(email: str, name: str) -> int:
        return register_patient(PatientRegistration(
            full_name=name, email=email, password=PASSWORD, date_of_birth=date(1980, 1, 2), sex=Sex.FEMALE,
            phone="+12025550123", address="1 Bench Road", emergency_contact_name="Sam Contact",
            emergency_contact_phone="+12025550199"), password_hash=password_hash).id

    for i in range(n_patients):
        email = f"bench.patient{i:02d}@example.com"
        out.patients.append((patient(email, f"Bench Patient {i:02d}"), email))
    # The dashboard doctor's patients are others, so that the booking clients' times never overlap theirs.
    out.dashboard_patients = [patient(f"bench.visitor{i:02d}@example.com", f"Bench Visitor {i:02d}")
                              for i in range(10)]

    def doctor(i: int, name: str) -> int:
        email = f"bench.doctor{i:02d}@example.com"
        user = create_user(role=Role.DOCTOR, email=email, full_name=name, password=None,
                           password_hash=password_hash, phone="+12025550100")
        profile = DoctorProfile(user_id=user.id, specialty="General practitioner", licence_number=f"BENCH-{i:03d}",
                                consultation_fee=Decimal("100.00"))
        profile.departments = [department]
        db.session.add(profile)
        db.session.flush()
        return user.id

    for i in range(n_doctors):
        doctor_id = doctor(i, f"Dr Bench {i:02d}")
        for weekday in range(7):
            db.session.add(WeeklyAvailability(doctor_id=doctor_id, department_id=department.id, weekday=weekday,
                                              start_time=clock(8), end_time=clock(18), slot_minutes=15))
        out.doctors.append(doctor_id)
    dash_id = doctor(n_doctors, "Dr Dashboard")
    out.dashboard_doctor = (dash_id, f"bench.doctor{n_doctors:02d}@example.com")
    db.session.commit()

    # The dashboard doctor: `dashboard_count` appointments this (clinic-local) week, Monday to Sunday.
    today, zone, now = clinic_today(), clinic_zone(), utcnow()
    monday = today - timedelta(days=today.weekday())
    past_cycle = [Status.COMPLETED, Status.NO_SHOW, Status.CONFIRMED, Status.CHECKED_IN]
    future_cycle = [Status.REQUESTED, Status.CONFIRMED]
    for i in range(dashboard_count):
        day = monday + timedelta(days=i % 7)
        local = datetime.combine(day, clock(8), tzinfo=zone) + timedelta(minutes=20 * (i // 7))
        starts_at = local.astimezone(timezone.utc)
        status = past_cycle[i % 4] if starts_at < now else future_cycle[i % 2]
        patient_id = out.dashboard_patients[i % len(out.dashboard_patients)]
        appointment = Appointment(patient_id=patient_id, doctor_id=dash_id, department_id=department.id,
                                  starts_at=starts_at, ends_at=starts_at + timedelta(minutes=15), status=status,
                                  reason="Bench check-up", active=True if status.active else None)
        db.session.add(appointment)
        db.session.add(StatusChange(appointment=appointment, from_status=None, to_status=status, actor_id=patient_id,
                                    starts_at=starts_at))
    db.session.commit()
    out.dashboard_appointments = dashboard_count

    # Free slots from tomorrow on, as the app computes them.
    first = today + timedelta(days=1)
    slots = bookable_slots(out.doctors, first, first + timedelta(days=80), department_id=department.id)
    out.slots = {doctor_id: [s.start.isoformat() for s in found] for doctor_id, found in slots.items()}
    db.session.rollback()
    return out


def integrity(doctor_ids: list[int]) -> dict:
    """Double bookings (must be 0) and the active appointments of these doctors."""
    import sqlalchemy as sa

    from app.extensions import db

    doubles = db.session.execute(sa.text(
        "SELECT COUNT(*) FROM (SELECT doctor_id, starts_at FROM appointments WHERE active = 1"
        " GROUP BY doctor_id, starts_at HAVING COUNT(*) > 1) d")).scalar()
    statement = sa.text("SELECT COUNT(*) FROM appointments WHERE active = 1 AND doctor_id IN :ids").bindparams(
        sa.bindparam("ids", expanding=True))
    active = db.session.execute(statement, {"ids": doctor_ids}).scalar()
    outbox = db.session.execute(sa.text(
        "SELECT COUNT(*), SUM(published_at IS NULL) FROM outbox_events WHERE type = 'appointment.requested'")).one()
    db.session.rollback()
    return {"double_bookings": doubles, "active": active, "events": outbox[0], "unpublished": int(outbox[1] or 0)}


def innodb_deadlocks() -> int | None:
    """The server's deadlock counter (the whole, shared server: other users' deadlocks count too)."""
    import sqlalchemy as sa

    from app.extensions import db

    try:
        value = db.session.execute(sa.text("SHOW GLOBAL STATUS LIKE 'Innodb_deadlocks'")).one()[1]
        db.session.rollback()
        return int(value)
    except Exception:  # noqa: BLE001 - a missing counter only loses a note
        db.session.rollback()
        return None


def latest_deadlock(log_dir: Path) -> str | None:
    """InnoDB's last deadlock, if it was in our database (needs `mysql -uroot`); saved to the log dir."""
    try:
        result = subprocess.run(["mysql", "-uroot", "-e", "SHOW ENGINE INNODB STATUS\\G"], capture_output=True,
                                text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = result.stdout
    start, end = text.find("LATEST DETECTED DEADLOCK"), text.find("\nTRANSACTIONS\n")
    if start < 0 or DB_NAME not in text[start:end]:
        return None
    section = text[start:end]
    (log_dir / "latest-deadlock.txt").write_text(section)
    waits = re.findall(r"index (\S+) of table \S+ trx id \d+ (lock_mode X locks gap before rec insert intention waiting"
                       r"|lock mode S|lock_mode X[^\n]*)", section)
    statements = re.findall(r"^(INSERT INTO \w+|SELECT [^\n]{0,60})", section, re.MULTILINE)
    summary = "; ".join(sorted({f"{index}: {mode}" for index, mode in waits}))
    return f"{summary} (statements: {', '.join(sorted(set(statements)))})"


# --- the report -------------------------------------------------------------------------------------------

def outcome_text(result: PhaseResult) -> str:
    counts = result.outcomes()
    return ", ".join(f"{name} {count}" for name, count in counts.most_common())


def report(args, command: str, phases: dict[str, PhaseResult], facts: dict) -> str:
    lines = [
        f"Command: `{command}`",
        "",
        f"Run: {facts['date']}; machine: {facts['machine']}.",
        "",
        f"Settings: gunicorn {facts['gunicorn']} sync workers ×{args.workers} for each app (the Procfile's"
        f" command, access log to a file); {facts['relay']}; {args.duration:g} s per phase after"
        f" {args.warmup:g} s of warm-up; database {facts['db']}; {facts['seed']}.",
        "",
        "| Phase | clients | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | outcomes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for result in phases.values():
        lines.append(f"| {result.name} | {result.clients} | {len(result.samples)} | {fmt(result.rate())} |"
                     f" {fmt(result.pct(50))} | {fmt(result.pct(95))} | {fmt(result.pct(99))} | {fmt(result.pct(100))} |"
                     f" {outcome_text(result)} |")
    dash, bare8 = phases.get("dashboard"), phases.get("bare")
    book = phases.get("distinct")
    rate = lambda key: phases[key].rate() if key in phases else None  # noqa: E731
    lines += [
        "",
        f"Ratios: dashboard req/s ÷ bare req/s ({dash.clients if dash else '–'} clients each) ="
        f" **{fmt(ratio(rate('dashboard'), rate('bare')), 3)}** (aim ≥ 0.5); HTMX refresh of the dashboard ÷ bare ="
        f" **{fmt(ratio(rate('dashboard_htmx'), rate('bare')), 3)}**; the refresh of an unchanged schedule (204) ÷ bare ="
        f" **{fmt(ratio(rate('dashboard_poll'), rate('bare')), 3)}**; booking (distinct) req/s ÷ bare req/s"
        f" ({book.clients if book else '–'} clients each) = **{fmt(ratio(rate('distinct'), rate('bare16')), 3)}**;"
        f" dashboard p95 ÷ bare p95 = {fmt(ratio(dash.pct(95) if dash else None, bare8.pct(95) if bare8 else None))}×.",
        "",
        "CPU (cores busy on average over the recorded window; 1.0 = one core; \"rest of machine\" = other users of"
        " this shared machine plus the kernel):",
        "",
        "| Phase | wall s | HMS gunicorn | bare gunicorn | MariaDB (shared) | tansu | bench clients | rest of machine |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in phases.values():
        cpu = result.cpu
        lines.append(f"| {result.name} | {fmt(cpu.get('_elapsed'))} | {fmt(cpu.get('HMS gunicorn'), 2)} |"
                     f" {fmt(cpu.get('bare gunicorn'), 2)} | {fmt(cpu.get('MariaDB (shared)'), 2)} |"
                     f" {fmt(cpu.get('tansu broker'), 2)} | {fmt(cpu.get('bench process'), 2)} |"
                     f" {fmt(cpu.get('_other'), 2)} |")
    per_request = []
    for result in phases.values():
        server = result.cpu.get("HMS gunicorn") if "bare" not in result.name else result.cpu.get("bare gunicorn")
        if server and result.rate():
            per_request.append(f"{result.name}: {server / result.rate() * 1000:.1f} ms")
    lines += ["", "Server CPU per request (gunicorn cores ÷ req/s): " + "; ".join(per_request) + "."]
    notes = [f"- {result.name}: {note}" for result in phases.values() for note in result.notes] + \
            [f"- {note}" for note in facts.get("notes", [])]
    if notes:
        lines += ["", "Notes:", "", *notes]
    return "\n".join(lines)


# --- main -------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.booking", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16, help="booking clients (patients), default 16")
    parser.add_argument("--dash-clients", type=int, default=8, help="dashboard and bare clients, default 8")
    parser.add_argument("--doctors", type=int, default=40, help="doctors with weekly hours, default 40"
                        " (the first --clients book one each, the next is raced for)")
    parser.add_argument("--appointments", type=int, default=50, help="the dashboard doctor's appointments, default 50")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds recorded per phase, default 20")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per phase, default 3")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per app, default 2")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-request socket timeout, default 30 s")
    parser.add_argument("--no-broker", action="store_true",
                        help="no Kafka broker: HMS_RELAY_IN_PROCESS=false, events stay in the outbox")
    parser.add_argument("--max-seconds", type=int, default=900, help="abort the whole run after this, default 900")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON here")
    parser.add_argument("--keep-db", action="store_true", help=f"keep {DB_NAME} at the end")
    parser.add_argument("--keep-logs", action="store_true", help="keep the gunicorn and broker logs")
    args = parser.parse_args(argv)
    if args.doctors < args.clients + 1:
        parser.error("--doctors must be at least --clients + 1")
    command = " ".join([".venv/bin/python", "-m", "bench.booking", *(argv if argv is not None else sys.argv[1:])])
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)

    def on_alarm(signum, frame):
        raise BenchError(f"the run exceeded --max-seconds={args.max_seconds}")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(args.max_seconds)

    lock_file = open(Path(tempfile.gettempdir()) / "hms-bench-booking.lock", "w")  # noqa: SIM115 - held until exit
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"bench.booking: could not run: another run is in progress (it owns {DB_NAME})", file=sys.stderr)
        return 1

    tmp = Path(tempfile.mkdtemp(prefix="hms-bench-booking-"))
    database = Database(DB_NAME)
    broker = None
    servers: list[Gunicorn] = []
    app = ctx = None
    failed = True
    try:
        database.create()
        env = {
            "HMS_ENV": "development",
            "DATABASE_URL": database.url,
            "SECRET_KEY": "bench-" + uuid.uuid4().hex,
            "AUDIT_HMAC_KEY": "bench-audit-key",
            "HMS_RELAY_IN_PROCESS": "false" if args.no_broker else "true",
            "SMS_GATEWAY_URL": "",
            "PYTHONUNBUFFERED": "1",
        }
        if not args.no_broker:
            from devtools.broker import Broker

            broker = Broker(log_path=tmp / "broker.log")
            broker.start()
            env["KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap_servers
        os.environ.update(env)

        from flask_migrate import upgrade

        from app import create_app
        from app.extensions import db

        app = create_app({"HMS_RELAY_IN_PROCESS": False})  # the bench process's seeding publishes nothing itself
        ctx = app.app_context()
        ctx.push()
        log.info("migrating %s (work files in %s)", DB_NAME, tmp)
        upgrade()
        if broker is not None:
            from app.events.kafka import create_topics

            create_topics(app.config)
        log.info("seeding: %d patients, %d doctors, %d appointments for the dashboard doctor", args.clients,
                 args.doctors, args.appointments)
        data = seed(args.clients, args.doctors, args.appointments)
        booking_doctors = data.doctors[:args.clients]
        race_doctor = data.doctors[args.clients]
        if any(len(data.slots[d]) < 500 for d in booking_doctors + [race_doctor]):
            raise BenchError("too few free slots were generated; check the clinic time zone and horizon")

        child_env = {**os.environ, **env}
        hms = Gunicorn("hms", "wsgi:app", child_env, args.workers, tmp)
        bare_env = {**child_env, "BARE_DATABASE": f"{DB_HOST}:{DB_PORT}/{DB_USER}/{DB_PASSWORD}/{DB_NAME}"}
        bare = Gunicorn("bare", "bench.booking:bare_app()", bare_env, args.workers, tmp)
        servers += [hms, bare]
        log.info("starting gunicorn: %s", " ".join(hms.command))
        hms.start("/login")
        bare.start(f"/bare?doctor={data.dashboard_doctor[0]}")

        mariadb_pid = find_pid("mariadbd", "mysqld")
        meter = CpuMeter({"HMS gunicorn": hms.pids, "bare gunicorn": bare.pids,
                          "tansu broker": [broker._process.pid] if broker is not None and broker._process else [],
                          "MariaDB (shared)": [mariadb_pid] if mariadb_pid else [], "bench process": [os.getpid()]})

        log.info("signing in %d patients and %d dashboard sessions", args.clients, args.dash_clients)
        patients = []
        for _, email in data.patients[:args.clients]:
            client = Client(hms.port, args.timeout)
            client.sign_in(email, "/patient/book")
            patients.append(client)
        doctors = []
        for _ in range(args.dash_clients):
            client = Client(hms.port, args.timeout)
            client.sign_in(data.dashboard_doctor[1], "/doctor/")
            doctors.append(client)
        bare_clients = [Client(bare.port, args.timeout) for _ in range(max(args.dash_clients, args.clients))]

        phases: dict[str, PhaseResult] = {}
        run = dict(duration=args.duration, warmup=args.warmup, meter=meter, hard_timeout=max(60.0, 2 * args.timeout))

        # 1. booking, each client its own doctor, walking its free slots in order.
        cursors = [0] * args.clients

        def book_own(i: int, client: Client, _round) -> tuple[str, float]:
            doctor_id = booking_doctors[i]
            slots = data.slots[doctor_id]
            start = slots[cursors[i] % len(slots)]
            cursors[i] += 1
            status, body, _, seconds = client.request("POST", "/patient/book", {
                "csrf_token": client.csrf, "department": data.department_id, "doctor": doctor_id,
                "start": start, "reason": "Benchmark visit"})
            return classify_booking(status, body), seconds

        log.info("phase: booking, %d clients, each its own doctor", args.clients)
        deadlocks = first_count = innodb_deadlocks()
        phases["distinct"] = run_phase(f"POST /patient/book, {args.clients} clients, own doctor each", patients,
                                       book_own, **run)

        # 2. booking, all clients race for the same slot, round after round.
        # Days far from the ones the first phase books (from tomorrow on), so patients never overlap themselves.
        race_slots = data.slots[race_doctor][len(data.slots[race_doctor]) // 2:]

        def book_same(i: int, client: Client, round_no: int) -> tuple[str, float]:
            start = race_slots[round_no % len(race_slots)]
            status, body, _, seconds = client.request("POST", "/patient/book", {
                "csrf_token": client.csrf, "department": data.department_id, "doctor": race_doctor,
                "start": start, "reason": "Benchmark race"})
            return classify_booking(status, body), seconds

        after = innodb_deadlocks()
        if deadlocks is not None and after is not None:
            phases["distinct"].notes.append(f"InnoDB deadlocks on the (shared) server during the phase, warm-up"
                                            f" included: {after - deadlocks}")
        deadlocks = after
        log.info("phase: booking race, %d clients, the same slot each round", args.clients)
        phases["race"] = run_phase(f"POST /patient/book, {args.clients} clients racing for the same slot", patients,
                                   book_same, barrier_rounds=True, **run)
        after = innodb_deadlocks()
        if deadlocks is not None and after is not None:
            phases["race"].notes.append(f"InnoDB deadlocks on the (shared) server during the phase, warm-up"
                                        f" included: {after - deadlocks}")
        # InnoDB keeps only the latest deadlock, from any time: shown only if there were some during the run.
        deadlock = latest_deadlock(tmp) if first_count is None or (after or 0) > first_count else None
        check = integrity([race_doctor])
        race = phases["race"]
        rounds = len(race.samples) / args.clients if race.samples else 0
        race.notes.append(
            f"about {rounds:.0f} recorded rounds; the race doctor has {check['active']} active appointments in all"
            f" (warm-up rounds included); double bookings in the whole database: {check['double_bookings']}")

        # 3. the dashboard, full page and the HTMX refresh.
        def dashboard(headers: dict | None):
            def step(i: int, client: Client, _round) -> tuple[str, float]:
                status, body, _, seconds = client.request("GET", "/doctor/", headers=headers)
                if status == 204 and headers and VERSION_HEADER in headers:
                    return "unchanged (204)", seconds
                return classify_page(status, body), seconds

            return step

        status, body, _, _ = doctors[0].request("GET", "/doctor/")
        shown = body.count(b"Bench Visitor")
        if status != 200 or shown < data.dashboard_appointments:
            raise BenchError(f"the dashboard does not show the {data.dashboard_appointments} appointments"
                             f" (status {status}, {shown} patient names)")
        _, fragment, _, _ = doctors[0].request("GET", "/doctor/", headers={"HX-Request": "true"})
        version = re.search(rb'data-version="([^"]+)"', body).group(1).decode()
        log.info("phase: dashboard, %d clients", args.dash_clients)
        phases["dashboard"] = run_phase(f"GET /doctor/ (full page), {args.dash_clients} clients", doctors,
                                        dashboard(None), **run)
        phases["dashboard"].notes.append(f"page {len(body):,} bytes with {shown} patient-name mentions"
                                         f" ({data.dashboard_appointments} appointments this week)")
        phases["dashboard_htmx"] = run_phase(f"GET /doctor/ with HX-Request, no version (the whole fragment),"
                                             f" {args.dash_clients} clients", doctors,
                                             dashboard({"HX-Request": "true"}), **run)
        phases["dashboard_htmx"].notes.append(f"fragment {len(fragment):,} bytes")
        phases["dashboard_poll"] = run_phase(
            f"GET /doctor/ as the 30 s refresh sends it (HX-Request + the page's {VERSION_HEADER}), schedule"
            f" unchanged, {args.dash_clients} clients", doctors,
            dashboard({"HX-Request": "true", VERSION_HEADER: version}), **run)

        # 4. the bare app, the same way.
        bare_path = f"/bare?doctor={data.dashboard_doctor[0]}"

        def bare_step(i: int, client: Client, _round) -> tuple[str, float]:
            status, body, _, seconds = client.request("GET", bare_path)
            return classify_page(status, body), seconds

        status, body, _, _ = bare_clients[0].request("GET", bare_path)
        if status != 200 or len(json.loads(body)) != min(50, data.dashboard_appointments):
            raise BenchError(f"the bare endpoint answered {status}: {body[:200]!r}")
        log.info("phase: bare app, %d and %d clients", args.dash_clients, args.clients)
        phases["bare"] = run_phase(f"bare Flask + PyMySQL, one indexed SELECT, {args.dash_clients} clients",
                                   bare_clients[:args.dash_clients], bare_step, **run)
        phases["bare16"] = run_phase(f"bare Flask + PyMySQL, one indexed SELECT, {args.clients} clients",
                                     bare_clients[:args.clients], bare_step, **run)

        final = integrity(data.doctors)
        notes = [f"after the run: {final['double_bookings']} double bookings; {final['events']}"
                 f" appointment.requested events in the outbox, {final['unpublished']} not yet published"
                 f" ({'no broker' if args.no_broker else 'the in-process relay publishes them'})",
                 "HTTP statuses in the gunicorn access logs (whole run, warm-ups and sign-ins included): HMS "
                 + ", ".join(f"{k} ×{v}" for k, v in sorted(hms.statuses().items())) + "; bare "
                 + ", ".join(f"{k} ×{v}" for k, v in sorted(bare.statuses().items()))]
        if deadlock:
            notes.append(f"InnoDB's latest deadlock was in {DB_NAME} (SHOW ENGINE INNODB STATUS, kept with the"
                         f" logs): {deadlock}")
        gunicorn_version = subprocess.run([hms.command[0], "--version"], capture_output=True, text=True,
                                          timeout=30).stdout.strip().split()[-1].strip("()")
        machine = machine_facts_line(database.url) + (", tansu broker in memory" if broker else "")
        facts = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine,
                 "gunicorn": gunicorn_version, "db": database.how, "notes": notes,
                 "relay": "no broker, HMS_RELAY_IN_PROCESS=false" if args.no_broker else
                          "a tansu broker; the web processes' in-process relay publishes each booking's event",
                 "seed": f"{args.clients} patients, {args.doctors} doctors open 08:00–18:00 every day in 15-minute"
                         f" slots, one more doctor with {data.dashboard_appointments} appointments this week"}
        print(report(args, command, phases, facts), flush=True)
        if args.json:
            args.json.write_text(json.dumps({key: r.as_dict() for key, r in phases.items()}, indent=2))
        failed = False
        return 0
    except BenchError as error:
        print(f"bench.booking: could not run: {error}", file=sys.stderr)
        return 1
    finally:
        signal.alarm(0)
        stop_all(servers, app, ctx)
        if broker is not None:
            broker.stop()
        if not args.keep_db:
            try:
                database.drop()
            except Exception as error:  # noqa: BLE001 - reported, the run's result stands
                print(f"bench.booking: could not drop {DB_NAME}: {error}", file=sys.stderr)
        if failed or args.keep_logs:
            print(f"bench.booking: logs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
