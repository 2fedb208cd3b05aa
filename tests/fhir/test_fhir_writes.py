"""FHIR writes of Appointment: booking a free Slot with POST (conditional on an identifier), cancelling with PUT
and JSON Patch, `meta.versionId` with `ETag` and `If-Match`, and the refusals as OperationOutcomes. The slots are
the slot engine's own free ones (never "tomorrow"), so the tests hold at any instant and in any time zone."""
from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from app.appointments.models import Appointment, AppointmentIdentifier, Status
from app.appointments.services import bookable_slots, cutoff
from app.events.models import OutboxEvent
from app.extensions import db
from app.fhir.resources.scheduling import slot_id
from app.fhir.search import base_url
from app.timeutil import clinic_today, utcnow
from tests.api.tokens import token_for
from tests.fhir.conftest import BASE, valid

pytestmark = pytest.mark.clock

FHIR_JSON = "application/fhir+json"
SYSTEM = "urn:example:booking-app"


def free_slots(app, doctor_id: int, count: int) -> list:
    """The engine's first free slots of the doctor that a patient may still cancel online, one per day."""
    with app.app_context():
        first = clinic_today()
        slots = bookable_slots([doctor_id], first, first + timedelta(days=20))[doctor_id]
        later = utcnow() + cutoff() + timedelta(hours=1)
        by_day: dict = {}
        for slot in slots:
            if slot.start > later:
                by_day.setdefault(slot.start.date(), slot)
        chosen = list(by_day.values())[:count]
        assert len(chosen) == count
        return chosen


def booking(slot, patient_id: int | None = None, **extra) -> dict:
    resource = {"resourceType": "Appointment", "status": "proposed",
                "slot": [{"reference": f"Slot/{slot_id(slot)}"}],
                "start": slot.start.isoformat(), "end": slot.end.isoformat(),
                "reasonCode": [{"text": "Chest tightness"}],
                "participant": [{"actor": {"reference": f"Practitioner/{slot.doctor_id}"}, "status": "needs-action"}]}
    if patient_id is not None:
        resource["participant"].append({"actor": {"reference": f"Patient/{patient_id}"}, "status": "accepted"})
    return {**resource, **extra}


@pytest.fixture
def send(app):
    """Send a FHIR request: the answer with `.body` parsed and validated as FHIR."""
    client = app.test_client()

    def request(method: str, path: str, token: str, body=None, *, content_type: str = FHIR_JSON, raw: bytes | None = None,
                **headers):
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        answer = client.open(f"{BASE}/{path}", method=method, data=data, content_type=content_type,
                             headers={"Authorization": f"Bearer {token}", **headers})
        assert answer.mimetype == FHIR_JSON, (answer.status_code, answer.get_data(as_text=True)[:300])
        answer.body = valid(answer.get_json())
        return answer

    return request


@pytest.fixture
def writers(app, clinic):
    return {"patient_a": token_for(app, clinic.patient_a, "patient/Appointment.cruds patient/Slot.rs"),
            "patient_b": token_for(app, clinic.patient_b, "patient/Appointment.cruds"),
            "doctor_a": token_for(app, clinic.doctor_a, "user/Appointment.cruds"),
            "clerk": token_for(app, clinic.clerk, "user/Appointment.cruds"),
            "reader": token_for(app, clinic.patient_a, "patient/*.rs")}


def appointments_of(app, patient_id: int) -> list[Appointment]:
    with app.app_context():
        rows = list(db.session.scalars(sa.select(Appointment).where(Appointment.patient_id == patient_id,
                                                                    Appointment.starts_at > utcnow())))
        db.session.remove()
        return rows


