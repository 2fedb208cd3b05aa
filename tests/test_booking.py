"""Booking rules and the appointment life cycle, against the real database, concurrency included."""
from __future__ import annotations

import threading
from zoneinfo import ZoneInfo
from datetime import datetime, time, timedelta

import pytest
import sqlalchemy as sa

from app.accounts.models import Role, User
from app.appointments.models import Appointment, Status, StatusChange
from app.appointments.services import (TRANSITIONS, BookingError, TransitionError, book, bookable_slots, reschedule,
                                       transition)
from app.clinic.models import DoctorProfile
from app.events.models import OutboxEvent
from app.extensions import db
from app.scheduling.models import WeeklyAvailability
from app.timeutil import clinic_today, utcnow
from app.transactions import retrying

pytestmark = pytest.mark.clock  # the outcome depends on the clock: see `make test-clock`


def open_every_day(app, doctor_id: int, start=time(8), end=time(18), minutes=30) -> int:
    with app.app_context():
        department_id = db.session.get(DoctorProfile, doctor_id).departments[0].id
        for weekday in range(7):
            db.session.add(WeeklyAvailability(doctor_id=doctor_id, department_id=department_id, weekday=weekday,
                                              start_time=start, end_time=end, slot_minutes=minutes))
        db.session.commit()
        return department_id


def a_slot(app, doctor_id: int, days_ahead: int = 3, index: int = 0):
    with app.app_context():
        day = clinic_today() + timedelta(days=days_ahead)
        return bookable_slots([doctor_id], day, day)[doctor_id][index]


def do_book(app, patient_id: int, doctor_id: int, department_id: int, starts_at: datetime, reason="Check-up"):
    with app.app_context():
        patient = db.session.get(User, patient_id)
        appointment = retrying(lambda: book(patient, doctor_id=doctor_id, department_id=department_id,
                                            starts_at=starts_at, reason=reason))
        db.session.commit()
        return appointment.id


@pytest.fixture
def doctor(app, create_doctor):
    user = create_doctor()
    user.department_id = open_every_day(app, user.id)
    return user


def load(app, appointment_id: int) -> Appointment:
    with app.app_context():
        appointment = db.session.get(Appointment, appointment_id)
        _ = appointment.history
        db.session.expunge_all()
        return appointment


def test_booking_creates_a_requested_appointment_with_history_and_event(app, doctor, create_patient):
    patient = create_patient()
    slot = a_slot(app, doctor.id)
    appointment = load(app, do_book(app, patient.id, doctor.id, doctor.department_id, slot.start))
    assert appointment.status is Status.REQUESTED and appointment.active is True
    assert (appointment.starts_at, appointment.ends_at) == (slot.start, slot.end)
    assert [(h.from_status, h.to_status) for h in appointment.history] == [(None, Status.REQUESTED)]
    with app.app_context():
        event = db.session.scalar(sa.select(OutboxEvent).where(OutboxEvent.type == "appointment.requested"))
        assert event.envelope["data"]["doctor_id"] == doctor.id and event.envelope["patient_id"] == patient.id


def test_a_booked_slot_is_no_longer_offered(app, doctor, create_patient):
    slot = a_slot(app, doctor.id)
    do_book(app, create_patient().id, doctor.id, doctor.department_id, slot.start)
    assert a_slot(app, doctor.id).start != slot.start


def test_fifty_simultaneous_requests_for_one_slot_book_exactly_one(app, doctor, create_patient):
    slot = a_slot(app, doctor.id)
    patients = [create_patient().id for _ in range(50)]
    results: list[str] = []
    barrier = threading.Barrier(50)

    def attempt(patient_id: int):
        barrier.wait()
        try:
            do_book(app, patient_id, doctor.id, doctor.department_id, slot.start)
            results.append("booked")
        except BookingError as error:
            results.append(error.code)
        except Exception as error:  # noqa: BLE001 - a server error would be a failure of the test
            results.append(f"error: {error!r}")

    threads = [threading.Thread(target=attempt, args=(p,)) for p in patients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(results) == ["booked"] + ["slot_taken"] * 49
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Appointment)
                                 .where(Appointment.doctor_id == doctor.id, Appointment.active.is_(True))) == 1


