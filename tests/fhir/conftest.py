"""The FHIR tests' world: a clinic with a department and two doctors, patient A with a record in doctor A's care
(`tests.records.clinical_data.build_chart`: an amended visit, a draft, vitals, a diagnosis, a prescription, an
allergy), patient B, a clerk. And the check that what HMS returns is valid FHIR: every resource is validated with
its `fhir.resources` R4B model."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from fhir.resources.R4B.allergyintolerance import AllergyIntolerance
from fhir.resources.R4B.appointment import Appointment
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.practitionerrole import PractitionerRole
from fhir.resources.R4B.schedule import Schedule
from fhir.resources.R4B.slot import Slot

from app.accounts.models import Role, User
from app.extensions import db
from tests.api.tokens import token_for
from tests.records.clinical_data import Chart, build_chart
from tests.test_booking import open_every_day

MODELS = {model.__name__: model for model in (
    AllergyIntolerance, Appointment, Bundle, CapabilityStatement, Condition, Encounter, MedicationRequest,
    Observation, OperationOutcome, Organization, Patient, Practitioner, PractitionerRole, Schedule, Slot)}
BASE = "/fhir/R4"


def no_empty_values(value, where: str = "") -> None:
    """FHIR JSON has no empty arrays, objects or strings, and no nulls (R4 JSON representation, 2.6.2)."""
    assert value not in ([], {}, "", None), f"an empty value at {where or '/'}"
    if isinstance(value, dict):
        for name, item in value.items():
            no_empty_values(item, f"{where}/{name}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            no_empty_values(item, f"{where}/{index}")


def valid(resource: dict) -> dict:
    """The resource, after its R4B model accepted it (a Bundle: each entry's resource too)."""
    kind = resource["resourceType"]
    no_empty_values(resource)
    MODELS[kind].model_validate(resource)
    for entry in resource.get("entry", []):
        valid(entry["resource"])
    return resource


@dataclass
class Clinic:
    department_id: int
    doctor_a: User
    doctor_b: User
    patient_a: User
    patient_b: User
    clerk: User
    chart: Chart


@pytest.fixture
def clinic(app, create_doctor, create_patient, create_user, create_department) -> Clinic:
    department_id = create_department("Cardiology")
    doctor_a = create_doctor(full_name="Alma Attending", specialty="Cardiology", department_ids=[department_id])
    doctor_b = create_doctor(full_name="Boris Elsewhere", department_ids=[department_id])
    open_every_day(app, doctor_a.id)
    patient_a = create_patient(full_name="Zenobia Quartermaine", email="zenobia@example.com")
    patient_b = create_patient(full_name="Bruno Bystander", email="bruno@example.com")
    clerk = create_user(Role.CLERK)
    with app.app_context():
        chart = build_chart(patient_a.id, doctor_a.id, department_id)
        db.session.commit()
    return Clinic(department_id, doctor_a, doctor_b, patient_a, patient_b, clerk, chart)


@pytest.fixture
def fhir(app):
    """GET a FHIR path (or a link's URL) with a token: the answer, with `.body` parsed and validated."""
    client = app.test_client()

    def get(path: str, token: str | None = None, **headers):
        if path.startswith("http"):
            parts = urlsplit(path)
            path = parts.path + ("?" + parts.query if parts.query else "")
        elif not path.startswith("/"):
            path = f"{BASE}/{path}"
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        answer = client.get(path, headers=headers)
        assert answer.mimetype == "application/fhir+json", (answer.status_code, answer.get_data(as_text=True)[:300])
        answer.body = valid(answer.get_json())
        return answer

    return get


@pytest.fixture
def tokens(app, clinic):
    """Each person's token with every read scope of their context."""
    return {
        "patient_a": token_for(app, clinic.patient_a, "patient/*.rs"),
        "patient_b": token_for(app, clinic.patient_b, "patient/*.rs"),
        "doctor_a": token_for(app, clinic.doctor_a, "user/*.rs"),
        "doctor_b": token_for(app, clinic.doctor_b, "user/*.rs"),
        "clerk": token_for(app, clinic.clerk, "user/*.rs"),
    }


def ids(bundle: dict, resource_type: str | None = None) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", [])
            if resource_type is None or e["resource"]["resourceType"] == resource_type]


def issue(answer) -> dict:
    assert answer.body["resourceType"] == "OperationOutcome"
    return answer.body["issue"][0]