def test_a_patient_books_a_free_slot_and_reads_it_back(app, send, clinic, writers):
    slot, = free_slots(app, clinic.doctor_a.id, 1)
    token = writers["patient_a"]
    found = send("GET", f"Slot?schedule=Schedule/{clinic.doctor_a.id}-{clinic.department_id}&status=free"
                        f"&start=ge{slot.start.date()}&_count=100", token)
    assert f"Slot/{slot_id(slot)}" in {f"Slot/{e['resource']['id']}" for e in found.body["entry"]}
    created = send("POST", "Appointment", token, booking(slot))
    assert created.status_code == 201, created.body
    resource = created.body
    assert resource["status"] == "pending" and resource["start"] == slot.start.isoformat().replace("+00:00", "Z")
    assert resource["reasonCode"] == [{"text": "Chest tightness"}]
    version = resource["meta"]["versionId"]
    assert created.headers["ETag"] == f'W/"{version}"'
    assert created.headers["Location"].endswith(f"/fhir/R4/Appointment/{resource['id']}/_history/{version}")
    read = send("GET", f"Appointment/{resource['id']}", writers["reader"])
    assert read.body == resource and read.headers["ETag"] == f'W/"{version}"'
    with app.app_context():
        booked = db.session.get(Appointment, int(resource["id"]))
        assert (booked.patient_id, booked.doctor_id, booked.status) == (clinic.patient_a.id, clinic.doctor_a.id,
                                                                       Status.REQUESTED)
        event = db.session.scalar(sa.select(OutboxEvent).where(OutboxEvent.type == "appointment.requested",
                                                               OutboxEvent.aggregate_id == resource["id"]))
        assert event.envelope["actor"]["client_id"] == "test-app"
    # the slot is gone, and booking it again is a conflict
    assert send("GET", f"Slot/{slot_id(slot)}", token).status_code == 404
    again = send("POST", "Appointment", writers["clerk"], booking(slot, clinic.patient_b.id))
    assert again.status_code == 409 and again.body["issue"][0]["code"] == "conflict"
    assert "taken" in again.body["issue"][0]["diagnostics"]


def test_bookings_that_the_rules_or_the_policy_refuse(app, send, clinic, writers):
    slot, other = free_slots(app, clinic.doctor_a.id, 2)
    off_grid = booking(slot, start=(slot.start + timedelta(minutes=7)).isoformat())
    off_grid["slot"] = [{"reference": f"Slot/{clinic.doctor_a.id}-{clinic.department_id}-"
                                      f"{int(slot.start.timestamp()) + 420}"}]
    off_grid.pop("end")
    not_a_slot = send("POST", "Appointment", writers["patient_a"], off_grid)
    assert not_a_slot.status_code == 422 and not_a_slot.body["issue"][0]["code"] == "business-rule"
    assert "not a slot" in not_a_slot.body["issue"][0]["diagnostics"]
    by_practitioner = booking(slot, start=(slot.start + timedelta(minutes=7)).isoformat())
    by_practitioner.pop("slot"), by_practitioner.pop("end")
    assert send("POST", "Appointment", writers["patient_a"], by_practitioner).status_code == 422
    past = booking(slot, start=(slot.start - timedelta(days=400)).isoformat())
    past.pop("slot"), past.pop("end")
    in_the_past = send("POST", "Appointment", writers["patient_a"], past)
    assert in_the_past.status_code == 422 and "passed" in in_the_past.body["issue"][0]["diagnostics"]
    # another patient named in a patient's token: as if they did not exist
    assert send("POST", "Appointment", writers["patient_a"], booking(slot, clinic.patient_b.id)).status_code == 404
    # a doctor does not book (the API's rule), a token without a create scope gets insufficient_scope
    assert send("POST", "Appointment", writers["doctor_a"], booking(slot, clinic.patient_a.id)).status_code == 404
    read_only = send("POST", "Appointment", writers["reader"], booking(slot))
    assert read_only.status_code == 403 and "insufficient_scope" in read_only.headers["WWW-Authenticate"]
    assert send("POST", "Appointment", writers["clerk"], booking(slot)).status_code == 422  # names no patient
    by_time = {name: value for name, value in booking(slot, clinic.patient_b.id).items() if name != "slot"}
    booked = send("POST", "Appointment", writers["clerk"], by_time)  # the practitioner and the start
    assert booked.status_code == 201
    assert booked.body["participant"][0]["actor"]["reference"] == f"Patient/{clinic.patient_b.id}"
    long_reason = booking(other, reasonCode=[{"text": "x" * 501}])
    assert send("POST", "Appointment", writers["patient_a"], long_reason).status_code == 422
    assert send("POST", "Appointment", writers["patient_a"], booking(other, status="booked")).status_code == 422
    assert [a.starts_at for a in appointments_of(app, clinic.patient_a.id) if a.starts_at == other.start] == []


