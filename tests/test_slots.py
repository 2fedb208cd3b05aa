"""Free slots: weekly windows expanded in clinic time, minus unavailability, busy time and the past."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from itertools import count
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from app.accounts.models import Role
from app.clinic.models import Department, DoctorProfile
from app.extensions import db
from app.scheduling.models import Unavailability, UnavailabilityKind, WeeklyAvailability
from app.scheduling.slots import Slot, Window, expand_windows, free_slots, next_free_slot

pytestmark = pytest.mark.clock  # the outcome depends on the clock: see `make test-clock`

UTC = timezone.utc
NY = ZoneInfo("America/New_York")
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
WINTER_MONDAY = date(2026, 1, 12)   # EST, UTC-5
SUMMER_MONDAY = date(2026, 7, 13)   # EDT, UTC-4
SPRING_FORWARD = date(2026, 3, 8)   # Sunday: 02:00 EST -> 03:00 EDT
FALL_BACK = date(2026, 11, 1)       # Sunday: 02:00 EDT -> 01:00 EST
_serial = count(1)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def ny(text: str) -> datetime:
    """A New York wall-clock time (fold=0) as aware UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=NY).astimezone(UTC)


def starts(slots: list[Slot]) -> list[datetime]:
    return [slot.start for slot in slots]


def local_hhmm(slots: list[Slot]) -> list[str]:
    return [slot.local_start(NY).strftime("%H:%M %Z") for slot in slots]


class Clinic:
    """Builds departments, doctors, windows and leave directly with the models (committed)."""

    def __init__(self, create_user):
        self._create_user = create_user

    def department(self, name: str | None = None, *, active: bool = True) -> int:
        department = Department(name=name or f"Department {next(_serial)}", active=active)
        db.session.add(department)
        db.session.commit()
        return department.id

    def doctor(self, *department_ids: int) -> int:
        user = self._create_user(Role.DOCTOR)
        profile = DoctorProfile(user_id=user.id, specialty="General medicine", licence_number=f"LIC-{next(_serial)}",
                                consultation_fee=Decimal("100.00"))
        db.session.add(profile)
        for department_id in department_ids:
            profile.departments.append(db.session.get(Department, department_id))
        db.session.commit()
        return user.id

    def window(self, doctor_id: int, department_id: int, weekday: int, start: str, end: str, minutes: int) -> None:
        db.session.add(WeeklyAvailability(doctor_id=doctor_id, department_id=department_id, weekday=weekday,
                                          start_time=time.fromisoformat(start), end_time=time.fromisoformat(end),
                                          slot_minutes=minutes))
        db.session.commit()

    def leave(self, doctor_id: int, starts_at: datetime, ends_at: datetime) -> None:
        db.session.add(Unavailability(doctor_id=doctor_id, kind=UnavailabilityKind.LEAVE, starts_at=starts_at,
                                      ends_at=ends_at, reason="Annual leave"))
        db.session.commit()


@pytest.fixture
def new_york(app):
    previous = app.config["HMS_TIMEZONE"]
    app.config["HMS_TIMEZONE"] = "America/New_York"
    yield NY
    app.config["HMS_TIMEZONE"] = previous


@pytest.fixture
def clinic(app_ctx, new_york, create_user) -> Clinic:
    return Clinic(create_user)


@pytest.fixture
def doctor(clinic):
    """A doctor in one department: (doctor_id, department_id)."""
    department_id = clinic.department("General practice")
    return clinic.doctor(department_id), department_id


@contextmanager
def counting_statements():
    """The SQL this thread sends (the app's background outbox relay shares the engine; it is not ours)."""
    statements: list[str] = []
    thread = threading.get_ident()

    def record(conn, cursor, statement, parameters, context, executemany):
        if threading.get_ident() == thread:
            statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)


# --- plain windows ------------------------------------------------------------------------------


def test_plain_window_in_winter_gives_six_half_hour_slots_at_utc_minus_five(clinic, doctor):
    doctor_id, department_id = doctor
    clinic.window(doctor_id, department_id, 0, "09:00", "12:00", 30)

    slots = free_slots([doctor_id], WINTER_MONDAY, WINTER_MONDAY, now=LONG_AGO)[doctor_id]

    assert starts(slots) == [utc("2026-01-12 14:00") + timedelta(minutes=30 * i) for i in range(6)]
    assert all(slot.end - slot.start == timedelta(minutes=30) for slot in slots)
    assert slots[-1].end == utc("2026-01-12 17:00")
    assert {(slot.doctor_id, slot.department_id) for slot in slots} == {(doctor_id, department_id)}
    assert local_hhmm(slots) == ["09:00 EST", "09:30 EST", "10:00 EST", "10:30 EST", "11:00 EST", "11:30 EST"]


