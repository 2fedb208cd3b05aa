"""A change made through the API is the same domain event as one made on the pages: the worker sends the same
email and writes the same audit row, which names the OAuth client."""
from __future__ import annotations

import pytest

from app.audit.models import AuditEntry
from devtools.mailbox import wait_for_messages
from tests.api.tokens import auth, token_for
from tests.services import wait_until
from tests.test_booking import a_slot, open_every_day
from tests.test_worker import audit_rows, templates, to  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.clock, pytest.mark.usefixtures("templates")]


def test_an_api_booking_emails_the_doctor_and_is_audited_with_the_client(app, worker, mailbox, create_patient,
                                                                           create_doctor):
    doctor = create_doctor(email="dr.api@example.com")
    department_id = open_every_day(app, doctor.id)
    patient = create_patient(full_name="Grace Hopper")
    slot = a_slot(app, doctor.id)
    answer = app.test_client().post("/api/v1/appointments", headers=auth(token_for(app, patient, client_id="ward-app")),
                                    json={"doctor_id": doctor.id, "department_id": department_id,
                                          "starts_at": slot.start.isoformat(), "reason": "Cough"})
    assert answer.status_code == 201
    [message] = wait_for_messages(mailbox, 1, timeout=30, predicate=to("dr.api@example.com"))
    assert message["Subject"].startswith("Appointment request: Grace Hopper")
    [row] = wait_until(lambda: audit_rows(app, AuditEntry.action == "appointment.requested"), timeout=30,
                       message="the audit row")
    assert row.actor_id == patient.id and row.actor_role == "patient"
    assert row.details["client_id"] == "ward-app" and row.entity_id == str(answer.get_json()["id"])
