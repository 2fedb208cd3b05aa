"""Appointments, their status history, and the reminders sent for them."""
from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.accounts.models import User
from app.clinic.models import Department
from app.db_types import UTCDateTime, enum_column
from app.extensions import db
from app.timeutil import utcnow


class Status(enum.StrEnum):
    REQUESTED = "requested"
    CONFIRMED = "confirmed"
    CHECKED_IN = "checked_in"
    COMPLETED = "completed"
    DECLINED = "declined"
    CANCELLED_BY_PATIENT = "cancelled_by_patient"
    CANCELLED_BY_CLINIC = "cancelled_by_clinic"
    NO_SHOW = "no_show"

    @property
    def label(self) -> str:
        return {"checked_in": "Checked in", "cancelled_by_patient": "Cancelled by the patient",
                "cancelled_by_clinic": "Cancelled by the clinic", "no_show": "No-show"}.get(
            self.value, self.value.capitalize())

    @property
    def active(self) -> bool:
        return self in ACTIVE


ACTIVE = (Status.REQUESTED, Status.CONFIRMED, Status.CHECKED_IN)


class Appointment(db.Model):
    """A visit. `active` is 1 while the visit holds its time and NULL once it does not (unique keys ignore
    NULLs), so the database refuses a second active appointment at the same start for the doctor or the
    patient, whatever the timing of the requests. Only `app.appointments.services` changes `status`,
    and it keeps `active` in step."""

    __tablename__ = "appointments"
    __table_args__ = (
        sa.UniqueConstraint("doctor_id", "starts_at", "active", name="uq_appointments_doctor_slot"),
        sa.UniqueConstraint("patient_id", "starts_at", "active", name="uq_appointments_patient_slot"),
        sa.Index("ix_appointments_doctor_id_starts_at", "doctor_id", "starts_at"),
        sa.Index("ix_appointments_patient_id_starts_at", "patient_id", "starts_at"),
        sa.Index("ix_appointments_status_starts_at", "status", "starts_at"),
        sa.CheckConstraint("ends_at > starts_at", name="ends_after_starts"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    doctor_id: Mapped[int] = mapped_column(sa.ForeignKey("doctor_profiles.user_id"))
    department_id: Mapped[int] = mapped_column(sa.ForeignKey("departments.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[Status] = mapped_column(enum_column(Status, "appointment_status"), default=Status.REQUESTED)
    reason: Mapped[str] = mapped_column(sa.String(500))
    status_reason: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    active: Mapped[bool | None] = mapped_column(default=True)

    patient: Mapped[User] = relationship(foreign_keys=[patient_id])
    doctor_user: Mapped[User] = relationship(foreign_keys=[doctor_id], primaryjoin="Appointment.doctor_id == User.id",
                                             viewonly=True)
    department: Mapped[Department] = relationship()
    history: Mapped[list[StatusChange]] = relationship(order_by="StatusChange.id", back_populates="appointment")
    identifiers: Mapped[list[AppointmentIdentifier]] = relationship(order_by="AppointmentIdentifier.id",
                                                                    viewonly=True)


class AppointmentIdentifier(db.Model):
    """An identifier a program gave the appointment when it booked it (FHIR `Appointment.identifier`), so that
    its retry finds the first booking (conditional create). Unique per patient: a patient's identifiers never
    collide with, nor reveal, another's."""

    __tablename__ = "appointment_identifiers"
    __table_args__ = (sa.UniqueConstraint("patient_id", "system", "value", name="uq_appointment_identifiers_patient"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(sa.ForeignKey("appointments.id"), index=True)
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    system: Mapped[str] = mapped_column(sa.String(255, collation="utf8mb4_bin"))  # "" when none was given
    value: Mapped[str] = mapped_column(sa.String(255, collation="utf8mb4_bin"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class StatusChange(db.Model):
    __tablename__ = "appointment_status_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(sa.ForeignKey("appointments.id"), index=True)
    from_status: Mapped[Status | None] = mapped_column(enum_column(Status, "appointment_status"))
    to_status: Mapped[Status] = mapped_column(enum_column(Status, "appointment_status"))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    appointment: Mapped[Appointment] = relationship(back_populates="history")


class ReminderSent(db.Model):
    """One row per (appointment, offset): the primary key makes a reminder go out at most once,
    however many schedulers run and however often they restart."""

    __tablename__ = "appointment_reminders"

    appointment_id: Mapped[int] = mapped_column(sa.ForeignKey("appointments.id"), primary_key=True)
    offset_minutes: Mapped[int] = mapped_column(primary_key=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
