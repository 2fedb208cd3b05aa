"""bench/fhir.py's floors answer what the FHIR endpoint answers (the benchmark compares their speed, so the answers
must stay the same as the mapping changes): the floor app (`bench.fhir.bare_app`) on the test database, against
the endpoint, for the clinic of tests/fhir/conftest.py."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.timeutil import clinic_today
from tests.conftest import TEST_DATABASE_URL


@pytest.fixture
def floor(app, monkeypatch):
    """The floors' Flask app, reading the test database over its own connection, configured as the app is."""
    from bench.fhir import bare_app

    url = sa.engine.make_url(TEST_DATABASE_URL)
    monkeypatch.setenv("BARE_DATABASE", f"{url.host}:{url.port or 3306}/{url.username}/{url.password}/{url.database}")
    floor_app = bare_app()
    floor_app.config.update(HMS_PUBLIC_URL=app.config["HMS_PUBLIC_URL"], HMS_TIMEZONE=app.config["HMS_TIMEZONE"])
    return floor_app.test_client()


def test_the_floor_of_the_appointment_search_answers_the_same_bundle(app, fhir, floor, clinic, tokens):
    with app.app_context():
        today = clinic_today()
    search = f"?practitioner={clinic.doctor_a.id}&date=ge{today - timedelta(days=90)}&date=le{today}&_count=2"
    answer = fhir(f"Appointment{search}", tokens["doctor_a"])
    assert answer.status_code == 200 and answer.body["total"] == 3 and len(answer.body["entry"]) == 2
    assert floor.get(f"/floor/Appointment{search}").get_json() == answer.body


def test_the_floor_of_everything_answers_the_same_bundle(fhir, floor, clinic, tokens):
    answer = fhir(f"Patient/{clinic.patient_a.id}/$everything", tokens["patient_a"])
    assert answer.status_code == 200
    assert floor.get(f"/floor/Patient/{clinic.patient_a.id}/$everything").get_json() == answer.body
