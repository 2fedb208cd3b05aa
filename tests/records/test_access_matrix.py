"""The access matrix of the medical records: every records route (the doctor's and the patient's) × every
kind of visitor, with the status each must get, and no clinical content in any refused answer nor in any
answer to a billing clerk, an admin, another patient or an anonymous visitor.

The routes are read from the application's url_map (every view of `app.doctors.records` and
`app.patients.records`, and any URL that looks clinical), so a new records route that is not in MATRIX
fails `test_every_records_route_is_in_the_matrix`. Each route runs against a fresh database, asked by every
visitor in turn (a route that changes the world, each visitor in a fresh one of their own): the patient's signed
(and amended) visit, a draft visit, an allergy; a doctor who saw the
patient, one who did not, one who broke the glass, one whose break-glass grant has expired (its
`expires_at` moved into the past in the database; nothing sleeps), a clerk and an admin.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.accounts.models import Role
from app.extensions import db
from app.records.models import Allergy, BreakGlassGrant, Diagnosis, Encounter, Prescription
from app.timeutil import utcnow
from tests.helpers import Client, text
from tests.records.clinical_data import CLINICAL_STRINGS, build_chart

pytestmark = pytest.mark.clock  # the outcome depends on the clock: see `make test-clock`

ACTORS = ("patient_own", "patient_other", "doctor_related", "doctor_unrelated", "doctor_break_glass",
          "doctor_expired", "clerk", "admin", "anonymous")
# Whoever is not the patient or a doctor with access must never receive clinical content, whatever the status.
NEVER_CLINICAL = ("patient_other", "doctor_unrelated", "doctor_expired", "clerk", "admin", "anonymous")
CLINICAL_MODULES = ("app.doctors.records", "app.patients.records")
CLINICAL_URL = re.compile(r"record|encounter|chart|allerg|prescri|diagnos|vital|icd|break-glass", re.I)


@dataclass
class World:
    patient_id: int
    other_id: int
    doctor_ids: dict[str, int]
    users: dict
    encounter_id: int  # the current (signed) version of the amended visit
    original_id: int
    draft_id: int
    appointment_id: int
    diagnosis_id: int
    prescription_id: int
    allergy_id: int


@dataclass(frozen=True)
class Route:
    endpoint: str
    method: str
    url: Callable[[World], str]
    expect: dict[str, int]
    data: dict = field(default_factory=dict)
    offers_break_glass: tuple[str, ...] = ()  # actors whose 403 must carry the break-glass form
    reference_data: bool = False  # answers the ICD-10 code set, not a patient's data
    changes: bool = False  # a visitor's request may change the world: each visitor gets a world of their own


def patient_route(endpoint: str, url: Callable[[World], str], *, item: bool) -> Route:
    """A page of "My records": the patient's own; another patient gets their own (empty) list, or 404 for
    an item of the first patient's record; staff are refused by the blueprint's guard."""
    return Route(endpoint, "GET", url, {
        "patient_own": 200, "patient_other": 404 if item else 200, "doctor_related": 403, "doctor_unrelated": 403,
        "doctor_break_glass": 403, "doctor_expired": 403, "clerk": 403, "admin": 403, "anonymous": 302})


STAFF_REFUSED = {"patient_own": 403, "patient_other": 403, "clerk": 403, "admin": 403, "anonymous": 302}


def doctor_route(endpoint: str, method: str, url: Callable[[World], str], *, related: int, unrelated: int,
                 break_glass: int, expired: int, data: dict | None = None, reference_data: bool = False) -> Route:
    offers = tuple(actor for actor, status in (("doctor_unrelated", unrelated), ("doctor_expired", expired))
                   if status == 403)
    return Route(endpoint, method, url, {**STAFF_REFUSED, "doctor_related": related, "doctor_unrelated": unrelated,
                                         "doctor_break_glass": break_glass, "doctor_expired": expired},
                 data or {}, offers, reference_data)


def reading(endpoint: str, url: Callable[[World], str]) -> Route:
    """A read of the patient's record: care relationship or live break-glass grant, else 403 + the offer."""
    return doctor_route(endpoint, "GET", url, related=200, unrelated=403, break_glass=200, expired=403)


