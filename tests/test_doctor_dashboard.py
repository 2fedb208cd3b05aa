"""The doctor's schedule: the dashboard (today, the week, pending requests), the actions that move an
appointment through its states, the filtered list, and a constant number of queries."""
from __future__ import annotations

import re
from datetime import datetime, time, timedelta

import pytest
import sqlalchemy as sa

from app.accounts.models import Role, User
from app.appointments.models import Appointment, Status, StatusChange
from app.appointments.queries import schedule_version
from app.doctors.appointments import ON_THE_SCHEDULE, Schedule
from app.events.models import OutboxEvent
from app.extensions import db
from app.timeutil import clinic_today, clinic_zone, utcnow
from tests.helpers import count_statements, text

pytestmark = pytest.mark.clock  # the outcome depends on the clock: see `make test-clock`


@pytest.fixture
def clinic(app, create_doctor, create_patient, create_department):
    """A doctor (signed in by `as_doctor`), two patients and the department they meet in."""

    class Clinic:
        department = create_department("General medicine")
        doctor = create_doctor(full_name="Dr. Amara Okafor", department_ids=[department])
        patients = [create_patient(full_name="Ada Lovelace"), create_patient(full_name="Grace Hopper")]

        def add(self, starts_at: datetime, status: Status = Status.REQUESTED, *, patient=None, doctor=None,
                reason: str = "Persistent cough", minutes: int = 30) -> int:
            with app.app_context():
                appointment = Appointment(patient_id=(patient or self.patients[0]).id,
                                          doctor_id=(doctor or self.doctor).id, department_id=self.department,
                                          starts_at=starts_at, ends_at=starts_at + timedelta(minutes=minutes),
                                          reason=reason, status=status, active=True if status.active else None)
                db.session.add(appointment)
                db.session.commit()
                return appointment.id

    return Clinic()


@pytest.fixture
def as_doctor(clinic, login):
    return login(clinic.doctor)


def local(app, day_offset: int = 0, hour: int = 10, minute: int = 0) -> datetime:
    """A clinic-local wall-clock time, `day_offset` days from today."""
    with app.app_context():
        return datetime.combine(clinic_today() + timedelta(days=day_offset), time(hour, minute), tzinfo=clinic_zone())


def in_hours(hours: float) -> datetime:
    return (utcnow() + timedelta(hours=hours)).replace(microsecond=0)


def section(html: str, testid: str) -> str:
    start = html.index(f'data-testid="{testid}"')
    return html[start:html.index("</ul>", start)]


def load(app, appointment_id: int) -> tuple[Appointment, list[StatusChange], list[OutboxEvent]]:
    with app.app_context():
        appointment = db.session.get(Appointment, appointment_id)
        history = list(db.session.scalars(sa.select(StatusChange).where(StatusChange.appointment_id == appointment_id)
                                          .order_by(StatusChange.id)))
        events = list(db.session.scalars(sa.select(OutboxEvent).where(OutboxEvent.aggregate_type == "appointment",
                                                                      OutboxEvent.aggregate_id == str(appointment_id))
                                         .order_by(OutboxEvent.seq)))
        db.session.expunge_all()
        return appointment, history, events


def act(client, appointment_id: int, action: str, reason: str | None = None, *, htmx: bool = True):
    data = {"next": "/doctor/"} | ({"reason": reason} if reason is not None else {})
    return client.post_form(f"/doctor/appointments/{appointment_id}/{action}", data, htmx=htmx)


# --- the dashboard --------------------------------------------------------------------------------------

