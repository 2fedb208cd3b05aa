"""Medical records through the API: open a visit's encounter, write its notes, vitals, diagnoses and
prescriptions, sign and amend it; a patient's allergies; ICD-10 search; a patient's record summary.

The same services as the doctor's and the patient's pages (`app.records.services`) and the same policy: a draft
is its author's alone, a signed encounter is read by its patient and the doctors caring for them, the record
needs a care relationship (403 `no-care-relationship`; break-glass is given on the pages). Every read of
clinical data writes one `record.viewed` audit event, as a page does; every change the event of its service.

- Vitals are JSON numbers (measurements with at most one decimal, not money): integers for the whole-number
  ones, numbers for temperature, weight, height and BMI. Input may be a number or a numeric string.
- A patient reads the sections of the note in `records.PATIENT_NOTES`; for them `subjective` and `objective`
  are null (the doctor's working notes stay in the clinic, as on the patient's pages).
- A change to an encounter, or to one of its diagnoses or prescriptions, needs the encounter's ETag in
  If-Match and answers the encounter as it is afterwards, with its new ETag, so changes chain without a read.
- Diagnoses, prescriptions and vitals are parts of an encounter: changing them needs `Encounter.u`. The
  record's scopes (Condition, MedicationRequest, AllergyIntolerance, Observation: the policy's `record`) read
  the record summary, search ICD-10 and record or remove allergies.
"""
from __future__ import annotations

import datetime as dt
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal, NoReturn

from flask import url_for
from pydantic import Field, StringConstraints

from app.accounts.models import Role
from app.api import bp
from app.api.auth import actor, authorize, require_area
from app.api.framework import ApiModel, Reply, check_if_match, etag_of, operation
from app.api.problems import FieldError, Problem
from app.db_types import TEXT_MAX_CHARS
from app.policy import Kind, Resource, Verb
from app.records import icd10
from app.records import services as records
from app.records.models import (NOTE_COLUMNS, VITAL_COLUMNS, Allergy, Diagnosis, Encounter, EncounterStatus,
                                Prescription, Severity)

TAG = "Medical records"
ENCOUNTER_READ = ("encounter", "vitals", "diagnosis", "prescription")
WRITE_ERRORS = (404, 409, 412, 422, 428)

Id = Annotated[int, Field(ge=1, le=10**18)]
Note = Annotated[str, Field(max_length=TEXT_MAX_CHARS)]
Vital = Annotated[Decimal, Field(max_digits=8, allow_inf_nan=False)]


def _text(limit: int):
    """A required text: surrounding spaces dropped, then 1 to `limit` characters."""
    return Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=limit)]


# --- representations ---------------------------------------------------------------------------------------

class VitalsOut(ApiModel):
    systolic: int | None = Field(description="mmHg")
    diastolic: int | None = Field(description="mmHg")
    heart_rate: int | None = Field(description="beats/min")
    respiratory_rate: int | None = Field(description="breaths/min")
    spo2: int | None = Field(description="%")
    temperature_c: float | None = Field(description="°C, one decimal")
    weight_kg: float | None = Field(description="kg, one decimal")
    height_cm: float | None = Field(description="cm, one decimal")
    bmi: float | None = Field(description="kg/m², computed by the server from weight and height")
    recorded_at: datetime | None


class DiagnosisOut(ApiModel):
    id: int
    encounter_id: int
    code: str = Field(description="ICD-10-CM, with its dot")
    description: str
    is_primary: bool


class AcknowledgementOut(ApiModel):
    allergy_id: int
    substance: str
    acknowledged_by_id: int
    acknowledged_at: datetime


class PrescriptionOut(ApiModel):
    id: int
    encounter_id: int
    drug_name: str
    strength: str
    form: str
    dose: str
    route: str
    frequency: str
    duration_days: int
    quantity: int
    refills: int
    instructions: str
    created_at: datetime
    allergy_acknowledgements: list[AcknowledgementOut] = Field(
        description="Recorded allergies the drug matches, prescribed anyway by the named doctor")


class EncounterOut(ApiModel):
    id: int
    appointment_id: int
    patient_id: int
    doctor_id: int = Field(description="The author: the appointment's doctor")
    doctor_name: str
    department_name: str
    visit_starts_at: datetime
    version: int = Field(description="1, then one more per amendment")
    status: EncounterStatus
    amends_id: int | None = Field(description="The signed version this one corrects")
    amendment_reason: str | None
    superseded_by_id: int | None = Field(description="The signed version that corrected this one")
    chief_complaint: str
    subjective: str | None = Field(description="null for the patient: the doctor's working notes")
    objective: str | None = Field(description="null for the patient: the doctor's working notes")
    assessment: str
    plan: str
    vitals: VitalsOut
    diagnoses: list[DiagnosisOut] = Field(description="The primary first")
    prescriptions: list[PrescriptionOut]
    created_at: datetime
    signed_at: datetime | None
    signed_by_id: int | None