def writing(endpoint: str, url: Callable[[World], str], *, related: int = 409, data: dict | None = None) -> Route:
    """A change to the (signed) encounter: only its own doctor may write, and a signed one answers 409; any
    other doctor, break-glass or not, gets 404 (the encounter is not theirs to change)."""
    return doctor_route(endpoint, "POST", url, related=related, unrelated=404, break_glass=404, expired=404,
                        data=data)


def enc(page: str = "") -> Callable[[World], str]:
    return lambda w: f"/doctor/encounters/{w.encounter_id}{page}"


MATRIX: list[Route] = [
    patient_route("patients.records", lambda w: "/patient/records", item=False),
    patient_route("patients.records_diagnoses", lambda w: "/patient/records/diagnoses", item=False),
    patient_route("patients.records_prescriptions", lambda w: "/patient/records/prescriptions", item=False),
    patient_route("patients.records_allergies", lambda w: "/patient/records/allergies", item=False),
    patient_route("patients.records_vitals", lambda w: "/patient/records/vitals", item=False),
    patient_route("patients.record_visit", lambda w: f"/patient/records/visits/{w.encounter_id}", item=True),
    patient_route("patients.record_print_summary", lambda w: f"/patient/records/visits/{w.encounter_id}/summary",
                  item=True),
    patient_route("patients.record_print_prescription",
                  lambda w: f"/patient/records/visits/{w.encounter_id}/prescription", item=True),

    reading("doctors.encounter", enc()),
    reading("doctors.chart", lambda w: f"/doctor/patients/{w.patient_id}/chart"),
    # reference data and names only: any doctor
    doctor_route("doctors.icd10_search", "GET", lambda w: "/doctor/icd10?q=hypertension", related=200,
                 unrelated=200, break_glass=200, expired=200, reference_data=True),
    doctor_route("doctors.patients", "GET", lambda w: "/doctor/patients", related=200, unrelated=200,
                 break_glass=200, expired=200),
    doctor_route("doctors.break_glass", "GET", lambda w: f"/doctor/patients/{w.patient_id}/break-glass",
                 related=200, unrelated=200, break_glass=200, expired=200),
    doctor_route("doctors.break_glass", "POST", lambda w: f"/doctor/patients/{w.patient_id}/break-glass",
                 related=422, unrelated=422, break_glass=422, expired=422, data={"reason": "too short"}),
    # the appointment's own doctor opens (here: finds) its encounter; nobody else
    doctor_route("doctors.open_encounter", "POST", lambda w: f"/doctor/appointments/{w.appointment_id}/encounter",
                 related=303, unrelated=404, break_glass=404, expired=404),
    writing("doctors.save_notes", enc("/notes"), data={"chief_complaint": "changed", "assessment": "changed"}),
    writing("doctors.save_vitals", enc("/vitals"), data={"systolic": "120", "diastolic": "80"}),
    writing("doctors.add_diagnosis", enc("/diagnoses"), data={"code": "E11.9"}),
    writing("doctors.remove_diagnosis",
            lambda w: f"/doctor/encounters/{w.encounter_id}/diagnoses/{w.diagnosis_id}/delete"),
    writing("doctors.primary_diagnosis",
            lambda w: f"/doctor/encounters/{w.encounter_id}/diagnoses/{w.diagnosis_id}/primary"),
    writing("doctors.add_prescription", enc("/prescriptions"), data={
        "drug_name": "Metformin", "strength": "500 mg", "form": "tablet", "dose": "1 tablet", "route": "oral",
        "frequency": "twice daily", "duration_days": "30", "quantity": "60", "refills": "0"}),
    writing("doctors.remove_prescription",
            lambda w: f"/doctor/encounters/{w.encounter_id}/prescriptions/{w.prescription_id}/delete"),
    writing("doctors.sign_encounter", enc("/sign")),
    # amending is the one change a signed encounter takes; without a reason it is refused (422)
    writing("doctors.amend_encounter", enc("/amend"), related=422, data={"reason": ""}),
    doctor_route("doctors.add_allergy", "POST", lambda w: f"/doctor/patients/{w.patient_id}/allergies",
                 related=422, unrelated=403, break_glass=422, expired=403, data={"substance": "", "reaction": ""}),
    replace(doctor_route("doctors.remove_allergy", "POST",
                         lambda w: f"/doctor/patients/{w.patient_id}/allergies/{w.allergy_id}/delete",
                         related=303, unrelated=403, break_glass=303, expired=403), changes=True),
]


