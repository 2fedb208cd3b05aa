"""Benchmark: billing reports and the clerk's invoice list on 100,000 invoices, over HTTP under gunicorn,
side by side with a bare Flask + PyMySQL app.

    .venv/bin/python -m bench.billing [--invoices 100000] [--clients 8] [--duration 10] [--workers 2]
                                      [--database bill_bench] [--reuse] [--json PATH]

It empties the database `--database` (default `bill_bench`, which must exist with ALL granted to `hms`:
`mysql -uroot -e "CREATE DATABASE bill_bench; GRANT ALL ON bill_bench.* TO 'hms'@'127.0.0.1'"`), runs the
migrations, and fills it in SQL (INSERT … SELECT over MariaDB's `seq_1_to_N` sequence tables, a few seconds):
6 departments, 30 doctors, 5,000 patients, N invoices issued over the last 730 days (4 % drafts, 2 % void;
older invoices mostly paid, recent ones often open), one line each, a payment for every invoice with money
received (cash / card / bank transfer), a recorded refund on 1 in 7 partially paid invoices without a claim, and a claim
on 1 in 5 billed invoices (submitted, approved, partially approved, denied or paid). `--reuse` keeps the
data of a previous run. No broker: HMS_RELAY_IN_PROCESS=false (no page here emits events).

Then it explains and times every report's SQL statements (EXPLAIN: the index each uses, the rows it reads),
serves the real app (`wsgi:app`) and the bare app (below) with the Procfile's gunicorn command, and loads
each with --clients signed-in clerk sessions (threads, one `http.client` connection per request, as in
bench/booking.py): every report page with its default range, the by-day report over two years, each report's
CSV, the invoice list (first page, and filtered by status and a date range), and the bare app's two
endpoints: the same one indexed SELECT as bench/booking.py's baseline (50 invoices by an index), and the
revenue-by-month GROUP BY over a year, answered as JSON. It measures; it never fails because something is
slow. Exit status 1: it could not run.
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import signal
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa

from bench.common import (BenchError, begin_run, cpu_meter, database_url, fmt, machine_facts_line, push_app, ratio,
                          run_date)
from bench.web import (PASSWORD, Client, Gunicorn, PhaseResult, app_env, bare_flask, page_step, run_phase,
                       start_servers, status_text, stop_all)

log = logging.getLogger("bench")
CLERK_EMAIL = "bench.clerk@example.com"
ADMIN_EMAIL = "bench.admin@example.com"
BARE_LIST = ("SELECT id, number, total, balance, issued_on FROM invoices WHERE status = 'issued'"
             " ORDER BY issued_on DESC LIMIT 50")
BARE_REPORT = ("SELECT DATE_FORMAT(issued_on, '%%Y-%%m') AS month, COUNT(*), SUM(total) FROM invoices"
               " WHERE status IN ('issued', 'partially_paid', 'paid') AND issued_on BETWEEN %s AND %s"
               " GROUP BY DATE_FORMAT(issued_on, '%%Y-%%m')")
PATIENT_BASE, DOCTOR_BASE = 100_000, 900_000


# --- the bare baseline app (served by gunicorn as `bench.billing:bare_app()`) -----------------------------

def bare_app():
    """Flask + PyMySQL and nothing else: one connection per worker process, one statement per request."""
    from flask import jsonify

    app, fetch = bare_flask()

    @app.get("/bare")
    def bare():
        rows = fetch(BARE_LIST)
        return jsonify([[i, n, str(t), str(b), d.isoformat()] for i, n, t, b, d in rows])

    @app.get("/bare-report")
    def bare_report():
        today = date.today()
        rows = fetch(BARE_REPORT, (today - timedelta(days=364), today))
        return jsonify([[m, n, str(t)] for m, n, t in rows])

    return app


# --- the data, in SQL ---------------------------------------------------------------------------------------

def _sequence(conn, n: int) -> str:
    name = f"seq_1_to_{n}"
    conn.exec_driver_sql(f"SELECT COUNT(*) FROM {name}")  # the SEQUENCE engine answers any such name
    return name


def fill(engine: sa.Engine, invoices: int, today: date, password_hash: str) -> dict:
    """Everything in a few INSERT … SELECT statements; returns counts."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    with engine.begin() as conn:
        conn.exec_driver_sql("SET SESSION foreign_key_checks = 0, unique_checks = 0")
        seq = _sequence(conn, invoices)
        # Staff: a clerk and an admin who sign in.
        conn.execute(sa.text(
            "INSERT INTO users (id, email, password_hash, role, full_name, phone, active, session_version, created_at,"
            " updated_at) VALUES (1, :clerk, :hash, 'clerk', 'Bench Clerk', '+12025550100', 1, 1, :now, :now),"
            " (2, :admin, :hash, 'admin', 'Bench Admin', '+12025550100', 1, 1, :now, :now)"),
            {"clerk": CLERK_EMAIL, "admin": ADMIN_EMAIL, "hash": password_hash, "now": now})
        conn.execute(sa.text(
            "INSERT INTO departments (id, name, description, active, created_at) SELECT seq, ELT(seq, 'Cardiology',"
            " 'General Practice', 'Pediatrics', 'Dermatology', 'Orthopedics', 'Neurology'), NULL, 1, :now"
            " FROM seq_1_to_6"), {"now": now})
        conn.execute(sa.text(
            f"INSERT INTO users (id, email, password_hash, role, full_name, phone, active, session_version,"
            f" created_at, updated_at) SELECT {DOCTOR_BASE} + seq, CONCAT('bench.doctor', seq, '@example.com'), NULL,"
            f" 'doctor', CONCAT('Dr Bench ', LPAD(seq, 2, '0')), '+12025550100', 1, 1, :now, :now FROM seq_1_to_30"),
            {"now": now})
        conn.exec_driver_sql(
            f"INSERT INTO doctor_profiles (user_id, specialty, licence_number, consultation_fee, bio)"
            f" SELECT {DOCTOR_BASE} + seq, 'General practitioner', CONCAT('BENCH-', seq), 100, NULL FROM seq_1_to_30")
        conn.execute(sa.text(f"INSERT INTO doctor_departments (doctor_id, department_id)"
                             f" SELECT {DOCTOR_BASE} + seq, 1 + seq % 6 FROM seq_1_to_30"))
        conn.execute(sa.text(
            f"INSERT INTO users (id, email, password_hash, role, full_name, phone, active, session_version,"
            f" created_at, updated_at) SELECT {PATIENT_BASE} + seq, CONCAT('bench.patient', seq, '@example.com'),"
            f" NULL, 'patient', CONCAT('Patient ', LPAD(seq, 4, '0')), '+12025550123', 1, 1, :now, :now"
            f" FROM seq_1_to_5000"), {"now": now})
        conn.exec_driver_sql(
            f"INSERT INTO patient_profiles (user_id, date_of_birth, sex, address, emergency_contact_name,"
            f" emergency_contact_phone, notify_email, notify_sms) SELECT {PATIENT_BASE} + seq,"
            f" '1980-01-02' + INTERVAL seq DAY, 'unknown', '1 Bench Road', 'Sam Contact', '+12025550199', 1, 0"
            f" FROM seq_1_to_5000")

        # The plan: one row per invoice with its day, price, status and how it was paid.
        conn.exec_driver_sql("DROP TABLE IF EXISTS bench_plan")
        conn.execute(sa.text(
            "CREATE TABLE bench_plan ENGINE=InnoDB AS SELECT n, d, price, st, claim,"
            " CASE WHEN st = 'paid' AND claim THEN price - ROUND(price * 0.6, 2)"
            "      WHEN st = 'paid' THEN price"
            "      WHEN st = 'partially_paid' AND claim THEN ROUND(price * 0.3, 2)"
            "      WHEN st = 'partially_paid' THEN ROUND(price / 2, 2) ELSE 0 END AS patient_paid,"
            " CASE WHEN st = 'paid' AND claim THEN ROUND(price * 0.6, 2) ELSE 0 END AS insurer_paid,"
            " (st = 'partially_paid' AND NOT claim AND n % 7 = 0) AS refunded"
            " FROM (SELECT seq AS n, :today - INTERVAL (seq * 7919 % 730) DAY AS d,"
            "       CAST(50 + seq * 37 % 250 + (seq % 4) * 0.25 AS DECIMAL(12, 2)) AS price,"
            "       CASE WHEN seq * 13 % 100 < 4 THEN 'draft' WHEN seq * 13 % 100 < 6 THEN 'void'"
            "            WHEN seq * 13 % 100 < 60 THEN 'paid'"
            "            WHEN seq * 7919 % 730 > 120 AND seq * 13 % 100 < 95 THEN 'paid'"
            "            WHEN seq * 13 % 100 < 80 THEN 'partially_paid' ELSE 'issued' END AS st,"
            "       seq % 5 = 0 AS claim"
            f"      FROM {seq}) x"), {"today": today})
        conn.exec_driver_sql("UPDATE bench_plan SET claim = 0 WHERE st IN ('draft', 'void')")
        conn.exec_driver_sql("ALTER TABLE bench_plan ADD PRIMARY KEY (n)")

        conn.execute(sa.text(
            "INSERT INTO invoices (id, number, patient_id, appointment_id, live, doctor_id, department_id, status,"
            " subtotal, discount, tax_rate, tax, total, patient_paid, insurer_paid, balance, created_by_id,"
            " created_at, updated_at, issued_at, issued_on, due_on, paid_at, voided_at, void_reason)"
            " SELECT n, IF(st = 'draft', NULL, CONCAT('INV-', YEAR(d), '-', LPAD(n, 6, '0'))),"
            f" {PATIENT_BASE} + 1 + n % 5000,"
            f" NULL, IF(st = 'void', NULL, 1), {DOCTOR_BASE} + 1 + n % 30, 1 + (1 + n % 30) % 6, st,"
            " price, 0, 0, 0, price, patient_paid, insurer_paid, price - patient_paid - insurer_paid, 1,"
            " TIMESTAMP(d, '14:00:00'), TIMESTAMP(d, '15:00:00'), IF(st = 'draft', NULL, TIMESTAMP(d, '15:00:00')),"
            " IF(st = 'draft', NULL, d), IF(st = 'draft', NULL, d + INTERVAL 30 DAY),"
            " IF(st = 'paid', TIMESTAMP(LEAST(:today, d + INTERVAL 25 DAY), '16:00:00'), NULL),"
            " IF(st = 'void', TIMESTAMP(d, '16:00:00'), NULL), IF(st = 'void', 'Billed twice', NULL)"
            " FROM bench_plan"), {"today": today})
        conn.exec_driver_sql(
            "INSERT INTO invoice_lines (invoice_id, price_item_id, description, quantity, unit_price, line_total)"
            " SELECT n, NULL, 'Consultation', 1, price, price FROM bench_plan")
        conn.execute(sa.text(
            "INSERT INTO payments (id, invoice_id, amount, method, reference, paid_on, idempotency_key,"
            " recorded_by_id, created_at)"
            " SELECT n, n, patient_paid + IF(refunded, 5, 0),"
            " CASE WHEN n % 10 < 3 THEN 'cash' WHEN n % 10 < 8 THEN 'card' ELSE 'bank_transfer' END, NULL,"
            " LEAST(:today, d + INTERVAL (n % 20) DAY), CONCAT('bench-', n), 1, TIMESTAMP(d, '16:00:00')"
            " FROM bench_plan WHERE patient_paid > 0"), {"today": today})
        conn.execute(sa.text(
            "INSERT INTO refunds (invoice_id, payment_id, amount, reason, status, requested_by_id, requested_at,"
            " decided_by_id, decided_at, recorded_by_id, recorded_at, recorded_on, reference)"
            " SELECT n, n, 5, 'Overcharged', 'recorded', 1, TIMESTAMP(d, '17:00:00'), 2, TIMESTAMP(d, '18:00:00'),"
            " 1, TIMESTAMP(d, '19:00:00'), LEAST(:today, d + INTERVAL (n % 20) DAY), NULL"
            " FROM bench_plan WHERE refunded"), {"today": today})
        conn.execute(sa.text(
            "INSERT INTO claims (invoice_id, payer, policy_number, claimed_amount, approved_amount, paid_amount,"
            " status,"
            " payer_reference, reason_code, submitted_by_id, submitted_at, decided_at, paid_at, paid_on)"
            " SELECT n, ELT(1 + n % 3, 'Acme Health', 'Blue Shield', 'Mutual Care'), CONCAT('POL-', n), c,"
            " CASE cs WHEN 'submitted' THEN NULL WHEN 'denied' THEN 0 WHEN 'partially_approved' THEN ROUND(c / 2, 2)"
            "         ELSE c END,"
            " IF(cs = 'paid', c, 0), cs, IF(cs = 'submitted', NULL, CONCAT('REF-', n)),"
            " CASE cs WHEN 'denied' THEN 'CO-50' WHEN 'partially_approved' THEN 'CO-45' ELSE NULL END, 1,"
            " TIMESTAMP(d + INTERVAL 1 DAY, '15:00:00'),"
            " IF(cs = 'submitted', NULL, TIMESTAMP(d + INTERVAL 10 DAY, '15:00:00')),"
            " IF(cs = 'paid', TIMESTAMP(LEAST(:today, d + INTERVAL 25 DAY), '15:00:00'), NULL),"
            " IF(cs = 'paid', LEAST(:today, d + INTERVAL 25 DAY), NULL)"
            " FROM (SELECT n, d, ROUND(price * 0.6, 2) AS c,"
            "       CASE WHEN st = 'paid' THEN 'paid' WHEN st = 'partially_paid' AND n % 10 = 0 THEN 'approved'"
            "            WHEN st = 'partially_paid' THEN 'partially_approved' WHEN n % 10 = 0 THEN 'submitted'"
            "            ELSE 'denied' END AS cs"
            "       FROM bench_plan WHERE claim) x"), {"today": today})
        conn.exec_driver_sql(
            "INSERT INTO invoice_counters (year, last_number) SELECT DISTINCT YEAR(d), 999999 FROM bench_plan")
        conn.exec_driver_sql("DROP TABLE bench_plan")
        conn.exec_driver_sql("SET SESSION foreign_key_checks = 1, unique_checks = 1")
    with engine.begin() as conn:
        counts = {table: conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar()
                  for table in ("invoices", "invoice_lines", "payments", "refunds", "claims", "users")}
        counts["by_status"] = dict(conn.exec_driver_sql(
            "SELECT status, COUNT(*) FROM invoices GROUP BY status").all())
        counts["bad_balances"] = conn.exec_driver_sql(
            "SELECT COUNT(*) FROM invoices WHERE total <> subtotal - discount + tax"
            " OR balance <> total - patient_paid - insurer_paid OR balance < 0").scalar()
        for table in ("invoices", "payments", "refunds", "claims", "invoice_lines"):
            conn.exec_driver_sql(f"ANALYZE TABLE {table}").all()
    return counts


