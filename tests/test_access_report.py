""""Who has seen my record": the patient's access report from the audit trail (rows built directly in the chain,
as the worker's audit role writes them), its filters, paging and CSV export, and who may read it."""
from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.accounts.models import Role, User
from app.audit.chain import append_all
from app.extensions import db
from tests.helpers import Client, text


def envelope(kind: str, actor: User | None, patient_id: int, when: datetime, *, entity=("patient", None),
             client_id: str | None = None, outcome: str = "success", **data) -> dict:
    actor_data = {"id": actor.id, "role": actor.role.value} if actor else None
    if actor_data and client_id:
        actor_data["client_id"] = client_id
    return {"id": str(uuid.uuid4()), "type": kind, "version": 1, "occurred_at": when.isoformat(), "actor": actor_data,
            "aggregate_type": entity[0], "aggregate_id": str(entity[1] or patient_id), "patient_id": patient_id,
            "source_ip": "10.0.0.9", "outcome": outcome, "data": data}


@dataclass
class Trail:
    patient: User
    other: User
    doctor: User
    emergency_doctor: User
    clerk: User
    day: datetime  # noon of the first day, in the clinic's zone


@pytest.fixture
def trail(app, create_patient, create_doctor, create_user) -> Trail:
    """Patient A's record read by their doctor (day 1), opened by break-glass and read under it (day 2), read by an
    app for A and by A themself (day 3), refused to a clerk and to another patient (day 4); and B's record read by
    A's doctor."""
    from app.oauth.models import ClientKind
    from app.oauth.services import ClientRegistration, register_client
    from app.records.models import BreakGlassGrant

    a = create_patient(full_name="Ariadne Patient")
    b = create_patient(full_name="Bartholomew Otherpatient")
    doctor = create_doctor(full_name="Dr. Carer Regular")
    emergency = create_doctor(full_name="Dr. Ema Emergency")
    clerk = create_user(Role.CLERK, full_name="Clara Clerk")
    day = datetime(2026, 3, 10, 12, 0, tzinfo=ZoneInfo(app.config["HMS_TIMEZONE"]))
    with app.app_context():
        program, _ = register_client(ClientRegistration(
            name="Heart Diary", kind=ClientKind.PUBLIC, redirect_uris=["https://diary.example/cb"],
            grant_types=["authorization_code"], allowed_scopes="patient/*.rs"), by=None)
        grant = BreakGlassGrant(doctor_id=emergency.id, patient_id=a.id, reason="Unconscious in the emergency room",
                                started_at=day + timedelta(days=1), expires_at=day + timedelta(days=1, hours=1))
        db.session.add(grant)
        db.session.flush()
        record = ("encounter", "diagnosis", "allergy")
        append_all([
            envelope("record.viewed", doctor, a.id, day, categories=list(record), category="encounter",
                     view="doctor.chart", basis="care_relationship"),
            envelope("record.break_glass", emergency, a.id, day + timedelta(days=1), entity=("break_glass_grant", grant.id),
                     category="record", reason=grant.reason, break_glass=True, minutes=60),
            envelope("record.viewed", emergency, a.id, day + timedelta(days=1, minutes=5), categories=["vitals"],
                     category="vitals", view="doctor.chart", basis="break_glass", break_glass_grant_id=grant.id,
                     break_glass=True),
            envelope("record.viewed", a, a.id, day + timedelta(days=2), client_id=program.client_id,
                     categories=["demographics"], category="demographics", view="fhir.Patient", basis="self"),
            envelope("record.viewed", a, a.id, day + timedelta(days=2, hours=1), categories=["prescription"],
                     category="prescription", view="patient.prescriptions", basis="self"),  # A's own page: left out
            envelope("access.denied", clerk, a.id, day + timedelta(days=3), entity=("record", a.id), outcome="denied",
                     status=403, reason="role_clerk", category="encounter", action="read"),
            envelope("access.denied", b, a.id, day + timedelta(days=3, hours=2), entity=("appointment", 77),
                     outcome="denied", status=404, reason="not_own", action="read"),
            envelope("record.viewed", doctor, b.id, day + timedelta(days=1), categories=["prescription"],
                     category="prescription", view="doctor.chart", basis="care_relationship"),  # B's, not A's
        ])
        db.session.commit()
    return Trail(a, b, doctor, emergency, clerk, day)


def rows_of(html: str) -> list[str]:
    """The report's rows as text, in order."""
    import re

    return [" ".join(re.sub(r"<[^>]+>", " ", row).split())
            for row in re.findall(r'<li class="list-group-item[^"]*" data-testid="access-row".*?</li>', html, re.S)]


