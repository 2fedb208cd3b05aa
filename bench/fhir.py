"""Benchmark: the FHIR endpoint (`/fhir/R4`) over real HTTP under gunicorn, each interaction side by side with a
floor that gives the same answer.

    .venv/bin/python -m bench.fhir [--clients 8] [--duration 20] [--warmup 3] [--workers 2] [--requests 200]
                                   [--profile PATH] [--keep-logs]

Self-contained, like bench/api.py, whose tokens, client registration and in-process profile it reuses, and
bench/booking.py, whose seed it reuses: its own database (`hms_bench_fhir`, dropped at the end), the migrations,
the seed (a few patients and doctors; one doctor with 50 appointments this week), and one patient with a record
(`seed_record`: five signed visits with that doctor, one of them amended, with diagnoses, prescriptions and vital
signs; an upcoming and a cancelled appointment; two allergies). Then `wsgi:app` and `bench.fhir:bare_app()` under
gunicorn with the Procfile's command. No broker: HMS_RELAY_IN_PROCESS=false, the `record.viewed` events stay in
the outbox (their write is in the request's transaction either way). The API's rate limits, which count FHIR
requests too, are put out of reach as bench/api.py does.

The floors (`bare_app()`): Flask + PyMySQL, the rows read by plain SQL on one autocommit connection, mapped to
FHIR by the app's own mapping functions (`app.fhir.resources.*`: pure dict builders, given plain row objects
instead of ORM ones) and the app's Bundle and paging (`app.fhir.search.bundle`, `list_page`): the same answer,
checked equal to the endpoint's (parsed JSON) before each pair of phases. What the floor leaves out is what the
endpoint adds around the answer: the bearer check, the rate-limit counts, the policy's questions, the ORM, the
`record.viewed` audit event and the transaction's commit.

Tokens are made as the authorization server makes them (bench/api.py), for the FHIR base URL
(`app.oauth.bearer.fhir_audience()`). Phases, each --clients clients for --duration seconds after a warm-up:

1. `GET /fhir/R4/Appointment?practitioner=<id>&date=ge<Monday>&date=le<Sunday>&_count=50`, the doctor's token
   (`user/Appointment.rs`): the doctor's 50 appointments of this week; then its floor;
2. `GET /fhir/R4/Patient/<id>/$everything`, the patient's own token (`patient/*.rs`); then with the doctor's
   token (`user/*.rs`, in a care relationship: the same answer, the policy asked as a clinician); then the floor.

Then in process (Flask's test client, no HTTP) --requests of each endpoint request, and with --profile, the same
under cProfile: statements a request and the top functions, written to PATH with `-appointment`, `-everything`
and `-everything-doctor` before its suffix. It measures; it never fails because something is slow. Exit status 1:
it could not run.
"""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

from bench.api import RATE_LIMIT, bearer, in_process_requests, issue_tokens, register_client
from bench.booking import seed
from bench.common import (BenchError, clean_up, cpu_meter, fmt, machine_facts_line, own_database_options, push_app,
                          ratio, run_date, start_run)
from bench.web import (Client, Gunicorn, PhaseResult, app_env, cpu_table, load_options, page_step, phase_table,
                       run_phase, start_servers, status_text, stop_all)

DB_NAME = "hms_bench_fhir"
APPOINTMENT_SCOPE = "user/Appointment.rs"
PATIENT_SCOPE = "patient/*.rs"
DOCTOR_SCOPE = "user/*.rs"
PUBLIC_URL = "https://hms.bench.invalid"  # HMS_PUBLIC_URL of both apps: the FHIR base URL is this + /fhir/R4

# --- the floor's statements: what each answer needs, read at the least -----------------------------------------

APPOINTMENT_COLUMNS = ("SELECT a.id, a.updated_at, a.created_at, a.status, a.status_reason, a.reason, a.starts_at,"
                       " a.ends_at, a.patient_id, p.full_name, a.doctor_id, d.full_name, dep.name, COUNT(*) OVER ()"
                       " FROM appointments a JOIN users p ON p.id = a.patient_id JOIN users d ON d.id = a.doctor_id"
                       " JOIN departments dep ON dep.id = a.department_id")
FLOOR_APPOINTMENTS = (APPOINTMENT_COLUMNS + " WHERE a.doctor_id = %s AND a.starts_at >= %s AND a.starts_at < %s"
                      " ORDER BY a.id LIMIT %s")
