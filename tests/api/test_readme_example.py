"""The README's API example (`scripts/api_example.sh`, curl) runs as written against a live server: client
credentials, a patient search, a doctor's free slots, a booking with an Idempotency-Key, and the read-back."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner

from app.appointments.models import Appointment, Status
from app.events.models import OutboxEvent
from app.extensions import db
from app.oauth.cli import oauth_cli
from tests.test_booking import open_every_day

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "api_example.sh"


def test_the_readme_example_books_and_reads_an_appointment(app, live_server, create_patient, create_doctor):
    doctor = create_doctor()
    open_every_day(app, doctor.id)
    patient = create_patient(email="caller@example.com")
    result = CliRunner().invoke(oauth_cli, ["create", "--name", "Call centre", "--role", "clerk", "--scope",
                                            "system/Patient.rs system/Practitioner.rs system/Slot.rs "
                                            "system/Appointment.crs"], obj=_script_info(app))
    assert result.exit_code == 0, result.output
    credentials = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    run = subprocess.run(["bash", str(SCRIPT), "caller@example.com"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "HMS_URL": live_server, **credentials})
    assert run.returncode == 0, run.stderr
    appointment = json.loads(run.stdout.strip().splitlines()[-1])
    assert appointment["patient_id"] == patient.id and appointment["doctor_id"] == doctor.id
    assert appointment["status"] == "requested" and appointment["reason"] == "Booked by phone"
    with app.app_context():
        stored = db.session.get(Appointment, appointment["id"])
        assert stored.status is Status.REQUESTED
        event = db.session.scalar(sa.select(OutboxEvent).where(OutboxEvent.type == "appointment.requested"))
        assert event.envelope["actor"]["client_id"] == credentials["CLIENT_ID"]


def _script_info(app):
    from flask.cli import ScriptInfo

    return ScriptInfo(create_app=lambda: app)