def records_routes(app) -> set[tuple[str, str]]:
    """(endpoint, method) of every route that serves or changes clinical data."""
    found = set()
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        # Billing's "record a refund" is money, not a clinical record; billing serves no clinical data at all
        # (the clerk rows of the matrix check that), so its URLs are not matched by name.
        # The API (`app.api`) answers every cookie session 401 (tests/test_route_matrix.py); its access by
        # token, with the same policy, is tests/api/test_records_api.py.
        if view.__module__.startswith("app.api"):
            continue
        if view.__module__ in CLINICAL_MODULES or (CLINICAL_URL.search(rule.rule)
                                                   and not view.__module__.startswith("app.clerks")):
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                found.add((rule.endpoint, method))
    return found


def test_every_records_route_is_in_the_matrix(app):
    listed = {(route.endpoint, route.method) for route in MATRIX}
    assert len(listed) == len(MATRIX), "a route is listed twice"
    missing = records_routes(app) - listed
    assert not missing, f"records routes missing from the access matrix: {sorted(missing)}"
    stale = listed - records_routes(app)
    assert not stale, f"the matrix lists routes that do not exist: {sorted(stale)}"


def test_every_case_names_every_visitor():
    for route in MATRIX:
        assert set(route.expect) == set(ACTORS), route.endpoint


# --- the world every case starts from ------------------------------------------------------------------

@pytest.fixture
def world(app, create_user, create_doctor, create_patient, create_department) -> World:
    department = create_department("Cardiology")
    doctors = {name: create_doctor(full_name=f"Dr. {name.replace('_', ' ').title()}", department_ids=[department])
               for name in ("doctor_related", "doctor_unrelated", "doctor_break_glass", "doctor_expired")}
    patient = create_patient(full_name="Maria Garcia")
    other = create_patient(full_name="John Miller")
    users = {**doctors, "patient_own": patient, "patient_other": other, "clerk": create_user(Role.CLERK),
             "admin": create_user(Role.ADMIN)}
    with app.app_context():
        chart = build_chart(patient.id, doctors["doctor_related"].id, department)
        db.session.commit()
        current = db.session.get(Encounter, chart.current_id)
        diagnosis_id = db.session.scalar(sa.select(Diagnosis.id).where(Diagnosis.encounter_id == current.id).limit(1))
        prescription_id = db.session.scalar(sa.select(Prescription.id).where(Prescription.encounter_id == current.id))
        allergy_id = db.session.scalar(sa.select(Allergy.id).where(Allergy.patient_id == patient.id))
    return World(patient.id, other.id, {k: v.id for k, v in doctors.items()}, users, chart.current_id,
                 chart.original_id, chart.draft_id, chart.appointment_id, diagnosis_id, prescription_id, allergy_id)


def signed_in(app, world: World, actor: str) -> Client:
    client = Client(app)
    if actor == "anonymous":
        return client
    from tests.conftest import DEFAULT_PASSWORD

    response = client.sign_in(world.users[actor].email, DEFAULT_PASSWORD)
    assert response.status_code == 303
    if actor in ("doctor_break_glass", "doctor_expired"):
        response = client.post_form(f"/doctor/patients/{world.patient_id}/break-glass",
                                    {"reason": "Unconscious in the emergency room, no relative reachable"})
        assert response.status_code == 303, text(response)[:300]
    if actor == "doctor_expired":
        with app.app_context():
            grant = db.session.scalar(sa.select(BreakGlassGrant).where(
                BreakGlassGrant.doctor_id == world.doctor_ids[actor]))
            grant.started_at -= timedelta(minutes=61)
            grant.expires_at = utcnow() - timedelta(minutes=1)
            db.session.commit()
    return client


