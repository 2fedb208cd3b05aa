"""Medical records: the rules of encounters, vitals, diagnoses, prescriptions and allergies, and the
reads the patient and doctor pages share. Functions add and flush; the caller commits.

Public API (patient side and doctor side alike):

Access and audit
- Who may read or write a record is the access policy's question (`app.policy`; the pages ask it through
  `app.web.access.authorize`), asked before any of these functions is called.
- `record_read(patient_id, categories, *, view, entity_type="patient", entity_id=None, decision=None)`:
  emits ONE `record.viewed` event for one read (a page, or an HTMX refresh of it); the caller commits.
  Call it once per request that shows clinical data, after the access check.

Reads (each returns ORM rows with what the templates need loaded)
- `current_encounters(patient_id, *, drafts_of=None) -> list[Encounter]`: the current version of each
  visit (the latest signed one; with `drafts_of` a doctor's id, also that doctor's own later drafts: a draft
  is readable by its author only), newest visit first, diagnoses and prescriptions loaded.
- `encounter_versions(encounter) -> list[Encounter]`: every version of that visit, oldest first.
- `superseding(encounter) -> Encounter | None`.
- `get_encounter(encounter_id) -> Encounter | None`.
- `patient_diagnoses(patient_id)`, `patient_prescriptions(patient_id)`: of current signed encounters.
- `allergies(patient_id) -> list[Allergy]`: active allergies, most severe first.
- `active_allergy(patient_id, allergy_id, *, for_update=False) -> Allergy | None`: one of them, not removed.
- `PATIENT_NOTES`: the note sections a patient reads (the others are the doctor's working notes).
- `vitals_series(patient_id) -> list[dict]`: one point per current signed encounter with vitals, oldest
  first: {"date": ISO date (clinic zone), "encounter_id", "systolic", "diastolic", "heart_rate",
  "respiratory_rate", "spo2", "temperature_c", "weight_kg", "height_cm", "bmi"} (numbers or None).

Writes (doctor side)
- `open_encounter(doctor, appointment)`, `save_notes`, `save_vitals`, `add_diagnosis`, `remove_diagnosis`,
  `add_prescription`, `remove_prescription`, `sign`, `amend`, `record_allergy`, `remove_allergy`,
  `grant_break_glass`. A signed encounter is refused by every mutating function with
  `RecordLocked` (HTTP 409); bad input raises `InvalidInput` (field → message, HTTP 422); a prescription
  matching an allergy that was not acknowledged raises `AllergyWarning` (HTTP 422; `matches` holds an
  `AllergyMatch` per matching allergy, with its `reason`).
- `FORMS`, `ROUTES`, `FREQUENCIES`: what a prescription's form, route and frequency may be.
- `allergy_matches(patient_id, drug_name) -> list[AllergyMatch]`: by name or by drug class
  (`app/records/drug_classes.py`); `match_allergies(allergies, drug_name)` is the same rule without the
  database.

Audit events (all with patient_id and data.category): record.viewed, access.denied,
record.break_glass, encounter.created, encounter.updated, encounter.signed, encounter.amended,
vitals.recorded, diagnosis.added, diagnosis.removed, prescription.created, prescription.removed,
allergy.recorded, allergy.removed.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from sqlalchemy.orm import aliased, selectinload

from app.accounts.models import User
from app.appointments.models import Appointment, Status
from app.db_types import TEXT_MAX_CHARS
from app.events.outbox import emit
from app.extensions import db
from app.records import drug_classes, icd10
from app.policy import BREAK_GLASS_MINUTES, Decision
from app.records.drug_classes import normalise
from app.records.models import (NOTE_COLUMNS, VITAL_COLUMNS, Allergy, AllergyAcknowledgement, BreakGlassGrant,
                                Diagnosis, Encounter, EncounterStatus, Prescription, Severity)
from app.timeutil import to_clinic_time, utcnow

CATEGORIES = ("encounter", "diagnosis", "prescription", "allergy", "vitals")
DEMOGRAPHICS = "demographics"  # a patient's profile read by a program (FHIR Patient): audited like the record
# The sections of the note a patient reads (the clinic's choice): the reason for the visit, the assessment and
# the plan. The subjective and objective sections are the doctor's working notes and stay in the clinic.
PATIENT_NOTES = ("chief_complaint", "assessment", "plan")
OPENABLE = (Status.CHECKED_IN, Status.COMPLETED)


class RecordLocked(Exception):
    """The encounter is signed (or superseded): it can only be amended. HTTP 409."""


class InvalidInput(Exception):
    """Input the rules refuse; `errors` maps a field name to its message. HTTP 422."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


