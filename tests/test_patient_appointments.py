"""The patient's appointment pages: booking step by step, my appointments, reschedule and cancel."""
from __future__ import annotations

import re
from datetime import datetime, time, timedelta, timezone
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from app.accounts.models import User
from app.appointments.models import Appointment, Status, StatusChange
from app.appointments.services import transition
from app.clinic.models import DoctorProfile
from app.events.models import OutboxEvent
from app.extensions import db
from app.scheduling.models import WeeklyAvailability
from app.timeutil import clinic_today, utcnow
from tests.conftest import DEFAULT_PASSWORD
from tests.helpers import Client, text

pytestmark = pytest.mark.clock  # the outcome depends on the clock: see `make test-clock`


def open_every_day(app, doctor_id: int) -> int:
    """08:00-18:00 in 30-minute slots, every day, in the doctor's first department (returned)."""
    with app.app_context():
        department_id = db.session.get(DoctorProfile, doctor_id).departments[0].id
        for weekday in range(7):
            db.session.add(WeeklyAvailability(doctor_id=doctor_id, department_id=department_id, weekday=weekday,
                                              start_time=time(8), end_time=time(18), slot_minutes=30))
        db.session.commit()
        return department_id


def local_time(app, days_ahead: int, hour: int, minute: int = 0) -> datetime:
    """An aware UTC datetime for a clinic-local wall-clock time `days_ahead` days from today."""
    with app.app_context():
        day = clinic_today() + timedelta(days=days_ahead)
    zone = ZoneInfo(app.config["HMS_TIMEZONE"])
    return datetime.combine(day, time(hour, minute), tzinfo=zone).astimezone(timezone.utc)


def quoted(start: datetime) -> str:
    return quote(start.isoformat())


def signed_in(app, user: User) -> Client:
    client = Client(app)
    response = client.sign_in(user.email, DEFAULT_PASSWORD)
    assert response.status_code == 303
    return client


def booking(doctor, start: datetime, reason: str | None = "Persistent cough") -> dict:
    data = {"department": doctor.department_id, "doctor": doctor.id, "start": start.isoformat()}
    if reason is not None:
        data["reason"] = reason
    return data


def book_on_the_page(client: Client, doctor, start: datetime) -> int:
    response = client.post_form("/patient/book", booking(doctor, start))
    assert response.status_code == 303, text(response)[:500]
    return appointment_id_from(response)


def appointment_id_from(response) -> int:
    location = response.headers.get("HX-Redirect") or response.headers["Location"]
    return int(re.search(r"/patient/appointments/(\d+)$", location).group(1))


def events_of(app, appointment_id: int) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(sa.select(OutboxEvent.type).where(
            OutboxEvent.aggregate_type == "appointment", OutboxEvent.aggregate_id == str(appointment_id))
            .order_by(OutboxEvent.seq)))


def load(app, appointment_id: int) -> Appointment:
    with app.app_context():
        appointment = db.session.get(Appointment, appointment_id)
        _ = appointment.history
        db.session.expunge_all()
        return appointment


def insert_appointment(app, patient, doctor, starts_at: datetime, status: Status = Status.REQUESTED) -> int:
    """An appointment written directly (e.g. one that starts too soon to be booked)."""
    with app.app_context():
        appointment = Appointment(patient_id=patient.id, doctor_id=doctor.id, department_id=doctor.department_id,
                                  starts_at=starts_at, ends_at=starts_at + timedelta(minutes=30), status=status,
                                  reason="Check-up", active=True if status.active else None)
        db.session.add(appointment)
        db.session.add(StatusChange(appointment=appointment, from_status=None, to_status=status,
                                    actor_id=patient.id, starts_at=starts_at))
        db.session.commit()
        return appointment.id


def as_doctor(app, doctor, appointment_id: int, to: Status, reason: str | None = None) -> None:
    with app.app_context():
        transition(db.session.get(Appointment, appointment_id), to, db.session.get(User, doctor.id), reason=reason)
        db.session.commit()


@pytest.fixture
def doctor(app, create_doctor, create_department):
    user = create_doctor(full_name="Dr. Ada Heart", specialty="Cardiologist",
                         department_ids=[create_department("Cardiology")])
    user.department_id = open_every_day(app, user.id)
    return user


@pytest.fixture
def patient(create_patient):
    return create_patient(full_name="Maria Garcia")


@pytest.fixture
def patient_client(app, patient) -> Client:
    return signed_in(app, patient)


# --- booking ------------------------------------------------------------------------------------------