def test_the_dashboard_shows_todays_agenda_the_week_and_pending_requests(app, clinic, as_doctor):
    ada, grace = clinic.patients
    clinic.add(local(app, 0, 9), Status.CONFIRMED, patient=ada)
    clinic.add(local(app, 0, 11), Status.CANCELLED_BY_PATIENT, patient=grace, reason="Cancelled visit")
    clinic.add(local(app, 30, 14), Status.REQUESTED, patient=grace, reason="Knee pain")
    clinic.add(local(app, -30, 9), Status.REQUESTED, patient=grace, reason="Long forgotten request")

    html = text(as_doctor.get("/doctor/"))
    agenda, pending, week = section(html, "agenda"), section(html, "pending"), html[html.index('data-testid="week"'):]
    assert "Ada Lovelace" in agenda and "Grace Hopper" not in agenda
    assert "Knee pain" in pending and "Long forgotten request" not in pending and "Accept" in pending
    assert "Ada Lovelace" in week and "Cancelled visit" not in html
    assert 'hx-trigger="every 30s"' in html
    assert re.search(r'<details class="flex-grow-1" id="reason-box-\d+" hx-preserve>', pending)  # survives the refresh

    fragment = text(as_doctor.get("/doctor/", htmx=True))
    assert "<html" not in fragment
    assert 'id="dashboard"' in fragment and "Knee pain" in fragment


def version_of(html: str) -> str:
    return re.search(r'data-version="([^"]+)"', html).group(1)


def refresh(client, version: str):
    return client.http.get("/doctor/", headers={"HX-Request": "true", "X-Schedule-Version": version})


def test_the_refresh_of_an_unchanged_schedule_answers_204_and_any_change_answers_the_new_schedule(
        app, clinic, as_doctor):
    ada, grace = clinic.patients
    visit = clinic.add(local(app, 0, 9), Status.CONFIRMED, patient=ada)
    request_id = clinic.add(local(app, 3, 14), Status.REQUESTED, patient=grace, reason="Knee pain")
    html = text(as_doctor.get("/doctor/"))
    version = version_of(html)
    # the polling is not the doctor's activity: it does not keep the session from its idle timeout
    assert f'hx-headers=\'{{"X-Schedule-Version": "{version}", "HMS-Background": "1"}}\'' in html

    unchanged = refresh(as_doctor, version)
    assert unchanged.status_code == 204 and unchanged.data == b""
    assert refresh(as_doctor, "stale").status_code == 200  # a version the page never had: the whole fragment
    assert as_doctor.get("/doctor/").status_code == 200  # a plain page load always renders

    def changed(change) -> str:
        with app.app_context():
            change()
            db.session.commit()
        response = refresh(as_doctor, version)
        assert response.status_code == 200
        return text(response)

    assert "No requests waiting" in changed(lambda: db.session.execute(
        sa.update(Appointment).where(Appointment.id == request_id).values(status=Status.CONFIRMED)))
    version = version_of(text(as_doctor.get("/doctor/")))
    assert "Lower back pain" in changed(lambda: db.session.execute(
        sa.update(Appointment).where(Appointment.id == visit).values(reason="Lower back pain")))
    version = version_of(text(as_doctor.get("/doctor/")))
    assert "Ada King" in changed(lambda: db.session.execute(
        sa.update(User).where(User.id == ada.id).values(full_name="Ada King")))
    version = version_of(text(as_doctor.get("/doctor/")))
    assert "Ada King" not in changed(lambda: db.session.execute(
        sa.update(Appointment).where(Appointment.id == visit).values(status=Status.CANCELLED_BY_PATIENT)))


def test_the_version_moves_when_a_visit_starts_or_the_day_changes(app, clinic):
    starts_at = in_hours(1)
    clinic.add(starts_at, Status.CONFIRMED)
    with app.test_request_context():
        schedule = Schedule(back="/doctor/")
        since = starts_at - timedelta(days=1)

        def version() -> str:
            return schedule_version(clinic.doctor.id, since, now=schedule.now, today=schedule.today,
                                    statuses=ON_THE_SCHEDULE)

        before = version()
        assert version() == before
        schedule.now = starts_at  # the visit has started: "Cancel" gives way to "No-show"
        assert version() != before
        schedule.now, schedule.today = utcnow(), schedule.today + timedelta(days=1)
        assert version() != before


def test_a_doctor_without_appointments_sees_empty_states(app, clinic, as_doctor):
    html = text(as_doctor.get("/doctor/"))
    assert "No visits today" in html and "No requests waiting" in html


# --- actions --------------------------------------------------------------------------------------------