def test_plain_window_in_summer_gives_six_half_hour_slots_at_utc_minus_four(clinic, doctor):
    doctor_id, department_id = doctor
    clinic.window(doctor_id, department_id, 0, "09:00", "12:00", 30)

    slots = free_slots([doctor_id], SUMMER_MONDAY, SUMMER_MONDAY, now=LONG_AGO)[doctor_id]

    assert starts(slots) == [utc("2026-07-13 13:00") + timedelta(minutes=30 * i) for i in range(6)]
    assert slots[-1].end == utc("2026-07-13 16:00")
    assert slots[0].local_start() == datetime(2026, 7, 13, 9, 0, tzinfo=NY)  # clinic zone from the app config
    assert slots[0].local_end().strftime("%H:%M") == "09:30"


def test_slot_length_not_dividing_the_window_leaves_the_remainder_unused(clinic, doctor):
    doctor_id, department_id = doctor
    clinic.window(doctor_id, department_id, 0, "09:00", "10:00", 25)

    slots = free_slots([doctor_id], WINTER_MONDAY, WINTER_MONDAY, now=LONG_AGO)[doctor_id]

    assert [(slot.start, slot.end) for slot in slots] == [
        (ny("2026-01-12 09:00"), ny("2026-01-12 09:25")), (ny("2026-01-12 09:25"), ny("2026-01-12 09:50"))]


def test_only_days_on_the_windows_weekday_get_slots(clinic, doctor):
    doctor_id, department_id = doctor
    clinic.window(doctor_id, department_id, 2, "09:00", "10:00", 60)  # Wednesdays

    slots = free_slots([doctor_id], WINTER_MONDAY, WINTER_MONDAY + timedelta(days=13), now=LONG_AGO)[doctor_id]

    assert starts(slots) == [ny("2026-01-14 09:00"), ny("2026-01-21 09:00")]


def test_days_are_clinic_local_days_even_when_the_slot_is_on_the_next_utc_day(clinic, doctor):
    doctor_id, department_id = doctor
    clinic.window(doctor_id, department_id, 0, "22:00", "23:30", 45)  # Monday evening = Tuesday in UTC

    monday = free_slots([doctor_id], WINTER_MONDAY, WINTER_MONDAY, now=LONG_AGO)[doctor_id]
    tuesday = free_slots([doctor_id], WINTER_MONDAY + timedelta(days=1), WINTER_MONDAY + timedelta(days=1),
                         now=LONG_AGO)[doctor_id]

    assert starts(monday) == [utc("2026-01-13 03:00"), utc("2026-01-13 03:45")]
    assert tuesday == []


# --- daylight saving ----------------------------------------------------------------------------


def test_spring_forward_day_skips_the_nonexistent_wall_times(clinic, doctor):
    doctor_id, department_id = doctor
    clinic.window(doctor_id, department_id, 6, "01:00", "04:00", 30)

    slots = free_slots([doctor_id], SPRING_FORWARD, SPRING_FORWARD, now=LONG_AGO)[doctor_id]

    # 02:00 and 02:30 do not exist on this day; 01:30-02:00 ends exactly at the jump and is kept
    assert local_hhmm(slots) == ["01:00 EST", "01:30 EST", "03:00 EDT", "03:30 EDT"]
    assert starts(slots) == [utc("2026-03-08 06:00"), utc("2026-03-08 06:30"),
                             utc("2026-03-08 07:00"), utc("2026-03-08 07:30")]
    assert all(slot.end - slot.start == timedelta(minutes=30) for slot in slots)
    assert all(a.end <= b.start for a, b in zip(slots, slots[1:]))
    for slot in slots:  # every start is a real wall time: it survives the round trip through UTC
        wall = slot.local_start(NY).replace(tzinfo=None)
        assert wall.replace(tzinfo=NY).astimezone(UTC) == slot.start