def test_each_booking_step_answers_its_fragment_for_htmx_and_the_whole_page_without(app, doctor, patient_client):
    start = local_time(app, 2, 10)
    day = start.astimezone(ZoneInfo(app.config["HMS_TIMEZONE"])).date().isoformat()
    dep, doc = f"department={doctor.department_id}", f"doctor={doctor.id}"
    steps = {
        "": ('id="book-department"', None),
        f"?{dep}": ('<div id="book-doctor">', 'data-testid="doctor-choices"'),
        f"?{dep}&{doc}": ('<div id="book-doctor">', 'data-testid="day-choices"'),
        f"?{dep}&{doc}&day={day}": ('<div id="book-day">', 'data-testid="time-choices"'),
        f"?{dep}&{doc}&day={day}&start={quoted(start)}": (
            '<div id="book-slot">', 'data-testid="booking-form"'),
    }
    for query, (root, marker) in steps.items():
        page = patient_client.get(f"/patient/book{query}")
        assert page.status_code == 200 and "<html" in text(page) and "Cardiology" in text(page)
        if marker:
            assert marker in text(page)
            fragment = patient_client.get(f"/patient/book{query}", htmx=True)
            assert fragment.status_code == 200 and "Vary" in fragment.headers
            html = text(fragment)
            assert "<html" not in html and html.lstrip().startswith(root) and marker in html
            assert 'data-testid="step-department"' not in html
    confirm = text(patient_client.get(f"/patient/book?{dep}&{doc}&start={quoted(start)}"))
    assert "10:00" in confirm and "(30 minutes)" in confirm and "Dr. Ada Heart" in confirm
    assert 'name="reason"' in confirm
    assert "hx-push-url" in confirm and "htmx-indicator" in confirm


def test_odd_or_partial_booking_links_still_give_a_page(app, doctor, patient_client):
    assert patient_client.get("/patient/book?department=x&doctor=y&day=z&start=w").status_code == 200
    from_directory = text(patient_client.get(f"/patient/book?doctor={doctor.id}"))
    assert 'data-testid="day-choices"' in from_directory and "Doctor in Cardiology" in from_directory


def test_a_time_that_is_no_longer_free_goes_back_to_the_choice_of_time(app, doctor, patient_client):
    off_grid = quoted(local_time(app, 2, 9, 7))
    html = text(patient_client.get(f"/patient/book?department={doctor.department_id}&doctor={doctor.id}"
                                   f"&start={off_grid}"))
    assert "That time is no longer free" in html and 'data-testid="booking-form"' not in html


def test_booking_creates_a_requested_appointment_with_history_and_an_event(app, doctor, patient, patient_client):
    start = local_time(app, 2, 10)
    response = patient_client.post_form("/patient/book", booking(doctor, start))
    assert response.status_code == 303
    appointment_id = appointment_id_from(response)
    appointment = load(app, appointment_id)
    assert appointment.status is Status.REQUESTED and appointment.patient_id == patient.id
    assert appointment.starts_at == start and appointment.reason == "Persistent cough"
    assert [(h.from_status, h.to_status) for h in appointment.history] == [(None, Status.REQUESTED)]
    assert events_of(app, appointment_id) == ["appointment.requested"]
    page = text(patient_client.get(response.headers["Location"]))
    assert "Requested — Dr. Ada Heart will confirm." in page and "Persistent cough" in page


def test_booking_over_htmx_answers_with_hx_redirect(app, doctor, patient_client):
    response = patient_client.post_form("/patient/book", booking(doctor, local_time(app, 3, 11)), htmx=True)
    assert response.status_code == 204
    assert load(app, appointment_id_from(response)).status is Status.REQUESTED


def test_a_taken_slot_is_refused_with_409_and_the_nearest_free_times(app, doctor, create_patient, patient_client):
    start = local_time(app, 2, 10)
    first = signed_in(app, create_patient())
    assert first.post_form("/patient/book", booking(doctor, start)).status_code == 303
    response = patient_client.post_form("/patient/book", booking(doctor, start, "Chest pain"))
    html = text(response)
    assert response.status_code == 409 and "just taken" in html
    alternatives = re.findall(r'name="start" value="([^"]+)"', html.split('data-testid="alternatives"')[1])
    assert alternatives and start.isoformat() not in alternatives
    assert "Chest pain" in html  # the reason is kept for the next try
    assert book_on_the_page(patient_client, doctor, datetime.fromisoformat(alternatives[0]))


