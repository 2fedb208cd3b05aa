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
import json
import logging
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import date, datetime, time as clock, timedelta, timezone
from pathlib import Path

from app.doctors.appointments import VERSION_HEADER
from bench.common import (BenchError, broker_pids, clean_up, cpu_meter, fmt, machine_facts_line, own_database_options,
                          push_app, ratio, run_date, start_run)
from bench.web import (PASSWORD, Client, Gunicorn, PhaseResult, app_env, bare_flask, classify_page, cpu_table,
                       load_options, page_step, phase_table, run_phase, start_servers, status_text, stop_all)

DB_NAME = "hms_bench_booking"
BARE_QUERY = "SELECT id, starts_at FROM appointments WHERE doctor_id=%s ORDER BY starts_at LIMIT 50"

log = logging.getLogger("bench")


# --- the bare baseline app (served by gunicorn as `bench.booking:bare_app()`) -----------------------------

def bare_app():
    """Flask + PyMySQL and nothing else: one connection per worker process, one indexed SELECT per request."""
    from flask import jsonify, request

    app, fetch = bare_flask()

    @app.get("/bare")
    def bare():
        rows = fetch(BARE_QUERY, (int(request.args["doctor"]),))
        return jsonify([[row_id, starts_at.isoformat()] for row_id, starts_at in rows])

    return app


# --- outcomes -------------------------------------------------------------------------------------------

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
        *phase_table(phases),
    ]
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
        *cpu_table(phases),
    ]
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
    load_options(parser)
    parser.add_argument("--no-broker", action="store_true",
                        help="no Kafka broker: HMS_RELAY_IN_PROCESS=false, events stay in the outbox")
    own_database_options(parser, DB_NAME, "gunicorn and broker logs")
    args = parser.parse_args(argv)
    if args.doctors < args.clients + 1:
        parser.error("--doctors must be at least --clients + 1")
    started = start_run("bench.booking", argv, args, DB_NAME)
    if started is None:
        return 1
    command, tmp, database = started.command, started.tmp, started.database
    broker = None
    servers: list[Gunicorn] = []
    app = ctx = None
    failed = True
    try:
        database.create()
        env = app_env(database.url, relay=not args.no_broker)
        if not args.no_broker:
            from devtools.broker import Broker

            broker = Broker(log_path=tmp / "broker.log")
            broker.start()
            env["KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap_servers
        app, ctx = push_app(env, relay=False)  # the bench process's seeding publishes nothing itself
        from flask_migrate import upgrade

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

        bare_path = f"/bare?doctor={data.dashboard_doctor[0]}"
        hms, bare = start_servers(env, "bench.booking:bare_app()", DB_NAME, args.workers, tmp, bare_path, servers)
        meter = cpu_meter({"HMS gunicorn": hms.pids, "bare gunicorn": bare.pids, "tansu broker": broker_pids(broker)})

        log.info("signing in %d patients and %d dashboard sessions", args.clients, args.dash_clients)
        patients = [Client.signed_in(hms.port, args.timeout, email, "/patient/book")
                    for _, email in data.patients[:args.clients]]
        doctors = [Client.signed_in(hms.port, args.timeout, data.dashboard_doctor[1], "/doctor/")
                   for _ in range(args.dash_clients)]
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
        bare_step = page_step(bare_path)
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
                 + status_text(hms.statuses()) + "; bare " + status_text(bare.statuses())]
        if deadlock:
            notes.append(f"InnoDB's latest deadlock was in {DB_NAME} (SHOW ENGINE INNODB STATUS, kept with the"
                         f" logs): {deadlock}")
        machine = machine_facts_line(database.url) + (", tansu broker in memory" if broker else "")
        facts = {"date": run_date(), "machine": machine, "gunicorn": hms.version(), "db": database.how, "notes": notes,
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
        clean_up("bench.booking", database, args.keep_db, tmp, failed or args.keep_logs)


if __name__ == "__main__":
    sys.exit(main())