def test_accepting_a_request_confirms_it_records_history_and_tells_the_patient(app, clinic, as_doctor):
    appointment_id = clinic.add(in_hours(48))
    response = act(as_doctor, appointment_id, "accept")
    assert response.status_code == 200
    fragment = text(response)
    assert "<html" not in fragment and f'data-appointment="{appointment_id}"' in fragment
    assert "Accepted. The patient is told." in fragment and 'data-status="confirmed"' in fragment
    assert "Cancel…" in fragment and "hx-preserve" not in fragment  # a fresh row, not the form left open before

    appointment, history, events = load(app, appointment_id)
    assert appointment.status is Status.CONFIRMED and appointment.active is True
    assert [(h.from_status, h.to_status, h.actor_id) for h in history] == [
        (Status.REQUESTED, Status.CONFIRMED, clinic.doctor.id)]
    assert [e.type for e in events] == ["appointment.confirmed"]
    assert events[0].envelope["actor"] == {"id": clinic.doctor.id, "role": "doctor"}


def test_accepting_without_htmx_redirects_back_with_a_message(app, clinic, as_doctor):
    appointment_id = clinic.add(in_hours(48))
    response = act(as_doctor, appointment_id, "accept", htmx=False)
    assert response.status_code == 303 and response.headers["Location"].endswith("/doctor/")
    assert "Accepted. The patient is told." in text(as_doctor.get("/doctor/"))


def test_declining_needs_a_reason_and_records_it(app, clinic, as_doctor):
    appointment_id = clinic.add(in_hours(48))
    response = act(as_doctor, appointment_id, "decline", "  ")
    assert response.status_code == 422
    fragment = text(response)
    assert f'id="reason-{appointment_id}-error"' in fragment and "Enter a reason." in fragment
    assert f'<label class="form-label" for="reason-{appointment_id}">' in fragment
    assert "<details" in fragment and " open" in fragment
    plain = act(as_doctor, appointment_id, "decline", "", htmx=False)
    assert plain.status_code == 422 and "Enter a reason." in text(plain)
    assert load(app, appointment_id)[0].status is Status.REQUESTED

    response = act(as_doctor, appointment_id, "decline", "I am away at a conference that week.")
    assert response.status_code == 200 and 'data-status="declined"' in text(response)
    appointment, history, events = load(app, appointment_id)
    assert appointment.status is Status.DECLINED and appointment.active is None
    assert appointment.status_reason == "I am away at a conference that week."
    assert history[-1].reason == "I am away at a conference that week."
    assert events[-1].type == "appointment.declined"


def test_cancelling_a_confirmed_visit_needs_a_reason_and_tells_the_patient(app, clinic, as_doctor):
    appointment_id = clinic.add(in_hours(48), Status.CONFIRMED)
    assert act(as_doctor, appointment_id, "cancel").status_code == 422
    response = act(as_doctor, appointment_id, "cancel", "The clinic is closed for maintenance.")
    assert response.status_code == 200 and "Cancelled by the clinic" in text(response)
    appointment, history, events = load(app, appointment_id)
    assert appointment.status is Status.CANCELLED_BY_CLINIC and appointment.active is None
    assert [e.type for e in events] == ["appointment.cancelled"]
    assert events[0].envelope["data"]["reason"] == "The clinic is closed for maintenance."


def test_a_visit_is_checked_in_then_completed(app, clinic, as_doctor):
    appointment_id = clinic.add(in_hours(-0.25), Status.CONFIRMED)
    assert "Check in" in section(text(as_doctor.get("/doctor/appointments?start=")), "appointments")
    response = act(as_doctor, appointment_id, "check-in")
    assert response.status_code == 200 and "Complete" in text(response)
    assert act(as_doctor, appointment_id, "complete").status_code == 200
    appointment, history, events = load(app, appointment_id)
    assert appointment.status is Status.COMPLETED and appointment.active is None
    assert [h.to_status for h in history] == [Status.CHECKED_IN, Status.COMPLETED]
    assert [e.type for e in events] == ["appointment.checked_in", "appointment.completed"]