class AllergyWarning(Exception):
    """The drug matches recorded allergies that the prescriber has not acknowledged. HTTP 422."""

    def __init__(self, matches: list[AllergyMatch]):
        super().__init__("This drug matches a recorded allergy: " + "; ".join(m.reason for m in matches))
        self.matches = matches


# --- break-glass -------------------------------------------------------------------------------------------

def grant_break_glass(doctor: User, patient_id: int, reason: str) -> BreakGlassGrant:
    """Open the record for BREAK_GLASS_MINUTES; the audit event is what the admin sees flagged."""
    now = utcnow()
    grant = BreakGlassGrant(doctor_id=doctor.id, patient_id=patient_id, reason=reason.strip(), started_at=now,
                            expires_at=now + timedelta(minutes=BREAK_GLASS_MINUTES))
    db.session.add(grant)
    db.session.flush()
    emit("record.break_glass", "break_glass_grant", grant.id,
         {"category": "record", "reason": grant.reason, "expires_at": grant.expires_at.isoformat(),
          "minutes": BREAK_GLASS_MINUTES, "break_glass": True}, patient_id=patient_id)
    return grant


# --- audit --------------------------------------------------------------------------------------------

def record_read(patient_id: int, categories: list[str] | tuple[str, ...], *, view: str,
                entity_type: str = "patient", entity_id: int | str | None = None,
                decision: Decision | None = None) -> None:
    """One read of clinical data = one `record.viewed` event (the caller commits)."""
    unknown = set(categories) - set(CATEGORIES) - {DEMOGRAPHICS}
    assert not unknown, f"unknown data categories {unknown}"
    data = {"category": categories[0] if categories else None, "categories": list(categories), "view": view}
    if decision is not None:
        data["basis"] = decision.basis
        if decision.grant is not None:
            data["break_glass_grant_id"] = decision.grant.id
            data["break_glass"] = True
    emit("record.viewed", entity_type, entity_id if entity_id is not None else patient_id, data,
         patient_id=patient_id)


def _event(type: str, encounter: Encounter, category: str, **data) -> None:
    """Events name what changed by id, never by clinical value (a drug, an allergen, a code): they travel on
    the bus and into the audit trail, which the admin reads and which holds no clinical content."""
    emit(type, "encounter", encounter.id, {"category": category, "version": encounter.version, **data},
         patient_id=encounter.patient_id)


# --- reads --------------------------------------------------------------------------------------------

def _loaded(query: sa.Select, *, summary: bool = False) -> sa.Select:
    """What the pages show of an encounter. `summary`: what a program's view of the record maps (FHIR), without
    the four note texts, the prescriptions' allergy acknowledgements and the doctor's whole account row."""
    if summary:
        return query.options(sa.orm.defer(Encounter.subjective), sa.orm.defer(Encounter.objective),
                             sa.orm.defer(Encounter.assessment), sa.orm.defer(Encounter.plan),
                             selectinload(Encounter.diagnoses), selectinload(Encounter.prescriptions),
                             sa.orm.joinedload(Encounter.appointment).joinedload(Appointment.department),
                             sa.orm.joinedload(Encounter.doctor).load_only(User.full_name))
    return query.options(selectinload(Encounter.diagnoses), selectinload(Encounter.prescriptions)
                         .selectinload(Prescription.acknowledgements),
                         sa.orm.joinedload(Encounter.appointment).joinedload(Appointment.department),
                         sa.orm.joinedload(Encounter.doctor))


