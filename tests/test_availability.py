"""A doctor keeps their weekly hours and time off; refused input says why; no one touches another's."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pytest
import sqlalchemy as sa

from app.accounts.models import Role
from app.clinic.models import DoctorProfile
from app.extensions import db
from app.scheduling.models import Unavailability, WeeklyAvailability
from tests.helpers import text

pytestmark = pytest.mark.clock  # the outcome depends on the clock: see `make test-clock`


@pytest.fixture
def doctor(app, client, create_doctor, create_department, login):
    user = create_doctor(department_ids=[create_department("Cardiology"), create_department("Pediatrics")])
    login(user)
    return user


def department_ids(app, doctor) -> list[int]:
    with app.app_context():
        return sorted(d.id for d in db.session.get(DoctorProfile, doctor.id).departments)


def window(app, doctor, **changes) -> dict:
    return {"weekday": "0", "start_time": "09:00", "end_time": "12:00", "slot_minutes": "30",
            "department_id": str(department_ids(app, doctor)[0]), **changes}


def windows(app, doctor_id: int) -> list[WeeklyAvailability]:
    with app.app_context():
        rows = list(db.session.scalars(sa.select(WeeklyAvailability).where(WeeklyAvailability.doctor_id == doctor_id)))
        db.session.expunge_all()
        return rows


def test_doctor_adds_weekly_hours_and_sees_free_slots(app, client, doctor):
    response = client.post_form("/doctor/availability/windows", window(app, doctor, weekday=str(date.today().weekday())))
    assert response.status_code == 303
    [saved] = windows(app, doctor.id)
    assert (saved.start_time, saved.end_time, saved.slot_minutes) == (time(9), time(12), 30)
    html = text(client.get("/doctor/availability"))
    assert "09:00–12:00" in html and 'data-testid="slot-preview"' in html


@pytest.mark.parametrize("changes,field,message", [
    ({"end_time": "08:00"}, "end_time", "The end time must be after the start time."),
    ({"end_time": "09:00"}, "end_time", "The end time must be after the start time."),
    ({"slot_minutes": "5"}, "slot_minutes", "A slot lasts 10 to 120 minutes."),
    ({"slot_minutes": "121"}, "slot_minutes", "A slot lasts 10 to 120 minutes."),
    ({"end_time": "09:20", "slot_minutes": "30"}, "slot_minutes", "A 30-minute slot does not fit in this window."),
    ({"start_time": "10:00", "end_time": "11:00"}, "start_time", "This overlaps your Monday window 09:00–12:00"),
    ({"start_time": "nine"}, "start_time", "Not a valid time value."),
    ({"department_id": "999999"}, "department_id", "Not a valid choice."),
])
def test_refused_hours_say_why_beside_the_field(app, client, doctor, changes, field, message):
    client.post_form("/doctor/availability/windows", window(app, doctor))
    response = client.post_form("/doctor/availability/windows", window(app, doctor, **changes))
    assert response.status_code == 422
    html = text(response)
    assert f'id="{field}-error"' in html and message in html.split(f'id="{field}-error"', 1)[1][:200]
    assert len(windows(app, doctor.id)) == 1


def test_overlap_across_departments_is_refused(app, client, doctor):
    first, second = department_ids(app, doctor)
    client.post_form("/doctor/availability/windows", window(app, doctor, department_id=str(first)))
    response = client.post_form("/doctor/availability/windows",
                                window(app, doctor, department_id=str(second), start_time="11:30", end_time="13:00"))
    assert response.status_code == 422 and "This overlaps" in text(response)
    response = client.post_form("/doctor/availability/windows",
                                window(app, doctor, department_id=str(second), start_time="12:00", end_time="13:00"))
    assert response.status_code == 303  # touching is not overlapping


def test_time_off_for_part_of_a_day(app, client, doctor):
    day = date.today() + timedelta(days=3)
    response = client.post_form("/doctor/availability/leave", {
        "kind": "conference", "reason": "Cardiology congress", "start_day": day.isoformat(), "start_time": "10:00",
        "end_day": day.isoformat(), "end_time": "12:30"})
    assert response.status_code == 303
    with app.app_context():
        entry = db.session.scalar(sa.select(Unavailability))
        assert entry.ends_at - entry.starts_at == timedelta(hours=2, minutes=30)
        assert entry.starts_at.tzinfo == timezone.utc
    assert "Cardiology congress" in text(client.get("/doctor/availability"))


def test_time_off_must_end_after_it_starts(app, client, doctor):
    response = client.post_form("/doctor/availability/leave", {
        "kind": "leave", "reason": "x", "start_day": "2030-05-10", "end_day": "2030-05-09"})
    assert response.status_code == 422 and "The end must be after the start." in text(response)


def test_a_doctor_cannot_change_another_doctors_availability(app, client, doctor, create_doctor):
    other = create_doctor()
    with app.app_context():
        profile = db.session.get(DoctorProfile, other.id)
        row = WeeklyAvailability(doctor_id=other.id, department_id=profile.departments[0].id, weekday=1,
                                 start_time=time(9), end_time=time(10), slot_minutes=30)
        leave = Unavailability(doctor_id=other.id, kind="leave", reason="x",
                               starts_at=datetime(2030, 1, 1, tzinfo=timezone.utc),
                               ends_at=datetime(2030, 1, 2, tzinfo=timezone.utc))
        db.session.add_all([row, leave])
        db.session.commit()
        row_id, leave_id = row.id, leave.id
    assert client.post_form(f"/doctor/availability/windows/{row_id}/delete", {}).status_code == 404
    assert client.post_form(f"/doctor/availability/leave/{leave_id}/delete", {}).status_code == 404
    assert len(windows(app, other.id)) == 1


def test_doctor_edits_bio_and_phone_but_not_licence_or_fee(app, client, doctor):
    response = client.post_form("/doctor/profile", {"phone": "202 555 0133", "bio": "New bio",
                                                    "licence_number": "HACK", "consultation_fee": "1"})
    assert response.status_code == 303
    with app.app_context():
        profile = db.session.get(DoctorProfile, doctor.id)
        assert profile.bio == "New bio" and profile.user.phone == "+12025550133"
        assert profile.licence_number != "HACK" and str(profile.consultation_fee) == "100.00"


@pytest.mark.parametrize("role", [Role.PATIENT, Role.CLERK, Role.ADMIN])
def test_availability_pages_are_for_doctors(client, create_user, login, role):
    login(create_user(role))
    assert client.get("/doctor/availability").status_code == 403


def test_a_doctor_without_a_profile_is_told_to_ask_the_admin(client, create_user, login):
    login(create_user(Role.DOCTOR))
    assert "not set up yet" in text(client.get("/doctor/"))
    response = client.get("/doctor/availability")
    assert response.status_code == 404