def test_the_report_shows_who_read_my_record_and_nothing_of_another_patients(app, client, login, trail):
    login(trail.patient)
    response = client.get("/patient/access-report")
    assert response.status_code == 200
    html = text(response)
    rows = rows_of(html)
    assert len(rows) == 6, rows
    refused_by_patient, refused_clerk, by_app, glass_read, glass, doctor = rows
    assert doctor.startswith("Dr. Carer Regular Doctor") and "Read your visit notes, diagnoses and allergies" in doctor
    assert "10 Mar 2026, 12:00" in doctor  # the clinic's time
    assert "Emergency access Opened your whole record" in glass and "Unconscious in the emergency room" in glass
    assert "Dr. Ema Emergency" in glass_read and "Read your vital signs" in glass_read
    assert "Emergency access" in glass_read and "Reason given: Unconscious in the emergency room" in glass_read
    assert by_app.startswith("You Patient through the app Heart Diary") and "personal details" in by_app
    assert "Clara Clerk Billing clerk" in refused_clerk and "Refused Tried to open your visit notes" in refused_clerk
    assert refused_by_patient.startswith("Another patient") and "one of your appointments" in refused_by_patient
    assert "Bartholomew" not in html and "prescriptions" not in html  # B's name, B's record, A's own page view
    assert html.count('data-break-glass="true"') == 2

    other = Client(app)
    other.post_form("/login", {"email": trail.other.email, "password": "correct horse battery"})
    theirs = text(other.get("/patient/access-report"))
    assert rows_of(theirs) and all("prescriptions" in row for row in rows_of(theirs))
    assert not any(s in theirs for s in ("Ariadne", "Unconscious", "Heart Diary", "Clara Clerk", "Ema Emergency"))


def test_the_filters_and_the_csv_export_agree(client, login, trail):
    login(trail.patient)
    cases = {"role=doctor": 3, "break_glass=y": 2, "role=clerk": 1, "role=patient": 2,
             "date_from=2026-03-11&date_to=2026-03-12": 3, "date_to=2026-03-10": 1,
             "date_from=2026-03-13&role=doctor": 0}
    for query, count in cases.items():
        page = client.get(f"/patient/access-report?{query}", htmx=True)
        assert page.status_code == 200 and "<html" not in text(page), query
        assert len(rows_of(text(page))) == count, query
        assert f'href="/patient/access-report.csv?{query.replace("&", "&amp;")}"' in text(page), query
        export = client.get(f"/patient/access-report.csv?{query}&page=1")
        assert export.status_code == 200 and export.mimetype == "text/csv"
        assert len(list(csv.DictReader(io.StringIO(text(export))))) == count, query
    assert "Nothing matches these filters" in text(client.get("/patient/access-report?date_from=2026-03-13&role=doctor"))

    glass = list(csv.DictReader(io.StringIO(text(client.get("/patient/access-report.csv?break_glass=y")))))
    assert [(r["who"], r["event"], r["what"], r["break_glass"], r["reason"]) for r in glass] == [
        ("Dr. Ema Emergency", "Read", "your vital signs", "yes", "Unconscious in the emergency room"),
        ("Dr. Ema Emergency", "Emergency access", "your whole record", "yes", "Unconscious in the emergency room")]
    assert glass[0]["when"].startswith("2026-03-11T12:05:00") and glass[0]["role"] == "Doctor"


def test_bad_filters_are_answered_beside_the_field_and_the_export_leads_back_to_them(client, login, trail):
    login(trail.patient)
    response = client.get("/patient/access-report?date_from=2026-03-12&date_to=2026-03-10&role=nurse")
    assert response.status_code == 422
    html = text(response)
    assert "The end date is before the start date." in html and html.count("Choose a role from the list.") == 1
    assert 'value="2026-03-12"' in html  # what was typed is kept
    far = client.get("/patient/access-report?date_to=9999-12-31&date_from=not-a-date")
    assert far.status_code == 422 and "Choose a date from 2000 to 2100." in text(far)
    export = client.get("/patient/access-report.csv?date_to=9999-12-31")
    assert export.status_code == 303 and export.headers["Location"] == "/patient/access-report?date_to=9999-12-31"


def test_a_long_report_is_paged_and_an_empty_one_says_so(app, client, login, create_patient, create_doctor):
    patient, doctor = create_patient(), create_doctor(full_name="Dr. Many Reads")
    login(patient)
    assert "No one has read your record yet" in text(client.get("/patient/access-report"))
    start = datetime(2026, 5, 1, 9, 0, tzinfo=ZoneInfo(app.config["HMS_TIMEZONE"]))
    with app.app_context():
        append_all([envelope("record.viewed", doctor, patient.id, start + timedelta(minutes=n), categories=["allergy"],
                             view="doctor.chart") for n in range(30)])
        db.session.commit()
    first = text(client.get("/patient/access-report"))
    assert len(rows_of(first)) == 25 and "Page 1 of 2 · 30 in all" in first and "09:29" in rows_of(first)[0]
    second = client.get("/patient/access-report?page=2", htmx=True)
    assert len(rows_of(text(second))) == 5 and "09:00" in rows_of(text(second))[-1]


def test_only_the_patient_may_read_their_access_report(app, trail):
    from app.policy import Actor, Resource, Verb, decide

    with app.app_context():
        resource = Resource.access_report(trail.patient.id)
        asked = {who: decide(Actor(db.session.get(User, user.id)), Verb.READ, resource)
                 for who, user in (("self", trail.patient), ("other", trail.other), ("doctor", trail.doctor),
                                   ("clerk", trail.clerk))}
        assert {who: (d.allowed, d.status) for who, d in asked.items()} == {
            "self": (True, 200), "other": (False, 404), "doctor": (False, 403), "clerk": (False, 403)}
        assert decide(Actor(db.session.get(User, trail.patient.id)), Verb.WRITE, resource).allowed is False
