"""Appointment notifications, reminders and the no-show sweep: the services with a controlled clock, several
schedulers at once, scheduler processes killed and restarted, and the reminder email end to end."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import datetime, time, timedelta, timezone
from itertools import count
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from app.accounts.models import PatientProfile, User
from app.appointments.models import ACTIVE, Appointment, ReminderSent, Status, StatusChange
from app.appointments.reminders import due_offset, send_due_reminders, sweep_no_shows
from app.appointments.services import book, reschedule, transition
from app.clinic.models import DoctorProfile
from app.config import DEFAULT_TIMEZONE
from app.events.models import OutboxEvent
from app.extensions import db
from app.notifications.catalog import COMMON_VARIABLES, EVENTS
from app.notifications.models import Channel, DeliveryStatus, NotificationTemplate
from app.notifications.services import check_template, record_all_deliveries
from app.scheduling.services import add_window
from app.timeutil import utcnow
from devtools.mailbox import wait_for_messages
from tests.services import ROOT, WorkerProcess, wait_until

pytestmark = pytest.mark.clock  # the outcome depends on the clock: see `make test-clock`

HOUR = timedelta(hours=1)
_minute = count(1)


# --- helpers ------------------------------------------------------------------------------------------

@pytest.fixture
def people(app, create_department, create_doctor, create_patient):
    """A patient, a doctor and the doctor's department (ids and names)."""
    department_id = create_department("Cardiology")
    doctor = create_doctor(full_name="Dr. Amara Okafor", department_ids=[department_id])
    patient = create_patient(full_name="Maria Garcia", email="maria@example.com")
    return {"patient": patient, "doctor": doctor, "department_id": department_id}


def future_start(days: int = 3) -> datetime:
    """A whole hour in the future (UTC) that no other visit of this test uses."""
    base = utcnow().replace(minute=0, second=0, microsecond=0) + timedelta(days=days)
    return base + timedelta(minutes=next(_minute))


def visit(app, people, starts_at: datetime, status: Status = Status.CONFIRMED, *, minutes: int = 30,
          patient_id: int | None = None) -> int:
    """An appointment inserted as it is, in any state and at any time (also in the past)."""
    with app.app_context():
        appointment = Appointment(patient_id=patient_id or people["patient"].id, doctor_id=people["doctor"].id,
                                  department_id=people["department_id"], starts_at=starts_at,
                                  ends_at=starts_at + timedelta(minutes=minutes), status=status,
                                  reason="Check-up", active=True if status in ACTIVE else None)
        db.session.add(appointment)
        db.session.commit()
        return appointment.id


def reminders(app) -> set[tuple[int, int, datetime]]:
    with app.app_context():
        return set(db.session.execute(sa.select(ReminderSent.appointment_id, ReminderSent.offset_minutes,
                                                ReminderSent.starts_at)).all())


def events(app, type_: str) -> list[dict]:
    with app.app_context():
        return [e for e in db.session.scalars(sa.select(OutboxEvent.envelope).where(OutboxEvent.type == type_)
                                              .order_by(OutboxEvent.seq))]


def reminder_keys(app) -> list[tuple[int, int, str]]:
    return [(int(e["aggregate_id"]), e["data"]["offset_minutes"], e["data"]["starts_at"])
            for e in events(app, "appointment.reminder")]


def send(app, now: datetime) -> int:
    with app.app_context():
        try:
            return send_due_reminders(now)
        finally:
            db.session.remove()


def sweep(app, now: datetime) -> int:
    with app.app_context():
        try:
            return sweep_no_shows(now)
        finally:
            db.session.remove()


def status_of(app, appointment_id: int) -> Status:
    with app.app_context():
        return db.session.get(Appointment, appointment_id).status


def at_once(app, work, workers: int = 2) -> list[int]:
    """Run `work(app)` in `workers` threads, each with its own app context (session and connection),
    released together by a barrier; returns each thread's result."""
    barrier = threading.Barrier(workers)
    results: list[int] = []
    errors: list[BaseException] = []

    def run():
        try:
            barrier.wait(10)
            results.append(work(app))
        except BaseException as error:  # noqa: BLE001 - re-raised in the test thread
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert len(results) == workers
    return results


# --- which reminder is due ----------------------------------------------------------------------------