FLOOR_PATIENT_APPOINTMENTS = APPOINTMENT_COLUMNS + " WHERE a.patient_id = %s ORDER BY a.id"
FLOOR_PATIENT = ("SELECT u.id, u.updated_at, u.active, u.full_name, u.email, u.phone, p.sex, p.date_of_birth,"
                 " p.address, p.emergency_contact_name, p.emergency_contact_phone FROM users u"
                 " LEFT JOIN patient_profiles p ON p.user_id = u.id WHERE u.id = %s AND u.role = 'patient'")
VITALS = ("systolic", "diastolic", "heart_rate", "respiratory_rate", "spo2", "temperature_c", "weight_kg", "height_cm",
          "bmi")
# The current version of each visit: its highest signed one (a patient's view, and a doctor's without drafts).
FLOOR_ENCOUNTERS = ("SELECT e.id, e.patient_id, e.doctor_id, e.appointment_id, e.status, e.chief_complaint,"
                    " e.updated_at, e.signed_at, e.vitals_recorded_at, " + ", ".join(f"e.{c}" for c in VITALS) +
                    ", a.starts_at, a.ends_at, a.department_id, dep.name, d.full_name FROM encounters e"
                    " JOIN appointments a ON a.id = e.appointment_id JOIN departments dep ON dep.id = a.department_id"
                    " JOIN users d ON d.id = e.doctor_id WHERE e.patient_id = %s AND e.status = 'signed'"
                    " AND NOT EXISTS (SELECT 1 FROM encounters n WHERE n.appointment_id = e.appointment_id"
                    " AND n.version > e.version AND n.status = 'signed')")
FLOOR_DIAGNOSES = ("SELECT id, encounter_id, code, description, created_at FROM diagnoses WHERE encounter_id IN ({})"
                   " ORDER BY encounter_id, is_primary DESC, id")
FLOOR_PRESCRIPTIONS = ("SELECT id, encounter_id, drug_name, strength, form, dose, route, frequency, duration_days,"
                       " quantity, refills, instructions, created_at FROM prescriptions WHERE encounter_id IN ({})"
                       " ORDER BY id")
FLOOR_ALLERGIES = ("SELECT a.id, a.patient_id, a.substance, a.reaction, a.severity, a.recorded_by_id, a.recorded_at,"
                   " a.removed_at, u.full_name FROM allergies a JOIN users u ON u.id = a.recorded_by_id"
                   " WHERE a.patient_id = %s AND a.removed_at IS NULL")

log = logging.getLogger("bench")


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=timezone.utc)


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def _appointment(row: tuple) -> SimpleNamespace:
    from app.appointments.models import Status

    (ident, updated, created, status, status_reason, reason, starts, ends, patient_id, patient_name, doctor_id,
     doctor_name, department, _total) = row
    return SimpleNamespace(id=ident, updated_at=_utc(updated), created_at=_utc(created), status=Status(status),
                           status_reason=status_reason, reason=reason, starts_at=_utc(starts), ends_at=_utc(ends),
                           patient_id=patient_id, patient=SimpleNamespace(full_name=patient_name),
                           doctor_id=doctor_id, doctor_user=SimpleNamespace(full_name=doctor_name),
                           department=SimpleNamespace(name=department),
                           identifiers=())  # booked on the pages: no program's identifiers, and none are read


def _patient(row: tuple) -> SimpleNamespace:
    from app.accounts.models import Sex

    (ident, updated, active, name, email, phone, sex, born, address, contact_name, contact_phone) = row
    profile = None if sex is None else SimpleNamespace(
        sex=Sex(sex), date_of_birth=born, address=address, emergency_contact_name=contact_name,
        emergency_contact_phone=contact_phone)
    return SimpleNamespace(id=ident, updated_at=_utc(updated), active=bool(active), full_name=name, email=email,
                           phone=phone, patient=profile)


