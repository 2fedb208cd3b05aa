"""`Patient/{id}/$everything`: the patient and what the token may read of their record, as one searchset.

Asked as a read of the Patient (the patient themselves, or a clinician with the record); each other part is
included when the token's scope and the policy allow it (a doctor's appointments are their own), and the read
is audited once with every category it returned.
"""
from __future__ import annotations

from app.fhir import access
from app.fhir.resources import appointment, clinical, observation, patient as patients
from app.fhir.search import Page, SearchQuery, as_id, list_page
from app.policy import Kind
from app.records.services import DEMOGRAPHICS

ORDER = ("Patient", "Appointment", "Encounter", "Condition", "MedicationRequest", "AllergyIntolerance",
         "Observation")


def everything(ident: str, query: SearchQuery) -> Page:
    patient_id = as_id(ident)
    # Held for the whole request: each question to the policy below (`Resource.record`) finds the patient in the
    # session's identity map, which holds only what is referenced, instead of reading the row again.
    patient = patients.get(patient_id)
    decision = access.read_patient(patient_id)
    found = [patients.to_fhir(patient)]
    may = access.may_read_parts(patient_id, (Kind.APPOINTMENT, Kind.ENCOUNTER, Kind.RECORD))
    if may[Kind.APPOINTMENT]:
        found += appointment.of_patient(patient_id)
    categories = [DEMOGRAPHICS]
    encounters = None
    if may[Kind.ENCOUNTER]:
        categories.append("encounter")
        encounters = clinical.visible_encounters(patient_id)
        found += [clinical.encounter(e) for e in encounters]
    if may[Kind.RECORD]:
        categories += ["diagnosis", "prescription", "allergy", "vitals"]
        encounters = encounters if encounters is not None else clinical.visible_encounters(patient_id)
        found += [clinical.condition(d, e) for e in encounters for d in e.diagnoses]
        found += [clinical.medication_request(p, e) for e in encounters for p in e.prescriptions]
        found += [clinical.allergy_intolerance(a) for a in clinical.records.allergies(patient_id)]
        found += observation.of_encounters(encounters)
    access.audit(patient_id, categories, view="fhir.Patient.everything", decision=decision)
    return list_page(query, found, key=_key)


def _key(resource: dict) -> list:
    parts = [int(p) if p.isdigit() else p for p in resource["id"].split("-")]
    if resource["resourceType"] == "Observation":
        parts = [parts[0], observation.ORDER.index(resource["id"].partition("-")[2])]
    return [ORDER.index(resource["resourceType"]), *parts]
