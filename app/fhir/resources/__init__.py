"""The FHIR resource types HMS serves: for each, its read, its search and the search parameters it supports.

The registry is the single source of the routes' type names and of the CapabilityStatement, so the statement
lists exactly what is implemented. Each module maps HMS's rows to FHIR R4 dicts and asks the access policy
(`app.fhir.access`) before it reads.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.fhir.resources import appointment, appointment_writes, clinical, directory, observation, patient, scheduling
from app.fhir.search import Page, SearchQuery


@dataclass(frozen=True)
class ResourceType:
    name: str
    read: Callable[[str], dict]
    search: Callable[[SearchQuery], Page]
    params: dict[str, str]  # name -> FHIR search parameter type
    includes: tuple[str, ...] = ()
    documentation: str = ""
    # writes (`app.fhir.writes`): None where the type is read-only (its POST, PUT and PATCH are 405)
    create: Callable[[], tuple[dict, int]] | None = None  # (the resource, 201 created or 200 found)
    update: Callable[[str], dict] | None = None
    patch: Callable[[str], dict] | None = None

    @property
    def interactions(self) -> list[str]:
        return ["read", "search-type", *(name for name in ("create", "update", "patch") if getattr(self, name))]


TYPES: dict[str, ResourceType] = {t.name: t for t in (
    ResourceType("Patient", patient.read, patient.search, patient.SEARCH_PARAMS,
                 documentation="A patient's own; a clinician's with the record (care relationship or break-glass)."),
    ResourceType("Practitioner", directory.read_practitioner, directory.search_practitioner,
                 directory.PRACTITIONER_PARAMS, documentation="The clinic's doctors."),
    ResourceType("PractitionerRole", directory.read_practitioner_role, directory.search_practitioner_role,
                 directory.ROLE_PARAMS, documentation="A doctor in a department; id <doctor>-<department>."),
    ResourceType("Organization", directory.read_organization, directory.search_organization,
                 directory.ORGANIZATION_PARAMS, documentation="The clinic (id 'clinic') and its departments."),
    ResourceType("Schedule", scheduling.read_schedule, scheduling.search_schedule, scheduling.SCHEDULE_PARAMS,
                 documentation="A doctor's bookable time in a department; id <doctor>-<department>."),
    ResourceType("Slot", scheduling.read_slot, scheduling.search_slot, scheduling.SLOT_PARAMS,
                 documentation="Free slots only; id <doctor>-<department>-<start, Unix seconds>; a search covers "
                               f"{scheduling.DEFAULT_DAYS} days by default, at most {scheduling.MAX_DAYS}."),
    ResourceType("Appointment", appointment.read, appointment.search, appointment.SEARCH_PARAMS,
                 appointment.INCLUDES, documentation="A patient's own, a doctor's own, every one for the front desk. "
                 "Create books a free Slot (status proposed; conditional on identifier); update and patch cancel.",
                 create=appointment_writes.create, update=appointment_writes.update, patch=appointment_writes.patch),
    ResourceType("Encounter", clinical.read_encounter, clinical.search_encounter, clinical.PATIENT_PARAMS,
                 documentation="A clinician's search names the patient."),
    ResourceType("Condition", clinical.read_condition, clinical.search_condition, clinical.CONDITION_PARAMS,
                 documentation="Diagnoses, coded in ICD-10-CM. A clinician's search names the patient."),
    ResourceType("MedicationRequest", clinical.read_medication_request, clinical.search_medication_request,
                 clinical.PATIENT_PARAMS, documentation="Prescriptions. A clinician's search names the patient."),
    ResourceType("AllergyIntolerance", clinical.read_allergy_intolerance, clinical.search_allergy_intolerance,
                 clinical.PATIENT_PARAMS, documentation="Active allergies. A clinician's search names the patient."),
    ResourceType("Observation", observation.read, observation.search, observation.SEARCH_PARAMS,
                 documentation="Vital signs (vital-signs profiles). A clinician's search names the patient."),
)}
