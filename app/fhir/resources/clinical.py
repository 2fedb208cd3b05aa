"""A patient's record: Encounter (a visit's note, `encounters`), Condition (a diagnosis, ICD-10-CM),
MedicationRequest (a prescription) and AllergyIntolerance (an allergy).

What a search returns is what the record pages show: the current version of each visit (the latest signed one,
and for its author also a later draft), with its diagnoses and prescriptions; the active allergies. An earlier
version of an amended visit stays readable by its id (the pages keep its history too). A draft is its author's
alone (the policy); in FHIR it is an `in-progress` Encounter, a `provisional` Condition, a `draft`
MedicationRequest.
"""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from app.accounts.models import Role
from app.api.auth import authorize
from app.extensions import db
from app.fhir import access
from app.fhir.resources.common import ICD10CM, instant, meta, ref
from app.fhir.search import Page, SearchQuery, as_id, list_page
from app.policy import Kind, Resource, Verb
from app.records import services as records
from app.records.models import Allergy, Diagnosis, Encounter, Prescription
from app.timeutil import utcnow

PATIENT_PARAMS = {"patient": "reference"}
CONDITION_PARAMS = {"patient": "reference", "code": "token"}
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
UCUM = "http://unitsofmeasure.org"


def visible_encounters(patient_id: int) -> list[Encounter]:
    """The current version of each visit the token's user reads (a doctor's own drafts too)."""
    me = access.me()
    return records.current_encounters(patient_id, drafts_of=me.id if me.role is Role.DOCTOR else None, summary=True)


def read_encounter_of(encounter: Encounter | None, ident: int, kind: Kind):
    """The policy's answer for an encounter (or a part of it: a diagnosis, a prescription, vital signs)."""
    return authorize(Verb.READ, access.named(Resource.encounter(ident, encounter), kind))


# --- Encounter ---------------------------------------------------------------------------------------------

def encounter(row: Encounter) -> dict:
    appointment = row.appointment
    resource = {
        "resourceType": "Encounter", "id": str(row.id), "meta": meta(row.updated_at),
        "status": "finished" if row.signed else "in-progress",
        "class": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
        "subject": ref("Patient", row.patient_id),
        "participant": [{"individual": ref("Practitioner", row.doctor_id, row.doctor.full_name)}],
        "appointment": [ref("Appointment", row.appointment_id)],
        "period": {"start": instant(appointment.starts_at), "end": instant(appointment.ends_at)},
        "serviceProvider": ref("Organization", appointment.department_id, appointment.department.name)}
    if row.chief_complaint:
        resource["reasonCode"] = [{"text": row.chief_complaint}]
    if row.diagnoses:
        resource["diagnosis"] = [{"condition": ref("Condition", d.id), "rank": rank}
                                 for rank, d in enumerate(row.diagnoses, start=1)]
    return resource


def read_encounter(ident: str) -> dict:
    row = records.get_encounter(as_id(ident))
    decision = read_encounter_of(row, as_id(ident), Kind.ENCOUNTER)
    access.audit(row.patient_id, ["encounter"], view="fhir.Encounter.read", decision=decision,
                 entity_type="encounter", entity_id=row.id)
    return encounter(row)


def search_encounter(query: SearchQuery) -> Page:
    patient_id, decision = access.searched_patient(query, Kind.ENCOUNTER)
    access.audit(patient_id, ["encounter"], view="fhir.Encounter.search", decision=decision)
    return list_page(query, [encounter(e) for e in visible_encounters(patient_id)], key=lambda r: [int(r["id"])])


# --- Condition ---------------------------------------------------------------------------------------------

def condition(diagnosis: Diagnosis, row: Encounter) -> dict:
    return {
        "resourceType": "Condition", "id": str(diagnosis.id), "meta": meta(diagnosis.created_at),
        "verificationStatus": {"coding": [{"system": CONDITION_VERIFICATION,
                                           "code": "confirmed" if row.signed else "provisional"}]},
        "category": [{"coding": [{"system": CONDITION_CATEGORY, "code": "encounter-diagnosis",
                                  "display": "Encounter Diagnosis"}]}],
        "code": {"coding": [{"system": ICD10CM, "code": diagnosis.code, "display": diagnosis.description}],
                 "text": diagnosis.description},
        "subject": ref("Patient", row.patient_id), "encounter": ref("Encounter", row.id),
        "recordedDate": instant(diagnosis.created_at),
        "recorder": ref("Practitioner", row.doctor_id, row.doctor.full_name)}


def read_condition(ident: str) -> dict:
    diagnosis = db.session.get(Diagnosis, as_id(ident))
    row = records.get_encounter(diagnosis.encounter_id) if diagnosis else None
    decision = read_encounter_of(row, as_id(ident), Kind.RECORD)
    access.audit(row.patient_id, ["diagnosis"], view="fhir.Condition.read", decision=decision,
                 entity_type="diagnosis", entity_id=diagnosis.id)
    return condition(diagnosis, row)