def test_malformed_bodies_are_operation_outcomes(send, clinic, writers):
    token = writers["patient_a"]
    cases = [
        (dict(raw=b"{not json"), 400),
        (dict(body={"resourceType": "Patient"}), 400),
        (dict(body=[1, 2]), 400),
        (dict(body={"resourceType": "Appointment"}), 400),  # no status
        (dict(body={"resourceType": "Appointment", "status": 7}), 400),
        (dict(body={"resourceType": "Appointment", "status": "proposed", "participant": "me"}), 400),
        (dict(body={"resourceType": "Appointment", "status": "proposed", "start": "soon"}), 400),
        (dict(body={"resourceType": "Appointment", "status": "proposed", "start": "0001-01-01T00:00:00-05:00"}), 400),
        (dict(raw=b"[" * 100_000 + b"]" * 100_000), 400),
        (dict(body={"resourceType": "Appointment", "status": "proposed"}, content_type="text/plain"), 415),
        (dict(body={"resourceType": "Appointment", "status": "proposed", "reasonCode": [{"text": "x"}]}), 422),
    ]
    for kwargs, status in cases:
        answer = send("POST", "Appointment", token, **kwargs)
        assert answer.status_code == status, (kwargs, answer.body)
        assert answer.body["resourceType"] == "OperationOutcome"
    assert send("PATCH", "Appointment/1", token, [{"op": "replace", "path": "/status", "value": "cancelled"}],
                content_type=FHIR_JSON).status_code == 415
    assert send("PUT", "Patient/1", token, {"resourceType": "Patient"}).status_code == 405
    assert send("POST", "Slot", token, {"resourceType": "Slot"}).status_code == 405


def test_a_conditional_create_books_once(app, send, clinic, writers):
    slot, later = free_slots(app, clinic.doctor_a.id, 2)
    token = writers["patient_a"]
    body = booking(slot, identifier=[{"system": SYSTEM, "value": "visit-1"}])
    condition = {"If-None-Exist": f"identifier={SYSTEM}|visit-1"}
    first = send("POST", "Appointment", token, body, **condition)
    again = send("POST", "Appointment", token, body, **condition)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.body == first.body and first.body["identifier"] == [{"system": SYSTEM, "value": "visit-1"}]
    assert [a.id for a in appointments_of(app, clinic.patient_a.id) if a.starts_at == slot.start] == [
        int(first.body["id"])]
    found = send("GET", f"Appointment?identifier={SYSTEM}|visit-1", token).body
    assert [e["resource"]["id"] for e in found["entry"]] == [first.body["id"]]
    # another patient's identical identifier is not theirs: no match, no leak
    other = send("GET", f"Appointment?identifier={SYSTEM}|visit-1", writers["patient_b"]).body
    assert other["total"] == 0
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AppointmentIdentifier)) == 1
    # a condition that matches two of the patient's appointments books nothing
    second = booking(later, identifier=[{"system": SYSTEM, "value": "visit-2"}])
    assert send("POST", "Appointment", token, second).status_code == 201
    ambiguous = send("POST", "Appointment", token, booking(later), **{"If-None-Exist": f"identifier={SYSTEM}|"})
    assert ambiguous.status_code == 412


def test_cancel_by_put_and_by_patch_with_if_match(app, send, clinic, writers):
    first_slot, second_slot = free_slots(app, clinic.doctor_a.id, 2)
    token = writers["patient_a"]
    by_put = send("POST", "Appointment", token, booking(first_slot)).body
    by_patch = send("POST", "Appointment", token, booking(second_slot)).body

    cancelled = {**by_put, "status": "cancelled", "cancelationReason": {"text": "Feeling better"}}
    moved = {**by_put, "start": by_patch["start"]}
    refused = send("PUT", f"Appointment/{by_put['id']}", token, moved)
    assert refused.status_code == 422 and "start" in refused.body["issue"][0]["diagnostics"]
    stale = send("PUT", f"Appointment/{by_put['id']}", token, cancelled, **{"If-Match": 'W/"0123abc"'})
    assert stale.status_code == 412 and stale.body["issue"][0]["code"] == "conflict"
    assert send("GET", f"Appointment/{by_put['id']}", token).body == by_put  # nothing changed
    assert send("PUT", f"Appointment/{by_put['id']}", writers["patient_b"], cancelled).status_code == 404
    put = send("PUT", f"Appointment/{by_put['id']}", token, cancelled,
               **{"If-Match": f'W/"{by_put["meta"]["versionId"]}"'})
    assert put.status_code == 200 and put.body["status"] == "cancelled"
    assert put.body["cancelationReason"] == {"text": "Feeling better"}
    assert put.body["meta"]["versionId"] != by_put["meta"]["versionId"]
    assert put.headers["ETag"] == f'W/"{put.body["meta"]["versionId"]}"'

    operations = [{"op": "replace", "path": "/status", "value": "cancelled"},
                  {"op": "add", "path": "/cancelationReason", "value": {"text": "Double booked"}}]
    patched = send("PATCH", f"Appointment/{by_patch['id']}", token, operations,
                   content_type="application/json-patch+json", **{"If-Match": f'W/"{by_patch["meta"]["versionId"]}"'})
    assert patched.status_code == 200 and patched.body["status"] == "cancelled"
    with app.app_context():
        rows = {a.id: a for a in db.session.scalars(sa.select(Appointment).where(
            Appointment.id.in_([int(by_put["id"]), int(by_patch["id"])])))}
        assert {a.status for a in rows.values()} == {Status.CANCELLED_BY_PATIENT}
        assert rows[int(by_patch["id"])].status_reason == "Double booked"
        events = db.session.scalars(sa.select(OutboxEvent).where(OutboxEvent.type == "appointment.cancelled")).all()
        assert {e.aggregate_id for e in events} == {by_put["id"], by_patch["id"]}
        assert all(e.envelope["actor"]["client_id"] == "test-app" for e in events)
    # a second cancellation changes nothing; a patch that changes the time is refused
    assert send("PUT", f"Appointment/{by_put['id']}", token, put.body).body == put.body
    moving = [{"op": "replace", "path": "/start", "value": by_patch["start"]}]
    assert send("PATCH", f"Appointment/{by_put['id']}", token, moving,
                content_type="application/json-patch+json").status_code == 422