class VisitOut(ApiModel):
    """An encounter in the record summary (the whole note: `GET /encounters/{id}`)."""
    id: int
    appointment_id: int
    visit_starts_at: datetime
    doctor_id: int
    doctor_name: str
    department_name: str
    version: int
    status: EncounterStatus
    amends_id: int | None
    chief_complaint: str
    signed_at: datetime | None


class AllergyOut(ApiModel):
    id: int
    patient_id: int
    substance: str
    reaction: str
    severity: Severity
    recorded_by_id: int
    recorded_at: datetime


class VitalsPoint(ApiModel):
    date: dt.date = Field(description="The day they were taken, in the clinic's time zone")
    encounter_id: int
    systolic: int | None
    diastolic: int | None
    heart_rate: int | None
    respiratory_rate: int | None
    spo2: int | None
    temperature_c: float | None
    weight_kg: float | None
    height_cm: float | None
    bmi: float | None


class RecordOut(ApiModel):
    patient_id: int
    encounters: list[VisitOut] = Field(description="The current version of each visit, newest visit first: the "
                                                   "latest signed one (for its author, a later draft)")
    diagnoses: list[DiagnosisOut] = Field(description="Of the current signed encounters")
    prescriptions: list[PrescriptionOut] = Field(description="Of the current signed encounters")
    allergies: list[AllergyOut] = Field(description="Active allergies, most severe first")
    vitals: list[VitalsPoint] = Field(description="One point per current signed encounter with vitals, oldest "
                                                  "first")


class Icd10CodeOut(ApiModel):
    code: str
    description: str
    billable: bool = Field(description="Only billable codes (the leaves) can be a diagnosis")


class Icd10List(ApiModel):
    items: list[Icd10CodeOut]


# --- requests ----------------------------------------------------------------------------------------------

class VitalsIn(ApiModel):
    """Each vital present is set (null clears it); one left out keeps its value. Plausible ranges are checked
    by the server (422 with the range, on `/vitals/<name>`)."""
    systolic: Vital | None = None
    diastolic: Vital | None = None
    heart_rate: Vital | None = None
    respiratory_rate: Vital | None = None
    spo2: Vital | None = None
    temperature_c: Vital | None = None
    weight_kg: Vital | None = None
    height_cm: Vital | None = None


class EncounterPatch(ApiModel):
    """Only what is present changes (JSON merge patch): a note set to null or "" is cleared, `vitals: null`
    clears every vital."""
    chief_complaint: Annotated[str, Field(max_length=500)] | None = None
    subjective: Note | None = None
    objective: Note | None = None
    assessment: Note | None = None
    plan: Note | None = None
    vitals: VitalsIn | None = None


class DiagnosisIn(ApiModel):
    code: _text(10) = Field(description="A billable ICD-10-CM code (dot optional), e.g. from `GET /icd10`")
    primary: bool = Field(False, description="Make it the primary diagnosis (the first one always is)")


class PrescriptionIn(ApiModel):
    drug_name: _text(120)
    strength: _text(60) = Field(examples=["500 mg"])
    form: Literal[records.FORMS]
    dose: _text(60) = Field(examples=["1 capsule"])
    route: Literal[records.ROUTES]
    frequency: Literal[records.FREQUENCIES]
    duration_days: int = Field(ge=1, le=365)
    quantity: int = Field(ge=1, le=1000)
    refills: int = Field(0, ge=0, le=12)
    instructions: Annotated[str, Field(max_length=500)] = ""
    acknowledge_allergies: list[Id] = Field(
        default_factory=list, max_length=50,
        description="The ids of recorded allergies the drug matches that you prescribe it despite (the "
                    "`allergy_matches` of the 409 answer). Without every matching one: 409, nothing saved.")


class AmendIn(ApiModel):
    reason: _text(500) = Field(description="Why the signed version is corrected; kept with the new version")


class AllergyIn(ApiModel):
    substance: _text(120) = Field(examples=["Penicillin"])
    reaction: _text(255) = Field(examples=["Hives"])
    severity: Severity


