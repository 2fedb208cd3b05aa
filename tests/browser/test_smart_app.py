"""A SMART app built on SMART's own Python client library (`fhirclient`, unmodified) does a standalone launch in
Chromium: it finds the authorization server in the CapabilityStatement, sends the patient through HMS's sign-in
and consent pages (PKCE S256, launch/patient, openid fhirUser), exchanges the code, then reads the patient,
searches their appointments, conditions and observations, and books a free slot."""
from __future__ import annotations

from datetime import timedelta

import pytest
from fhirclient import client as smart
from fhirclient.models.appointment import Appointment
from fhirclient.models.condition import Condition
from fhirclient.models.observation import Observation
from fhirclient.models.slot import Slot
from playwright.sync_api import Page, expect

from app.extensions import db
from app.timeutil import clinic_today
from tests.conftest import DEFAULT_PASSWORD
from tests.oauth.tokens import register
from tests.records.clinical_data import build_chart
from tests.test_booking import open_every_day

pytestmark = pytest.mark.browser

APP_ADDRESS = "http://localhost:8766/smart-app/callback"  # the app's own origin: only its redirect is caught


def test_a_smart_app_launches_reads_the_record_and_books_a_slot(page: Page, base_url, app, monkeypatch,
                                                                 create_doctor, create_patient, create_department,
                                                                 artifacts):
    monkeypatch.setitem(app.config, "HMS_PUBLIC_URL", base_url)  # the address the app reaches HMS at
    department_id = create_department("Cardiology")
    doctor = create_doctor(full_name="Dr. Sam Smart", department_ids=[department_id])
    open_every_day(app, doctor.id)
    patient = create_patient(full_name="Petra Launch")
    with app.app_context():
        build_chart(patient.id, doctor.id, department_id)
        client, _ = register(name="Heart Diary", scope="patient/*.rs patient/Appointment.c",
                             redirect_uris=(APP_ADDRESS,))
        client_id = client.client_id
        first_day = clinic_today() + timedelta(days=2)  # a slot well ahead: no cutoff passes while the app books
        db.session.commit()
        db.session.remove()

    fhir = smart.FHIRClient(settings={"app_id": client_id, "api_base": f"{base_url}/fhir/R4",
                                      "redirect_uri": APP_ADDRESS,
                                      "scope": "openid fhirUser patient/*.rs patient/Appointment.c"})
    arrived: list[str] = []
    page.route(f"{APP_ADDRESS}**", lambda route: (arrived.append(route.request.url),
                                                  route.fulfill(status=200, body="Heart Diary")))
    page.goto(fhir.authorize_url)  # from the CapabilityStatement's oauth-uris; scope + launch/patient, PKCE S256
    page.get_by_label("Email").fill(patient.email)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Allow Heart Diary to use your account?")).to_be_visible()
    expect(page.get_by_text("Know which patient's record is open")).to_be_visible()
    page.screenshot(path=str(artifacts / "smart-consent.png"), full_page=True)
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(f"{APP_ADDRESS}**")

    fhir.handle_callback(arrived[-1])  # the code exchanged at the token endpoint, with the code verifier
    assert fhir.patient_id == str(patient.id) and fhir.ready
    assert fhir.human_name(fhir.patient.name[0]) == "Petra Launch"
    server = fhir.server
    appointments = list(Appointment.where(struct={"patient": fhir.patient_id}).perform_resources_iter(server))
    assert appointments and {a.participant[0].actor.reference for a in appointments} == {f"Patient/{patient.id}"}
    conditions = list(Condition.where(struct={"patient": fhir.patient_id}).perform_resources_iter(server))
    assert conditions and {c.code.coding[0].system for c in conditions} == {"http://hl7.org/fhir/sid/icd-10-cm"}
    vitals = list(Observation.where(struct={"patient": fhir.patient_id, "category": "vital-signs"})
                  .perform_resources_iter(server))
    assert vitals and {o.code.coding[0].system for o in vitals} == {"http://loinc.org"}

    slot = next(Slot.where(struct={"schedule": f"Schedule/{doctor.id}-{department_id}", "status": "free",
                                   "start": f"ge{first_day.isoformat()}", "_count": "1"})
                .perform_resources_iter(server))
    booking = Appointment({
        "resourceType": "Appointment", "status": "proposed", "start": slot.start.isostring,
        "end": slot.end.isostring, "slot": [{"reference": f"Slot/{slot.id}"}], "description": "Palpitations again",
        "participant": [{"actor": {"reference": f"Patient/{fhir.patient_id}"}, "status": "accepted"},
                        {"actor": {"reference": f"Practitioner/{doctor.id}"}, "status": "needs-action"}]})
    created = booking.create(server)
    assert created["resourceType"] == "Appointment" and created["status"] == "pending"
    booked = Appointment.read(created["id"], server)
    assert booked.start.isostring == slot.start.isostring
    assert booked.participant[1].actor.reference == f"Practitioner/{doctor.id}"
