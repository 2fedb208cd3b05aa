"""Benchmark: the public API (`/api/v1`) over real HTTP under gunicorn, against the bare Flask app, and the cost of
a bearer token's check in process.

    .venv/bin/python -m bench.api [--clients 16] [--list-clients 8] [--duration 20] [--workers 2] [--no-broker]
                                  [--no-page] [--iterations 3000] [--profile PATH] [--keep-logs]

Self-contained, like bench/booking.py, whose seed and bare app it reuses: its own database (`hms_bench_api`,
dropped at the end), the migrations, the same seed (patients, doctors with weekly hours, one more doctor with 50
appointments this week), its own tansu broker unless --no-broker (the web processes' in-process relay publishes
each booking's event), then `wsgi:app` and `bench.api:bare_app()` under gunicorn with the Procfile's command.

The API's rate limits are put out of reach for the run (HMS_API_RATE_LIMIT_CLIENT and HMS_API_RATE_LIMIT_ADDRESS
= RATE_LIMIT below): every request still counts in its address and client buckets, as in production, but none is
refused. Access tokens are made as the authorization server makes them (see tests/api/tokens.py): one registered
client, a grant per person, an ES256 token with sub, aud, client_id, scope, sv and gid, signed with the configured
key. They are made anew before each phase, so none expires during a run (a token lives at most 10 minutes).
Load: threads of this process, `http.client`, a new connection per request (bench/web.py). Phases, each for
--duration seconds after a warm-up with the same load:

1. the list: --list-clients clients with the dashboard doctor's token (`user/Appointment.rs`) GET
   /api/v1/doctors/{id}/appointments?limit=50 (the 50 appointments with patient, doctor and department names);
   then, with as many clients, the bare app (`bare_app()` below): `/bare`, bench/booking.py's one indexed SELECT
   of the same doctor's 50 appointments (id and start), and `/floor`, the floor the aim is measured against:
   the same answer as the API's (its SELECT, its fields, its JSON), checked equal before the run;
2. booking: --clients patients (`patient/Appointment.cruds`) POST /api/v1/appointments (JSON), each for its own
   doctor, walking that doctor's free slots in order, first without, then with an `Idempotency-Key` (a new UUID
   per request); then, unless --no-page, the same patients signed in book through the page, POST /patient/book,
   as bench/booking.py's phase 1 does, continuing along the same slots;
3. in this process (an app context on the bench database, the servers idle): `app.oauth.keys.verify_access_token`
   (the signature and claims), the whole bearer check `app.oauth.bearer.authenticate` (with its database
   lookups, on a fresh session each time as a request's first query is), and, for scale, one rate-limit count
   (`app.api.ratelimit.count`, its own transaction), --iterations times each after a short warm-up; then the
   list request through the app without HTTP (Flask's test client), and with --profile, the same under cProfile:
   the statements of one request and the top functions, written to PATH.

It measures; it never fails because something is slow. Exit status 1: it could not run.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import pstats
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

from bench.booking import classify_booking, integrity, seed
from bench.common import (ROOT, BenchError, broker_pids, clean_up, cpu_meter, fmt, machine_facts_line,
                          own_database_options, percentile, push_app, ratio, run_date, start_run)
from bench.web import (Client, Gunicorn, PhaseResult, app_env, cpu_table, load_options, page_step, phase_table,
                       run_phase, start_servers, status_text, stop_all)

DB_NAME = "hms_bench_api"
# The floor of the list: the same rows, columns and JSON as the API's answer, by one statement (the API's own
# SELECT) on one autocommit connection, serialized by the standard library: what the answer costs at the least.
FLOOR_LIST = ("SELECT a.id, a.patient_id, a.doctor_id, a.department_id, a.starts_at, a.ends_at, a.status, a.reason,"
              " a.status_reason, d.full_name, dep.name, p.full_name FROM appointments a"
              " JOIN users p ON p.id = a.patient_id JOIN users d ON d.id = a.doctor_id"
              " JOIN departments dep ON dep.id = a.department_id"
              " WHERE a.doctor_id = %s ORDER BY a.starts_at, a.id LIMIT 51")
FLOOR_FIELDS = ("id", "patient_id", "doctor_id", "department_id", "starts_at", "ends_at", "status", "reason",
                "status_reason", "doctor_name", "department_name", "patient_name")
RATE_LIMIT = "1000000000/60"  # HMS_API_RATE_LIMIT_CLIENT and _ADDRESS for the run: counted, never reached
CLIENT_ID = "hms-bench"
DOCTOR_SCOPE = "user/Appointment.rs"
PATIENT_SCOPE = "patient/Appointment.cruds"

log = logging.getLogger("bench")


def bare_app():
    """The bare baseline (`bench.api:bare_app()`): Flask + PyMySQL and nothing else. `/bare` is bench/booking.py's
    one indexed SELECT (id and start of 50 appointments); `/floor` answers what the API's list answers."""
    from flask import Response, request

    from bench.booking import BARE_QUERY
    from bench.web import bare_flask

    app, fetch = bare_flask()

    def instant(value) -> str:
        return value.isoformat() + "Z"

    @app.get("/bare")
    def bare():
        rows = fetch(BARE_QUERY, (int(request.args["doctor"]),))
        return Response(json.dumps([[row_id, instant(starts_at)] for row_id, starts_at in rows]),
                        mimetype="application/json")

    @app.get("/floor")
    def floor():
        rows = fetch(FLOOR_LIST, (int(request.args["doctor"]),))
        items = [dict(zip(FLOOR_FIELDS, row)) for row in rows[:50]]
        for item in items:
            item["starts_at"], item["ends_at"] = instant(item["starts_at"]), instant(item["ends_at"])
        return Response(json.dumps({"items": items, "next_cursor": None if len(rows) <= 50 else "…"}),
                        mimetype="application/json")

    return app


