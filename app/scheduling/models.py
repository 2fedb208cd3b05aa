"""Doctors' weekly availability and dated unavailability. Free slots are computed (slots.py), never stored."""
from __future__ import annotations

import enum
from datetime import datetime, time

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clinic.models import Department
from app.db_types import UTCDateTime, enum_column
from app.extensions import db
from app.timeutil import utcnow

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class WeeklyAvailability(db.Model):
    """One window of a doctor's week, in the clinic's local time (weekday 0 = Monday)."""

    __tablename__ = "weekly_availability"
    __table_args__ = (
        sa.CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        sa.CheckConstraint("end_time > start_time", name="end_after_start"),
        sa.CheckConstraint("slot_minutes BETWEEN 10 AND 120", name="slot_minutes_range"),
        sa.Index("ix_weekly_availability_doctor_id_weekday", "doctor_id", "weekday"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    doctor_id: Mapped[int] = mapped_column(sa.ForeignKey("doctor_profiles.user_id"))
    department_id: Mapped[int] = mapped_column(sa.ForeignKey("departments.id"))
    weekday: Mapped[int]
    start_time: Mapped[time]
    end_time: Mapped[time]
    slot_minutes: Mapped[int]

    department: Mapped[Department] = relationship()

    @property
    def weekday_name(self) -> str:
        return WEEKDAYS[self.weekday]


class UnavailabilityKind(enum.StrEnum):
    LEAVE = "leave"
    CONFERENCE = "conference"
    HOLIDAY = "holiday"
    OTHER = "other"


class Unavailability(db.Model):
    """A dated range (UTC) in which the doctor cannot be booked; may cover part of a day."""

    __tablename__ = "unavailability"
    __table_args__ = (
        sa.CheckConstraint("ends_at > starts_at", name="ends_after_starts"),
        sa.Index("ix_unavailability_doctor_id_starts_at", "doctor_id", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    doctor_id: Mapped[int] = mapped_column(sa.ForeignKey("doctor_profiles.user_id"))
    kind: Mapped[UnavailabilityKind] = mapped_column(
        enum_column(UnavailabilityKind, "unavailability_kind"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