class Icd10Query(ApiModel):
    q: str = Field(min_length=icd10.MIN_QUERY, max_length=100,
                   description="A code prefix (E11, e11.6) or words starting words of the description")
    limit: int = Field(icd10.DEFAULT_LIMIT, ge=1, le=50)


# --- converters --------------------------------------------------------------------------------------------

def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _patient_reads() -> bool:
    return actor().role is Role.PATIENT


def diagnosis_out(d: Diagnosis) -> DiagnosisOut:
    return DiagnosisOut(id=d.id, encounter_id=d.encounter_id, code=d.code, description=d.description,
                        is_primary=d.is_primary)


def prescription_out(p: Prescription) -> PrescriptionOut:
    return PrescriptionOut(
        id=p.id, encounter_id=p.encounter_id, drug_name=p.drug_name, strength=p.strength, form=p.form, dose=p.dose,
        route=p.route, frequency=p.frequency, duration_days=p.duration_days, quantity=p.quantity, refills=p.refills,
        instructions=p.instructions, created_at=p.created_at,
        allergy_acknowledgements=[AcknowledgementOut(allergy_id=a.allergy_id, substance=a.substance,
                                                     acknowledged_by_id=a.acknowledged_by_id,
                                                     acknowledged_at=a.acknowledged_at)
                                  for a in p.acknowledgements])


def out(e: Encounter) -> EncounterOut:
    """The encounter as the token's user may read it. Children are ordered here (primary diagnosis first, then
    by id), so the representation, and its ETag, is the same just after a change and when read again."""
    def working_note(name: str) -> str | None:
        return None if _patient_reads() and name not in records.PATIENT_NOTES else getattr(e, name)

    vitals = {name: getattr(e, name) for name in (*VITAL_COLUMNS, "bmi")}
    return EncounterOut(
        id=e.id, appointment_id=e.appointment_id, patient_id=e.patient_id, doctor_id=e.doctor_id,
        doctor_name=e.doctor.full_name, department_name=e.appointment.department.name,
        visit_starts_at=e.appointment.starts_at, version=e.version, status=e.status, amends_id=e.amends_id,
        amendment_reason=e.amendment_reason,
        superseded_by_id=(s.id if e.signed and (s := records.superseding(e)) is not None else None),
        chief_complaint=e.chief_complaint, subjective=working_note("subjective"),
        objective=working_note("objective"), assessment=e.assessment, plan=e.plan,
        vitals=VitalsOut(**{n: _number(v) if isinstance(v, Decimal) else v for n, v in vitals.items()},
                         recorded_at=e.vitals_recorded_at),
        diagnoses=[diagnosis_out(d) for d in sorted(e.diagnoses, key=lambda d: (not d.is_primary, d.id))],
        prescriptions=[prescription_out(p) for p in sorted(e.prescriptions, key=lambda p: p.id)],
        created_at=e.created_at, signed_at=e.signed_at, signed_by_id=e.signed_by_id)


def visit_out(e: Encounter) -> VisitOut:
    return VisitOut(id=e.id, appointment_id=e.appointment_id, visit_starts_at=e.appointment.starts_at,
                    doctor_id=e.doctor_id, doctor_name=e.doctor.full_name,
                    department_name=e.appointment.department.name, version=e.version, status=e.status,
                    amends_id=e.amends_id, chief_complaint=e.chief_complaint, signed_at=e.signed_at)


def allergy_out(a: Allergy) -> AllergyOut:
    return AllergyOut(id=a.id, patient_id=a.patient_id, substance=a.substance, reaction=a.reaction,
                      severity=a.severity, recorded_by_id=a.recorded_by_id, recorded_at=a.recorded_at)


def _encounter_url(encounter: Encounter) -> str:
    return url_for("api.get_encounter", encounter_id=encounter.id)


# --- refusals of the services ------------------------------------------------------------------------------

def _locked(error: records.RecordLocked) -> NoReturn:
    raise Problem(409, str(error), slug="record-locked", title="Encounter locked") from None


def _invalid(error: records.InvalidInput, prefix: str = "") -> NoReturn:
    raise Problem(422, "Some fields could not be accepted.",
                  errors=[FieldError(f"{prefix}/{name}", message) for name, message in error.errors.items()]) from None


# --- loading -----------------------------------------------------------------------------------------------

def _writable(encounter_id: int) -> Encounter:
    """The encounter the token's doctor writes (its author; 404 otherwise), locked, read afresh and compared
    with If-Match."""
    encounter = records.get_encounter(encounter_id, for_update=True)
    authorize(Verb.WRITE, Resource.encounter(encounter_id, encounter))
    check_if_match(out(encounter))
    return encounter