def _encounter(row: tuple) -> SimpleNamespace:
    from app.records.models import VITAL_COLUMNS

    ident, patient_id, doctor_id, appointment_id, status, complaint, updated, signed_at, taken = row[:9]
    vitals = dict(zip(VITALS, row[9:9 + len(VITALS)]))
    starts, ends, department_id, department, doctor_name = row[9 + len(VITALS):]
    return SimpleNamespace(
        id=ident, patient_id=patient_id, doctor_id=doctor_id, appointment_id=appointment_id,
        signed=status == "signed", chief_complaint=complaint, updated_at=_utc(updated), signed_at=_utc(signed_at),
        vitals_recorded_at=_utc(taken), **vitals, has_vitals=any(vitals[c] is not None for c in VITAL_COLUMNS),
        appointment=SimpleNamespace(starts_at=_utc(starts), ends_at=_utc(ends), department_id=department_id,
                                    department=SimpleNamespace(name=department)),
        doctor=SimpleNamespace(full_name=doctor_name), diagnoses=[], prescriptions=[])


def _allergy(row: tuple) -> SimpleNamespace:
    from app.records.models import Severity

    ident, patient_id, substance, reaction, severity, recorded_by_id, recorded_at, removed_at, recorder = row
    return SimpleNamespace(id=ident, patient_id=patient_id, substance=substance, reaction=reaction,
                           severity=Severity(severity), recorded_by_id=recorded_by_id, recorded_at=_utc(recorded_at),
                           removed_at=_utc(removed_at), recorded_by=SimpleNamespace(full_name=recorder))


def bare_app():
    """The floors (`bench.fhir:bare_app()`): Flask + PyMySQL; plain SQL, the app's FHIR mapping and Bundle."""
    from flask import request

    from app.config import load_config
    from app.fhir.resources import appointment, clinical, everything, observation, patient
    from app.fhir.search import Page, SearchQuery, bundle, encode_cursor, list_page, parse_date
    from app.fhir.views import fhir_json
    from bench.web import bare_flask

    app, fetch = bare_flask()
    config = load_config()
    app.config.update(HMS_PUBLIC_URL=config["HMS_PUBLIC_URL"], HMS_TIMEZONE=config["HMS_TIMEZONE"])

    @app.get("/floor/Appointment")
    def appointments():
        """The doctor's appointments in a date range (`practitioner`, `date=ge…`, `date=le…`, `_count`)."""
        bounds = {p.prefix: p for p in (parse_date("date", text) for text in request.args.getlist("date"))}
        count = int(request.args.get("_count", 50))
        rows = fetch(FLOOR_APPOINTMENTS, (int(request.args["practitioner"]), _naive_utc(bounds["ge"].low),
                                          _naive_utc(bounds["le"].high), count + 1))
        used = [(name, value) for name, values in request.args.lists() if name in ("practitioner", "date")
                for value in values]
        query = SearchQuery("Appointment", {}, used=used, count=count, path="Appointment")
        more = len(rows) > count
        page = Page([appointment.to_fhir(_appointment(row)) for row in rows[:count]], rows[0][-1] if rows else 0,
                    encode_cursor([rows[count - 1][0]]) if more else None)
        return fhir_json(bundle(query, page))

    @app.get("/floor/Patient/<int:patient_id>/$everything")
    def patient_everything(patient_id: int):
        """The patient and all of their record, as the patient (or their doctor, who wrote it) reads it."""
        found = [patient.to_fhir(_patient(row)) for row in fetch(FLOOR_PATIENT, (patient_id,))]
        found += [appointment.to_fhir(_appointment(row)) for row in fetch(FLOOR_PATIENT_APPOINTMENTS, (patient_id,))]
        encounters = {row[0]: _encounter(row) for row in fetch(FLOOR_ENCOUNTERS, (patient_id,))}
        conditions, prescriptions = [], []
        if encounters:
            ids = tuple(encounters)
            marks = ", ".join(["%s"] * len(ids))
            for ident, encounter_id, code, description, created in fetch(FLOOR_DIAGNOSES.format(marks), ids):
                diagnosis = SimpleNamespace(id=ident, code=code, description=description, created_at=_utc(created))
                encounters[encounter_id].diagnoses.append(diagnosis)
                conditions.append(clinical.condition(diagnosis, encounters[encounter_id]))
            for row in fetch(FLOOR_PRESCRIPTIONS.format(marks), ids):
                rx = SimpleNamespace(**dict(zip(("id", "encounter_id", "drug_name", "strength", "form", "dose", "route",
                                                 "frequency", "duration_days", "quantity", "refills", "instructions"),
                                                row)), created_at=_utc(row[-1]))
                encounters[rx.encounter_id].prescriptions.append(rx)
                prescriptions.append(clinical.medication_request(rx, encounters[rx.encounter_id]))
        found += [clinical.encounter(e) for e in encounters.values()] + conditions + prescriptions
        found += [clinical.allergy_intolerance(_allergy(row)) for row in fetch(FLOOR_ALLERGIES, (patient_id,))]
        found += observation.of_encounters(list(encounters.values()))
        query = SearchQuery("Patient", {}, path=f"Patient/{patient_id}/$everything")
        return fhir_json(bundle(query, list_page(query, found, key=everything._key)))

    return app