def test_due_offset_picks_the_smallest_offset_whose_time_has_come():
    start = datetime(2026, 11, 25, 14, 30, tzinfo=timezone.utc)
    offsets = [1440, 120]
    assert due_offset(start, start - 25 * HOUR, offsets) is None
    assert due_offset(start, start - 24 * HOUR, offsets) == 1440
    assert due_offset(start, start - 3 * HOUR, offsets) == 1440
    assert due_offset(start, start - 2 * HOUR, offsets) == 120
    assert due_offset(start, start - timedelta(minutes=1), offsets) == 120
    assert due_offset(start, start, offsets) is None


def test_each_offset_is_sent_once_when_it_falls_due(app, people):
    start = future_start()
    appointment_id = visit(app, people, start)
    assert send(app, start - 25 * HOUR) == 0
    assert send(app, start - 24 * HOUR) == 1
    assert send(app, start - 24 * HOUR) == 0  # called again: nothing new
    assert send(app, start - 3 * HOUR) == 0
    assert send(app, start - 2 * HOUR) == 1
    assert send(app, start - HOUR) == 0
    assert send(app, start + HOUR) == 0
    assert reminders(app) == {(appointment_id, 1440, start), (appointment_id, 120, start)}
    assert reminder_keys(app) == [(appointment_id, 1440, start.isoformat()), (appointment_id, 120, start.isoformat())]
    [first, _] = events(app, "appointment.reminder")
    assert first["patient_id"] == people["patient"].id and first["actor"] is None
    assert first["data"]["doctor_id"] == people["doctor"].id and first["data"]["status"] == "confirmed"


def test_a_visit_confirmed_late_gets_only_the_nearest_reminder(app, people):
    start = future_start()
    appointment_id = visit(app, people, start)
    assert send(app, start - HOUR) == 1
    assert send(app, start - timedelta(minutes=30)) == 0
    assert reminders(app) == {(appointment_id, 120, start)}


def test_the_offsets_come_from_the_settings(app, people):
    start = future_start()
    appointment_id = visit(app, people, start)
    app.config["HMS_REMINDER_OFFSETS_MINUTES"] = [60, 10, 60]
    try:
        assert send(app, start - 2 * HOUR) == 0
        assert send(app, start - HOUR) == 1
        assert send(app, start - timedelta(minutes=10)) == 1
    finally:
        app.config["HMS_REMINDER_OFFSETS_MINUTES"] = [1440, 120]
    assert reminders(app) == {(appointment_id, 60, start), (appointment_id, 10, start)}


@pytest.mark.parametrize("status", [Status.REQUESTED, Status.CANCELLED_BY_CLINIC, Status.CANCELLED_BY_PATIENT,
                                    Status.DECLINED, Status.CHECKED_IN])
def test_only_confirmed_visits_are_reminded(app, people, status):
    start = future_start()
    visit(app, people, start, status)
    assert send(app, start - HOUR) == 0
    assert reminders(app) == set() and events(app, "appointment.reminder") == []


def test_a_visit_cancelled_after_the_candidates_were_read_is_not_reminded(app, people, monkeypatch):
    start = future_start()
    appointment_id = visit(app, people, start)
    from app.appointments import reminders as module

    original = module._candidates

    def candidates_then_cancel(now, offsets):
        found = original(now, offsets)
        with app.app_context():  # another request cancels in between
            db.session.get(Appointment, appointment_id).status = Status.CANCELLED_BY_CLINIC
            db.session.commit()
        return found

    monkeypatch.setattr(module, "_candidates", candidates_then_cancel)
    assert send(app, start - HOUR) == 0
    assert reminders(app) == set() and events(app, "appointment.reminder") == []


# --- with the real booking services -------------------------------------------------------------------

@pytest.fixture
def bookable(app, people):
    """The doctor works every day 08:00–18:00 in 30-minute slots."""
    with app.app_context():
        profile = db.session.get(DoctorProfile, people["doctor"].id)
        for weekday in range(7):
            add_window(profile, department_id=people["department_id"], weekday=weekday, start=time(8),
                       end=time(18), slot_minutes=30)
        db.session.commit()
    return people


CLINIC_ZONE = ZoneInfo(os.environ.get("HMS_TIMEZONE", DEFAULT_TIMEZONE))  # the zone the app under test reads


def local(days: int, hour: int, minute: int = 0) -> datetime:
    """A clinic-local time `days` days from today, in UTC."""
    today = datetime.now(CLINIC_ZONE).date()
    at = datetime.combine(today + timedelta(days=days), time(hour, minute), tzinfo=CLINIC_ZONE)
    return at.astimezone(timezone.utc)