def _child(children, child_id: int):
    child = next((c for c in children if c.id == child_id), None)
    if child is None:
        raise Problem(404, "No such resource.")
    return child


# --- opening and reading -----------------------------------------------------------------------------------

@operation(bp, "POST", "/appointments/<id:appointment_id>/encounter", tag=TAG, summary="Open a visit's encounter",
           response=EncounterOut, status=201, scope="Encounter.c", idempotent=True, errors=(404, 409))
def open_encounter(appointment_id: int):
    """The appointment's doctor opens the note of a checked-in or completed visit: a new draft (201), or the
    visit's latest version if it has one (200). Opening again is harmless."""
    appointment = records.lock_appointment(appointment_id)
    decision = authorize(Verb.WRITE, Resource.visit_encounter(appointment_id, appointment))
    try:
        encounter, created = records.open_encounter(actor().user, appointment)
    except records.RecordLocked as error:
        raise Problem(409, str(error), slug="encounter-not-openable", title="Encounter not open yet") from None
    body = out(encounter)
    headers = {"Location": _encounter_url(encounter)}
    if created:
        return Reply(body, headers=headers)
    records.record_read(encounter.patient_id, ENCOUNTER_READ, view="api.encounter", entity_type="encounter",
                        entity_id=encounter.id, decision=decision)
    return Reply(body, status=200, headers={**headers, "ETag": etag_of(body)})


@operation(bp, "GET", "/encounters/<id:encounter_id>", tag=TAG, summary="Get an encounter",
           response=EncounterOut, scope="Encounter.r", errors=(404,))
def get_encounter(encounter_id: int):
    """A draft: its author only. A signed version: its patient and the doctors caring for them (403
    `no-care-relationship` for another doctor). Audited as a read of the record."""
    encounter = records.get_encounter(encounter_id)
    decision = authorize(Verb.READ, Resource.encounter(encounter_id, encounter))
    records.record_read(encounter.patient_id, ENCOUNTER_READ, view="api.encounter", entity_type="encounter",
                        entity_id=encounter.id, decision=decision)
    return out(encounter)


@operation(bp, "GET", "/patients/<id:patient_id>/record", tag=TAG, summary="A patient's record summary",
           response=RecordOut, scope="Condition.r", errors=(404,))
def get_patient_record(patient_id: int):
    """The patient's own record, or one of a patient in the doctor's care (403 `no-care-relationship`
    otherwise). Any record scope reads it (Condition, MedicationRequest, AllergyIntolerance or Observation
    `.r`). Audited as a read of the whole record."""
    decision = authorize(Verb.READ, Resource.record(patient_id))
    me = actor().user
    encounters = records.current_encounters(patient_id, drafts_of=me.id if me.role is Role.DOCTOR else None)
    record = RecordOut(
        patient_id=patient_id, encounters=[visit_out(e) for e in encounters],
        diagnoses=[diagnosis_out(d) for _, d in records.patient_diagnoses(patient_id)],
        prescriptions=[prescription_out(p) for _, p in records.patient_prescriptions(patient_id)],
        allergies=[allergy_out(a) for a in records.allergies(patient_id)],
        vitals=[VitalsPoint(**point) for point in records.vitals_series(patient_id)])
    records.record_read(patient_id, records.CATEGORIES, view="api.record", decision=decision)
    return record


@operation(bp, "GET", "/icd10", tag=TAG, summary="Search ICD-10-CM codes", query=Icd10Query, response=Icd10List,
           scope="Condition.s")
def search_icd10(query: Icd10Query):
    """Reference data for choosing a diagnosis (no clinical data, not audited); for doctors. Billable codes
    first."""
    require_area("doctor", Kind.RECORD, Verb.READ)
    return Icd10List(items=[Icd10CodeOut(code=c.code, description=c.description, billable=c.billable)
                            for c in icd10.search(query.q, limit=query.limit)])


# --- writing a draft ---------------------------------------------------------------------------------------

@operation(bp, "PATCH", "/encounters/<id:encounter_id>", tag=TAG, summary="Update an encounter's notes and vitals",
           body=EncounterPatch, response=EncounterOut, scope="Encounter.u", if_match=True, errors=WRITE_ERRORS)