# --- the data ---------------------------------------------------------------------------------------------

def seed_record(patient_id: int, doctor_id: int, department_id: int) -> None:
    """A realistic record of one patient with one doctor: five signed visits over the last year (the second
    amended once), their diagnoses, prescriptions and vital signs; an upcoming and a cancelled appointment; two
    allergies. None of it in this week, whose appointments of the doctor the Appointment search reads."""
    from app.appointments.models import Status
    from app.extensions import db
    from app.records.models import Severity
    from tests.records.clinical_data import add_allergy, add_appointment, add_encounter

    def visit(days_ago: int, **fields):
        appointment = add_appointment(patient_id, doctor_id, department_id, days_ago=days_ago,
                                      reason=fields.get("chief_complaint", "Check-up"))
        return appointment, add_encounter(appointment, vitals_recorded_at=appointment.starts_at,
                                          signed_at=appointment.ends_at, **fields)

    hypertension, diabetes = ("I10", "Essential (primary) hypertension"), ("E11.9", "Type 2 diabetes mellitus"
                                                                                    " without complications")
    metformin = dict(drug_name="Metformin", strength="500 mg", dose="1 tablet", frequency="twice daily", quantity=60)
    visit(300, chief_complaint="Annual check-up", systolic=128, diastolic=84, heart_rate=76, spo2=98,
          weight_kg=Decimal("82.0"), height_cm=Decimal("178.0"), bmi=Decimal("25.9"),
          diagnoses=[("Z00.00", "Encounter for general adult medical examination without abnormal findings", True)])
    appointment, first = visit(200, chief_complaint="Morning headaches", systolic=150, diastolic=95, heart_rate=88,
                               weight_kg=Decimal("84.5"), bmi=Decimal("26.7"), diagnoses=[(*hypertension, True)],
                               prescriptions=[{}])
    add_encounter(appointment, amends=first, reason="Lab results", signed_at=appointment.ends_at + timedelta(days=1),
                  chief_complaint="Morning headaches", systolic=150, diastolic=95, heart_rate=88,
                  weight_kg=Decimal("84.5"), bmi=Decimal("26.7"), vitals_recorded_at=appointment.starts_at,
                  diagnoses=[(*hypertension, True), (*diabetes, False)], prescriptions=[{}, metformin])
    visit(120, chief_complaint="Blood pressure follow-up", systolic=138, diastolic=88, heart_rate=72,
          diagnoses=[(*hypertension, True)], prescriptions=[{}])
    visit(60, chief_complaint="Cough and fever", temperature_c=Decimal("38.4"), heart_rate=96, respiratory_rate=20,
          spo2=95, diagnoses=[("J20.9", "Acute bronchitis, unspecified", True)],
          prescriptions=[dict(drug_name="Azithromycin", strength="250 mg", dose="2 tablets on day 1, then 1",
                              frequency="once daily", duration_days=5, quantity=6, refills=0)])
    visit(25, chief_complaint="Diabetes review", systolic=132, diastolic=85, weight_kg=Decimal("83.0"),
          diagnoses=[(*diabetes, True)], prescriptions=[metformin])
    add_appointment(patient_id, doctor_id, department_id, days_ago=-20, status=Status.CONFIRMED,
                    reason="Blood pressure review")
    cancelled = add_appointment(patient_id, doctor_id, department_id, days_ago=90,
                                status=Status.CANCELLED_BY_PATIENT, reason="Follow-up")
    cancelled.status_reason = "Travelling"
    add_allergy(patient_id, doctor_id)
    add_allergy(patient_id, doctor_id, substance="Latex", reaction="Rash", severity=Severity.MILD)
    db.session.commit()


def this_week() -> tuple[str, str]:
    """Monday and Sunday of the clinic's week, where bench/booking.py's seed puts the doctor's appointments."""
    from app.timeutil import clinic_today

    monday = clinic_today() - timedelta(days=clinic_today().weekday())
    return monday.isoformat(), (monday + timedelta(days=6)).isoformat()