def get_encounter(encounter_id: int, *, for_update: bool = False) -> Encounter | None:
    """The encounter with what its pages show; `for_update` first locks its row (only that row), so a
    change, a signature and an amendment of one encounter happen one after the other."""
    query = _loaded(sa.select(Encounter).where(Encounter.id == encounter_id))
    if for_update:
        if db.session.scalar(sa.select(Encounter.id).where(Encounter.id == encounter_id).with_for_update()) is None:
            return None
        query = query.execution_options(populate_existing=True)
    return db.session.scalar(query)


def current_encounters(patient_id: int, *, drafts_of: int | None = None, summary: bool = False) -> list[Encounter]:
    """The current version of each visit: its highest signed version, or with `drafts_of` its highest version
    that is signed or a draft of that doctor's (nobody else reads a draft). `summary`: see `_loaded`."""
    def readable(model) -> sa.ColumnElement[bool]:
        signed = model.status == EncounterStatus.SIGNED
        return signed if drafts_of is None else sa.or_(signed, model.doctor_id == drafts_of)

    newer = aliased(Encounter)
    query = sa.select(Encounter).where(Encounter.patient_id == patient_id, readable(Encounter))
    conditions = [newer.appointment_id == Encounter.appointment_id, newer.version > Encounter.version,
                  readable(newer)]
    query = query.where(~sa.exists().where(*conditions)).join(Encounter.appointment).order_by(
        Appointment.starts_at.desc(), Encounter.id.desc())
    return list(db.session.scalars(_loaded(query, summary=summary)).unique())


def encounter_versions(encounter: Encounter) -> list[Encounter]:
    return list(db.session.scalars(_loaded(sa.select(Encounter).where(
        Encounter.appointment_id == encounter.appointment_id).order_by(Encounter.version))).unique())


def superseding(encounter: Encounter) -> Encounter | None:
    """The signed version that replaced this one, if any."""
    return db.session.scalar(sa.select(Encounter).where(
        Encounter.appointment_id == encounter.appointment_id, Encounter.version > encounter.version,
        Encounter.status == EncounterStatus.SIGNED).order_by(Encounter.version).limit(1))


def latest_version(appointment_id: int) -> Encounter | None:
    return db.session.scalar(sa.select(Encounter).where(Encounter.appointment_id == appointment_id)
                             .order_by(Encounter.version.desc()).limit(1))


def patient_diagnoses(patient_id: int) -> list[tuple[Encounter, Diagnosis]]:
    return [(e, d) for e in current_encounters(patient_id) for d in e.diagnoses]


def patient_prescriptions(patient_id: int) -> list[tuple[Encounter, Prescription]]:
    return [(e, p) for e in current_encounters(patient_id) for p in e.prescriptions]


def allergies(patient_id: int) -> list[Allergy]:
    rank = sa.case({Severity.SEVERE: 0, Severity.MODERATE: 1, Severity.MILD: 2}, value=Allergy.severity)
    return list(db.session.scalars(sa.select(Allergy).where(
        Allergy.patient_id == patient_id, Allergy.removed_at.is_(None)).order_by(rank, Allergy.substance)))


def _number(value):
    return float(value) if isinstance(value, Decimal) else value


def vitals_series(patient_id: int) -> list[dict]:
    points = []
    for encounter in reversed(current_encounters(patient_id)):
        if not encounter.has_vitals:
            continue
        taken = encounter.vitals_recorded_at or encounter.appointment.starts_at
        point = {"date": to_clinic_time(taken).date().isoformat(), "encounter_id": encounter.id}
        for name in (*VITAL_COLUMNS, "bmi"):
            point[name] = _number(getattr(encounter, name))
        points.append(point)
    return points


# --- encounters -----------------------------------------------------------------------------------------

def _require_draft(encounter: Encounter) -> None:
    if encounter.status is not EncounterStatus.DRAFT:
        raise RecordLocked("This encounter is signed and cannot be changed. Amend it to correct it.")