def test_spring_forward_slot_straddling_the_jump_is_skipped(clinic, doctor):
    doctor_id, department_id = doctor
    clinic.window(doctor_id, department_id, 6, "01:30", "04:30", 60)

    slots = free_slots([doctor_id], SPRING_FORWARD, SPRING_FORWARD, now=LONG_AGO)[doctor_id]

    # 01:30-02:30 is only 30 minutes of wall clock (it would really end at 03:30 EDT): skipped;
    # 02:30 does not exist; 03:30-04:30 is a normal hour
    assert local_hhmm(slots) == ["03:30 EDT"]
    assert slots[0].end - slots[0].start == timedelta(hours=1)


def test_spring_forward_slot_ending_exactly_at_the_jump_is_kept(clinic, doctor):
    doctor_id, department_id = doctor
    clinic.window(doctor_id, department_id, 6, "01:00", "05:00", 60)

    slots = free_slots([doctor_id], SPRING_FORWARD, SPRING_FORWARD, now=LONG_AGO)[doctor_id]

    assert local_hhmm(slots) == ["01:00 EST", "03:00 EDT", "04:00 EDT"]
    assert [(slot.start, slot.end) for slot in slots][0] == (utc("2026-03-08 06:00"), utc("2026-03-08 07:00"))


def test_fall_back_day_offers_each_ambiguous_wall_time_once_at_its_first_occurrence(clinic, doctor):
    doctor_id, department_id = doctor
    clinic.window(doctor_id, department_id, 6, "00:30", "02:30", 30)

    slots = free_slots([doctor_id], FALL_BACK, FALL_BACK, now=LONG_AGO)[doctor_id]

    assert local_hhmm(slots) == ["00:30 EDT", "01:00 EDT", "01:30 EDT", "02:00 EST"]
    assert starts(slots) == [utc("2026-11-01 04:30"), utc("2026-11-01 05:00"),
                             utc("2026-11-01 05:30"), utc("2026-11-01 07:00")]
    assert len(set(starts(slots))) == len(slots)
    assert all(slot.end - slot.start == timedelta(minutes=30) for slot in slots)
    assert all(a.end <= b.start for a, b in zip(slots, slots[1:]))


def test_fall_back_slot_straddling_the_repeated_hour_is_skipped(clinic, doctor):
    doctor_id, department_id = doctor
    clinic.window(doctor_id, department_id, 6, "00:30", "03:30", 60)

    slots = free_slots([doctor_id], FALL_BACK, FALL_BACK, now=LONG_AGO)[doctor_id]

    # 01:30 EDT + 60 real minutes would end at 01:30 EST, not 02:30: skipped
    assert local_hhmm(slots) == ["00:30 EDT", "02:30 EST"]
    assert all(slot.end - slot.start == timedelta(hours=1) for slot in slots)


@pytest.mark.parametrize("day", [SPRING_FORWARD, FALL_BACK], ids=["spring-forward", "fall-back"])
@pytest.mark.parametrize("minutes", [10, 15, 20, 25, 30, 45, 50, 60, 90, 120])
def test_dst_days_never_give_short_overlapping_or_off_grid_slots(day, minutes):
    window = Window(doctor_id=1, department_id=2, weekday=day.weekday(), start_time=time(0, 0),
                    end_time=time(6, 0), slot_minutes=minutes)

    slots = expand_windows([window], None, None, day, day, NY, LONG_AGO).get(1, [])

    assert slots, "the hours away from the jump always give slots"
    assert all(slot.end - slot.start == timedelta(minutes=minutes) for slot in slots)
    assert all(a.end <= b.start for a, b in zip(slots, slots[1:]))
    for slot in slots:
        wall = slot.local_start(NY)
        assert wall.date() == day
        assert (wall.hour * 60 + wall.minute) % minutes == 0  # on the window's wall-clock grid
        assert wall.replace(tzinfo=None).replace(tzinfo=NY).astimezone(UTC) == slot.start  # fold=0, exists
        assert (slot.end - timedelta(microseconds=1)).astimezone(NY).utcoffset() == wall.utcoffset()  # no jump inside


# --- unavailability and busy time ---------------------------------------------------------------


def test_leave_covering_part_of_a_window_removes_only_the_overlapping_slots(clinic, doctor):
    doctor_id, department_id = doctor
    clinic.window(doctor_id, department_id, 0, "09:00", "12:00", 30)
    clinic.leave(doctor_id, ny("2026-01-12 10:15"), ny("2026-01-12 11:00"))

    slots = free_slots([doctor_id], WINTER_MONDAY, WINTER_MONDAY, now=LONG_AGO)[doctor_id]

    # 10:00 and 10:30 overlap the leave; 11:00 only touches its end and stays
    assert local_hhmm(slots) == ["09:00 EST", "09:30 EST", "11:00 EST", "11:30 EST"]