def update_encounter(encounter_id: int, body: EncounterPatch):
    """The author changes a draft's notes and vitals (a signed version: 409, amend it). Vitals out of their
    plausible range are 422 with the range on `/vitals/<name>`; BMI is computed from weight and height."""
    encounter = _writable(encounter_id)
    given = body.model_fields_set
    notes = {name: getattr(body, name) or "" for name in NOTE_COLUMNS if name in given}
    try:
        if notes:
            records.save_notes(encounter, **notes)
        if "vitals" in given:
            vitals = {name: getattr(encounter, name) for name in VITAL_COLUMNS}
            if body.vitals is None:
                vitals = dict.fromkeys(VITAL_COLUMNS)
            else:
                vitals.update({name: getattr(body.vitals, name) for name in body.vitals.model_fields_set})
            records.save_vitals(encounter, vitals)
    except records.RecordLocked as error:
        _locked(error)
    except records.InvalidInput as error:
        _invalid(error, "/vitals" if error.errors.keys() <= set(VITAL_COLUMNS) else "")
    return out(encounter)


@operation(bp, "POST", "/encounters/<id:encounter_id>/diagnoses", tag=TAG, summary="Add a diagnosis",
           body=DiagnosisIn, response=EncounterOut, status=201, scope="Encounter.u", if_match=True,
           idempotent=True, errors=WRITE_ERRORS)
def add_diagnosis(encounter_id: int, body: DiagnosisIn):
    """An ICD-10-CM code on the author's draft (If-Match: the encounter's ETag). Answers the encounter with the
    new diagnosis and its new ETag."""
    encounter = _writable(encounter_id)
    try:
        records.add_diagnosis(encounter, body.code, primary=body.primary)
    except records.RecordLocked as error:
        _locked(error)
    except records.InvalidInput as error:
        _invalid(error)
    return Reply(out(encounter), headers={"Location": _encounter_url(encounter)})


@operation(bp, "DELETE", "/encounters/<id:encounter_id>/diagnoses/<id:diagnosis_id>", tag=TAG,
           summary="Remove a diagnosis", response=EncounterOut, scope="Encounter.u", if_match=True,
           errors=WRITE_ERRORS)
def remove_diagnosis(encounter_id: int, diagnosis_id: int):
    """From the author's draft (If-Match: the encounter's ETag); removing the primary one makes the next
    primary."""
    encounter = _writable(encounter_id)
    try:
        records.remove_diagnosis(encounter, _child(encounter.diagnoses, diagnosis_id))
    except records.RecordLocked as error:
        _locked(error)
    return out(encounter)


@operation(bp, "POST", "/encounters/<id:encounter_id>/prescriptions", tag=TAG, summary="Add a prescription",
           body=PrescriptionIn, response=EncounterOut, status=201, scope="Encounter.u", if_match=True,
           idempotent=True, errors=WRITE_ERRORS)
def add_prescription(encounter_id: int, body: PrescriptionIn):
    """A prescription on the author's draft (If-Match: the encounter's ETag). A drug that matches a recorded
    allergy (by name or by drug class) is 409 `allergy-warning` with `allergy_matches`, unless every match is
    in `acknowledge_allergies`; the acknowledgements are kept with the prescription."""
    encounter = _writable(encounter_id)
    data = records.PrescriptionInput(**body.model_dump(exclude={"acknowledge_allergies"}))
    try:
        records.add_prescription(encounter, data, actor().user,
                                 acknowledged_allergy_ids=frozenset(body.acknowledge_allergies))
    except records.RecordLocked as error:
        _locked(error)
    except records.AllergyWarning as warning:
        matches = [{"allergy_id": m.allergy.id, "substance": m.allergy.substance, "reaction": m.allergy.reaction,
                    "severity": m.allergy.severity.value, "reason": m.reason} for m in warning.matches]
        raise Problem(409, f"{warning} To prescribe it anyway, repeat the request with these allergies' ids in "
                           "acknowledge_allergies.", slug="allergy-warning", title="Drug matches a recorded allergy",
                      extensions={"allergy_matches": matches}) from None
    return Reply(out(encounter), headers={"Location": _encounter_url(encounter)})


@operation(bp, "DELETE", "/encounters/<id:encounter_id>/prescriptions/<id:prescription_id>", tag=TAG,
           summary="Remove a prescription", response=EncounterOut, scope="Encounter.u", if_match=True,
           errors=WRITE_ERRORS)
def remove_prescription(encounter_id: int, prescription_id: int):
    """From the author's draft (If-Match: the encounter's ETag)."""
    encounter = _writable(encounter_id)
    try:
        records.remove_prescription(encounter, _child(encounter.prescriptions, prescription_id))
    except records.RecordLocked as error:
        _locked(error)
    return out(encounter)