def call(client: Client, route: Route, world: World):
    url = route.url(world)
    if route.method == "GET":
        return client.get(url)
    return client.post_form(url, route.data)


def check(app, world: World, route: Route, actor: str) -> list[str]:
    """What differs from the expectations when `actor` asks `route`, as messages."""
    client = signed_in(app, world, actor)
    response = call(client, route, world)
    body = text(response)
    where = f"{route.method} {route.endpoint} as {actor}"
    if response.status_code != route.expect[actor]:
        return [f"{where}: expected {route.expect[actor]}, got {response.status_code}: {body[:300]}"]
    problems = []
    if route.expect[actor] == 302 and "/login" not in response.headers["Location"]:
        problems.append(f"{where}: redirected elsewhere than the sign-in page")
    reference = route.reference_data and response.status_code == 200  # "I10 Essential hypertension" is the code set
    if (actor in NEVER_CLINICAL or response.status_code in (403, 404)) and not reference:
        leaked = [s for s in CLINICAL_STRINGS if s in body]
        if leaked:
            problems.append(f"{where}: clinical content in the answer: {leaked}")
    if actor in route.offers_break_glass and f'action="/doctor/patients/{world.patient_id}/break-glass"' not in body:
        problems.append(f"{where}: no break-glass offer")
    return problems


# One world per route, asked by every visitor in turn (each with a session of their own): a route whose requests
# are all refused, or find what exists, does not change what the next visitor is asked about. A route that may
# change it (`changes`) is asked by each visitor in a world of their own.
CASES = [pytest.param(route, (actor,), id=f"{route.endpoint}-{route.method}-{actor}")
         for route in MATRIX if route.changes for actor in ACTORS]
CASES += [pytest.param(route, ACTORS, id=f"{route.endpoint}-{route.method}") for route in MATRIX if not route.changes]


@pytest.mark.parametrize("route,actors", CASES)
def test_access(app, world, route: Route, actors: tuple[str, ...]):
    problems = [problem for actor in actors for problem in check(app, world, route, actor)]
    assert not problems, "\n".join(problems)


# --- a signed encounter cannot be changed through any route ------------------------------------------------

def snapshot(app, encounter_id: int) -> tuple:
    with app.app_context():
        encounter = db.session.get(Encounter, encounter_id)
        return (tuple(getattr(encounter, c.key) for c in Encounter.__table__.columns),
                tuple((d.code, d.description, d.is_primary) for d in encounter.diagnoses),
                tuple((p.drug_name, p.strength, p.quantity) for p in encounter.prescriptions))


def test_a_signed_encounter_cannot_be_changed_through_any_route(app, world):
    """Every route that writes an encounter, by its own doctor, on the signed current version and on the
    signed original: 409 (amend without a reason: 422; amending the superseded original: 409), and the
    rows are exactly as they were."""
    client = signed_in(app, world, "doctor_related")
    writers = [route for route in MATRIX if route.method == "POST" and route.url(world).startswith(
        f"/doctor/encounters/{world.encounter_id}")]
    assert {route.endpoint for route in writers} >= {"doctors.save_notes", "doctors.save_vitals",
                                                    "doctors.add_diagnosis", "doctors.sign_encounter"}
    for encounter_id in (world.encounter_id, world.original_id):
        before = snapshot(app, encounter_id)
        for route in writers:
            url = route.url(world).replace(f"/encounters/{world.encounter_id}", f"/encounters/{encounter_id}")
            response = client.post_form(url, route.data)
            allowed = {409, 422} if route.endpoint == "doctors.amend_encounter" else {409, 404}
            assert response.status_code in allowed, (url, response.status_code)
        amended = client.post_form(f"/doctor/encounters/{encounter_id}/amend", {"reason": "x" * 501})
        assert amended.status_code in (409, 422)
        assert snapshot(app, encounter_id) == before