def test_one_patient_booking_fifty_doctors_at_the_same_time_gets_one(app, create_doctor, create_department,
                                                                    create_patient):
    department = create_department()
    doctors = [create_doctor(department_ids=[department]).id for _ in range(50)]
    for doctor_id in doctors:
        open_every_day(app, doctor_id)
    slot = a_slot(app, doctors[0])
    patient = create_patient().id
    results: list[str] = []
    barrier = threading.Barrier(50)

    def attempt(doctor_id: int):
        barrier.wait()
        try:
            do_book(app, patient, doctor_id, department, slot.start)
            results.append("booked")
        except BookingError as error:
            results.append(error.code)
        except Exception as error:  # noqa: BLE001
            results.append(f"error: {error!r}")

    threads = [threading.Thread(target=attempt, args=(d,)) for d in doctors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(results) == ["booked"] + ["patient_overlap"] * 49


def test_the_database_itself_refuses_a_second_active_appointment_in_a_slot(app, doctor, create_patient):
    """Even past the service's checks (a raw insert), the unique key holds."""
    slot = a_slot(app, doctor.id)
    first, second = create_patient().id, create_patient().id
    do_book(app, first, doctor.id, doctor.department_id, slot.start)
    with app.app_context(), pytest.raises(sa.exc.IntegrityError, match="uq_appointments_doctor_slot"):
        db.session.add(Appointment(patient_id=second, doctor_id=doctor.id, department_id=doctor.department_id,
                                   starts_at=slot.start, ends_at=slot.end, reason="x", status=Status.REQUESTED,
                                   active=True))
        db.session.commit()


def test_a_cancelled_slot_can_be_booked_again(app, doctor, create_patient):
    slot = a_slot(app, doctor.id)
    first = create_patient()
    appointment_id = do_book(app, first.id, doctor.id, doctor.department_id, slot.start)
    with app.app_context():
        transition(db.session.get(Appointment, appointment_id), Status.CANCELLED_BY_PATIENT,
                   db.session.get(User, first.id))
        db.session.commit()
    do_book(app, create_patient().id, doctor.id, doctor.department_id, slot.start)


@pytest.mark.parametrize("when,code,message", [
    ("past", "past", "already passed"),
    ("horizon", "horizon", "up to 90 days ahead"),
    ("off-grid", "slot_taken", "no longer available"),
    ("outside", "slot_taken", "no longer available"),
])
def test_refused_times_say_why(app, doctor, create_patient, when, code, message):
    patient = create_patient()
    with app.app_context():
        today = clinic_today()
    slot = a_slot(app, doctor.id)
    starts_at = {
        "past": utcnow() - timedelta(hours=1),
        "horizon": slot.start + timedelta(days=120),
        "off-grid": slot.start + timedelta(minutes=7),
        "outside": datetime.combine(today + timedelta(days=2), time(21), tzinfo=ZoneInfo(app.config["HMS_TIMEZONE"])),
    }[when]
    with pytest.raises(BookingError) as refused:
        do_book(app, patient.id, doctor.id, doctor.department_id, starts_at)
    assert refused.value.code == code and message in str(refused.value)


def test_a_taken_slot_offers_the_nearest_free_ones(app, doctor, create_patient):
    slot = a_slot(app, doctor.id, index=4)
    do_book(app, create_patient().id, doctor.id, doctor.department_id, slot.start)
    with pytest.raises(BookingError) as refused:
        do_book(app, create_patient().id, doctor.id, doctor.department_id, slot.start)
    alternatives = [s.start for s in refused.value.alternatives]
    assert len(alternatives) == 3 and slot.start not in alternatives
    assert all(abs(a - slot.start) <= timedelta(hours=1) for a in alternatives)


# --- transitions -------------------------------------------------------------------------------------

ACTORS = {"patient": Role.PATIENT, "doctor": Role.DOCTOR, "admin": Role.ADMIN}


def appointment_in(app, doctor, patient, status: Status, hours_ahead: float = 72) -> int:
    starts = utcnow().replace(microsecond=0) + timedelta(hours=hours_ahead)
    with app.app_context():
        appointment = Appointment(patient_id=patient.id, doctor_id=doctor.id, department_id=doctor.department_id,
                                  starts_at=starts, ends_at=starts + timedelta(minutes=30), reason="x", status=status,
                                  active=True if status in (Status.REQUESTED, Status.CONFIRMED, Status.CHECKED_IN)
                                  else None)
        db.session.add(appointment)
        db.session.commit()
        return appointment.id


@pytest.mark.parametrize("source", list(Status))
@pytest.mark.parametrize("target", list(Status))
def test_every_transition_is_allowed_or_refused_by_the_table(app, doctor, create_patient, create_user, source,
                                                             target):
    patient = create_patient()
    # A no-show is possible only after the start; every other change is tried on a visit in three days.
    appointment_id = appointment_in(app, doctor, patient, source, hours_ahead=-1 if target is Status.NO_SHOW else 72)
    rule = TRANSITIONS.get((source, target))
    actor_id = (patient.id if rule and "patient" in rule.roles else
                doctor.id if rule and "doctor" in rule.roles else doctor.id)
    with app.app_context():
        appointment = db.session.get(Appointment, appointment_id)
        actor = db.session.get(User, actor_id)
        if rule is None:
            with pytest.raises(TransitionError, match="cannot become"):
                transition(appointment, target, actor, reason="because")
            return
        transition(appointment, target, actor, reason="because")
        db.session.commit()
        assert appointment.status is target
        assert appointment.active is (True if target in (Status.REQUESTED, Status.CONFIRMED, Status.CHECKED_IN)
                                      else None)
        change = db.session.scalar(sa.select(StatusChange).where(StatusChange.appointment_id == appointment_id))
        assert (change.from_status, change.to_status, change.actor_id) == (source, target, actor_id)
        event = db.session.scalar(sa.select(OutboxEvent).where(OutboxEvent.aggregate_type == "appointment",
                                                               OutboxEvent.aggregate_id == str(appointment_id)))
        assert event.type == f"appointment.{rule.event}"


def test_the_wrong_person_cannot_make_a_change(app, doctor, create_patient):
    patient = create_patient()
    appointment_id = appointment_in(app, doctor, patient, Status.REQUESTED)
    with app.app_context():
        appointment = db.session.get(Appointment, appointment_id)
        with pytest.raises(TransitionError, match="You cannot make this change."):
            transition(appointment, Status.CONFIRMED, db.session.get(User, patient.id))


def test_a_no_show_only_after_the_start(app, doctor, create_patient):
    appointment_id = appointment_in(app, doctor, create_patient(), Status.CONFIRMED, hours_ahead=1)
    with app.app_context():
        with pytest.raises(TransitionError, match="only after the appointment's start"):
            transition(db.session.get(Appointment, appointment_id), Status.NO_SHOW, db.session.get(User, doctor.id))


@pytest.mark.parametrize("target", [Status.DECLINED, Status.CANCELLED_BY_CLINIC])
def test_declining_or_cancelling_for_the_clinic_needs_a_reason(app, doctor, create_patient, target):
    appointment_id = appointment_in(app, doctor, create_patient(), Status.REQUESTED)
    with app.app_context():
        with pytest.raises(TransitionError, match="Give a reason"):
            transition(db.session.get(Appointment, appointment_id), target, db.session.get(User, doctor.id),
                       reason="  ")


def test_a_patient_cannot_cancel_or_reschedule_after_the_cutoff(app, doctor, create_patient):
    patient = create_patient()
    soon = appointment_in(app, doctor, patient, Status.CONFIRMED, hours_ahead=23)
    later = appointment_in(app, doctor, patient, Status.CONFIRMED, hours_ahead=25)
    with app.app_context():
        actor = db.session.get(User, patient.id)
        with pytest.raises(TransitionError, match="too late"):
            transition(db.session.get(Appointment, soon), Status.CANCELLED_BY_PATIENT, actor)
        with pytest.raises(TransitionError, match="too late"):
            reschedule(db.session.get(Appointment, soon), actor, starts_at=utcnow() + timedelta(days=5))
        transition(db.session.get(Appointment, later), Status.CANCELLED_BY_PATIENT, actor)
        db.session.commit()


def test_rescheduling_moves_the_visit_and_asks_the_doctor_again(app, doctor, create_patient):
    patient = create_patient()
    first = a_slot(app, doctor.id)
    appointment_id = do_book(app, patient.id, doctor.id, doctor.department_id, first.start)
    with app.app_context():
        transition(db.session.get(Appointment, appointment_id), Status.CONFIRMED, db.session.get(User, doctor.id))
        db.session.commit()
    second = a_slot(app, doctor.id, days_ahead=4, index=2)
    with app.app_context():
        retrying(lambda: reschedule(db.session.get(Appointment, appointment_id),
                                    db.session.get(User, patient.id), starts_at=second.start))
        db.session.commit()
    moved = load(app, appointment_id)
    assert moved.starts_at == second.start and moved.status is Status.REQUESTED
    assert [h.reason for h in moved.history][-1] == "rescheduled"
    assert a_slot(app, doctor.id).start == first.start  # the old slot is free again


def test_a_deadlock_hidden_behind_a_lost_savepoint_is_retried(app):
    """After a deadlock InnoDB has rolled everything back, so the savepoint's release fails with 1305;
    the retry must still see the deadlock behind it."""
    import pymysql

    calls = []

    def work():
        calls.append(1)
        if len(calls) == 1:
            try:
                raise sa.exc.OperationalError("INSERT", {}, pymysql.err.OperationalError(1213, "Deadlock found"))
            except sa.exc.OperationalError:
                raise sa.exc.OperationalError("RELEASE SAVEPOINT", {},
                                              pymysql.err.OperationalError(1305, "SAVEPOINT does not exist"))
        return "done"

    with app.app_context():
        assert retrying(work) == "done"
    assert len(calls) == 2


def test_other_database_errors_are_not_retried(app):
    import pymysql

    def work():
        raise sa.exc.OperationalError("SELECT", {}, pymysql.err.OperationalError(2013, "Lost connection"))

    with app.app_context(), pytest.raises(sa.exc.OperationalError, match="Lost connection"):
        retrying(work)
