"""A doctor's weekly windows and leave. Functions add and flush; the caller commits once."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

import sqlalchemy as sa

from app.clinic.models import DoctorProfile
from app.events.outbox import emit
from app.extensions import db
from app.scheduling.models import WEEKDAYS, Unavailability, UnavailabilityKind, WeeklyAvailability
from app.timeutil import clinic_zone


class ScheduleError(Exception):
    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def windows(doctor_id: int) -> list[WeeklyAvailability]:
    return list(db.session.scalars(
        sa.select(WeeklyAvailability).where(WeeklyAvailability.doctor_id == doctor_id)
        .order_by(WeeklyAvailability.weekday, WeeklyAvailability.start_time)))


def add_window(profile: DoctorProfile, *, department_id: int, weekday: int, start: time, end: time,
               slot_minutes: int) -> WeeklyAvailability:
    if end <= start:
        raise ScheduleError("The end time must be after the start time.", field="end_time")
    if not 10 <= slot_minutes <= 120:
        raise ScheduleError("A slot lasts 10 to 120 minutes.", field="slot_minutes")
    if slot_minutes > _minutes(end) - _minutes(start):
        raise ScheduleError(f"A {slot_minutes}-minute slot does not fit in this window.", field="slot_minutes")
    if department_id not in {d.id for d in profile.departments}:
        raise ScheduleError("Choose one of your departments.", field="department_id")
    for other in windows(profile.user_id):
        if other.weekday == weekday and start < other.end_time and other.start_time < end:
            raise ScheduleError(
                f"This overlaps your {WEEKDAYS[weekday]} window {other.start_time:%H:%M}–{other.end_time:%H:%M}"
                f" ({other.department.name}).", field="start_time")
    window = WeeklyAvailability(doctor_id=profile.user_id, department_id=department_id, weekday=weekday,
                                start_time=start, end_time=end, slot_minutes=slot_minutes)
    db.session.add(window)
    db.session.flush()
    _changed(profile, "added", window)
    return window


def delete_window(profile: DoctorProfile, window: WeeklyAvailability) -> None:
    db.session.delete(window)
    _changed(profile, "removed", window)


def _changed(profile: DoctorProfile, change: str, window: WeeklyAvailability) -> None:
    emit("doctor.availability_changed", "doctor", profile.user_id,
         {"change": change, "weekday": window.weekday, "start": window.start_time.strftime("%H:%M"),
          "end": window.end_time.strftime("%H:%M"), "slot_minutes": window.slot_minutes,
          "department_id": window.department_id})


def leave(doctor_id: int, *, from_day: date | None = None) -> list[Unavailability]:
    query = sa.select(Unavailability).where(Unavailability.doctor_id == doctor_id)
    if from_day is not None:
        query = query.where(Unavailability.ends_at >= datetime.combine(from_day, time.min, tzinfo=clinic_zone()))
    return list(db.session.scalars(query.order_by(Unavailability.starts_at)))


def local_range(start_day: date, start_time: time | None, end_day: date, end_time: time | None) -> tuple[datetime, datetime]:
    """A clinic-local range as aware datetimes; a missing time means the whole day."""
    zone = clinic_zone()
    starts = datetime.combine(start_day, start_time or time.min, tzinfo=zone)
    ends = (datetime.combine(end_day, end_time, tzinfo=zone) if end_time
            else datetime.combine(end_day + timedelta(days=1), time.min, tzinfo=zone))
    return starts, ends


def add_unavailability(profile: DoctorProfile, *, starts: datetime, ends: datetime, kind: UnavailabilityKind,
                       reason: str) -> Unavailability:
    if ends <= starts:
        raise ScheduleError("The end must be after the start.", field="end_day")
    entry = Unavailability(doctor_id=profile.user_id, starts_at=starts, ends_at=ends, kind=kind, reason=reason.strip())
    db.session.add(entry)
    db.session.flush()
    emit("doctor.unavailability_added", "doctor", profile.user_id,
         {"kind": kind.value, "starts_at": entry.starts_at.isoformat(), "ends_at": entry.ends_at.isoformat()})
    return entry


def delete_unavailability(profile: DoctorProfile, entry: Unavailability) -> None:
    db.session.delete(entry)
    emit("doctor.unavailability_removed", "doctor", profile.user_id, {"kind": entry.kind.value})