# --- tokens, as the authorization server makes them -----------------------------------------------------------

def register_client(scopes: str = f"{DOCTOR_SCOPE} {PATIENT_SCOPE}") -> None:
    from app.extensions import db
    from app.oauth.models import ClientKind, OAuthClient

    db.session.add(OAuthClient(client_id=CLIENT_ID, name="HMS benchmark", kind=ClientKind.CONFIDENTIAL,
                               redirect_uris=["http://127.0.0.1/callback"],
                               grant_types=["authorization_code", "refresh_token"], allowed_scopes=scopes))
    db.session.commit()


def issue_tokens(user_ids: list[int], scope: str, audience: str | None = None) -> list[str]:
    """An access token for each user, each through a grant of its own to the benchmark's client, for `audience`
    (by default the API's)."""
    import sqlalchemy as sa

    from app.accounts.models import User
    from app.extensions import db
    from app.oauth.bearer import api_audience
    from app.oauth.keys import sign_access_token
    from app.oauth.models import OAuthClient, OAuthGrant

    client = db.session.scalar(sa.select(OAuthClient).filter_by(client_id=CLIENT_ID))
    tokens = []
    for user_id in user_ids:
        user = db.session.get(User, user_id)
        grant = OAuthGrant(client_pk=client.id, user_id=user.id, scope=scope)
        db.session.add(grant)
        db.session.flush()
        tokens.append(sign_access_token({"sub": str(user.id), "aud": audience or api_audience(), "client_id": CLIENT_ID,
                                         "scope": scope, "sv": user.session_version, "gid": grant.id}))
    db.session.commit()
    return tokens