def test_no_show_only_from_a_confirmed_visit_that_has_started(app, clinic, as_doctor):
    started = clinic.add(in_hours(-1), Status.CONFIRMED)
    later = clinic.add(in_hours(3), Status.CONFIRMED)
    requested = clinic.add(in_hours(-2), Status.REQUESTED)
    html = text(as_doctor.get("/doctor/appointments?start="))
    assert re.findall(r'action="/doctor/appointments/(\d+)/no-show"', html) == [str(started)]

    response = act(as_doctor, later, "no-show")
    assert response.status_code == 409 and "only after the appointment's start" in text(response)
    assert act(as_doctor, requested, "no-show").status_code == 409
    assert act(as_doctor, started, "no-show").status_code == 200
    appointment, _, events = load(app, started)
    assert appointment.status is Status.NO_SHOW and [e.type for e in events] == ["appointment.no_show"]
    assert load(app, later)[0].status is Status.CONFIRMED and load(app, requested)[0].status is Status.REQUESTED


@pytest.mark.parametrize("status, action, reason", [
    (Status.REQUESTED, "complete", None),
    (Status.REQUESTED, "check-in", None),
    (Status.CANCELLED_BY_PATIENT, "accept", None),
    (Status.DECLINED, "decline", "again"),
    (Status.COMPLETED, "cancel", "too late"),
    (Status.CHECKED_IN, "accept", None),
])
def test_a_change_the_rules_refuse_answers_409_with_the_reason(app, clinic, as_doctor, status, action, reason):
    appointment_id = clinic.add(in_hours(-0.5 if status is Status.CHECKED_IN else 24), status)
    response = act(as_doctor, appointment_id, action, reason)
    assert response.status_code == 409
    assert response.mimetype == "text/plain" and "cannot become" in text(response)
    appointment, history, events = load(app, appointment_id)
    assert appointment.status is status and history == [] and events == []


def test_a_refused_change_without_htmx_shows_the_reason_on_an_error_page(app, clinic, as_doctor):
    appointment_id = clinic.add(in_hours(24), Status.CANCELLED_BY_PATIENT)
    response = act(as_doctor, appointment_id, "accept", htmx=False)
    assert response.status_code == 409
    html = text(response)
    assert "<html" in html and "cannot become confirmed" in html


def test_another_doctors_appointment_is_not_found(app, clinic, as_doctor, create_doctor):
    other = create_doctor(department_ids=[clinic.department])
    appointment_id = clinic.add(in_hours(24), doctor=other)
    assert act(as_doctor, appointment_id, "accept").status_code == 404
    assert act(as_doctor, 999_999, "accept").status_code == 404
    assert load(app, appointment_id)[0].status is Status.REQUESTED


@pytest.mark.parametrize("role", [Role.PATIENT, Role.CLERK, Role.ADMIN])
def test_the_schedule_is_for_doctors_only(app, clinic, client, create_user, login, role):
    appointment_id = clinic.add(in_hours(24))
    login(create_user(role))
    assert client.get("/doctor/").status_code == 403
    assert client.get("/doctor/appointments").status_code == 403
    assert act(client, appointment_id, "accept").status_code == 403
    assert load(app, appointment_id)[0].status is Status.REQUESTED


# --- the list -------------------------------------------------------------------------------------------

def test_the_list_filters_by_status_and_clinic_local_dates(app, clinic, as_doctor):
    clinic.add(local(app, 1, 9), Status.CONFIRMED, reason="Tomorrow confirmed")
    clinic.add(local(app, 1, 10), Status.REQUESTED, reason="Tomorrow requested")
    clinic.add(local(app, 3, 0, 10), Status.CONFIRMED, reason="Just after midnight, in three days")
    clinic.add(local(app, 3, 23, 50), Status.CONFIRMED, reason="Just before midnight, in three days")
    clinic.add(local(app, -5, 9), Status.COMPLETED, reason="Last week")

    html = text(as_doctor.get("/doctor/appointments"))
    assert "Tomorrow confirmed" in html and "Last week" not in html  # from today by default

    everything = text(as_doctor.get("/doctor/appointments?start=", htmx=True))
    assert "<html" not in everything and "Last week" in everything

    with app.app_context():
        in_three_days = (clinic_today() + timedelta(days=3)).isoformat()
        tomorrow = (clinic_today() + timedelta(days=1)).isoformat()
    day = text(as_doctor.get(f"/doctor/appointments?start={in_three_days}&end={in_three_days}", htmx=True))
    assert "Just after midnight" in day and "Just before midnight" in day and "Tomorrow" not in day

    confirmed = text(as_doctor.get(f"/doctor/appointments?start={tomorrow}&end={tomorrow}&status=confirmed", htmx=True))
    assert "Tomorrow confirmed" in confirmed and "Tomorrow requested" not in confirmed

    none = text(as_doctor.get("/doctor/appointments?start=&status=no_show"))
    assert "No appointments found" in none