# --- what the reports' SQL does on this data ---------------------------------------------------------------

def explain_reports(app) -> list[dict]:
    """Each report's statements with the default range: EXPLAIN (table, index, rows) and the time it takes."""
    from app.billing.reports import REPORTS, default_period
    from app.extensions import db

    out = []
    with app.test_request_context():
        engine = db.engine
        for report in REPORTS.values():
            statements: list[str] = []

            def record(conn, cursor, statement, parameters, context, executemany):
                statements.append(cursor.mogrify(statement, parameters) if parameters else statement)

            sa.event.listen(engine, "before_cursor_execute", record)
            try:
                started = time.perf_counter()
                report.build(default_period(report))
                total_ms = (time.perf_counter() - started) * 1000
            finally:
                sa.event.remove(engine, "before_cursor_execute", record)
            plans = []
            with engine.connect() as conn:
                for statement in statements:
                    rows = conn.exec_driver_sql("EXPLAIN " + statement.replace("%", "%%")).mappings().all()
                    plans.append([f"{r['table']}: {r['type']} via {r['key'] or 'no index'} ({r['rows']} rows"
                                  f"{', ' + r['Extra'] if r['Extra'] else ''})" for r in rows])
            out.append({"report": report.key, "statements": len(statements), "build_ms": total_ms, "plans": plans})
    return out


