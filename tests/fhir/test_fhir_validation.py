"""Every resource type HMS serves, read and searched once, validates with its `fhir.resources` R4B model (the
`fhir` fixture validates every answer; this test makes sure each type is asked)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from app.fhir.resources import TYPES
from app.timeutil import clinic_today
from tests.fhir.conftest import MODELS, ids
from tests.test_booking import a_slot, do_book

pytestmark = pytest.mark.clock


def test_every_served_type_validates_as_fhir_r4b(app, fhir, clinic, tokens):
    slot = a_slot(app, clinic.doctor_a.id, days_ahead=1)
    do_book(app, clinic.patient_a.id, clinic.doctor_a.id, clinic.department_id, slot.start)
    with app.app_context():
        day = clinic_today() + timedelta(days=2)
    token = tokens["doctor_a"]
    patient = clinic.patient_a.id
    searches = {"Patient": "Patient", "Practitioner": "Practitioner", "PractitionerRole": "PractitionerRole",
                "Organization": "Organization", "Schedule": "Schedule",
                "Slot": f"Slot?start=ge{day}&start=le{day}", "Appointment": "Appointment",
                **{name: f"{name}?patient={patient}" for name in ("Encounter", "Condition", "MedicationRequest",
                                                                  "AllergyIntolerance", "Observation")}}
    assert set(searches) == set(TYPES) and set(TYPES) <= set(MODELS)
    for name, path in searches.items():
        bundle = fhir(path, token)
        assert bundle.status_code == 200 and bundle.body["resourceType"] == "Bundle", path
        found = ids(bundle.body, name)
        assert found, f"{path} found nothing to validate"
        read = fhir(f"{name}/{found[0]}", token)
        assert read.status_code == 200 and read.body["resourceType"] == name
    everything = fhir(f"Patient/{patient}/$everything", token)
    assert everything.status_code == 200
    assert fhir("metadata").body["resourceType"] == "CapabilityStatement"
    assert fhir("Nothing/1", token).body["resourceType"] == "OperationOutcome"