def test_the_list_paginates(app, clinic, as_doctor):
    for n in range(25):
        clinic.add(local(app, 2, 8, 0) + timedelta(minutes=20 * n), Status.CONFIRMED, reason=f"Visit number {n:02d}")
    first = text(as_doctor.get("/doctor/appointments"))
    assert "Visit number 00" in first and "Visit number 19" in first and "Visit number 20" not in first
    assert "Page 1 of 2" in first
    second = text(as_doctor.get("/doctor/appointments?page=2", htmx=True))
    assert "Visit number 20" in second and "Visit number 24" in second and "Visit number 19" not in second


@pytest.mark.parametrize("query, field, message", [
    ("start=2030-05-10&end=2030-05-09", "end", "The end date cannot be before the start date."),
    ("start=not-a-date", "start", "Not a valid date value."),
    ("status=lost", "status", "Not a valid choice."),
])
def test_invalid_filters_answer_422_beside_the_field(app, clinic, as_doctor, query, field, message):
    response = as_doctor.get(f"/doctor/appointments?{query}", htmx=True)
    assert response.status_code == 422
    html = text(response)
    assert re.search(rf'id="{field}-error">\s*{re.escape(message)}', html)
    assert "Check the filters" in html


# --- cost -----------------------------------------------------------------------------------------------



def add_many(app, clinic, patients, departments, first: int, count: int) -> None:
    """Appointments today, across this week and in the coming weeks, in every state, with many patients."""
    statuses = [Status.REQUESTED, Status.CONFIRMED, Status.CHECKED_IN, Status.COMPLETED, Status.NO_SHOW]
    with app.app_context():
        today = clinic_today()
        monday = today - timedelta(days=today.weekday())
        for n in range(first, first + count):
            day = [today, monday + timedelta(days=n % 7), today + timedelta(days=7 + n % 20)][n % 3]
            starts = datetime.combine(day, time(7), tzinfo=clinic_zone()) + timedelta(minutes=10 * n)
            status = statuses[n % len(statuses)]
            db.session.add(Appointment(patient_id=patients[n % len(patients)].id, doctor_id=clinic.doctor.id,
                                       department_id=departments[n % len(departments)], starts_at=starts,
                                       ends_at=starts + timedelta(minutes=10), reason=f"Visit {n}", status=status,
                                       active=True if status.active else None))
        db.session.commit()


@pytest.mark.parametrize("url", ["/doctor/", "/doctor/appointments?start="])
def test_the_schedule_issues_the_same_number_of_statements_for_5_and_100_appointments(
        app, clinic, as_doctor, create_patient, create_department, url):
    few_patients = clinic.patients
    departments = [clinic.department]
    add_many(app, clinic, few_patients, departments, 0, 5)
    few = count_statements(app, as_doctor, url)

    more_patients = [create_patient() for _ in range(12)]
    departments.append(create_department())
    add_many(app, clinic, more_patients, departments, 5, 95)
    html = text(as_doctor.get(url))
    assert html.count('data-testid="appointment"') > 5
    assert count_statements(app, as_doctor, url) == few


def test_the_dashboards_actions_and_its_refresh_share_one_request_queue(app, clinic, as_doctor):
    """An action aborts a refresh in flight (whose answer could predate the action); rows elsewhere do not."""
    clinic.add(in_hours(30), Status.REQUESTED)
    page = text(as_doctor.get("/doctor/"))
    assert 'id="dashboard"' in page and 'hx-sync="#dashboard:drop"' in page
    assert page.count('hx-sync="#dashboard:replace"') >= 2  # accept and decline of the request
    listed = text(as_doctor.get("/doctor/appointments", query_string={"start": ""}))
    assert "hx-sync" not in listed
