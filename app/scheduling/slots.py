"""Free appointment slots: the single place where a doctor's bookable time is computed.

Slots are never stored. They are expanded from the doctors' weekly windows (clinic-local wall-clock
times) for a range of clinic-local days, converted to UTC, and then anything the doctor cannot do is
taken away: dated unavailability (leave, conferences, ...), caller-supplied `busy` intervals (booked
appointments, once they exist) and everything that has already started.

Cost: `free_slots` and `next_free_slot` run exactly two SQL statements whatever the number of doctors
and days -- one for the weekly windows of all requested doctors, one for their unavailability that
overlaps the range. The expansion itself (`expand_windows`) is pure and does no I/O.

Daylight-saving rules (all slots are built in local wall-clock time, then converted):

* A slot whose local start time does not exist (spring-forward gap, e.g. 02:30 in New York on
  2026-03-08) is skipped.
* An ambiguous local start time (fall-back, e.g. 01:30 on 2026-11-01) yields one slot, at its first
  occurrence (fold=0); the repeated wall-clock hour is not offered a second time.
* Every slot lasts exactly `slot_minutes` of real (UTC) time: `end = start + slot_minutes`.
* A slot during which the UTC offset changes (it straddles the jump, e.g. 01:30-02:30 on the
  spring-forward day, which is only 30 real minutes of wall clock, or 01:30-02:30 with 60-minute
  slots on the fall-back day, which would really end at 01:30 the second time) is skipped: its
  wall-clock label and its real length would disagree, which is unsafe to put in front of a patient.
  A slot that merely *ends* at the transition (01:30-02:00 on either day) is kept; it is a normal
  30 real minutes.

Together these guarantee that the slots of one window never overlap in real time.
"""
from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo

import sqlalchemy as sa

from app.clinic.models import Department, doctor_departments
from app.extensions import db
from app.scheduling.models import Unavailability, WeeklyAvailability
from app.timeutil import clinic_zone, utcnow

Interval = tuple[datetime, datetime]
IntervalsByDoctor = Mapping[int, Sequence[Interval]]

NEXT_FREE_LOOKAHEAD_DAYS = 28
_ONE_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, order=True)
class Slot:
    """One bookable slot; `start`/`end` are aware UTC. Ordering is by start first."""

    start: datetime
    end: datetime
    doctor_id: int
    department_id: int

    @property
    def minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)

    def local_start(self, zone: tzinfo | None = None) -> datetime:
        """The start in the clinic's zone (or `zone`); needs an app context when `zone` is omitted."""
        return self.start.astimezone(zone or clinic_zone())

    def local_end(self, zone: tzinfo | None = None) -> datetime:
        return self.end.astimezone(zone or clinic_zone())


def by_day(slots: list[Slot]) -> dict[date, list[Slot]]:
    """The slots grouped by their day in the clinic's zone, in the order given."""
    days: dict[date, list[Slot]] = {}
    for slot in slots:
        days.setdefault(slot.local_start().date(), []).append(slot)
    return days


@dataclass(frozen=True)
class Window:
    """A weekly availability window, detached from the database (weekday 0 = Monday, local times)."""

    doctor_id: int
    department_id: int
    weekday: int
    start_time: time
    end_time: time
    slot_minutes: int


# --- pure expansion -----------------------------------------------------------------------------