def booked(app, people, starts_at: datetime, *, confirm: bool = True) -> int:
    with app.app_context():
        patient = db.session.get(User, people["patient"].id)
        appointment = book(patient, doctor_id=people["doctor"].id, department_id=people["department_id"],
                           starts_at=starts_at, reason="Chest pain when climbing stairs")
        db.session.commit()
        if confirm:
            transition(appointment, Status.CONFIRMED, db.session.get(User, people["doctor"].id))
            db.session.commit()
        return appointment.id


def test_a_rescheduled_visit_gets_new_reminders(app, bookable):
    first, second = local(3, 10), local(5, 11, 30)
    appointment_id = booked(app, bookable, first)
    assert send(app, first - 2 * HOUR) == 1
    with app.app_context():
        appointment = db.session.get(Appointment, appointment_id)
        reschedule(appointment, db.session.get(User, bookable["patient"].id), starts_at=second)
        db.session.commit()
        assert send_due_reminders(second - 2 * HOUR) == 0  # requested again: nothing until the doctor confirms
        transition(db.session.get(Appointment, appointment_id), Status.CONFIRMED,
                   db.session.get(User, bookable["doctor"].id))
        db.session.commit()
    assert send(app, second - 24 * HOUR) == 1
    assert send(app, second - 2 * HOUR) == 1
    assert reminders(app) == {(appointment_id, 120, first), (appointment_id, 1440, second),
                              (appointment_id, 120, second)}
    assert len(events(app, "appointment.reminder")) == 3


# --- several schedulers -------------------------------------------------------------------------------

def test_two_schedulers_at_once_send_each_reminder_exactly_once(app, people):
    start = future_start()
    ids = [visit(app, people, start + timedelta(minutes=n)) for n in range(30)]
    last = start + timedelta(minutes=29)
    for now in (last - 24 * HOUR, last - 2 * HOUR):  # every visit's 1440-minute, then 120-minute reminder
        results = at_once(app, lambda a, now=now: send(a, now))
        assert sum(results) == 30, results
    expected = {(i, offset, start + timedelta(minutes=n)) for n, i in enumerate(ids) for offset in (1440, 120)}
    assert reminders(app) == expected
    keys = reminder_keys(app)
    assert len(keys) == 60 and set(keys) == {(i, o, s.isoformat()) for i, o, s in expected}


def test_the_loser_of_a_race_on_the_same_row_emits_nothing(app, people):
    """Both schedulers pass the candidate read and the row lock (one after the other); the primary key
    refuses the second insert, and its transaction, outbox event included, rolls back."""
    start = future_start()
    appointment_id = visit(app, people, start)
    from app.appointments import reminders as module

    with app.app_context():
        candidates = module._candidates(start - HOUR, [1440, 120])
        assert candidates == [(appointment_id, start, 120)]
        db.session.rollback()
        assert module._send_one(*candidates[0]) is True
        assert module._send_one(*candidates[0]) is False
        assert module._candidates(start - HOUR, [1440, 120]) == []  # a later run does not even try it
        db.session.remove()
    assert reminders(app) == {(appointment_id, 120, start)}
    assert len(events(app, "appointment.reminder")) == 1