# --- signing and amending ----------------------------------------------------------------------------------

@operation(bp, "POST", "/encounters/<id:encounter_id>/sign", tag=TAG, summary="Sign an encounter",
           response=EncounterOut, scope="Encounter.u", if_match=True, errors=(404, 409, 412, 428))
def sign_encounter(encounter_id: int):
    """The author signs the draft: from then on it is read-only (corrections are amendments) and its patient
    reads it. Without a chief complaint: 409 `encounter-incomplete`."""
    encounter = _writable(encounter_id)
    try:
        records.sign(encounter, actor().user)
    except records.RecordLocked as error:
        _locked(error)
    except records.InvalidInput as error:
        raise Problem(409, str(error), slug="encounter-incomplete", title="Encounter incomplete") from None
    return out(encounter)


@operation(bp, "POST", "/encounters/<id:encounter_id>/amend", tag=TAG, summary="Amend a signed encounter",
           body=AmendIn, response=EncounterOut, status=201, scope="Encounter.u", if_match=True, idempotent=True,
           errors=WRITE_ERRORS)
def amend_encounter(encounter_id: int, body: AmendIn):
    """The author corrects the latest signed version: a new draft version copying it (notes, vitals,
    diagnoses, prescriptions), linked to it with the reason; the signed one is never changed. A draft, or a
    version already amended: 409 `not-amendable`."""
    encounter = _writable(encounter_id)
    try:
        amendment = records.amend(encounter, actor().user, body.reason)
    except records.RecordLocked as error:
        raise Problem(409, str(error), slug="not-amendable", title="Not amendable") from None
    except records.InvalidInput as error:
        _invalid(error)
    return Reply(out(amendment), headers={"Location": _encounter_url(amendment)})


# --- allergies ---------------------------------------------------------------------------------------------

def _allergy(patient_id: int, allergy_id: int, *, for_update: bool = False) -> Allergy:
    allergy = records.active_allergy(patient_id, allergy_id, for_update=for_update)
    if allergy is None:
        raise Problem(404, "No such resource.")
    return allergy


@operation(bp, "POST", "/patients/<id:patient_id>/allergies", tag=TAG, summary="Record an allergy",
           body=AllergyIn, response=AllergyOut, status=201, scope="AllergyIntolerance.c", idempotent=True,
           errors=(404, 422))
def add_allergy(patient_id: int, body: AllergyIn):
    """A doctor caring for the patient records an allergy (one per substance: 422 on `/substance` when it is
    already recorded). Prescriptions are checked against it from then on."""
    authorize(Verb.WRITE, Resource.record(patient_id))
    try:
        allergy = records.record_allergy(patient_id, substance=body.substance, reaction=body.reaction,
                                         severity=body.severity, by=actor().user)
    except records.InvalidInput as error:
        _invalid(error)
    return Reply(allergy_out(allergy), headers={"Location": url_for("api.get_allergy", patient_id=patient_id,
                                                                    allergy_id=allergy.id)})


@operation(bp, "GET", "/patients/<id:patient_id>/allergies/<id:allergy_id>", tag=TAG, summary="Get an allergy",
           response=AllergyOut, scope="AllergyIntolerance.r", errors=(404,))
def get_allergy(patient_id: int, allergy_id: int):
    """One of the patient's recorded allergies, read as the record is (audited)."""
    decision = authorize(Verb.READ, Resource.record(patient_id))
    allergy = _allergy(patient_id, allergy_id)
    records.record_read(patient_id, ("allergy",), view="api.allergy", entity_type="allergy", entity_id=allergy.id,
                        decision=decision)
    return allergy_out(allergy)


@operation(bp, "DELETE", "/patients/<id:patient_id>/allergies/<id:allergy_id>", tag=TAG,
           summary="Remove an allergy entered in error", status=204, scope="AllergyIntolerance.d", if_match=True,
           errors=(404,))
def remove_allergy(patient_id: int, allergy_id: int):
    """A doctor caring for the patient removes an allergy entered in error: hidden from then on, kept in the
    database and the audit trail. If-Match with the allergy's ETag, as for every change; a second removal is
    404."""
    authorize(Verb.WRITE, Resource.record(patient_id))
    allergy = _allergy(patient_id, allergy_id, for_update=True)
    check_if_match(allergy_out(allergy))
    records.remove_allergy(allergy, by=actor().user)
    return Reply(status=204)