# --- the report -------------------------------------------------------------------------------------------

def report(args, command: str, phases: dict[str, PhaseResult], in_process: dict[str, tuple], facts: dict) -> str:
    rate = lambda key: phases[key].rate() if key in phases else None  # noqa: E731
    p95 = lambda key: phases[key].pct(95) if key in phases else None  # noqa: E731
    lines = [
        f"Command: `{command}`",
        "",
        f"Run: {facts['date']}; machine: {facts['machine']}.",
        "",
        f"Settings: gunicorn {facts['gunicorn']} sync workers ×{args.workers} for each app (the Procfile's"
        f" command, access log to a file); no broker (HMS_RELAY_IN_PROCESS=false: the record.viewed events are"
        f" written to the outbox in the request's transaction and stay there); HMS_API_RATE_LIMIT_CLIENT and"
        f" HMS_API_RATE_LIMIT_ADDRESS = {RATE_LIMIT} (every request counted, none refused); {args.duration:g} s"
        f" per phase after {args.warmup:g} s of warm-up; database {facts['db']}; {facts['seed']}.",
        "",
        *phase_table(phases),
        "",
        f"Ratios ({args.clients} clients each), endpoint req/s ÷ its floor's (the same answer):"
        f" Appointment search **{fmt(ratio(rate('appointments'), rate('appointments_floor')), 3)}**"
        f" (p95 {fmt(ratio(p95('appointments'), p95('appointments_floor')))}×);"
        f" $everything, the patient's token **{fmt(ratio(rate('everything'), rate('everything_floor')), 3)}**"
        f" (p95 {fmt(ratio(p95('everything'), p95('everything_floor')))}×);"
        f" $everything, the doctor's token"
        f" **{fmt(ratio(rate('everything_doctor'), rate('everything_floor')), 3)}**"
        f" (p95 {fmt(ratio(p95('everything_doctor'), p95('everything_floor')))}×).",
        "",
        *cpu_table(phases),
    ]
    def cpu_ms(key: str) -> float | None:
        result = phases.get(key)
        server = result.cpu.get("bare gunicorn" if key.endswith("floor") else "HMS gunicorn") if result else None
        return server / result.rate() * 1000 if server and result.rate() else None

    per_request = [f"{key}: {fmt(cpu_ms(key))} ms" for key in phases]
    lines += ["", "Server CPU per request (gunicorn cores ÷ req/s): " + "; ".join(per_request) + ". The floor's ÷ the"
              f" endpoint's (the ratio that neighbours on a shared machine disturb least): Appointment search"
              f" {fmt(ratio(cpu_ms('appointments_floor'), cpu_ms('appointments')), 3)}; $everything, the patient's"
              f" token {fmt(ratio(cpu_ms('everything_floor'), cpu_ms('everything')), 3)}; the doctor's"
              f" {fmt(ratio(cpu_ms('everything_floor'), cpu_ms('everything_doctor')), 3)}.", "",
              f"In process (Flask's test client, no HTTP; {args.requests} requests each"
              + (", then as many under cProfile" if args.profile else "") + "):", ""]
    for name, (mean, statements) in in_process.items():
        lines.append(f"- {name}: {mean * 1000:.2f} ms a request"
                     + (f", {statements:.1f} statements a request (the floor: {facts['floor_statements'][name]})"
                        if statements is not None else ""))
    notes = [f"- {result.name}: {note}" for result in phases.values() for note in result.notes] + \
            [f"- {note}" for note in facts.get("notes", [])]
    if notes:
        lines += ["", "Notes:", "", *notes]
    return "\n".join(lines)


# --- main -------------------------------------------------------------------------------------------------