class SchedulerProcess(WorkerProcess):
    """`python -m workers run --role scheduler` (only that role: no broker needed)."""

    def start(self, wait: bool = True) -> None:
        self._starts = getattr(self, "_starts", 0) + 1
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed by kill()/terminate()
        self.process = subprocess.Popen([sys.executable, "-m", "workers", "run", "--role", "scheduler"], cwd=ROOT,
                                        env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        if wait:
            wait_until(lambda: self.log().count("scheduler: running every") >= self._starts or not self.running(),
                       timeout=30, message="the scheduler to start")
            assert self.running(), self.log()[-3000:]


@pytest.fixture
def scheduler_env(services):
    from tests.services import worker_env

    return worker_env({**services.settings(), "HMS_SCHEDULER_INTERVAL_SECONDS": "0.1"})


def test_scheduler_processes_killed_restarted_and_doubled_send_each_reminder_once(app, people, scheduler_env,
                                                                                  tmp_path):
    # Due now and for the next half hour at least: 100 visits' 120-minute reminders, 100 visits' 1440-minute
    # ones (none crosses into its 120 minutes while the test runs).
    now = utcnow()
    first_wave = [visit(app, people, now + timedelta(minutes=30, seconds=20 * n)) for n in range(100)]
    first_wave += [visit(app, people, now + timedelta(hours=5, minutes=n)) for n in range(100)]
    first = SchedulerProcess(scheduler_env, tmp_path / "first.log")
    first.start()
    try:
        wait_until(lambda: reminders(app), timeout=30, message="the first reminders")
        first.kill()  # SIGKILL, quite possibly in the middle of the pass
        first.start()
        second = SchedulerProcess(scheduler_env, tmp_path / "second.log")
        second.start()
        try:
            wait_until(lambda: len(reminders(app)) >= 200, timeout=60, message="every first-wave reminder")
            # New visits after the restart: once they are reminded, both schedulers have gone over the first
            # wave again and again.
            later = now + timedelta(hours=8)
            second_wave = [visit(app, people, later + timedelta(minutes=n)) for n in range(20)]
            wait_until(lambda: len(reminders(app)) >= 220, timeout=30, message="every second-wave reminder")
            assert second.running() and first.running(), second.log()[-3000:] + first.log()[-3000:]
        finally:
            second.terminate()
    finally:
        if first.running():
            first.terminate()
    rows = reminders(app)
    assert len(rows) == 220 and {r[0] for r in rows} == set(first_wave + second_wave)
    keys = reminder_keys(app)
    assert len(keys) == len(set(keys)) == 220
    assert set(keys) == {(i, o, s.isoformat()) for i, o, s in rows}
    assert "Traceback" not in first.log() + second.log()


# --- no-shows -----------------------------------------------------------------------------------------

def test_the_sweep_marks_only_overdue_confirmed_visits_as_no_shows(app, people, create_patient):
    now = future_start()
    others = [create_patient().id for _ in range(4)]
    overdue = visit(app, people, now - 2 * HOUR)  # ended 90 minutes ago
    just_ended = visit(app, people, now - timedelta(minutes=50), patient_id=others[0])  # ended 20 minutes ago
    checked_in = visit(app, people, now - 3 * HOUR, Status.CHECKED_IN, patient_id=others[1])
    requested = visit(app, people, now - 4 * HOUR, Status.REQUESTED, patient_id=others[2])
    upcoming = visit(app, people, now + HOUR, patient_id=others[3])
    assert sweep(app, now) == 1
    assert status_of(app, overdue) is Status.NO_SHOW
    for appointment_id, status in ((just_ended, Status.CONFIRMED), (checked_in, Status.CHECKED_IN),
                                   (requested, Status.REQUESTED), (upcoming, Status.CONFIRMED)):
        assert status_of(app, appointment_id) is status
    with app.app_context():
        [change] = db.session.scalars(sa.select(StatusChange).where(StatusChange.appointment_id == overdue))
        assert (change.from_status, change.to_status, change.actor_id) == (Status.CONFIRMED, Status.NO_SHOW, None)
        assert db.session.get(Appointment, overdue).active is None
    [event] = events(app, "appointment.no_show")
    assert event["aggregate_id"] == str(overdue) and event["actor"] is None and event["data"]["status"] == "no_show"
    assert sweep(app, now) == 0
    assert sweep(app, now + timedelta(minutes=11)) == 1  # the other one's 30 minutes are up
    assert status_of(app, just_ended) is Status.NO_SHOW


def test_concurrent_sweeps_mark_each_visit_once(app, people):
    now = future_start()
    ids = [visit(app, people, now - 3 * HOUR - timedelta(minutes=n)) for n in range(150)]  # more than one batch
    results = at_once(app, lambda a: sweep(a, now), workers=3)
    assert sum(results) == 150, results
    with app.app_context():
        changes = db.session.execute(sa.select(StatusChange.appointment_id, sa.func.count())
                                     .where(StatusChange.to_status == Status.NO_SHOW)
                                     .group_by(StatusChange.appointment_id)).all()
    assert sorted(changes) == [(i, 1) for i in sorted(ids)]
    assert len(events(app, "appointment.no_show")) == 150


# --- notifications ------------------------------------------------------------------------------------

@pytest.mark.parametrize("event_type", list(EVENTS))
def test_every_default_template_renders_with_its_sample_data(event_type):
    event = EVENTS[event_type]
    assert event.defaults, event_type
    assert set(event.sample_context()) == set(event.all_variables), "documented variables = sample data"
    for channel, default in event.defaults.items():
        rendered = check_template(event, default.subject, default.body_text, default.body_html)
        assert (rendered.subject is None) is (channel is Channel.SMS)
        assert "None" not in rendered.body_text and "{" not in rendered.body_text
        if channel is Channel.EMAIL:
            assert rendered.body_html and "Maria Garcia" in rendered.body_text + rendered.body_html


def test_appointment_events_name_their_audience():
    assert EVENTS["appointment.requested"].audience == "doctor"
    for name in ("confirmed", "declined", "rescheduled", "cancelled", "completed", "reminder"):
        assert EVENTS[f"appointment.{name}"].audience == "patient"
        assert "appointment_time" in EVENTS[f"appointment.{name}"].variables
    assert "appointment.no_show" not in EVENTS
    assert set(EVENTS["patient.registered"].all_variables) >= set(COMMON_VARIABLES)


def last_envelope(app, type_: str) -> dict:
    return events(app, type_)[-1]


def deliveries(app, envelope: dict) -> dict[Channel, object]:
    with app.app_context():
        rows = {r.channel: r for r in record_all_deliveries([envelope])}
        db.session.commit()
        for row in rows.values():
            db.session.refresh(row)
        db.session.expunge_all()
        return rows


def clinic_time(value: datetime) -> str:
    local_value = value.astimezone(CLINIC_ZONE)
    return f"{local_value:%a %d %b %Y, %H:%M} {local_value.tzname()}"


@pytest.fixture
def templates(app, default_templates):
    return default_templates


def test_a_request_emails_the_doctor_only(app, bookable, templates):
    starts_at = local(3, 9, 30)
    appointment_id = booked(app, bookable, starts_at, confirm=False)
    rows = deliveries(app, last_envelope(app, "appointment.requested"))
    assert list(rows) == [Channel.EMAIL]  # staff get email only: the event has no SMS template
    email = rows[Channel.EMAIL]
    assert email.user_id == bookable["doctor"].id and email.recipient == bookable["doctor"].email
    assert email.status is DeliveryStatus.PENDING
    assert email.subject == f"Appointment request: Maria Garcia, {clinic_time(starts_at)}"
    assert "Dear Dr. Amara Okafor" in email.body_text and "(Cardiology)" in email.body_text
    assert "Reason for the visit: Chest pain when climbing stairs" in email.body_text
    assert "/doctor/appointments" in email.body_text and "Chest pain" in email.body_html
    assert appointment_id


def test_staff_never_get_sms(app, bookable, templates):
    with app.app_context():
        db.session.add(NotificationTemplate(event_type="appointment.requested", channel=Channel.SMS,
                                            body_text="{{ patient_name }} asks for {{ appointment_time }}"))
        db.session.commit()
    booked(app, bookable, local(3, 9, 30), confirm=False)
    rows = deliveries(app, last_envelope(app, "appointment.requested"))
    assert rows[Channel.SMS].status is DeliveryStatus.SKIPPED
    assert rows[Channel.SMS].last_error == "skipped: staff receive email only"
    assert rows[Channel.EMAIL].status is DeliveryStatus.PENDING


def test_confirmation_and_reminder_go_to_the_patient_by_the_chosen_channels(app, bookable, templates):
    starts_at = local(3, 14)
    with app.app_context():
        db.session.get(PatientProfile, bookable["patient"].id).notify_sms = True
        db.session.commit()
    appointment_id = booked(app, bookable, starts_at)
    rows = deliveries(app, last_envelope(app, "appointment.confirmed"))
    assert {r.user_id for r in rows.values()} == {bookable["patient"].id}
    assert rows[Channel.EMAIL].subject == f"Your appointment on {clinic_time(starts_at)} is confirmed"
    assert "Dr. Amara Okafor confirmed your appointment" in rows[Channel.EMAIL].body_text
    assert f"/patient/appointments/{appointment_id}" in rows[Channel.EMAIL].body_text
    assert rows[Channel.SMS].status is DeliveryStatus.PENDING and rows[Channel.SMS].recipient == "+12025550123"
    assert send(app, starts_at - 2 * HOUR) == 1
    reminder = deliveries(app, last_envelope(app, "appointment.reminder"))
    assert reminder[Channel.EMAIL].subject == f"Reminder: your appointment on {clinic_time(starts_at)}"
    assert reminder[Channel.SMS].body_text.startswith("HMS Clinic: reminder, your visit with Dr. Amara Okafor is in ")


@pytest.mark.parametrize("to,actor,reason,expected", [
    (Status.DECLINED, "doctor", "Away that week.", ["cannot accept your request", "Reason: Away that week."]),
    (Status.CANCELLED_BY_CLINIC, "doctor", "The doctor is unwell.",
     ["was cancelled by the clinic", "Reason: The doctor is unwell."]),
    (Status.CANCELLED_BY_PATIENT, "patient", None, ["was cancelled by you"]),
])
def test_declines_and_cancellations_tell_the_patient_why(app, bookable, templates, to, actor, reason, expected):
    starts_at = local(4, 11)
    appointment_id = booked(app, bookable, starts_at, confirm=to is not Status.DECLINED)
    with app.app_context():
        transition(db.session.get(Appointment, appointment_id), to,
                   db.session.get(User, bookable[actor].id), reason=reason)
        db.session.commit()
    type_ = "appointment.declined" if to is Status.DECLINED else "appointment.cancelled"
    rows = deliveries(app, last_envelope(app, type_))
    email = rows[Channel.EMAIL]
    assert email.user_id == bookable["patient"].id and email.status is DeliveryStatus.PENDING
    for phrase in expected:
        assert phrase in email.body_text
    assert clinic_time(starts_at) in email.subject
    if reason is None:
        assert "Reason:" not in email.body_text and "Reason:" not in email.body_html


def test_rescheduling_and_completion_notify_the_patient(app, bookable, templates):
    first, second = local(3, 10), local(6, 15)
    appointment_id = booked(app, bookable, first)
    with app.app_context():
        reschedule(db.session.get(Appointment, appointment_id), db.session.get(User, bookable["patient"].id),
                   starts_at=second)
        db.session.commit()
    email = deliveries(app, last_envelope(app, "appointment.rescheduled"))[Channel.EMAIL]
    assert email.subject == f"Your appointment moved to {clinic_time(second)}"
    assert f"moved from {clinic_time(first)} to {clinic_time(second)}" in email.body_text
    with app.app_context():
        appointment = db.session.get(Appointment, appointment_id)
        doctor = db.session.get(User, bookable["doctor"].id)
        for status in (Status.CONFIRMED, Status.CHECKED_IN, Status.COMPLETED):
            transition(appointment, status, doctor)
        db.session.commit()
    email = deliveries(app, last_envelope(app, "appointment.completed"))[Channel.EMAIL]
    assert email.user_id == bookable["patient"].id and "Thank you for your visit to Dr. Amara Okafor" in email.body_text


def test_an_appointment_id_is_never_taken_for_a_recipient(app, people, templates):
    """Without patient_id in the envelope, the patient comes from the data, not from the aggregate id."""
    start = future_start()
    appointment_id = visit(app, people, start)
    envelope = {"id": "00000000-0000-4000-8000-000000000001", "type": "appointment.confirmed",
                "occurred_at": utcnow().isoformat(), "aggregate_type": "appointment",
                "aggregate_id": str(people["doctor"].id), "patient_id": None,
                "data": {"doctor_id": people["doctor"].id, "patient_id": people["patient"].id,
                         "department_id": people["department_id"], "starts_at": start.isoformat(),
                         "ends_at": (start + HOUR).isoformat(), "status": "confirmed"}}
    rows = deliveries(app, envelope)
    assert {r.user_id for r in rows.values()} == {people["patient"].id}
    assert appointment_id


# --- end to end -----------------------------------------------------------------------------------------

def test_the_reminder_email_reaches_the_patient_through_the_worker(app, people, worker, mailbox, default_templates):
    worker.terminate()
    worker.env["HMS_SCHEDULER_INTERVAL_SECONDS"] = "0.2"
    worker.start()
    starts_at = utcnow() + timedelta(minutes=100)
    appointment_id = visit(app, people, starts_at)
    [message] = wait_for_messages(mailbox, 1, timeout=60,
                                  predicate=lambda m: m["To"] == "maria@example.com"
                                  and m["Subject"].startswith("Reminder"))
    assert message["Subject"] == f"Reminder: your appointment on {clinic_time(starts_at)}"
    body = message.get_body(("plain",)).get_content()
    assert "Dear Maria Garcia" in body and "Dr. Amara Okafor (Cardiology) in 2 hours" in body
    assert f"/patient/appointments/{appointment_id}" in body
    assert reminders(app) == {(appointment_id, 120, starts_at)}
    assert "scheduler: 1 reminder(s) sent" in worker.log()