@pytest.mark.parametrize("case", ["past", "horizon", "off_grid"])
def test_times_that_are_not_bookable_are_refused_with_a_message(app, doctor, patient_client, case):
    horizon = app.config["HMS_BOOKING_HORIZON_DAYS"]
    if case == "past":
        start, status, message = local_time(app, -1, 10), 422, "already passed"
    elif case == "horizon":
        app.config["HMS_BOOKING_HORIZON_DAYS"] = 2
        start, status, message = local_time(app, 5, 10), 422, "up to 2 days ahead"
    else:
        start, status, message = local_time(app, 2, 9, 7), 409, "no longer available"
    try:
        response = patient_client.post_form("/patient/book", booking(doctor, start))
    finally:
        app.config["HMS_BOOKING_HORIZON_DAYS"] = horizon
    assert response.status_code == status and message in text(response)
    assert 'data-testid="booking-error"' in text(response)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Appointment)) == 0


def test_a_patient_cannot_be_in_two_appointments_at_once(app, doctor, create_doctor, create_department, patient_client):
    other = create_doctor(full_name="Dr. Bo Skin", department_ids=[create_department("Dermatology")])
    other.department_id = open_every_day(app, other.id)
    start = local_time(app, 2, 10)
    assert patient_client.post_form("/patient/book", booking(doctor, start)).status_code == 303
    response = patient_client.post_form("/patient/book", booking(other, start))
    assert response.status_code == 409 and "You already have an appointment at that time." in text(response)


def test_a_missing_reason_is_refused_beside_the_field(app, doctor, patient_client):
    for reason in (None, "   ", "x" * 501):
        response = patient_client.post_form("/patient/book", booking(doctor, local_time(app, 2, 10), reason))
        html = text(response)
        assert response.status_code == 422 and 'id="reason-error"' in html
        assert re.search(r'data-field="reason".*?(Enter the reason for your visit|at most 500)', html, re.S)
        assert 'data-testid="booking-form"' in html  # the confirm step, with the chosen time, stays
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Appointment)) == 0


# --- my appointments and the appointment page --------------------------------------------------------------

def test_my_appointments_lists_upcoming_and_past(app, doctor, patient, patient_client):
    empty = text(patient_client.get("/patient/appointments"))
    assert "No upcoming appointments" in empty and "Nothing here yet" in empty
    assert "You have no upcoming appointments." in text(patient_client.get("/patient/"))
    book_on_the_page(patient_client, doctor, local_time(app, 2, 10))
    insert_appointment(app, patient, doctor, local_time(app, -3, 9), Status.COMPLETED)
    html = text(patient_client.get("/patient/appointments"))
    upcoming, past = html.split('data-testid="upcoming"')[1].split('data-testid="past"')
    assert "Requested" in upcoming and "Completed" not in upcoming and "Dr. Ada Heart" in upcoming
    assert "Completed" in past and "Cardiology" in past
    assert local_time(app, 2, 10).astimezone(ZoneInfo(app.config["HMS_TIMEZONE"])).strftime("%H:%M") == "10:00"
    assert "10:00" in upcoming
    home = text(patient_client.get("/patient/"))
    assert "Your next appointment" in home and "Dr. Ada Heart" in home


def test_another_patients_appointment_is_not_found(app, doctor, create_patient, patient, patient_client):
    appointment_id = insert_appointment(app, create_patient(), doctor, local_time(app, 3, 10))
    base = f"/patient/appointments/{appointment_id}"
    assert patient_client.get(base).status_code == 404
    assert patient_client.get(f"{base}/reschedule").status_code == 404
    move = {"start": local_time(app, 4, 10).isoformat()}
    assert patient_client.post_form(f"{base}/reschedule", move).status_code == 404
    assert patient_client.post_form(f"{base}/cancel", {}).status_code == 404
    assert load(app, appointment_id).status is Status.REQUESTED


def test_cancelling_before_the_cutoff(app, doctor, patient_client):
    appointment_id = book_on_the_page(patient_client, doctor, local_time(app, 3, 10))
    page = text(patient_client.get(f"/patient/appointments/{appointment_id}"))
    assert "Cancel appointment" in page and "Reschedule" in page and "hx-confirm" in page
    response = patient_client.post_form(f"/patient/appointments/{appointment_id}/cancel", {}, htmx=True)
    assert response.status_code == 204 and response.headers["HX-Redirect"].endswith(f"/appointments/{appointment_id}")
    appointment = load(app, appointment_id)
    assert appointment.status is Status.CANCELLED_BY_PATIENT and appointment.active is None
    assert [h.to_status for h in appointment.history] == [Status.REQUESTED, Status.CANCELLED_BY_PATIENT]
    assert events_of(app, appointment_id) == ["appointment.requested", "appointment.cancelled"]
    page = text(patient_client.get(f"/patient/appointments/{appointment_id}"))
    assert "Cancelled by you" in page and "Cancel appointment" not in page