def check_same(client: Client, floor: Client, path: str, floor_path: str, token: str) -> tuple[int, int]:
    """The endpoint's and the floor's answers, parsed, are equal: (their sizes in bytes)."""
    status, body, _, _ = client.request("GET", path, headers=bearer(token))
    floor_status, floor_body, _, _ = floor.request("GET", floor_path)
    if status != 200 or floor_status != 200:
        raise BenchError(f"GET {path} answered {status}, the floor {floor_status}: {body[:300]!r} {floor_body[:300]!r}")
    answer, floor_answer = json.loads(body), json.loads(floor_body)
    if answer != floor_answer:
        wrong = next((i for i, (a, b) in enumerate(zip(answer.get("entry", []), floor_answer.get("entry", [])))
                      if a != b), None)
        raise BenchError(f"the floor does not answer what GET {path} does (first differing entry: {wrong}):"
                         f" {body[:400]!r} {floor_body[:400]!r}")
    return len(body), len(floor_body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fhir", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8, help="clients of every phase, default 8")
    load_options(parser)
    parser.add_argument("--requests", type=int, default=200, help="in-process requests of each, default 200")
    parser.add_argument("--profile", type=Path, metavar="PATH", help="profile the in-process requests (cProfile) and"
                        " write the statements and top functions to PATH, suffixed -appointment, -everything and"
                        " -everything-doctor")
    own_database_options(parser, DB_NAME, "gunicorn logs")
    args = parser.parse_args(argv)
    if args.warmup + args.duration > 480:
        parser.error("a phase must fit in an access token's life: --warmup + --duration ≤ 480 s")
    started = start_run("bench.fhir", argv, args, DB_NAME)
    if started is None:
        return 1
    command, tmp, database = started.command, started.tmp, started.database
    servers: list[Gunicorn] = []
    app = ctx = None
    failed = True
    try:
        database.create()
        env = {**app_env(database.url, relay=False), "HMS_PUBLIC_URL": PUBLIC_URL,
               "HMS_API_RATE_LIMIT_CLIENT": RATE_LIMIT, "HMS_API_RATE_LIMIT_ADDRESS": RATE_LIMIT}
        app, ctx = push_app(env, relay=False)
        from flask_migrate import upgrade

        from app.oauth.bearer import fhir_audience

        log.info("migrating %s (work files in %s)", DB_NAME, tmp)
        upgrade()
        log.info("seeding: a doctor with 50 appointments this week, a patient with a record")
        data = seed(4, 4, 50)
        doctor_id = data.dashboard_doctor[0]
        patient_id = data.patients[0][0]
        seed_record(patient_id, doctor_id, data.department_id)
        register_client(f"{APPOINTMENT_SCOPE} {PATIENT_SCOPE} {DOCTOR_SCOPE}")
        audience = fhir_audience()

        monday, sunday = this_week()
        search = f"?practitioner={doctor_id}&date=ge{monday}&date=le{sunday}&_count=50"
        appointments_path, appointments_floor = f"/fhir/R4/Appointment{search}", f"/floor/Appointment{search}"
        everything_path = f"/fhir/R4/Patient/{patient_id}/$everything"
        everything_floor = f"/floor/Patient/{patient_id}/$everything"
        hms, bare = start_servers(env, "bench.fhir:bare_app()", DB_NAME, args.workers, tmp, appointments_floor,
                                  servers)
        meter = cpu_meter({"HMS gunicorn": hms.pids, "bare gunicorn": bare.pids})
        clients = [Client(hms.port, args.timeout) for _ in range(args.clients)]
        floor_clients = [Client(bare.port, args.timeout) for _ in range(args.clients)]
        phases: dict[str, PhaseResult] = {}
        run = dict(duration=args.duration, warmup=args.warmup, meter=meter, hard_timeout=max(60.0, 2 * args.timeout))

        # 1. the doctor's 50 appointments of this week.
        token = issue_tokens([doctor_id], APPOINTMENT_SCOPE, audience)[0]
        sizes = check_same(clients[0], floor_clients[0], appointments_path, appointments_floor, token)
        _, body, _, _ = clients[0].request("GET", appointments_path, headers=bearer(token))
        if json.loads(body).get("total") != 50:
            raise BenchError(f"GET {appointments_path} does not find the 50 appointments: {body[:300]!r}")
        shown = f"Appointment?practitioner={{id}}&date=ge{monday}&date=le{sunday}&_count=50"
        log.info("phase: Appointment search, %d clients", args.clients)
        phases["appointments"] = run_phase(f"GET {shown}, the doctor's token ({APPOINTMENT_SCOPE})", clients,
                                           page_step(appointments_path, bearer(token)), **run)
        phases["appointments"].notes.append(f"{sizes[0]:,} bytes (a Bundle of 50 Appointments)")
        log.info("phase: its floor, %d clients", args.clients)
        phases["appointments_floor"] = run_phase("floor: the same Bundle, bare Flask + PyMySQL (one SELECT)",
                                                 floor_clients, page_step(appointments_floor), **run)
        phases["appointments_floor"].notes.append(f"{sizes[1]:,} bytes")

        # 2. the patient's record, as the patient and as their doctor.
        patient_token = issue_tokens([patient_id], PATIENT_SCOPE, audience)[0]
        doctor_token = issue_tokens([doctor_id], DOCTOR_SCOPE, audience)[0]
        sizes = check_same(clients[0], floor_clients[0], everything_path, everything_floor, patient_token)
        check_same(clients[0], floor_clients[0], everything_path, everything_floor, doctor_token)
        _, body, _, _ = clients[0].request("GET", everything_path, headers=bearer(patient_token))
        entries = json.loads(body).get("entry", [])
        kinds = {}
        for entry in entries:
            kinds[entry["resource"]["resourceType"]] = kinds.get(entry["resource"]["resourceType"], 0) + 1
        contents = ", ".join(f"{count} {kind}" for kind, count in kinds.items())
        log.info("phase: $everything, the patient's token, %d clients", args.clients)
        phases["everything"] = run_phase(f"GET Patient/{{id}}/$everything, the patient's token ({PATIENT_SCOPE})",
                                         clients, page_step(everything_path, bearer(patient_token)), **run)
        phases["everything"].notes.append(f"{sizes[0]:,} bytes, {len(entries)} entries: {contents}")
        log.info("phase: $everything, the doctor's token, %d clients", args.clients)
        phases["everything_doctor"] = run_phase(f"GET Patient/{{id}}/$everything, the doctor's token ({DOCTOR_SCOPE},"
                                                f" care relationship)", clients,
                                                page_step(everything_path, bearer(doctor_token)), **run)
        log.info("phase: its floor, %d clients", args.clients)
        phases["everything_floor"] = run_phase("floor: the same Bundle, bare Flask + PyMySQL (six SELECTs)",
                                               floor_clients, page_step(everything_floor), **run)
        phases["everything_floor"].notes.append(f"{sizes[1]:,} bytes")

        # 3. in process, and the profile.
        def profile_path(name: str) -> Path | None:
            return args.profile.with_name(f"{args.profile.stem}-{name}{args.profile.suffix}") if args.profile else None

        in_process = {}
        for name, slug, path, bearer_token in (
                ("Appointment search", "appointment", appointments_path, token),
                ("$everything, the patient's token", "everything", everything_path, patient_token),
                ("$everything, the doctor's token", "everything-doctor", everything_path, doctor_token)):
            log.info("in process: %d requests of %s", args.requests, name)
            in_process[name] = in_process_requests(app, path, bearer_token, args.requests, profile_path(slug))

        notes = ["HTTP statuses in the gunicorn access logs (whole run, warm-ups included): HMS "
                 + status_text(hms.statuses()) + "; floor " + status_text(bare.statuses()),
                 "the endpoint writes a record.viewed event (the audit) in each $everything request's transaction;"
                 " the floor does not audit; the Appointment search is not audited (not clinical data)"]
        if args.profile:
            notes.append(f"cProfile of the in-process requests: {profile_path('*')}")
        facts = {"date": run_date(), "machine": machine_facts_line(database.url), "gunicorn": hms.version(),
                 "db": database.how, "notes": notes,
                 "floor_statements": {"Appointment search": 1, "$everything, the patient's token": 6,
                                      "$everything, the doctor's token": 6},
                 "seed": f"one doctor with 50 appointments this week ({monday} to {sunday}, 10 patients), one"
                         f" patient with a record of {len(entries) - 1} resources besides the Patient"}
        print(report(args, command, phases, in_process, facts), flush=True)
        if args.json:
            args.json.write_text(json.dumps({"phases": {key: r.as_dict() for key, r in phases.items()},
                                             "in_process": {k: {"ms": v[0] * 1000, "statements": v[1]}
                                                            for k, v in in_process.items()}}, indent=2))
        failed = False
        return 0
    except BenchError as error:
        print(f"bench.fhir: could not run: {error}", file=sys.stderr)
        return 1
    finally:
        signal.alarm(0)
        stop_all(servers, app, ctx)
        clean_up("bench.fhir", database, args.keep_db, tmp, failed or args.keep_logs)


if __name__ == "__main__":
    sys.exit(main())
