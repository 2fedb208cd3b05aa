"""The doctors directory: live search, filters, next free slot, and a constant number of queries."""
from __future__ import annotations

from datetime import time

import pytest

from app.clinic.models import DoctorProfile
from app.extensions import db
from app.scheduling.models import WeeklyAvailability
from tests.helpers import Client, count_statements, text

pytestmark = pytest.mark.clock  # the outcome depends on the clock: see `make test-clock`


def give_hours(app, doctor_ids: list[int]) -> None:
    with app.app_context():
        for doctor_id in doctor_ids:
            department_id = db.session.get(DoctorProfile, doctor_id).departments[0].id
            for weekday in range(7):
                db.session.add(WeeklyAvailability(doctor_id=doctor_id, department_id=department_id, weekday=weekday,
                                                  start_time=time(0, 0), end_time=time(23, 50), slot_minutes=30))
        db.session.commit()


def test_visitors_and_patients_search_by_name_or_specialty(app, client, create_doctor, create_department):
    cardio = create_department("Cardiology")
    heart = create_doctor(full_name="Dr. Ada Heart", specialty="Cardiologist", department_ids=[cardio])
    create_doctor(full_name="Dr. Bo Skin", specialty="Dermatologist")
    give_hours(app, [heart.id])
    html = text(client.get("/doctors/?q=cardio", htmx=True))
    assert "<html" not in html and "Dr. Ada Heart" in html and "Dr. Bo Skin" not in html
    assert "Next free:" in html and "Cardiology" in html and "USD 100.00" in html
    assert "Dr. Bo Skin" in text(client.get("/doctors/?q=bo"))
    assert "Dr. Ada Heart" in text(client.get(f"/doctors/?department={cardio}"))
    assert "No doctors found" in text(client.get("/doctors/?q=zzz"))


def test_deactivated_doctors_are_not_listed_or_shown(app, client, create_doctor):
    doctor = create_doctor(full_name="Dr. Gone Away", active=False)
    assert "Dr. Gone Away" not in text(client.get("/doctors/"))
    assert client.get(f"/doctors/{doctor.id}").status_code == 404


def test_the_doctor_page_shows_bio_and_the_next_free_slots(app, client, create_doctor):
    doctor = create_doctor(full_name="Dr. Slot Full")
    with app.app_context():
        db.session.get(DoctorProfile, doctor.id).bio = "Thirty years of practice."
        db.session.commit()
    give_hours(app, [doctor.id])
    html = text(client.get(f"/doctors/{doctor.id}"))
    assert "Thirty years of practice." in html and 'data-testid="free-slots"' in html




@pytest.mark.parametrize("query", ["", "?q=doc", "?department={department}"])
def test_the_directory_issues_the_same_number_of_statements_for_5_and_60_doctors(app, create_doctor, create_department,
                                                                                 query):
    department = create_department()
    query = query.format(department=department)
    first = [create_doctor(department_ids=[department]).id for _ in range(5)]
    give_hours(app, first)
    few = count_statements(app, Client(app), f"/doctors/{query}")
    more = [create_doctor(department_ids=[department]).id for _ in range(55)]  # more than a page, every slot query
    give_hours(app, more)
    assert count_statements(app, Client(app), f"/doctors/{query}") == few