def test_leave_spanning_several_days_removes_every_slot_it_covers(clinic, doctor):
    doctor_id, department_id = doctor
    for weekday in range(5):
        clinic.window(doctor_id, department_id, weekday, "09:00", "12:00", 30)
    clinic.leave(doctor_id, ny("2026-01-13 10:00"), ny("2026-01-15 11:00"))  # Tuesday 10:00 to Thursday 11:00

    slots = free_slots([doctor_id], WINTER_MONDAY, WINTER_MONDAY + timedelta(days=4), now=LONG_AGO)[doctor_id]
    by_day: dict[date, list[str]] = {}
    for slot in slots:
        by_day.setdefault(slot.local_start(NY).date(), []).append(slot.local_start(NY).strftime("%H:%M"))

    full_day = ["09:00", "09:30", "10:00", "10:30", "11:00", "11:30"]
    assert by_day == {
        date(2026, 1, 12): full_day,
        date(2026, 1, 13): ["09:00", "09:30"],
        date(2026, 1, 15): ["11:00", "11:30"],
        date(2026, 1, 16): full_day,
    }


def test_leave_that_began_before_the_range_still_blocks_it(clinic, doctor):
    doctor_id, department_id = doctor
    clinic.window(doctor_id, department_id, 0, "09:00", "12:00", 30)
    clinic.leave(doctor_id, ny("2025-12-20 00:00"), ny("2026-01-12 10:00"))

    slots = free_slots([doctor_id], WINTER_MONDAY, WINTER_MONDAY, now=LONG_AGO)[doctor_id]

    assert local_hhmm(slots) == ["10:00 EST", "10:30 EST", "11:00 EST", "11:30 EST"]


def test_leave_only_blocks_its_own_doctor(clinic):
    department_id = clinic.department()
    on_leave, working = clinic.doctor(department_id), clinic.doctor(department_id)
    for doctor_id in (on_leave, working):
        clinic.window(doctor_id, department_id, 0, "09:00", "10:00", 30)
    clinic.leave(on_leave, ny("2026-01-12 00:00"), ny("2026-01-13 00:00"))

    slots = free_slots([on_leave, working], WINTER_MONDAY, WINTER_MONDAY, now=LONG_AGO)

    assert slots[on_leave] == []
    assert local_hhmm(slots[working]) == ["09:00 EST", "09:30 EST"]


def test_busy_intervals_are_subtracted_by_the_same_overlap_rule(clinic, doctor):
    doctor_id, department_id = doctor
    clinic.window(doctor_id, department_id, 0, "09:00", "12:00", 30)
    busy = {doctor_id: [(ny("2026-01-12 09:30"), ny("2026-01-12 10:00")),   # exactly one slot
                        (ny("2026-01-12 10:45"), ny("2026-01-12 11:05"))],  # straddles two slots
            doctor_id + 1000: [(ny("2026-01-12 09:00"), ny("2026-01-12 12:00"))]}  # someone else

    slots = free_slots([doctor_id], WINTER_MONDAY, WINTER_MONDAY, now=LONG_AGO, busy=busy)[doctor_id]

    assert local_hhmm(slots) == ["09:00 EST", "10:00 EST", "11:30 EST"]


def test_busy_and_leave_together_remove_the_union(clinic, doctor):
    doctor_id, department_id = doctor
    clinic.window(doctor_id, department_id, 0, "09:00", "12:00", 30)
    clinic.leave(doctor_id, ny("2026-01-12 09:00"), ny("2026-01-12 10:00"))
    busy = {doctor_id: [(ny("2026-01-12 11:00"), ny("2026-01-12 11:30"))]}

    slots = free_slots([doctor_id], WINTER_MONDAY, WINTER_MONDAY, now=LONG_AGO, busy=busy)[doctor_id]

    assert local_hhmm(slots) == ["10:00 EST", "10:30 EST", "11:30 EST"]


def test_naive_busy_interval_is_refused(clinic, doctor):
    doctor_id, department_id = doctor
    clinic.window(doctor_id, department_id, 0, "09:00", "12:00", 30)
    busy = {doctor_id: [(datetime(2026, 1, 12, 14), datetime(2026, 1, 12, 15))]}

    with pytest.raises(ValueError, match="aware"):
        free_slots([doctor_id], WINTER_MONDAY, WINTER_MONDAY, now=LONG_AGO, busy=busy)