def bearer(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


# --- outcomes -------------------------------------------------------------------------------------------

def classify_api_booking(status: int, body: bytes) -> str:
    if status == 201:
        return "booked"
    if status == 409:
        try:
            code = json.loads(body).get("code")
        except (ValueError, AttributeError):
            code = None
        return f"{code or 'conflict'} (409)"
    if status == 429:
        return "rate limited (429)"
    if status >= 500:
        return f"server error ({status})"
    return f"other ({status})"


# --- in process: the token check, timed -----------------------------------------------------------------

def timed(call, iterations: int, before=None, warmup: int = 50) -> list[float]:
    """Seconds of each of `iterations` calls of `call()` (after `warmup` untimed ones); `before()` runs untimed
    ahead of each call."""
    samples = []
    for n in range(warmup + iterations):
        if before is not None:
            before()
        started = time.perf_counter()
        call()
        elapsed = time.perf_counter() - started
        if n >= warmup:
            samples.append(elapsed)
    return samples


def micro_summary(samples: list[float]) -> dict:
    ms = [s * 1000 for s in samples]
    return {"n": len(ms), "mean": sum(ms) / len(ms), "p50": percentile(ms, 50), "p99": percentile(ms, 99),
            "max": max(ms)}


def token_costs(token: str, iterations: int) -> dict[str, dict]:
    from app.api import ratelimit
    from app.extensions import db
    from app.oauth import bearer as bearer_tokens
    from app.oauth.keys import verify_access_token

    audience = bearer_tokens.api_audience()
    header = f"Bearer {token}"
    out = {
        "verify_access_token (ES256 signature and claims)":
            micro_summary(timed(lambda: verify_access_token(token, audience=audience), iterations)),
        "bearer.authenticate (the above + user, client, jti and grant from the database; fresh session)":
            micro_summary(timed(lambda: bearer_tokens.authenticate(header, audience=audience), iterations,
                                before=db.session.remove)),
        "ratelimit.count, one bucket (for scale: a request counts two)":
            micro_summary(timed(lambda: ratelimit.count(("bench", "in-process", "HMS_API_RATE_LIMIT_CLIENT")),
                                iterations)),
    }
    db.session.remove()
    return out


def in_process_requests(app, path: str, token: str, n: int, profile_to: Path | None) -> tuple[float, float | None]:
    """Mean seconds of a GET request through the app without HTTP (Flask's test client), and with `profile_to`,
    the same again under cProfile, its statements and top functions written there: (mean seconds, statements a
    request, or None without `profile_to`). In a thread of its own, so each request has its own app context (and
    session), as under gunicorn."""
    import sqlalchemy as sa

    from app.extensions import db

    engine = db.engine
    result: dict = {}

    def run() -> None:
        client = app.test_client()
        headers = bearer(token)

        def one() -> None:
            answer = client.get(path, headers=headers)
            if answer.status_code != 200:
                raise BenchError(f"in process, GET {path} answered {answer.status_code}")

        timed(one, 0, warmup=20)
        result["mean"] = sum(timed(one, n)) / n
        if profile_to is not None:
            statements: Counter = Counter()

            def seen(conn, cursor, statement, *_):
                statements[" ".join(statement.split())[:300]] += 1

            sa.event.listen(engine, "before_cursor_execute", seen)
            profiler = cProfile.Profile()
            profiler.enable()
            try:
                for _ in range(n):
                    one()
            finally:
                profiler.disable()
                sa.event.remove(engine, "before_cursor_execute", seen)
            text = io.StringIO()
            text.write(f"{n} requests: GET {path}\n\n== statements per request ==\n")
            for statement, count in statements.most_common():
                text.write(f"{count / n:5.2f}  {statement}\n")
            stats = pstats.Stats(profiler, stream=text)
            text.write("\n== the app's own functions, by cumulative time ==\n")
            stats.sort_stats("cumulative").print_stats(str(ROOT / "app"), 40)
            text.write("\n== everything, by cumulative time ==\n")
            stats.sort_stats("cumulative").print_stats(45)
            text.write("\n== by own time ==\n")
            stats.sort_stats("tottime").print_stats(30)
            profile_to.write_text(text.getvalue())
            result["statements"] = sum(statements.values()) / n

    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            run()
        except BaseException as error:  # noqa: BLE001 - raised again below
            errors.append(error)

    thread = threading.Thread(target=guarded, name="in-process")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result["mean"], result.get("statements")


# --- the report -------------------------------------------------------------------------------------------

def report(args, command: str, phases: dict[str, PhaseResult], costs: dict[str, dict], in_process: float,
           facts: dict) -> str:
    lines = [
        f"Command: `{command}`",
        "",
        f"Run: {facts['date']}; machine: {facts['machine']}.",
        "",
        f"Settings: gunicorn {facts['gunicorn']} sync workers ×{args.workers} for each app (the Procfile's"
        f" command, access log to a file); {facts['relay']}; HMS_API_RATE_LIMIT_CLIENT and"
        f" HMS_API_RATE_LIMIT_ADDRESS = {RATE_LIMIT} (every request counted, none refused); {args.duration:g} s"
        f" per phase after {args.warmup:g} s of warm-up; database {facts['db']}; {facts['seed']}.",
        "",
        *phase_table(phases),
    ]
    rate = lambda key: phases[key].rate() if key in phases else None  # noqa: E731
    p95 = lambda key: phases[key].pct(95) if key in phases else None  # noqa: E731
    lines += [
        "",
        f"Ratios ({args.list_clients} clients each): API list req/s ÷ the floor's (the same answer) ="
        f" **{fmt(ratio(rate('list'), rate('floor')), 3)}** (aim ≥ 0.4); list p95 ÷ floor p95 ="
        f" {fmt(ratio(p95('list'), p95('floor')))}×; API list ÷ the bare one-SELECT endpoint (id and start only) ="
        f" {fmt(ratio(rate('list'), rate('bare')), 3)}; API booking with an Idempotency-Key ÷ without ="
        f" {fmt(ratio(rate('book_key'), rate('book')), 3)}; API booking ÷ page booking ({args.clients} clients"
        f" each) = {fmt(ratio(rate('book'), rate('page')), 3)}.",
        "",
        *cpu_table(phases),
    ]
    per_request = []
    for key, result in phases.items():
        server = result.cpu.get("bare gunicorn" if key in ("bare", "floor") else "HMS gunicorn")
        if server and result.rate():
            per_request.append(f"{key}: {server / result.rate() * 1000:.1f} ms")
    lines += [
        "", "Server CPU per request (gunicorn cores ÷ req/s): " + "; ".join(per_request) + ".",
        "",
        f"In process (this process, an app context on {DB_NAME}; {args.iterations:,} calls each after 50 untimed):",
        "",
        "| What | calls | mean ms | p50 ms | p99 ms | max ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, cost in costs.items():
        lines.append(f"| {name} | {cost['n']:,} | {fmt(cost['mean'], 3)} | {fmt(cost['p50'], 3)} |"
                     f" {fmt(cost['p99'], 3)} | {fmt(cost['max'], 3)} |")
    verify = next(iter(costs.values()))
    lines += [
        "",
        f"Token verification: mean **{fmt(verify['mean'], 3)} ms**, p99 {fmt(verify['p99'], 3)} ms (aim ≤ 0.3 ms)."
        f" The whole list request through the app without HTTP (Flask's test client, {args.requests} requests):"
        f" {in_process * 1000:.2f} ms each.",
    ]
    notes = [f"- {result.name}: {note}" for result in phases.values() for note in result.notes] + \
            [f"- {note}" for note in facts.get("notes", [])]
    if notes:
        lines += ["", "Notes:", "", *notes]
    return "\n".join(lines)


# --- main -------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16, help="booking clients (patients), default 16")
    parser.add_argument("--list-clients", type=int, default=8, help="list and bare clients, default 8")
    parser.add_argument("--doctors", type=int, default=40, help="doctors with weekly hours, default 40")
    load_options(parser)
    parser.add_argument("--no-broker", action="store_true",
                        help="no Kafka broker: HMS_RELAY_IN_PROCESS=false, events stay in the outbox")
    parser.add_argument("--no-page", action="store_true", help="leave out the page booking phase")
    parser.add_argument("--iterations", type=int, default=3000, help="calls of each in-process timing, default 3000")
    parser.add_argument("--requests", type=int, default=300, help="in-process list requests, default 300")
    parser.add_argument("--profile", type=Path, metavar="PATH", help="profile the in-process list requests (cProfile)"
                        " and write the top functions here")
    own_database_options(parser, DB_NAME, "gunicorn and broker logs")
    args = parser.parse_args(argv)
    if args.doctors < args.clients:
        parser.error("--doctors must be at least --clients")
    if args.warmup + args.duration > 480:
        parser.error("a phase must fit in an access token's life: --warmup + --duration ≤ 480 s")
    started = start_run("bench.api", argv, args, DB_NAME)
    if started is None:
        return 1
    command, tmp, database = started.command, started.tmp, started.database
    broker = None
    servers: list[Gunicorn] = []
    app = ctx = None
    failed = True
    try:
        database.create()
        env = {**app_env(database.url, relay=not args.no_broker),
               "HMS_API_RATE_LIMIT_CLIENT": RATE_LIMIT, "HMS_API_RATE_LIMIT_ADDRESS": RATE_LIMIT}
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
        log.info("seeding: %d patients, %d doctors, 50 appointments for the listed doctor", args.clients,
                 args.doctors)
        data = seed(args.clients, args.doctors, 50)
        register_client()
        booking_doctors = data.doctors[:args.clients]
        patient_ids = [patient_id for patient_id, _ in data.patients[:args.clients]]
        if any(len(data.slots[d]) < 500 for d in booking_doctors):
            raise BenchError("too few free slots were generated; check the clinic time zone and horizon")

        doctor_id = data.dashboard_doctor[0]
        bare_path = f"/bare?doctor={doctor_id}"
        list_path = f"/api/v1/doctors/{doctor_id}/appointments?limit=50"
        floor_path = f"/floor?doctor={doctor_id}"
        hms, bare = start_servers(env, "bench.api:bare_app()", DB_NAME, args.workers, tmp, bare_path, servers)
        meter = cpu_meter({"HMS gunicorn": hms.pids, "bare gunicorn": bare.pids, "tansu broker": broker_pids(broker)})

        phases: dict[str, PhaseResult] = {}
        run = dict(duration=args.duration, warmup=args.warmup, meter=meter, hard_timeout=max(60.0, 2 * args.timeout))

        # 1. the doctor's 50 appointments: through the API, then the bare floor.
        list_clients = [Client(hms.port, args.timeout) for _ in range(args.list_clients)]
        bare_clients = [Client(bare.port, args.timeout) for _ in range(args.list_clients)]
        doctor_token = issue_tokens([doctor_id], DOCTOR_SCOPE)[0]
        status, body, headers, _ = list_clients[0].request("GET", list_path, headers=bearer(doctor_token))
        listed = json.loads(body).get("items", []) if status == 200 else []
        if len(listed) != 50:
            raise BenchError(f"GET {list_path} answered {status} with {len(listed)} items: {body[:300]!r}")
        list_bytes, rate_headers = len(body), headers.get("RateLimit-Policy")
        status, body, _, _ = bare_clients[0].request("GET", bare_path)
        if status != 200 or len(json.loads(body)) != 50:
            raise BenchError(f"the bare endpoint answered {status}: {body[:200]!r}")
        bare_bytes = len(body)
        status, body, _, _ = bare_clients[0].request("GET", floor_path)
        floor_items = json.loads(body).get("items", []) if status == 200 else []
        if [sorted(item) for item in floor_items] != [sorted(item) for item in listed]:
            raise BenchError(f"the floor endpoint does not answer what the API does: {body[:300]!r}")
        floor_bytes = len(body)
        log.info("phase: API list, %d clients", args.list_clients)
        phases["list"] = run_phase(f"GET {list_path.replace(str(doctor_id), '{id}')}, doctor's token,"
                                   f" {args.list_clients} clients", list_clients,
                                   page_step(list_path, bearer(doctor_token)), **run)
        phases["list"].notes.append(f"{list_bytes:,} bytes of JSON (50 items); RateLimit-Policy: {rate_headers}")
        log.info("phase: bare app, %d clients", args.list_clients)
        phases["bare"] = run_phase(f"bare Flask + PyMySQL, the same doctor's 50 appointments (one indexed SELECT),"
                                   f" {args.list_clients} clients", bare_clients, page_step(bare_path), **run)
        phases["bare"].notes.append(f"{bare_bytes:,} bytes of JSON (id and start of each)")
        log.info("phase: the floor of the list, %d clients", args.list_clients)
        phases["floor"] = run_phase(f"bare Flask + PyMySQL, the same answer as the API's list (its SELECT, the same"
                                    f" JSON), {args.list_clients} clients", bare_clients, page_step(floor_path), **run)
        phases["floor"].notes.append(f"{floor_bytes:,} bytes of JSON (the API's items and fields)")

        # 2. booking: each client its own doctor, walking its free slots in order (through all three phases).
        cursors = [0] * args.clients

        def next_slot(i: int) -> tuple[int, str]:
            slots = data.slots[booking_doctors[i]]
            start = slots[cursors[i] % len(slots)]
            cursors[i] += 1
            return booking_doctors[i], start

        def book_api(tokens: list[str], with_key: bool):
            def step(i: int, client: Client, _round) -> tuple[str, float]:
                doctor, start = next_slot(i)
                headers = bearer(tokens[i], **({"Idempotency-Key": str(uuid.uuid4())} if with_key else {}))
                status, body, _, seconds = client.request("POST", "/api/v1/appointments", headers=headers, json_body={
                    "doctor_id": doctor, "department_id": data.department_id, "starts_at": start,
                    "reason": "Benchmark visit"})
                return classify_api_booking(status, body), seconds

            return step

        api_patients = [Client(hms.port, args.timeout) for _ in range(args.clients)]
        log.info("phase: API booking, %d clients, each its own doctor", args.clients)
        phases["book"] = run_phase(f"POST /api/v1/appointments, {args.clients} clients, own doctor each", api_patients,
                                   book_api(issue_tokens(patient_ids, PATIENT_SCOPE), False), **run)
        log.info("phase: API booking with Idempotency-Key, %d clients", args.clients)
        phases["book_key"] = run_phase(f"POST /api/v1/appointments with an Idempotency-Key (new each), {args.clients}"
                                       f" clients, own doctor each", api_patients,
                                       book_api(issue_tokens(patient_ids, PATIENT_SCOPE), True), **run)
        if not args.no_page:
            log.info("signing in %d patients for the page", args.clients)
            page_patients = [Client.signed_in(hms.port, args.timeout, email, "/patient/book")
                             for _, email in data.patients[:args.clients]]

            def book_page(i: int, client: Client, _round) -> tuple[str, float]:
                doctor, start = next_slot(i)
                status, body, _, seconds = client.request("POST", "/patient/book", {
                    "csrf_token": client.csrf, "department": data.department_id, "doctor": doctor, "start": start,
                    "reason": "Benchmark visit"})
                return classify_booking(status, body), seconds

            log.info("phase: page booking, %d clients", args.clients)
            phases["page"] = run_phase(f"POST /patient/book (the page, for comparison), {args.clients} clients, own"
                                       f" doctor each", page_patients, book_page, **run)

        # 3. in process: the token check, a rate-limit count, the list request without HTTP.
        log.info("in process: %d calls each of the token check", args.iterations)
        token = issue_tokens([doctor_id], DOCTOR_SCOPE)[0]
        costs = token_costs(token, args.iterations)
        log.info("in process: %d list requests%s", args.requests,
                 " (and as many under cProfile)" if args.profile else "")
        in_process, _ = in_process_requests(app, list_path, token, args.requests, args.profile)

        final = integrity(data.doctors)
        notes = [f"after the run: {final['double_bookings']} double bookings; {final['events']}"
                 f" appointment.requested events in the outbox, {final['unpublished']} not yet published"
                 f" ({'no broker' if args.no_broker else 'the in-process relay publishes them'})",
                 "HTTP statuses in the gunicorn access logs (whole run, warm-ups and sign-ins included): HMS "
                 + status_text(hms.statuses()) + "; bare " + status_text(bare.statuses())]
        if args.profile:
            notes.append(f"cProfile of {args.requests} in-process list requests: {args.profile}")
        machine = machine_facts_line(database.url) + (", tansu broker in memory" if broker else "")
        facts = {"date": run_date(), "machine": machine, "gunicorn": hms.version(), "db": database.how, "notes": notes,
                 "relay": "no broker, HMS_RELAY_IN_PROCESS=false" if args.no_broker else
                          "a tansu broker; the web processes' in-process relay publishes each booking's event",
                 "seed": f"{args.clients} patients, {args.doctors} doctors open 08:00–18:00 every day in 15-minute"
                         f" slots, one more doctor with 50 appointments this week"}
        print(report(args, command, phases, costs, in_process, facts), flush=True)
        if args.json:
            args.json.write_text(json.dumps({"phases": {key: r.as_dict() for key, r in phases.items()},
                                             "in_process": {**costs, "list request": in_process * 1000}}, indent=2))
        failed = False
        return 0
    except BenchError as error:
        print(f"bench.api: could not run: {error}", file=sys.stderr)
        return 1
    finally:
        signal.alarm(0)
        stop_all(servers, app, ctx)
        if broker is not None:
            broker.stop()
        clean_up("bench.api", database, args.keep_db, tmp, failed or args.keep_logs)


if __name__ == "__main__":
    sys.exit(main())