def _require_aware(value: datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime, got naive {value!r}")


def _days(start: date, end: date) -> Iterable[date]:
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


class _Blocked:
    """Disjoint, sorted blocked intervals of one doctor, for O(log n) overlap tests."""

    def __init__(self, intervals: Iterable[Interval]):
        merged: list[list[datetime]] = []
        for lo, hi in sorted(intervals):
            if merged and lo <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        self._starts = [lo for lo, _ in merged]
        self._ends = [hi for _, hi in merged]

    def overlaps(self, start: datetime, end: datetime) -> bool:
        """True if [start, end) shares any instant with a blocked [lo, hi) (touching is not overlap)."""
        i = bisect_right(self._ends, start)  # first blocked interval ending after `start`
        return i < len(self._starts) and self._starts[i] < end


def _blocked_by_doctor(*sources: IntervalsByDoctor | None) -> dict[int, _Blocked]:
    collected: dict[int, list[Interval]] = {}
    for source in sources:
        for doctor_id, intervals in (source or {}).items():
            for lo, hi in intervals:
                _require_aware(lo, "interval start")
                _require_aware(hi, "interval end")
                if hi <= lo:
                    raise ValueError(f"interval for doctor {doctor_id} ends before it starts: {lo} .. {hi}")
                collected.setdefault(doctor_id, []).append((lo.astimezone(timezone.utc), hi.astimezone(timezone.utc)))
    return {doctor_id: _Blocked(intervals) for doctor_id, intervals in collected.items()}


def _window_slots(window: Window, day: date, zone: tzinfo) -> Iterable[tuple[datetime, datetime]]:
    """The UTC (start, end) of each whole slot of `window` on local `day`, after the DST rules."""
    step = timedelta(minutes=window.slot_minutes)
    wall = datetime.combine(day, window.start_time)
    wall_end = datetime.combine(day, window.end_time)
    while wall + step <= wall_end:
        local = wall.replace(tzinfo=zone)  # fold=0: an ambiguous time means its first occurrence
        start = local.astimezone(timezone.utc)
        if start.astimezone(zone).replace(tzinfo=None) == wall:  # else: nonexistent (spring-forward gap)
            end = start + step
            # the offset must not change inside [start, end): a slot straddling the jump is skipped
            if local.utcoffset() == (end - _ONE_MICROSECOND).astimezone(zone).utcoffset():
                yield start, end
        wall += step


def expand_windows(windows: Iterable[Window], unavailable: IntervalsByDoctor | None,
                   busy: IntervalsByDoctor | None, start: date, end: date, zone: tzinfo,
                   now: datetime) -> dict[int, list[Slot]]:
    """Expand weekly windows into free slots on the local days `start`..`end` (inclusive). No I/O.

    A slot is dropped if it overlaps (shares any instant with) an `unavailable` or `busy` interval of
    its doctor, or if it starts at or before `now`. Returns only the doctors that have slots, each list
    sorted by start. See the module docstring for the daylight-saving rules.
    """
    _require_aware(now, "now")
    by_weekday: dict[int, list[Window]] = {}
    for window in windows:
        by_weekday.setdefault(window.weekday, []).append(window)
    blocked = _blocked_by_doctor(unavailable, busy)
    nothing = _Blocked(())

    found: dict[int, set[Slot]] = {}
    for day in _days(start, end):
        for window in by_weekday.get(day.weekday(), ()):
            doctor_blocked = blocked.get(window.doctor_id, nothing)
            for slot_start, slot_end in _window_slots(window, day, zone):
                if slot_start <= now or doctor_blocked.overlaps(slot_start, slot_end):
                    continue
                found.setdefault(window.doctor_id, set()).add(
                    Slot(slot_start, slot_end, window.doctor_id, window.department_id))
    return {doctor_id: sorted(slots) for doctor_id, slots in found.items()}


# --- database -----------------------------------------------------------------------------------


def _local_day_bounds(start: date, end: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """UTC instants certainly covering local midnight of `start` to local midnight after `end`."""

    def candidates(day: date) -> list[datetime]:
        midnight = datetime.combine(day, time.min, tzinfo=zone)
        return [midnight.astimezone(timezone.utc), midnight.replace(fold=1).astimezone(timezone.utc)]

    return min(candidates(start)), max(candidates(end + timedelta(days=1)))


def _load_windows(doctor_ids: Sequence[int], department_id: int | None) -> list[Window]:
    """Query 1: every weekly window of the doctors, in active departments the doctor still belongs to."""
    wa = WeeklyAvailability
    query = (
        sa.select(wa.doctor_id, wa.department_id, wa.weekday, wa.start_time, wa.end_time, wa.slot_minutes)
        .join(Department, Department.id == wa.department_id)
        .join(doctor_departments, sa.and_(doctor_departments.c.doctor_id == wa.doctor_id,
                                          doctor_departments.c.department_id == wa.department_id))
        .where(wa.doctor_id.in_(doctor_ids), Department.active.is_(True))
    )
    if department_id is not None:
        query = query.where(wa.department_id == department_id)
    return [Window(*row) for row in db.session.execute(query)]


def _load_unavailability(doctor_ids: Sequence[int], lo: datetime, hi: datetime) -> dict[int, list[Interval]]:
    """Query 2: the doctors' unavailability overlapping [lo, hi) (uses the (doctor_id, starts_at) index)."""
    u = Unavailability
    query = sa.select(u.doctor_id, u.starts_at, u.ends_at).where(
        u.doctor_id.in_(doctor_ids), u.starts_at < hi, u.ends_at > lo)
    result: dict[int, list[Interval]] = {}
    for doctor_id, starts_at, ends_at in db.session.execute(query):
        result.setdefault(doctor_id, []).append((starts_at, ends_at))
    return result


def free_slots(doctor_ids: Sequence[int], start: date, end: date, *, now: datetime | None = None,
               busy: IntervalsByDoctor | None = None,
               department_id: int | None = None) -> dict[int, list[Slot]]:
    """Free slots of each doctor on the clinic-local days `start`..`end` (inclusive).

    `busy` maps doctor id to extra aware intervals to subtract (e.g. booked appointments);
    `department_id` keeps only that department's windows; slots starting at or before `now`
    (default: the current time) are never returned. The result has one key per requested doctor,
    each list sorted by start (possibly empty). Runs exactly two SQL statements (none when no doctor
    or no day is asked for). Needs an app context.
    """
    now = utcnow() if now is None else now
    _require_aware(now, "now")
    ids = list(dict.fromkeys(doctor_ids))
    result: dict[int, list[Slot]] = {doctor_id: [] for doctor_id in ids}
    if not ids or end < start:
        return result
    zone = clinic_zone()
    windows = _load_windows(ids, department_id)
    lo, hi = _local_day_bounds(start, end, zone)
    unavailable = _load_unavailability(ids, max(lo, now), hi)
    result.update(expand_windows(windows, unavailable, busy, start, end, zone, now))
    return result


def next_free_slot(doctor_ids: Sequence[int], *, days: int = NEXT_FREE_LOOKAHEAD_DAYS,
                   now: datetime | None = None, busy: IntervalsByDoctor | None = None,
                   department_id: int | None = None) -> dict[int, Slot | None]:
    """Each doctor's earliest free slot within `days` clinic-local days from today (None if none).

    Same rules and the same two SQL statements as `free_slots`.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    now = utcnow() if now is None else now
    _require_aware(now, "now")
    today = now.astimezone(clinic_zone()).date()
    slots = free_slots(doctor_ids, today, today + timedelta(days=days - 1), now=now, busy=busy,
                       department_id=department_id)
    return {doctor_id: (found[0] if found else None) for doctor_id, found in slots.items()}


__all__ = ["NEXT_FREE_LOOKAHEAD_DAYS", "Slot", "Window", "expand_windows", "free_slots", "next_free_slot"]