# --- departments --------------------------------------------------------------------------------


def test_windows_in_two_departments_on_the_same_day_are_both_offered(clinic):
    cardiology, general = clinic.department("Cardiology"), clinic.department("General practice")
    doctor_id = clinic.doctor(cardiology, general)
    clinic.window(doctor_id, cardiology, 0, "09:00", "10:00", 30)
    clinic.window(doctor_id, general, 0, "14:00", "15:00", 60)

    slots = free_slots([doctor_id], WINTER_MONDAY, WINTER_MONDAY, now=LONG_AGO)[doctor_id]

    assert [(slot.local_start(NY).strftime("%H:%M"), slot.department_id) for slot in slots] == [
        ("09:00", cardiology), ("09:30", cardiology), ("14:00", general)]


def test_department_filter_keeps_only_that_departments_windows(clinic):
    cardiology, general = clinic.department("Cardiology"), clinic.department("General practice")
    doctor_id = clinic.doctor(cardiology, general)
    clinic.window(doctor_id, cardiology, 0, "09:00", "10:00", 30)
    clinic.window(doctor_id, general, 0, "14:00", "15:00", 60)

    only_general = free_slots([doctor_id], WINTER_MONDAY, WINTER_MONDAY, now=LONG_AGO, department_id=general)
    elsewhere = free_slots([doctor_id], WINTER_MONDAY, WINTER_MONDAY, now=LONG_AGO,
                           department_id=clinic.department("Dermatology"))

    assert [(slot.local_start(NY).strftime("%H:%M"), slot.department_id) for slot in only_general[doctor_id]] == [
        ("14:00", general)]
    assert elsewhere == {doctor_id: []}


def test_windows_of_an_inactive_department_or_one_the_doctor_left_are_not_offered(clinic):
    closed = clinic.department("Closed ward", active=False)
    left = clinic.department("Former department")
    current = clinic.department("Current department")
    doctor_id = clinic.doctor(closed, current)  # never linked to `left` (or since removed)
    clinic.window(doctor_id, closed, 0, "08:00", "09:00", 30)
    clinic.window(doctor_id, left, 0, "10:00", "11:00", 30)
    clinic.window(doctor_id, current, 0, "12:00", "13:00", 30)

    slots = free_slots([doctor_id], WINTER_MONDAY, WINTER_MONDAY, now=LONG_AGO)[doctor_id]

    assert {slot.department_id for slot in slots} == {current}
    assert local_hhmm(slots) == ["12:00 EST", "12:30 EST"]


# --- the past -----------------------------------------------------------------------------------


def test_slots_starting_at_or_before_now_are_not_offered(clinic, doctor):
    doctor_id, department_id = doctor
    clinic.window(doctor_id, department_id, 0, "09:00", "12:00", 30)

    at_ten = free_slots([doctor_id], WINTER_MONDAY, WINTER_MONDAY, now=ny("2026-01-12 10:00"))[doctor_id]
    during_ten = free_slots([doctor_id], WINTER_MONDAY, WINTER_MONDAY, now=ny("2026-01-12 10:10"))[doctor_id]

    assert local_hhmm(at_ten) == ["10:30 EST", "11:00 EST", "11:30 EST"]
    assert during_ten == at_ten  # the 10:00 slot has already started


def test_now_defaults_to_the_current_time(clinic, doctor):
    doctor_id, department_id = doctor
    for weekday in range(7):
        clinic.window(doctor_id, department_id, weekday, "00:00", "23:50", 10)
    today = datetime.now(NY).date()

    past = free_slots([doctor_id], today - timedelta(days=7), today - timedelta(days=1))[doctor_id]
    upcoming = free_slots([doctor_id], today + timedelta(days=1), today + timedelta(days=1))[doctor_id]

    assert past == []
    assert upcoming and {slot.local_start(NY).date() for slot in upcoming} == {today + timedelta(days=1)}


def test_naive_now_is_refused(clinic, doctor):
    with pytest.raises(ValueError, match="aware"):
        free_slots([doctor[0]], WINTER_MONDAY, WINTER_MONDAY, now=datetime(2026, 1, 12, 10))


# --- several doctors and the query budget -------------------------------------------------------


