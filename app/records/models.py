"""Clinical data. An encounter is a versioned note of one appointment: draft until signed, then frozen
(the service layer answers 409, and triggers created by migration 0007 refuse the UPDATE). A correction is
a new version (`amends_id` → the version it corrects, with a reason); the original stays as it was."""
from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.accounts.models import User
from app.appointments.models import Appointment
from app.db_types import UTCDateTime, enum_column
from app.extensions import db
from app.timeutil import utcnow


class EncounterStatus(enum.StrEnum):
    DRAFT = "draft"
    SIGNED = "signed"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class Severity(enum.StrEnum):
    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class Encounter(db.Model):
    """One version of the clinical note of an appointment. Version 1 has no `amends_id`; version n+1
    amends version n (both keys unique, so the history is a line, never a fork)."""

    __tablename__ = "encounters"
    __table_args__ = (
        sa.UniqueConstraint("appointment_id", "version", name="uq_encounters_appointment_version"),
        sa.UniqueConstraint("amends_id", name="uq_encounters_amends_id"),
        sa.Index("ix_encounters_patient_id_created_at", "patient_id", "created_at"),
        sa.CheckConstraint("status = 'draft' OR signed_at IS NOT NULL", name="signed_has_time"),
        sa.CheckConstraint("(version = 1) = (amends_id IS NULL)", name="versions_link"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(sa.ForeignKey("appointments.id"))
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    doctor_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    version: Mapped[int] = mapped_column(sa.SmallInteger, default=1)
    amends_id: Mapped[int | None] = mapped_column(sa.ForeignKey("encounters.id"))
    amendment_reason: Mapped[str | None] = mapped_column(sa.String(500))
    status: Mapped[EncounterStatus] = mapped_column(enum_column(EncounterStatus, "encounter_status"),
                                                    default=EncounterStatus.DRAFT)
    chief_complaint: Mapped[str] = mapped_column(sa.String(500), default="")
    subjective: Mapped[str] = mapped_column(sa.Text, default="")
    objective: Mapped[str] = mapped_column(sa.Text, default="")
    assessment: Mapped[str] = mapped_column(sa.Text, default="")
    plan: Mapped[str] = mapped_column(sa.Text, default="")
    # vitals (all optional; validated against plausible ranges in services.VITAL_RANGES)
    systolic: Mapped[int | None] = mapped_column(sa.SmallInteger)
    diastolic: Mapped[int | None] = mapped_column(sa.SmallInteger)
    heart_rate: Mapped[int | None] = mapped_column(sa.SmallInteger)
    respiratory_rate: Mapped[int | None] = mapped_column(sa.SmallInteger)
    spo2: Mapped[int | None] = mapped_column(sa.SmallInteger)
    temperature_c: Mapped[Decimal | None] = mapped_column(sa.Numeric(4, 1))
    weight_kg: Mapped[Decimal | None] = mapped_column(sa.Numeric(5, 1))
    height_cm: Mapped[Decimal | None] = mapped_column(sa.Numeric(4, 1))
    bmi: Mapped[Decimal | None] = mapped_column(sa.Numeric(5, 1))
    vitals_recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    signed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    appointment: Mapped[Appointment] = relationship()
    patient: Mapped[User] = relationship(foreign_keys=[patient_id])
    doctor: Mapped[User] = relationship(foreign_keys=[doctor_id])
    signed_by: Mapped[User | None] = relationship(foreign_keys=[signed_by_id])
    amends: Mapped[Encounter | None] = relationship(remote_side=[id], foreign_keys=[amends_id])
    diagnoses: Mapped[list[Diagnosis]] = relationship(
        back_populates="encounter", order_by=lambda: (Diagnosis.is_primary.desc(), Diagnosis.id),
        cascade="all, delete-orphan")
    prescriptions: Mapped[list[Prescription]] = relationship(
        back_populates="encounter", order_by="Prescription.id", cascade="all, delete-orphan")

    @property
    def signed(self) -> bool:
        return self.status is EncounterStatus.SIGNED

    @property
    def has_vitals(self) -> bool:
        return any(getattr(self, name) is not None for name in VITAL_COLUMNS)


VITAL_COLUMNS = ("systolic", "diastolic", "heart_rate", "respiratory_rate", "spo2", "temperature_c", "weight_kg",
                 "height_cm")
NOTE_COLUMNS = ("chief_complaint", "subjective", "objective", "assessment", "plan")


class Diagnosis(db.Model):
    __tablename__ = "diagnoses"
    __table_args__ = (sa.UniqueConstraint("encounter_id", "code", name="uq_diagnoses_encounter_id_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    encounter_id: Mapped[int] = mapped_column(sa.ForeignKey("encounters.id"))
    code: Mapped[str] = mapped_column(sa.String(10))
    description: Mapped[str] = mapped_column(sa.String(255))
    is_primary: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    encounter: Mapped[Encounter] = relationship(back_populates="diagnoses")


class Prescription(db.Model):
    __tablename__ = "prescriptions"
    __table_args__ = (sa.Index("ix_prescriptions_encounter_id", "encounter_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    encounter_id: Mapped[int] = mapped_column(sa.ForeignKey("encounters.id"))
    drug_name: Mapped[str] = mapped_column(sa.String(120))
    strength: Mapped[str] = mapped_column(sa.String(60))
    form: Mapped[str] = mapped_column(sa.String(40))
    dose: Mapped[str] = mapped_column(sa.String(60))
    route: Mapped[str] = mapped_column(sa.String(40))
    frequency: Mapped[str] = mapped_column(sa.String(60))
    duration_days: Mapped[int] = mapped_column(sa.SmallInteger)
    quantity: Mapped[int] = mapped_column(sa.SmallInteger)
    refills: Mapped[int] = mapped_column(sa.SmallInteger, default=0)
    instructions: Mapped[str] = mapped_column(sa.String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    encounter: Mapped[Encounter] = relationship(back_populates="prescriptions")
    acknowledgements: Mapped[list[AllergyAcknowledgement]] = relationship(
        back_populates="prescription", order_by="AllergyAcknowledgement.id", cascade="all, delete-orphan")


class Allergy(db.Model):
    """An allergy of the patient (not of one encounter). Removing one ("entered in error") keeps the row."""

    __tablename__ = "allergies"
    __table_args__ = (sa.Index("ix_allergies_patient_id", "patient_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    substance: Mapped[str] = mapped_column(sa.String(120))
    reaction: Mapped[str] = mapped_column(sa.String(255))
    severity: Mapped[Severity] = mapped_column(enum_column(Severity, "allergy_severity"))
    recorded_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    removed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    recorded_by: Mapped[User] = relationship(foreign_keys=[recorded_by_id])


class AllergyAcknowledgement(db.Model):
    """The prescriber saw that the drug matches a recorded allergy and prescribed it anyway."""

    __tablename__ = "allergy_acknowledgements"

    id: Mapped[int] = mapped_column(primary_key=True)
    prescription_id: Mapped[int] = mapped_column(sa.ForeignKey("prescriptions.id"), index=True)
    allergy_id: Mapped[int] = mapped_column(sa.ForeignKey("allergies.id"))
    substance: Mapped[str] = mapped_column(sa.String(120))
    acknowledged_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    acknowledged_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    prescription: Mapped[Prescription] = relationship(back_populates="acknowledgements")
    allergy: Mapped[Allergy] = relationship()
    acknowledged_by: Mapped[User] = relationship()


class BreakGlassGrant(db.Model):
    """Emergency access of a doctor to a patient they have no appointment with: a stated reason, a
    fixed window (BREAK_GLASS_MINUTES), and a `record.break_glass` audit event that the admin sees flagged."""

    __tablename__ = "break_glass_grants"
    __table_args__ = (sa.Index("ix_break_glass_grants_doctor_id_patient_id_expires_at",
                               "doctor_id", "patient_id", "expires_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    doctor_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(sa.String(500))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