def open_encounter(doctor: User, appointment: Appointment) -> tuple[Encounter, bool]:
    """The appointment's current encounter (latest version), or a new draft; (encounter, created)."""
    if appointment.doctor_id != doctor.id:
        raise RecordLocked("Only the doctor of this appointment can open its encounter.")
    existing = latest_version(appointment.id)
    if existing is not None:
        return existing, False
    if appointment.status not in OPENABLE:
        raise RecordLocked("An encounter is opened once the patient is checked in.")
    encounter = Encounter(appointment_id=appointment.id, patient_id=appointment.patient_id, doctor_id=doctor.id,
                          version=1, status=EncounterStatus.DRAFT, chief_complaint=appointment.reason[:500])
    db.session.add(encounter)
    db.session.flush()
    _event("encounter.created", encounter, "encounter", appointment_id=appointment.id)
    return encounter, True


def save_notes(encounter: Encounter, **notes: str) -> None:
    _require_draft(encounter)
    changed = []
    for name in NOTE_COLUMNS:
        if name in notes:
            value = (notes[name] or "").strip()
            limit = 500 if name == "chief_complaint" else TEXT_MAX_CHARS
            if len(value) > limit:
                raise InvalidInput({name: f"Use at most {limit:,} characters."})
            if getattr(encounter, name) != value:
                setattr(encounter, name, value)
                changed.append(name)
    if changed:
        db.session.flush()
        _event("encounter.updated", encounter, "encounter", fields=changed)


@dataclass(frozen=True)
class Range:
    low: Decimal
    high: Decimal
    unit: str
    label: str

    def message(self) -> str:
        return f"{self.label} must be between {self.low:g} and {self.high:g} {self.unit}."


VITAL_RANGES: dict[str, Range] = {
    "systolic": Range(Decimal(50), Decimal(260), "mmHg", "Systolic pressure"),
    "diastolic": Range(Decimal(30), Decimal(160), "mmHg", "Diastolic pressure"),
    "heart_rate": Range(Decimal(20), Decimal(250), "beats/min", "Heart rate"),
    "temperature_c": Range(Decimal("30.0"), Decimal("45.0"), "°C", "Temperature"),
    "respiratory_rate": Range(Decimal(4), Decimal(60), "breaths/min", "Respiratory rate"),
    "spo2": Range(Decimal(50), Decimal(100), "%", "SpO2"),
    "weight_kg": Range(Decimal("0.5"), Decimal(400), "kg", "Weight"),
    "height_cm": Range(Decimal(30), Decimal(250), "cm", "Height"),
}
WHOLE_NUMBERS = ("systolic", "diastolic", "heart_rate", "respiratory_rate", "spo2")