def test_several_doctors_in_one_call_each_get_their_own_sorted_slots(clinic):
    department_id = clinic.department()
    early, late, idle = clinic.doctor(department_id), clinic.doctor(department_id), clinic.doctor(department_id)
    clinic.window(early, department_id, 0, "08:00", "09:00", 30)
    clinic.window(early, department_id, 0, "07:00", "08:00", 60)  # added later, earlier in the day
    clinic.window(late, department_id, 0, "16:00", "17:00", 20)
    unknown = early + late + idle + 1000

    slots = free_slots([early, late, idle, unknown, early], WINTER_MONDAY, WINTER_MONDAY, now=LONG_AGO)

    assert list(slots) == [early, late, idle, unknown]  # one key per requested doctor, duplicates folded
    assert local_hhmm(slots[early]) == ["07:00 EST", "08:00 EST", "08:30 EST"]
    assert local_hhmm(slots[late]) == ["16:00 EST", "16:20 EST", "16:40 EST"]
    assert slots[idle] == [] and slots[unknown] == []
    assert {slot.doctor_id for slot in slots[late]} == {late}


def test_no_doctors_or_an_empty_range_runs_no_query(clinic, doctor):
    with counting_statements() as statements:
        assert free_slots([], WINTER_MONDAY, WINTER_MONDAY) == {}
        assert free_slots([doctor[0]], WINTER_MONDAY, WINTER_MONDAY - timedelta(days=1)) == {doctor[0]: []}
    assert statements == []


def test_query_count_is_two_for_one_doctor_one_day_and_for_thirty_doctors_fourteen_days(clinic):
    department_id = clinic.department()
    doctor_ids = [clinic.doctor(department_id) for _ in range(30)]
    for doctor_id in doctor_ids:
        for weekday in range(5):
            clinic.window(doctor_id, department_id, weekday, "09:00", "12:00", 30)
        clinic.leave(doctor_id, ny("2026-01-14 09:00"), ny("2026-01-14 12:00"))
    db.session.remove()

    with counting_statements() as one:
        small = free_slots(doctor_ids[:1], WINTER_MONDAY, WINTER_MONDAY, now=LONG_AGO)
    with counting_statements() as many:
        large = free_slots(doctor_ids, WINTER_MONDAY, WINTER_MONDAY + timedelta(days=13), now=LONG_AGO)

    assert len(small[doctor_ids[0]]) == 6
    assert all(len(large[doctor_id]) == 9 * 6 for doctor_id in doctor_ids)  # 10 weekdays, one on leave
    assert len(one) == len(many) == 2
    window_sql, leave_sql = (statement.lower() for statement in many)
    assert "weekly_availability" in window_sql and " in (" in window_sql
    assert "from unavailability" in leave_sql and " in (" in leave_sql and "starts_at <" in leave_sql


def test_next_free_slot_gives_each_doctors_earliest_slot_with_two_queries(clinic):
    department_id = clinic.department()
    busy_doctor, free_doctor, idle = (clinic.doctor(department_id) for _ in range(3))
    clinic.window(busy_doctor, department_id, 0, "09:00", "10:00", 30)    # Mondays
    clinic.window(free_doctor, department_id, 2, "15:00", "16:00", 30)    # Wednesdays
    clinic.leave(busy_doctor, ny("2026-01-12 00:00"), ny("2026-01-13 00:00"))
    now = ny("2026-01-12 08:00")

    with counting_statements() as statements:
        found = next_free_slot([busy_doctor, free_doctor, idle], now=now)
    one_day = next_free_slot([busy_doctor, free_doctor], days=1, now=now)

    assert len(statements) == 2
    assert found[busy_doctor].start == ny("2026-01-19 09:00")  # this Monday is on leave
    assert found[free_doctor].start == ny("2026-01-14 15:00")
    assert found[idle] is None
    assert one_day == {busy_doctor: None, free_doctor: None}


def test_next_free_slot_looks_ahead_a_bounded_number_of_days(clinic, doctor):
    doctor_id, department_id = doctor
    clinic.window(doctor_id, department_id, 0, "09:00", "10:00", 30)
    now = ny("2026-01-12 10:00")  # today's window is over; next Monday is 7 days away

    assert next_free_slot([doctor_id], days=7, now=now) == {doctor_id: None}
    assert next_free_slot([doctor_id], days=8, now=now)[doctor_id].start == ny("2026-01-19 09:00")
    with pytest.raises(ValueError):
        next_free_slot([doctor_id], days=0, now=now)