def test_the_capability_statement_lists_the_appointment_writes(app):
    statement = valid(app.test_client().get(f"{BASE}/metadata").get_json())
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    appointment = resources.pop("Appointment")
    assert [i["code"] for i in appointment["interaction"]] == ["read", "search-type", "create", "update", "patch"]
    assert appointment["conditionalCreate"] is True and appointment["versioning"] == "versioned"
    assert appointment["updateCreate"] is False
    assert "identifier" in {p["name"] for p in appointment["searchParam"]}
    assert all(r["interaction"] == [{"code": "read"}, {"code": "search-type"}] and "conditionalCreate" not in r
               for r in resources.values())


class _ToTheApp:
    """A `requests` transport that hands each request to the app's test client (no socket, same app)."""

    def __init__(self, client):
        self.client = client

    def send(self, prepared, **kwargs):
        import requests
        from requests.structures import CaseInsensitiveDict

        parts = urlsplit(prepared.url)
        answer = self.client.open(parts.path + (f"?{parts.query}" if parts.query else ""), method=prepared.method,
                                  data=prepared.body, headers=dict(prepared.headers))
        response = requests.Response()
        response.status_code, response._content = answer.status_code, answer.get_data()
        response.headers, response.url, response.request = CaseInsensitiveDict(answer.headers), prepared.url, prepared
        response.encoding = "utf-8"
        return response

    def close(self):
        pass


def test_an_unmodified_fhirclient_finds_a_free_slot_books_it_and_cancels_it(app, clinic, writers):
    from fhirclient.models.appointment import Appointment as ClientAppointment
    from fhirclient.models.codeableconcept import CodeableConcept
    from fhirclient.models.slot import Slot as ClientSlot
    from fhirclient.server import FHIRServer

    with app.app_context():
        base = base_url()
        first_day = clinic_today() + timedelta(days=2)  # beyond the cancellation cutoff
    server = FHIRServer(None, base_uri=base)
    server.session.mount(base, _ToTheApp(app.test_client()))
    server.session.headers["Authorization"] = f"Bearer {writers['patient_a']}"
    schedule = f"Schedule/{clinic.doctor_a.id}-{clinic.department_id}"
    search = ClientSlot.where(struct={"schedule": schedule, "status": "free", "start": f"ge{first_day.isoformat()}"})
    slot = next(search.perform_resources_iter(server))
    booking = ClientAppointment({
        "resourceType": "Appointment", "status": "proposed", "slot": [{"reference": f"Slot/{slot.id}"}],
        "start": slot.start.isostring, "end": slot.end.isostring, "reasonCode": [{"text": "Follow-up"}],
        "participant": [{"actor": {"reference": f"Patient/{clinic.patient_a.id}"}, "status": "accepted"}]})
    created = booking.create(server)
    assert created["status"] == "pending"
    appointment = ClientAppointment.read(created["id"], server)
    appointment.status = "cancelled"
    appointment.cancelationReason = CodeableConcept({"text": "Found another time"})
    updated = appointment.update(server)
    assert updated["status"] == "cancelled" and updated["cancelationReason"]["text"] == "Found another time"
    with app.app_context():
        assert db.session.get(Appointment, int(created["id"])).status is Status.CANCELLED_BY_PATIENT
