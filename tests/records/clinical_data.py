"""Clinical test data written straight into the tables (no service calls), so that the records tests of the
patient side and the access matrix do not depend on how the doctor's pages build a record."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from app.appointments.models import Appointment, Status
from app.extensions import db
from app.records.models import Allergy, Diagnosis, Encounter, EncounterStatus, Prescription, Severity
from app.timeutil import clinic_zone, utcnow

# Strings that exist only in the clinical data: a response that must not carry clinical data must not
# contain any of them.
SUBJECTIVE = "Headaches every morning, zxq-subjective"
OBJECTIVE = "Fundi normal, zxq-objective"
ASSESSMENT = "Stage 1 hypertension, zxq-assessment"
PLAN = "Start amlodipine, zxq-plan"
COMPLAINT = "Morning headaches zxq-complaint"
DIAGNOSIS = ("I10", "Essential (primary) hypertension")
DRUG = "Amlodipine"
ALLERGEN = "Penicillin"
CLINICAL_STRINGS = (SUBJECTIVE, OBJECTIVE, ASSESSMENT, PLAN, COMPLAINT, DIAGNOSIS[0] + "<", DIAGNOSIS[1], DRUG,
                    ALLERGEN, "zxq-")


def earlier_today() -> datetime:
    """A start earlier today in the clinic's zone, or in five minutes if it is just after midnight there: a
    visit the doctor's dashboard lists as today's, whatever the hour the tests run at. Needs an app context."""
    now = utcnow().replace(microsecond=0, second=0)
    earlier = now - timedelta(minutes=20)
    same_day = earlier.astimezone(clinic_zone()).date() == now.astimezone(clinic_zone()).date()
    return earlier if same_day else now + timedelta(minutes=5)


def add_appointment(patient_id: int, doctor_id: int, department_id: int, *, days_ago: float = 1,
                    starts_at: datetime | None = None, status: Status = Status.COMPLETED,
                    reason: str = "Check-up") -> Appointment:
    starts_at = starts_at or (utcnow() - timedelta(days=days_ago)).replace(microsecond=0)
    appointment = Appointment(patient_id=patient_id, doctor_id=doctor_id, department_id=department_id,
                              starts_at=starts_at, ends_at=starts_at + timedelta(minutes=30), reason=reason,
                              status=status, active=True if status.active else None)
    db.session.add(appointment)
    db.session.flush()
    return appointment


def add_encounter(appointment: Appointment, *, signed: bool = True, amends: Encounter | None = None,
                  reason: str | None = None, signed_at: datetime | None = None,
                  diagnoses: list[tuple[str, str, bool]] = (), prescriptions: list[dict] = (), **fields) -> Encounter:
    """An encounter of `appointment` (signed unless told), version 1 or the next version of `amends`."""
    now = signed_at or utcnow()
    encounter = Encounter(appointment_id=appointment.id, patient_id=appointment.patient_id,
                          doctor_id=appointment.doctor_id, version=amends.version + 1 if amends else 1,
                          amends_id=amends.id if amends else None, amendment_reason=reason,
                          status=EncounterStatus.DRAFT, created_at=now, **fields)
    for code, description, primary in diagnoses:
        encounter.diagnoses.append(Diagnosis(code=code, description=description, is_primary=primary))
    for rx in prescriptions:
        encounter.prescriptions.append(Prescription(**{**RX, **rx}))
    db.session.add(encounter)
    db.session.flush()  # the children go in while it is a draft: the triggers refuse them under a signed one
    if signed:
        encounter.status, encounter.signed_at, encounter.signed_by_id = (
            EncounterStatus.SIGNED, now, appointment.doctor_id)
        db.session.flush()
    return encounter


RX = dict(drug_name=DRUG, strength="5 mg", form="tablet", dose="1 tablet", route="oral", frequency="once daily",
          duration_days=30, quantity=30, refills=2, instructions="Take in the morning")


def add_allergy(patient_id: int, recorded_by_id: int, substance: str = ALLERGEN, reaction: str = "Hives",
                severity: Severity = Severity.SEVERE) -> Allergy:
    allergy = Allergy(patient_id=patient_id, recorded_by_id=recorded_by_id, substance=substance, reaction=reaction,
                      severity=severity)
    db.session.add(allergy)
    db.session.flush()
    return allergy


@dataclass
class Chart:
    """One patient's record: a signed visit (amended once), a draft visit, an allergy and vitals."""

    appointment_id: int = 0
    original_id: int = 0  # version 1 (signed, then amended)
    current_id: int = 0  # version 2
    draft_id: int = 0  # another visit, not signed yet
    ids: dict = field(default_factory=dict)


def build_chart(patient_id: int, doctor_id: int, department_id: int) -> Chart:
    chart = Chart()
    first = add_appointment(patient_id, doctor_id, department_id, days_ago=60)
    add_encounter(first, chief_complaint="Annual check-up", systolic=128, diastolic=84, heart_rate=76, spo2=98,
                  weight_kg=Decimal("82.0"), height_cm=Decimal("178.0"), bmi=Decimal("25.9"),
                  vitals_recorded_at=first.starts_at, signed_at=first.ends_at)
    visit = add_appointment(patient_id, doctor_id, department_id, days_ago=10)
    original = add_encounter(visit, chief_complaint=COMPLAINT, subjective=SUBJECTIVE, objective=OBJECTIVE,
                             assessment="Raised blood pressure", plan="Recheck in a week", systolic=150,
                             diastolic=95, heart_rate=88, spo2=97, weight_kg=Decimal("84.5"),
                             height_cm=Decimal("178.0"), bmi=Decimal("26.7"), vitals_recorded_at=visit.starts_at,
                             signed_at=visit.ends_at, diagnoses=[(*DIAGNOSIS, True)], prescriptions=[{}])
    current = add_encounter(visit, amends=original, reason="Assessment and plan completed after lab results",
                            signed_at=visit.ends_at + timedelta(days=1), chief_complaint=COMPLAINT,
                            subjective=SUBJECTIVE, objective=OBJECTIVE, assessment=ASSESSMENT, plan=PLAN,
                            systolic=150, diastolic=95, heart_rate=88, spo2=97, weight_kg=Decimal("84.5"),
                            height_cm=Decimal("178.0"), bmi=Decimal("26.7"), vitals_recorded_at=visit.starts_at,
                            diagnoses=[(*DIAGNOSIS, True), ("E11.9", "Type 2 diabetes mellitus without complications",
                                                            False)],
                            prescriptions=[{}])
    later = add_appointment(patient_id, doctor_id, department_id, days_ago=1, status=Status.CHECKED_IN)
    draft = add_encounter(later, signed=False, chief_complaint="zxq-draft complaint", assessment="zxq-draft")
    add_allergy(patient_id, doctor_id)
    chart.appointment_id, chart.original_id, chart.current_id, chart.draft_id = (
        visit.id, original.id, current.id, draft.id)
    return chart
