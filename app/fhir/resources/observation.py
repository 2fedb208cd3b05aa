"""Observation: the vital signs of a visit's note, in the FHIR vital-signs profiles (LOINC codes, UCUM units;
blood pressure as one Observation with systolic and diastolic components; BMI as HMS computed it).

An Observation is one measurement of one encounter (version), so its id is `<encounter id>-<measurement>`,
e.g. `42-blood-pressure`. It is `final` once the note is signed, `preliminary` in its author's draft.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from app.fhir import access
from app.fhir.outcomes import FhirError
from app.fhir.resources.clinical import read_encounter_of, visible_encounters
from app.fhir.resources.common import LOINC, UCUM, instant, meta, ref
from app.fhir.search import Page, SearchQuery, as_id, list_page
from app.policy import Kind
from app.records import services as records
from app.records.models import Encounter

SEARCH_PARAMS = {"patient": "reference", "category": "token", "code": "token", "date": "date"}
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
PROFILE = "http://hl7.org/fhir/StructureDefinition/"
ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"


@dataclass(frozen=True)
class Vital:
    slug: str
    loinc: str
    display: str
    column: str
    unit: str  # UCUM code
    unit_text: str
    profile: str


VITALS = (
    Vital("heart-rate", "8867-4", "Heart rate", "heart_rate", "/min", "beats/minute", "heartrate"),
    Vital("respiratory-rate", "9279-1", "Respiratory rate", "respiratory_rate", "/min", "breaths/minute", "resprate"),
    Vital("oxygen-saturation", "2708-6", "Oxygen saturation in Arterial blood", "spo2", "%", "%", "oxygensat"),
    Vital("body-temperature", "8310-5", "Body temperature", "temperature_c", "Cel", "C", "bodytemp"),
    Vital("body-weight", "29463-7", "Body weight", "weight_kg", "kg", "kg", "bodyweight"),
    Vital("body-height", "8302-2", "Body height", "height_cm", "cm", "cm", "bodyheight"),
    Vital("bmi", "39156-5", "Body mass index (BMI) [Ratio]", "bmi", "kg/m2", "kg/m2", "bmi"),
)
BLOOD_PRESSURE = "blood-pressure"
BP_PANEL = ("85354-9", "Blood pressure panel with all children optional")
BP_PARTS = (("systolic", "8480-6", "Systolic blood pressure"), ("diastolic", "8462-4", "Diastolic blood pressure"))
ORDER = (BLOOD_PRESSURE, *(v.slug for v in VITALS))


def _value(number) -> float | int:
    return float(number) if isinstance(number, Decimal) else number


def _quantity(number, unit: str, unit_text: str) -> dict:
    return {"value": _value(number), "unit": unit_text, "system": UCUM, "code": unit}


def _code(loinc: str, display: str) -> dict:
    return {"coding": [{"system": LOINC, "code": loinc, "display": display}], "text": display}


def _base(row: Encounter, slug: str, profile: str, code: dict) -> dict:
    taken = row.vitals_recorded_at or row.appointment.starts_at
    return {"resourceType": "Observation", "id": f"{row.id}-{slug}",
            "meta": meta(row.updated_at, PROFILE + "vitalsigns", PROFILE + profile),
            "status": "final" if row.signed else "preliminary",
            "category": [{"coding": [{"system": CATEGORY_SYSTEM, "code": "vital-signs", "display": "Vital Signs"}],
                          "text": "Vital Signs"}],
            "code": code, "subject": ref("Patient", row.patient_id), "encounter": ref("Encounter", row.id),
            "effectiveDateTime": instant(taken),
            "performer": [ref("Practitioner", row.doctor_id, row.doctor.full_name)]}


def observations(row: Encounter) -> list[dict]:
    """The vital signs of one encounter, in ORDER."""
    found = []
    if row.systolic is not None or row.diastolic is not None:
        resource = _base(row, BLOOD_PRESSURE, "bp", _code(*BP_PANEL))
        resource["component"] = []
        for column, loinc, display in BP_PARTS:
            part = {"code": _code(loinc, display)}
            value = getattr(row, column)
            if value is None:
                part["dataAbsentReason"] = {"coding": [{"system": ABSENT, "code": "not-performed"}]}
            else:
                part["valueQuantity"] = _quantity(value, "mm[Hg]", "mmHg")
            resource["component"].append(part)
        found.append(resource)
    for vital in VITALS:
        value = getattr(row, vital.column)
        if value is not None:
            resource = _base(row, vital.slug, vital.profile, _code(vital.loinc, vital.display))
            resource["valueQuantity"] = _quantity(value, vital.unit, vital.unit_text)
            found.append(resource)
    return found


def _key(resource: dict) -> list[int]:
    encounter_id, _, slug = resource["id"].partition("-")
    return [int(encounter_id), ORDER.index(slug)]


def read(ident: str) -> dict:
    encounter_part, _, slug = ident.partition("-")
    encounter_id = as_id(encounter_part)
    row = records.get_encounter(encounter_id)
    decision = read_encounter_of(row, encounter_id, Kind.RECORD)
    found = next((o for o in observations(row) if o["id"] == ident), None)
    if found is None:
        raise FhirError(404, f"Observation/{ident[:64]} is not known.", code="not-found")
    access.audit(row.patient_id, ["vitals"], view="fhir.Observation.read", decision=decision,
                 entity_type="encounter", entity_id=row.id)
    return found


def search(query: SearchQuery) -> Page:
    patient_id, decision = access.searched_patient(query, Kind.RECORD)
    access.audit(patient_id, ["vitals"], view="fhir.Observation.search", decision=decision)
    found = [o for row in visible_encounters(patient_id) if row.has_vitals for o in observations(row)]
    for ors in query.tokens("category"):
        found = [o for o in found if any(t.matches([(CATEGORY_SYSTEM, "vital-signs")]) for t in ors)]
    for ors in query.tokens("code"):
        found = [o for o in found if any(t.matches([(LOINC, o["code"]["coding"][0]["code"])]) for t in ors)]
    for ors in query.dates("date"):
        found = [o for o in found
                 if any(p.matches(_moment(o["effectiveDateTime"])) for p in ors)]
    return list_page(query, found, key=_key)


def of_encounters(rows: list[Encounter]) -> list[dict]:
    return [o for row in rows if row.has_vitals for o in observations(row)]


def _moment(text: str):
    from datetime import datetime

    return datetime.fromisoformat(text)