def search_condition(query: SearchQuery) -> Page:
    patient_id, decision = access.searched_patient(query, Kind.RECORD)
    access.audit(patient_id, ["diagnosis"], view="fhir.Condition.search", decision=decision)
    found = [condition(d, e) for e in visible_encounters(patient_id) for d in e.diagnoses]
    for ors in query.tokens("code"):
        found = [c for c in found if any(t.matches([(ICD10CM, c["code"]["coding"][0]["code"])]) for t in ors)]
    return list_page(query, found, key=lambda r: [int(r["id"])])


# --- MedicationRequest -------------------------------------------------------------------------------------

def medication_request(prescription: Prescription, row: Encounter) -> dict:
    started = row.signed_at or prescription.created_at
    status = "draft" if not row.signed else (
        "completed" if started + timedelta(days=prescription.duration_days) <= utcnow() else "active")
    dosage = {"text": f"{prescription.dose}, {prescription.route}, {prescription.frequency}",
              "route": {"text": prescription.route}}
    if prescription.instructions:
        dosage["patientInstruction"] = prescription.instructions
    return {
        "resourceType": "MedicationRequest", "id": str(prescription.id), "meta": meta(prescription.created_at),
        "status": status, "intent": "order",
        "medicationCodeableConcept": {"text": f"{prescription.drug_name} {prescription.strength} {prescription.form}"},
        "subject": ref("Patient", row.patient_id), "encounter": ref("Encounter", row.id),
        "authoredOn": instant(prescription.created_at),
        "requester": ref("Practitioner", row.doctor_id, row.doctor.full_name),
        "dosageInstruction": [dosage],
        "dispenseRequest": {
            "numberOfRepeatsAllowed": prescription.refills,
            "quantity": {"value": prescription.quantity, "unit": prescription.form},
            "expectedSupplyDuration": {"value": prescription.duration_days, "unit": "days", "system": UCUM,
                                       "code": "d"}}}


def read_medication_request(ident: str) -> dict:
    prescription = db.session.get(Prescription, as_id(ident))
    row = records.get_encounter(prescription.encounter_id) if prescription else None
    decision = read_encounter_of(row, as_id(ident), Kind.RECORD)
    access.audit(row.patient_id, ["prescription"], view="fhir.MedicationRequest.read", decision=decision,
                 entity_type="prescription", entity_id=prescription.id)
    return medication_request(prescription, row)


def search_medication_request(query: SearchQuery) -> Page:
    patient_id, decision = access.searched_patient(query, Kind.RECORD)
    access.audit(patient_id, ["prescription"], view="fhir.MedicationRequest.search", decision=decision)
    found = [medication_request(p, e) for e in visible_encounters(patient_id) for p in e.prescriptions]
    return list_page(query, found, key=lambda r: [int(r["id"])])


# --- AllergyIntolerance ------------------------------------------------------------------------------------

def allergy_intolerance(allergy: Allergy) -> dict:
    removed = allergy.removed_at is not None
    resource = {
        "resourceType": "AllergyIntolerance", "id": str(allergy.id),
        "meta": meta(allergy.removed_at or allergy.recorded_at),
        "verificationStatus": {"coding": [{"system": ALLERGY_VERIFICATION,
                                           "code": "entered-in-error" if removed else "confirmed"}]},
        "code": {"text": allergy.substance}, "patient": ref("Patient", allergy.patient_id),
        "recordedDate": instant(allergy.recorded_at),
        "recorder": ref("Practitioner", allergy.recorded_by_id, allergy.recorded_by.full_name),
        "criticality": "high" if allergy.severity.value == "severe" else "low",
        "reaction": [{"manifestation": [{"text": allergy.reaction}], "severity": allergy.severity.value}]}
    if not removed:
        resource["clinicalStatus"] = {"coding": [{"system": ALLERGY_CLINICAL, "code": "active"}]}
    return resource


def read_allergy_intolerance(ident: str) -> dict:
    allergy = db.session.scalar(sa.select(Allergy).where(Allergy.id == as_id(ident)))
    if allergy is None:
        authorize(Verb.READ, Resource.missing(Kind.RECORD, as_id(ident)))
    decision = access.read_record(allergy.patient_id, Kind.RECORD)
    access.audit(allergy.patient_id, ["allergy"], view="fhir.AllergyIntolerance.read", decision=decision,
                 entity_type="allergy", entity_id=allergy.id)
    return allergy_intolerance(allergy)


def search_allergy_intolerance(query: SearchQuery) -> Page:
    patient_id, decision = access.searched_patient(query, Kind.RECORD)
    access.audit(patient_id, ["allergy"], view="fhir.AllergyIntolerance.search", decision=decision)
    return list_page(query, [allergy_intolerance(a) for a in records.allergies(patient_id)],
                     key=lambda r: [int(r["id"])])