def bmi(weight_kg: Decimal | None, height_cm: Decimal | None) -> Decimal | None:
    """kg/m², one decimal (half up); None unless both are known."""
    if weight_kg is None or height_cm is None:
        return None
    metres = Decimal(height_cm) / 100
    return (Decimal(weight_kg) / (metres * metres)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def validate_vitals(values: dict[str, Decimal | int | None]) -> dict[str, Decimal | int | None]:
    """The vitals as stored, or InvalidInput naming each field out of range, with the range."""
    errors: dict[str, str] = {}
    clean: dict[str, Decimal | int | None] = {}
    for name, limits in VITAL_RANGES.items():
        value = values.get(name)
        if value is None or value == "":
            clean[name] = None
            continue
        try:
            number = Decimal(str(value))
        except ArithmeticError:
            errors[name] = f"Enter a number. {limits.message()}"
            continue
        if not number.is_finite() or not limits.low <= number <= limits.high:
            errors[name] = limits.message()
            continue
        if name in WHOLE_NUMBERS:
            if number != number.to_integral_value():
                errors[name] = f"Enter a whole number. {limits.message()}"
                continue
            clean[name] = int(number)
        else:
            clean[name] = number.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    if "systolic" not in errors and "diastolic" not in errors and clean.get("systolic") is not None \
            and clean.get("diastolic") is not None and clean["diastolic"] >= clean["systolic"]:
        errors["diastolic"] = "Diastolic pressure must be lower than systolic pressure."
    if (clean.get("systolic") is None) != (clean.get("diastolic") is None) and not errors.keys() & {"systolic",
                                                                                                   "diastolic"}:
        missing = "diastolic" if clean.get("diastolic") is None else "systolic"
        errors[missing] = "Enter both systolic and diastolic pressure."
    if errors:
        raise InvalidInput(errors)
    return clean


def save_vitals(encounter: Encounter, values: dict) -> None:
    _require_draft(encounter)
    clean = validate_vitals(values)
    changed = [name for name, value in clean.items() if getattr(encounter, name) != value]
    for name, value in clean.items():
        setattr(encounter, name, value)
    encounter.bmi = bmi(clean["weight_kg"], clean["height_cm"])
    if changed:
        encounter.vitals_recorded_at = utcnow()
        db.session.flush()
        _event("vitals.recorded", encounter, "vitals", fields=changed)


def add_diagnosis(encounter: Encounter, code: str, *, primary: bool = False) -> Diagnosis:
    _require_draft(encounter)
    found = icd10.lookup(code)
    if found is None:
        raise InvalidInput({"code": "Choose a code from the ICD-10-CM list."})
    if not found.billable:
        raise InvalidInput({"code": f"{found.code} is a category: choose one of its more specific codes."})
    if any(d.code == found.code for d in encounter.diagnoses):
        raise InvalidInput({"code": f"{found.code} is already a diagnosis of this encounter."})
    primary = primary or not encounter.diagnoses
    if primary:
        for other in encounter.diagnoses:
            other.is_primary = False
    diagnosis = Diagnosis(code=found.code, description=found.description[:255], is_primary=primary)
    encounter.diagnoses.append(diagnosis)
    db.session.flush()
    _event("diagnosis.added", encounter, "diagnosis", diagnosis_id=diagnosis.id, primary=primary)
    return diagnosis


def remove_diagnosis(encounter: Encounter, diagnosis: Diagnosis) -> None:
    _require_draft(encounter)
    was_primary = diagnosis.is_primary
    encounter.diagnoses.remove(diagnosis)
    if was_primary and encounter.diagnoses:
        encounter.diagnoses[0].is_primary = True
    db.session.flush()
    _event("diagnosis.removed", encounter, "diagnosis", diagnosis_id=diagnosis.id)


def make_primary(encounter: Encounter, diagnosis: Diagnosis) -> None:
    _require_draft(encounter)
    for other in encounter.diagnoses:
        other.is_primary = other is diagnosis
    db.session.flush()
    _event("diagnosis.updated", encounter, "diagnosis", diagnosis_id=diagnosis.id, primary=True)


# --- prescriptions and allergies --------------------------------------------------------------------------

@dataclass(frozen=True)
class AllergyMatch:
    """Why a drug matches an allergy: by name, or (with `drug_class` and its `member` found in the drug name)
    because the allergy names that class or one of its members."""

    allergy: Allergy
    drug_name: str
    drug_class: drug_classes.DrugClass | None = None
    member: str | None = None

    @property
    def reason(self) -> str:
        a = self.allergy
        details = ", ".join(filter(None, (a.severity.value, _lowered(a.reaction))))
        recorded = f"allergy recorded: {a.substance} ({details})"
        if self.drug_class is None:
            return f"{_capitalised(self.drug_name.strip())} matches the allergen by name; {recorded}"
        return f"{_capitalised(self.member)} is one of the {self.drug_class.name}; {recorded}"


def _capitalised(name: str) -> str:
    return name[:1].upper() + name[1:]


def _lowered(text: str) -> str:
    """The first letter in lower case, unless the first word is an acronym ("Hives" → "hives", "SJS" stays)."""
    first = text.split(" ", 1)[0]
    return text if len(first) > 1 and first.isupper() else text[:1].lower() + text[1:]


def match_allergies(patient_allergies: list[Allergy], drug_name: str) -> list[AllergyMatch]:
    """The allergies a drug matches, each with one reason: the class, unless the allergy names the very drug.

    - By name: the allergy substance and the drug name contain one another, case and punctuation ignored
      ("Penicillin V" matches "PENICILLIN-V potassium", "Amoxicillin" matches "amoxicillin trihydrate").
    - By class (`app/records/drug_classes.py`): the allergy names a class, a synonym or a member of it, and
      the drug name contains a member of that class as whole words ("Penicillin" warns about "Amoxicillin
      500 mg" and "Co-amoxiclav"; "Ibuprofen" about "Naproxen"). No cross-class warnings: a cephalosporin
      allergy does not warn about amoxicillin.
    """
    drug = normalise(drug_name)
    if not drug:
        return []
    in_drug = drug_classes.members_in(drug)
    matches = []
    for allergy in patient_allergies:
        substance = normalise(allergy.substance)
        by_name = bool(substance) and (substance in drug or drug in substance)
        by_class = next((c for c in drug_classes.classes_named_in(substance) if c in in_drug), None)
        if by_class and not (by_name and normalise(in_drug[by_class]) in substance):
            matches.append(AllergyMatch(allergy, drug_name, by_class, in_drug[by_class]))
        elif by_name:
            matches.append(AllergyMatch(allergy, drug_name))
    return matches


def allergy_matches(patient_id: int, drug_name: str) -> list[AllergyMatch]:
    """The patient's active allergies the drug matches, by name or by drug class (see `match_allergies`)."""
    return match_allergies(allergies(patient_id), drug_name)


# What a prescription's form, route and frequency may be: the pages' choices and the API's enums.
FORMS = ("tablet", "capsule", "oral solution", "oral suspension", "syrup", "injection", "inhaler", "cream",
         "ointment", "gel", "eye drops", "ear drops", "nasal spray", "patch", "suppository", "powder")
ROUTES = ("oral", "sublingual", "intravenous", "intramuscular", "subcutaneous", "inhaled", "topical",
          "ophthalmic", "otic", "nasal", "rectal", "vaginal", "transdermal")
FREQUENCIES = ("once daily", "twice daily", "three times daily", "four times daily", "every 4 hours",
               "every 6 hours", "every 8 hours", "every 12 hours", "at bedtime", "once weekly", "as needed")


@dataclass(frozen=True)
class PrescriptionInput:
    drug_name: str
    strength: str
    form: str
    dose: str
    route: str
    frequency: str
    duration_days: int
    quantity: int
    refills: int = 0
    instructions: str = ""


def add_prescription(encounter: Encounter, data: PrescriptionInput, prescriber: User, *,
                     acknowledged_allergy_ids: set[int] | frozenset[int] = frozenset()) -> Prescription:
    """A prescription on a draft; refused with AllergyWarning while a matching allergy is not acknowledged.
    The acknowledgements (who, when, which allergy) are stored with the prescription."""
    _require_draft(encounter)
    matches = allergy_matches(encounter.patient_id, data.drug_name)
    if any(m.allergy.id not in acknowledged_allergy_ids for m in matches):
        raise AllergyWarning(matches)
    values = {f.name: getattr(data, f.name) for f in fields(data)}
    values = {k: v.strip() if isinstance(v, str) else v for k, v in values.items()}
    prescription = Prescription(**values)
    acknowledged = [m.allergy for m in matches]
    for allergy in acknowledged:
        prescription.acknowledgements.append(AllergyAcknowledgement(
            allergy_id=allergy.id, substance=allergy.substance, acknowledged_by_id=prescriber.id))
    encounter.prescriptions.append(prescription)
    db.session.flush()
    _event("prescription.created", encounter, "prescription", prescription_id=prescription.id,
           allergy_acknowledged=[a.id for a in acknowledged])
    return prescription


def remove_prescription(encounter: Encounter, prescription: Prescription) -> None:
    _require_draft(encounter)
    encounter.prescriptions.remove(prescription)
    db.session.flush()
    _event("prescription.removed", encounter, "prescription", prescription_id=prescription.id)


def record_allergy(patient_id: int, *, substance: str, reaction: str, severity: Severity, by: User) -> Allergy:
    substance, reaction = substance.strip(), reaction.strip()
    if any(normalise(a.substance) == normalise(substance) for a in allergies(patient_id)):
        raise InvalidInput({"substance": f"An allergy to {substance} is already recorded."})
    allergy = Allergy(patient_id=patient_id, substance=substance, reaction=reaction, severity=severity,
                      recorded_by_id=by.id)
    db.session.add(allergy)
    db.session.flush()
    emit("allergy.recorded", "allergy", allergy.id, {"category": "allergy"}, patient_id=patient_id)
    return allergy


def active_allergy(patient_id: int, allergy_id: int, *, for_update: bool = False) -> Allergy | None:
    """The patient's allergy that is still recorded (not removed as entered in error), or None; `for_update`
    locks its row first, so that two removals of one allergy happen one after the other."""
    allergy = db.session.get(Allergy, allergy_id, with_for_update=for_update, populate_existing=for_update)
    if allergy is None or allergy.patient_id != patient_id or allergy.removed_at is not None:
        return None
    return allergy


def remove_allergy(allergy: Allergy, *, by: User) -> None:
    """Entered in error: hidden from now on, kept in the database and the audit trail."""
    allergy.removed_at = utcnow()
    allergy.removed_by_id = by.id
    db.session.flush()
    emit("allergy.removed", "allergy", allergy.id, {"category": "allergy"}, patient_id=allergy.patient_id)


# --- signing and amending ---------------------------------------------------------------------------------

def sign(encounter: Encounter, doctor: User) -> None:
    _require_draft(encounter)
    if not encounter.chief_complaint.strip():
        raise InvalidInput({"chief_complaint": "Enter the chief complaint before signing."})
    encounter.status = EncounterStatus.SIGNED
    encounter.signed_at = utcnow()
    encounter.signed_by_id = doctor.id
    db.session.flush()
    _event("encounter.signed", encounter, "encounter", amends_id=encounter.amends_id,
           diagnoses=len(encounter.diagnoses), prescriptions=len(encounter.prescriptions))


def amend(encounter: Encounter, doctor: User, reason: str) -> Encounter:
    """A new draft version copying the signed one (notes, vitals, diagnoses, prescriptions with their
    allergy acknowledgements), linked to it with the reason. The original is never touched."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput({"reason": "Enter the reason for the amendment."})
    if len(reason) > 500:
        raise InvalidInput({"reason": "Use at most 500 characters."})
    if encounter.status is not EncounterStatus.SIGNED:
        raise RecordLocked("Only a signed encounter is amended; this one is still a draft.")
    latest = latest_version(encounter.appointment_id)
    if latest.id != encounter.id:
        raise RecordLocked("This version has already been amended; open the latest version.")
    copy = Encounter(appointment_id=encounter.appointment_id, patient_id=encounter.patient_id, doctor_id=doctor.id,
                     version=encounter.version + 1, amends_id=encounter.id, amendment_reason=reason,
                     status=EncounterStatus.DRAFT, vitals_recorded_at=encounter.vitals_recorded_at, bmi=encounter.bmi,
                     **{name: getattr(encounter, name) for name in (*NOTE_COLUMNS, *VITAL_COLUMNS)})
    for d in encounter.diagnoses:
        copy.diagnoses.append(Diagnosis(code=d.code, description=d.description, is_primary=d.is_primary))
    for p in encounter.prescriptions:
        new = Prescription(**{name: getattr(p, name) for name in (
            "drug_name", "strength", "form", "dose", "route", "frequency", "duration_days", "quantity", "refills",
            "instructions")})
        for a in p.acknowledgements:
            new.acknowledgements.append(AllergyAcknowledgement(
                allergy_id=a.allergy_id, substance=a.substance, acknowledged_by_id=a.acknowledged_by_id,
                acknowledged_at=a.acknowledged_at))
        copy.prescriptions.append(new)
    db.session.add(copy)
    db.session.flush()
    _event("encounter.amended", copy, "encounter", amends_id=encounter.id, reason=reason)
    return copy


def lock_appointment(appointment_id: int) -> Appointment | None:
    """The appointment row, locked, so two "open encounter" requests cannot both create version 1."""
    return db.session.scalar(sa.select(Appointment).where(Appointment.id == appointment_id).with_for_update())