# --- main --------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.billing", description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=100_000, help="invoices to create, default 100000")
    parser.add_argument("--clients", type=int, default=8,
                        help="concurrent clerk sessions (and bare clients), default 8")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds recorded per phase, default 10")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per phase, default 2")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per app, default 2")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-request socket timeout, default 30 s")
    parser.add_argument("--database", default="bill_bench", help="the database to fill (emptied first)")
    parser.add_argument("--reuse", action="store_true", help="keep the data of a previous run")
    parser.add_argument("--only", nargs="*", help="run only the phases whose names contain one of these words")
    parser.add_argument("--max-seconds", type=int, default=1500, help="abort the whole run after this, default 1500")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    if args.database in {"hms", "hms_test"} or args.database.endswith("_test"):
        parser.error(f"refusing to empty {args.database!r}")
    command = begin_run("bench.billing", argv, args.max_seconds)
    tmp = Path(tempfile.mkdtemp(prefix="hms-bench-billing-"))
    url = database_url(args.database)
    servers: list[Gunicorn] = []
    app = ctx = None
    try:
        env = app_env(url, relay=False)
        app, ctx = push_app(env, relay=False)
        from flask_migrate import upgrade

        from app.accounts.passwords import hash_password
        from app.extensions import db
        from app.timeutil import clinic_today

        engine = db.engine
        seed_seconds = None
        if not args.reuse:
            with engine.begin() as conn:
                try:
                    conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{args.database}`")
                    conn.exec_driver_sql(f"CREATE DATABASE `{args.database}` CHARACTER SET utf8mb4"
                                         f" COLLATE utf8mb4_unicode_ci")
                except sa.exc.DBAPIError as error:
                    raise BenchError(f"cannot recreate {args.database}: {error.orig}") from None
            db.session.remove()
            engine.dispose()
            log.info("migrating %s", args.database)
            upgrade()
            log.info("filling %s with %d invoices", args.database, args.invoices)
            started = time.perf_counter()
            counts = fill(engine, args.invoices, clinic_today(), hash_password(PASSWORD))
            seed_seconds = time.perf_counter() - started
        else:
            with engine.connect() as conn:
                counts = {table: conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar()
                          for table in ("invoices", "invoice_lines", "payments", "refunds", "claims", "users")}
        log.info("data: %s", counts)
        if counts.get("bad_balances"):
            raise BenchError(f"{counts['bad_balances']} invoices break total/balance rules: the fill is wrong")

        explained = explain_reports(app)

        hms, bare = start_servers(env, "bench.billing:bare_app()", args.database, args.workers, tmp, "/bare", servers)
        meter = cpu_meter({"HMS gunicorn": hms.pids, "bare gunicorn": bare.pids})
        clerks = [Client.signed_in(hms.port, args.timeout, CLERK_EMAIL, "/billing/") for _ in range(args.clients)]
        bare_clients = [Client(bare.port, args.timeout) for _ in range(args.clients)]

        from app.billing.reports import REPORTS

        today = clinic_today()
        two_years = f"start={(today - timedelta(days=729)).isoformat()}&end={today.isoformat()}"
        paths: list[tuple[str, str, list[Client]]] = []
        for key in REPORTS:
            paths.append((key, f"/billing/reports/{key}", clerks))
        paths.append(("revenue-by-day-2y", f"/billing/reports/revenue-by-day?{two_years}", clerks))
        paths.append(("revenue-by-month-csv", "/billing/reports/revenue-by-month.csv", clerks))
        paths.append(("claims-by-status-csv", "/billing/reports/claims-by-status.csv", clerks))
        paths.append(("invoices", "/billing/invoices", clerks))
        paths.append(("invoices-filtered", f"/billing/invoices?status=partially_paid&date_from="
                      f"{(today - timedelta(days=90)).isoformat()}&date_to={today.isoformat()}", clerks))
        paths.append(("invoices-htmx-page-5", "/billing/invoices?page=5", clerks))
        paths.append(("bare", "/bare", bare_clients))
        paths.append(("bare-report", "/bare-report", bare_clients))
        if args.only:
            paths = [p for p in paths if any(word in p[0] for word in args.only)]

        phases: dict[str, PhaseResult] = {}
        sizes: dict[str, int] = {}
        run = dict(duration=args.duration, warmup=args.warmup, meter=meter, hard_timeout=max(60.0, 2 * args.timeout))
        for name, path, clients in paths:
            headers = {"HX-Request": "true"} if "htmx" in name else None
            status, body, _, _ = clients[0].request("GET", path, headers=headers)
            if status != 200:
                raise BenchError(f"GET {path} answered {status}: {body[:300]!r}")
            sizes[name] = len(body)
            log.info("phase: %s (%s), %d clients", name, path, len(clients))
            phases[name] = run_phase(f"GET {path}", clients, page_step(path, headers), **run)

        facts = {"date": run_date(), "machine": machine_facts_line(url), "gunicorn": hms.version(), "counts": counts,
                 "seed_seconds": seed_seconds, "sizes": sizes,
                 "statuses": {"hms": dict(hms.statuses()), "bare": dict(bare.statuses())}}
        print(report(args, command, phases, explained, facts), flush=True)
        if args.json:
            args.json.write_text(json.dumps({
                "facts": facts, "explain": explained,
                "phases": {key: r.as_dict() for key, r in phases.items()}}, indent=2, default=str))
        shutil.rmtree(tmp, ignore_errors=True)
        return 0
    except BenchError as error:
        print(f"bench.billing: could not run: {error} (logs in {tmp})", file=sys.stderr)
        return 1
    finally:
        signal.alarm(0)
        stop_all(servers, app, ctx)


def report(args, command: str, phases: dict[str, PhaseResult], explained: list[dict], facts: dict) -> str:
    counts = facts["counts"]
    lines = [
        f"Command: `{command}`",
        "",
        f"Run: {facts['date']}; machine: {facts['machine']}; gunicorn {facts['gunicorn']} sync workers"
        f" ×{args.workers} per app; {args.clients} clients; {args.duration:g} s per phase after {args.warmup:g} s"
        f" of warm-up.",
        "",
        "Data: " + ", ".join(f"{k} {v:,}" for k, v in counts.items() if isinstance(v, int) and k != "bad_balances")
        + (f"; invoices by status {counts['by_status']}" if "by_status" in counts else "")
        + (f"; filled in {facts['seed_seconds']:.1f} s" if facts.get("seed_seconds") else " (reused)") + ".",
        "",
        "| Page | clients | requests | req/s | p50 ms | p95 ms | p99 ms | bytes | server cores | server CPU ms/req"
        " | MariaDB cores (shared) | ÷ bare req/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    bare_rate = phases["bare"].rate() if "bare" in phases else None
    for key, result in phases.items():
        cpu = result.cpu
        server = cpu.get("bare gunicorn") if key.startswith("bare") else cpu.get("HMS gunicorn")
        lines.append(f"| `{result.name[4:]}` | {result.clients} | {len(result.samples)} | {fmt(result.rate())} |"
                     f" {fmt(result.pct(50))} | {fmt(result.pct(95))} | {fmt(result.pct(99))} |"
                     f" {facts['sizes'].get(key, 0):,} | {fmt(server, 2)} |"
                     f" {fmt(server / result.rate() * 1000 if server and result.rate() else None)} |"
                     f" {fmt(cpu.get('MariaDB (shared)'), 2)} |"
                     f" {fmt(ratio(result.rate(), bare_rate), 3)} |")
    other = [r.cpu.get("_other") for r in phases.values() if r.cpu.get("_other") is not None]
    lines += ["", f"Rest of the machine (other sessions) during the phases: {min(other):.2f}–{max(other):.2f} cores."
              if other else "",
              "HTTP statuses (whole run): HMS " + status_text(facts["statuses"]["hms"])
              + "; bare " + status_text(facts["statuses"]["bare"]) + ".",
              "", "EXPLAIN of each report's statements (default range), and the time to build it in-process:", ""]
    for item in explained:
        lines.append(f"- `{item['report']}` ({item['statements']} statements, {item['build_ms']:.0f} ms):"
                     f" " + "; ".join(" + ".join(plan) for plan in item["plans"]))
    notes = [f"- {result.name}: {note}" for result in phases.values() for note in result.notes]
    if notes:
        lines += ["", "Notes:", "", *notes]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