def test_cancelling_after_the_cutoff_is_refused(app, doctor, patient, patient_client):
    appointment_id = insert_appointment(app, patient, doctor, utcnow() + timedelta(hours=2), Status.CONFIRMED)
    page = text(patient_client.get(f"/patient/appointments/{appointment_id}"))
    assert "Less than 24 hours to go: please call the clinic to change or cancel." in page
    assert "Cancel appointment" not in page and "/reschedule" not in page
    response = patient_client.post_form(f"/patient/appointments/{appointment_id}/cancel", {})
    assert response.status_code == 409 and "too late" in text(response)
    assert patient_client.post_form(f"/patient/appointments/{appointment_id}/cancel", {}, htmx=True).status_code == 409
    assert patient_client.get(f"/patient/appointments/{appointment_id}/reschedule").status_code == 409
    assert load(app, appointment_id).status is Status.CONFIRMED
    assert events_of(app, appointment_id) == []


def test_the_cutoff_follows_the_setting(app, doctor, patient, patient_client):
    appointment_id = insert_appointment(app, patient, doctor, local_time(app, 3, 10))
    cutoff = app.config["HMS_CANCEL_CUTOFF_HOURS"]
    app.config["HMS_CANCEL_CUTOFF_HOURS"] = 24 * 10
    try:
        response = patient_client.post_form(f"/patient/appointments/{appointment_id}/cancel", {})
    finally:
        app.config["HMS_CANCEL_CUTOFF_HOURS"] = cutoff
    assert response.status_code == 409 and load(app, appointment_id).status is Status.REQUESTED


def test_rescheduling_moves_the_appointment_and_asks_the_doctor_again(app, doctor, patient_client):
    start, new_start = local_time(app, 2, 10), local_time(app, 4, 15, 30)
    appointment_id = book_on_the_page(patient_client, doctor, start)
    as_doctor(app, doctor, appointment_id, Status.CONFIRMED)
    base = f"/patient/appointments/{appointment_id}/reschedule"
    picker = patient_client.get(base, htmx=True)
    assert picker.status_code == 200 and text(picker).lstrip().startswith('<section')
    assert 'id="reschedule"' in text(picker)
    assert 'data-testid="day-choices"' in text(picker) and "<html" not in text(picker)
    day = new_start.astimezone(ZoneInfo(app.config["HMS_TIMEZONE"])).date().isoformat()
    times = text(patient_client.get(f"{base}?day={day}", htmx=True))
    assert "15:30" in times
    full = text(patient_client.get(f"{base}?day={day}&start={quoted(new_start)}"))
    assert "<html" in full and 'data-testid="reschedule-form"' in full and "Move my appointment" in full
    response = patient_client.post_form(base, {"start": new_start.isoformat()})
    assert response.status_code == 303
    appointment = load(app, appointment_id)
    assert appointment.starts_at == new_start and appointment.status is Status.REQUESTED
    assert [h.to_status for h in appointment.history] == [Status.REQUESTED, Status.CONFIRMED, Status.REQUESTED]
    assert events_of(app, appointment_id)[-1] == "appointment.rescheduled"
    page = text(patient_client.get(f"/patient/appointments/{appointment_id}"))
    assert "Moved — Dr. Ada Heart will confirm the new time." in page and "Moved to" in page


def test_rescheduling_to_a_taken_time_offers_the_nearest_free_ones(app, doctor, create_patient, patient_client):
    taken = local_time(app, 4, 11)
    signed_in(app, create_patient()).post_form("/patient/book", booking(doctor, taken))
    appointment_id = book_on_the_page(patient_client, doctor, local_time(app, 2, 10))
    response = patient_client.post_form(f"/patient/appointments/{appointment_id}/reschedule",
                                        {"start": taken.isoformat()})
    html = text(response)
    assert response.status_code == 409 and "just taken" in html and 'data-testid="alternatives"' in html
    assert load(app, appointment_id).starts_at == local_time(app, 2, 10)


def test_a_declined_appointment_shows_the_doctors_reason(app, doctor, patient_client):
    appointment_id = book_on_the_page(patient_client, doctor, local_time(app, 2, 10))
    as_doctor(app, doctor, appointment_id, Status.DECLINED, reason="Please see a GP first.")
    page = text(patient_client.get(f"/patient/appointments/{appointment_id}"))
    notice = page.split('data-testid="clinic-reason"')[1].split("</div>")[0]
    assert "declined this request" in notice and "Please see a GP first." in notice
    assert "Cancel appointment" not in page and "Less than" not in page
