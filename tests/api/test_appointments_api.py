"""Appointments through the API: the same services and rules as the pages, and every convention of the API
(problems, ETag/If-Match, Idempotency-Key, cursors, scopes, rate limits) on the real database."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.accounts.models import Role, User
from app.appointments.models import Appointment, Status
from app.events.models import OutboxEvent
from app.api.framework import encode_cursor
from app.extensions import db
from app.timeutil import to_clinic_time
from tests.api.tokens import auth, system_token, token_for
from tests.test_booking import a_slot, do_book, open_every_day

pytestmark = pytest.mark.clock  # slots are picked from the clinic's days: see `make test-clock`


@pytest.fixture
def doctor(app, create_doctor):
    user = create_doctor()
    user.department_id = open_every_day(app, user.id)
    return user


@pytest.fixture
def api(app):
    return app.test_client()


def iso(moment) -> str:
    """How the API writes an instant: RFC 3339 in UTC, with Z."""
    return moment.isoformat().replace("+00:00", "Z")


def booking(doctor, slot, reason="Back pain") -> dict:
    return {"doctor_id": doctor.id, "department_id": doctor.department_id, "starts_at": slot.start.isoformat(),
            "reason": reason}


def book_via_api(api, token, doctor, slot, **headers):
    return api.post("/api/v1/appointments", json=booking(doctor, slot), headers=auth(token, **headers))


def test_a_patient_books_through_the_api_and_the_doctor_sees_it(app, api, doctor, create_patient, login):
    patient = create_patient(full_name="Ada Lovelace")
    token = token_for(app, patient, "patient/Appointment.cruds")
    slot = a_slot(app, doctor.id)
    answer = book_via_api(api, token, doctor, slot)
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    assert body["status"] == "requested" and body["patient_id"] == patient.id
    assert answer.headers["Location"] == f"/api/v1/appointments/{body['id']}"
    assert answer.headers["ETag"]
    read = api.get(answer.headers["Location"], headers=auth(token))
    assert read.status_code == 200 and read.get_json() == body and read.headers["ETag"] == answer.headers["ETag"]
    with app.app_context():
        event = db.session.scalar(sa.select(OutboxEvent).where(OutboxEvent.type == "appointment.requested"))
        assert event.envelope["actor"] == {"id": patient.id, "role": "patient", "client_id": "test-app"}
    page = login(doctor).get("/doctor/").get_data(as_text=True)
    assert "Ada Lovelace" in page


def test_a_taken_slot_is_409_with_the_nearest_free_slots(app, api, doctor, create_patient):
    first, second = create_patient(), create_patient()
    slot = a_slot(app, doctor.id)
    do_book(app, first.id, doctor.id, doctor.department_id, slot.start)
    answer = book_via_api(api, token_for(app, second), doctor, slot)
    assert answer.status_code == 409
    assert answer.mimetype == "application/problem+json"
    problem = answer.get_json()
    assert problem["type"].endswith("/slot-taken") and problem["code"] == "slot_taken"
    assert problem["alternatives"] and all(a["starts_at"] != iso(slot.start) for a in problem["alternatives"])


def test_state_changes_need_the_current_etag(app, api, doctor, create_patient):
    patient = create_patient()
    appointment_id = do_book(app, patient.id, doctor.id, doctor.department_id, a_slot(app, doctor.id).start)
    token = token_for(app, doctor)
    url = f"/api/v1/appointments/{appointment_id}"
    etag = api.get(url, headers=auth(token)).headers["ETag"]
    missing = api.post(f"{url}/accept", headers=auth(token))
    assert missing.status_code == 428 and missing.get_json()["type"].endswith("/precondition-required")
    stale = api.post(f"{url}/accept", headers=auth(token, **{"If-Match": '"0123"'}))
    assert stale.status_code == 412
    accepted = api.post(f"{url}/accept", headers=auth(token, **{"If-Match": etag}))
    assert accepted.status_code == 200 and accepted.get_json()["status"] == "confirmed"
    assert accepted.headers["ETag"] != etag
    again = api.post(f"{url}/cancel", json={"reason": "Ill"}, headers=auth(token, **{"If-Match": etag}))
    assert again.status_code == 412  # the copy read before the acceptance is stale: no lost update
    with app.app_context():
        assert db.session.get(Appointment, appointment_id).status is Status.CONFIRMED


def test_declining_needs_a_reason_as_a_field_error(app, api, doctor, create_patient):
    patient = create_patient()
    appointment_id = do_book(app, patient.id, doctor.id, doctor.department_id, a_slot(app, doctor.id).start)
    token = token_for(app, doctor)
    url = f"/api/v1/appointments/{appointment_id}"
    etag = api.get(url, headers=auth(token)).headers["ETag"]
    answer = api.post(f"{url}/decline", json={}, headers=auth(token, **{"If-Match": etag}))
    assert answer.status_code == 422
    assert answer.get_json()["errors"] == [{"pointer": "/reason", "detail": "Required for this change."}]
    wrong = api.post(f"{url}/complete", headers=auth(token, **{"If-Match": etag}))
    assert wrong.status_code == 409 and wrong.get_json()["type"].endswith("/transition-not-allowed")


def test_a_retry_with_the_same_idempotency_key_books_once(app, api, doctor, create_patient):
    patient = create_patient()
    token = token_for(app, patient)
    slot = a_slot(app, doctor.id)
    first = book_via_api(api, token, doctor, slot, **{"Idempotency-Key": "k-1"})
    retry = book_via_api(api, token, doctor, slot, **{"Idempotency-Key": "k-1"})
    assert first.status_code == retry.status_code == 201
    assert retry.get_json() == first.get_json() and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.headers["Location"] == first.headers["Location"]
    other = api.post("/api/v1/appointments", json=booking(doctor, slot, "Other"),
                     headers=auth(token, **{"Idempotency-Key": "k-1"}))
    assert other.status_code == 422 and other.get_json()["type"].endswith("/idempotency-key-reused")
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Appointment)) == 1


def test_a_failed_request_releases_its_idempotency_key(app, api, doctor, create_patient):
    patient = create_patient()
    token = token_for(app, patient)
    slot = a_slot(app, doctor.id)
    bad = api.post("/api/v1/appointments", json={**booking(doctor, slot), "department_id": 10**9},
                   headers=auth(token, **{"Idempotency-Key": "k-2"}))
    assert bad.status_code in (404, 409, 422)
    good = api.post("/api/v1/appointments", json={**booking(doctor, slot), "department_id": 10**9},
                    headers=auth(token, **{"Idempotency-Key": "k-2"}))
    assert good.status_code == bad.status_code  # evaluated again, not replayed
    assert "Idempotent-Replayed" not in good.headers


def test_two_requests_with_one_key_at_once_have_one_effect(app, doctor, create_patient):
    patient = create_patient()
    token = token_for(app, patient)
    slots = [a_slot(app, doctor.id, index=i) for i in range(2)]
    answers = []
    barrier = threading.Barrier(2)

    def send(slot):
        client = app.test_client()
        barrier.wait()
        answers.append(client.post("/api/v1/appointments", json=booking(doctor, slot),
                                   headers=auth(token, **{"Idempotency-Key": "same"})))

    threads = [threading.Thread(target=send, args=(slot,)) for slot in slots]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(a.status_code for a in answers)
    assert codes in ([201, 409], [201, 422]), [a.get_json() for a in answers]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Appointment)) == 1


def test_without_a_token_the_api_answers_401_even_with_a_signed_in_cookie(app, client, doctor, login):
    signed_in = login(doctor)
    answer = signed_in.http.get(f"/api/v1/doctors/{doctor.id}/appointments")
    assert answer.status_code == 401
    assert answer.mimetype == "application/problem+json"
    assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
    assert "Set-Cookie" not in answer.headers
    garbage = signed_in.http.get(f"/api/v1/doctors/{doctor.id}/appointments", headers=auth("not.a.token"))
    assert garbage.status_code == 401


def test_a_missing_scope_is_403_insufficient_scope(app, api, doctor):
    token = token_for(app, doctor, "user/Invoice.rs")
    answer = api.get(f"/api/v1/doctors/{doctor.id}/appointments", headers=auth(token))
    assert answer.status_code == 403
    assert answer.get_json()["type"].endswith("/insufficient-scope")
    assert 'error="insufficient_scope"' in answer.headers["WWW-Authenticate"]


def test_a_patients_token_never_reads_another_patients_appointment(app, api, doctor, create_patient,
                                                                   create_doctor):
    owner, other = create_patient(), create_patient()
    appointment_id = do_book(app, owner.id, doctor.id, doctor.department_id, a_slot(app, doctor.id).start)
    token = token_for(app, other, "patient/*.cruds")
    assert api.get(f"/api/v1/appointments/{appointment_id}", headers=auth(token)).status_code == 404
    assert api.get(f"/api/v1/patients/{owner.id}/appointments", headers=auth(token)).status_code == 404
    other_doctor = token_for(app, create_doctor(), "user/*.cruds")
    assert api.get(f"/api/v1/appointments/{appointment_id}", headers=auth(other_doctor)).status_code == 404


def test_the_front_desk_books_for_a_patient_and_reads_but_changes_nothing(app, api, doctor, create_patient):
    patient = create_patient()
    clerk = system_token(app, Role.CLERK)
    slot = a_slot(app, doctor.id)
    no_patient = book_via_api(api, clerk, doctor, slot)
    assert no_patient.status_code == 422 and no_patient.get_json()["errors"][0]["pointer"] == "/patient_id"
    booked = api.post("/api/v1/appointments", json={**booking(doctor, slot), "patient_id": patient.id},
                      headers=auth(clerk))
    assert booked.status_code == 201 and booked.get_json()["patient_id"] == patient.id
    listed = api.get(f"/api/v1/patients/{patient.id}/appointments", headers=auth(clerk)).get_json()
    assert [a["id"] for a in listed["items"]] == [booked.get_json()["id"]]
    accept = api.post(f"{booked.headers['Location']}/accept", headers=auth(clerk, **{"If-Match": booked.headers["ETag"]}))
    assert accept.status_code == 404
    doctor_id = api.post("/api/v1/appointments", json={**booking(doctor, a_slot(app, doctor.id, index=1)),
                                                       "patient_id": doctor.id}, headers=auth(clerk))
    assert doctor_id.status_code == 404  # not a patient


def test_a_deactivated_user_or_a_password_change_stops_the_token_at_once(app, api, doctor):
    token = token_for(app, doctor)
    url = f"/api/v1/doctors/{doctor.id}/appointments"
    assert api.get(url, headers=auth(token)).status_code == 200
    with app.app_context():
        db.session.get(User, doctor.id).session_version += 1
        db.session.commit()
    assert api.get(url, headers=auth(token)).status_code == 401
    token = token_for(app, doctor)
    with app.app_context():
        db.session.get(User, doctor.id).active = False
        db.session.commit()
    assert api.get(url, headers=auth(token)).status_code == 401


def test_bad_bodies_are_problems(app, api, doctor, create_patient):
    token = token_for(app, create_patient())
    headers = auth(token, **{"Content-Type": "application/json"})
    malformed = api.post("/api/v1/appointments", data="{", headers=headers)
    assert malformed.status_code == 400 and malformed.get_json()["type"].endswith("/malformed-json")
    unknown = api.post("/api/v1/appointments", json={**booking(doctor, a_slot(app, doctor.id)), "x": 1},
                       headers=auth(token))
    assert unknown.status_code == 422 and {"pointer": "/x", "detail": "Unknown field."} in unknown.get_json()["errors"]
    typed = api.post("/api/v1/appointments", json={**booking(doctor, a_slot(app, doctor.id)), "doctor_id": "x"},
                     headers=auth(token))
    assert typed.status_code == 422 and typed.get_json()["errors"][0]["pointer"] == "/doctor_id"
    naive = api.post("/api/v1/appointments", json={**booking(doctor, a_slot(app, doctor.id)),
                                                   "starts_at": "2030-01-01T10:00:00"}, headers=auth(token))
    assert naive.status_code == 422 and naive.get_json()["errors"][0]["pointer"] == "/starts_at"
    form = api.post("/api/v1/appointments", data={"a": "b"}, headers=auth(token))
    assert form.status_code == 415
    huge = api.post("/api/v1/appointments", data="[" + "1," * 2_000_000 + "1]", headers=headers)
    assert huge.status_code == 413 and huge.mimetype == "application/problem+json"
    query = api.get(f"/api/v1/doctors/{doctor.id}/appointments?limit=500&colour=red", headers=auth(token))
    assert query.status_code in (403, 422)


def test_lists_page_with_a_cursor_that_is_stable_under_inserts(app, api, doctor, create_patient):
    patients = [create_patient() for _ in range(4)]
    slots = [a_slot(app, doctor.id, days_ahead=3, index=i) for i in range(5)]
    for patient, slot in zip(patients[:3], [slots[0], slots[2], slots[4]]):
        do_book(app, patient.id, doctor.id, doctor.department_id, slot.start)
    token = token_for(app, doctor)
    first = api.get(f"/api/v1/doctors/{doctor.id}/appointments?limit=2", headers=auth(token))
    assert first.status_code == 200
    page = first.get_json()
    assert [a["starts_at"] for a in page["items"]] == [iso(slots[0].start), iso(slots[2].start)]
    assert first.headers["Link"].endswith('>; rel="next"') and "cursor=" in first.headers["Link"]
    do_book(app, patients[3].id, doctor.id, doctor.department_id, slots[1].start)  # before the cursor
    link = first.headers["Link"].split(";")[0].strip("<>")
    second = api.get(link, headers=auth(token)).get_json()
    assert [a["starts_at"] for a in second["items"]] == [iso(slots[4].start)]
    assert second["next_cursor"] is None
    since = iso(slots[2].start)
    filtered = api.get(f"/api/v1/doctors/{doctor.id}/appointments?status=requested&status=confirmed&start={since}"
                       f"&end={iso(slots[4].start)}", headers=auth(token)).get_json()
    assert [a["starts_at"] for a in filtered["items"]] == [iso(slots[2].start)]
    none = api.get(f"/api/v1/doctors/{doctor.id}/appointments?status=completed", headers=auth(token)).get_json()
    assert none == {"items": [], "next_cursor": None}
    bad = api.get(f"/api/v1/doctors/{doctor.id}/appointments?cursor=abc", headers=auth(token))
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["parameter"] == "cursor"
    naive = encode_cursor(["2030-01-01T10:00:00", 1])  # a hand-made cursor with an instant without an offset
    assert api.get(f"/api/v1/doctors/{doctor.id}/appointments?cursor={naive}", headers=auth(token)).status_code == 422


def test_rate_limits_per_client_answer_429_with_headers(app, api, doctor, monkeypatch):
    monkeypatch.setitem(app.config, "HMS_API_RATE_LIMIT_CLIENT", (2, 3600))
    token = token_for(app, doctor)
    url = f"/api/v1/doctors/{doctor.id}/appointments"
    first = api.get(url, headers=auth(token))
    assert first.headers["RateLimit-Policy"] == '"client";q=2;w=3600'
    assert first.headers["RateLimit"].startswith('"client";r=1;')
    api.get(url, headers=auth(token))
    refused = api.get(url, headers=auth(token))
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert refused.get_json()["type"].endswith("/too-many-requests")


def test_free_slots_of_a_doctor(app, api, doctor, create_patient):
    token = token_for(app, create_patient(), "patient/Slot.rs")
    slot = a_slot(app, doctor.id)
    with app.app_context():
        day = to_clinic_time(slot.start).date()
    answer = api.get(f"/api/v1/doctors/{doctor.id}/slots?start={day}&end={day}", headers=auth(token))
    assert answer.status_code == 200
    assert iso(slot.start) in [s["starts_at"] for s in answer.get_json()["items"]]
    too_long = api.get(f"/api/v1/doctors/{doctor.id}/slots?start={day}&end={day + timedelta(days=60)}",
                       headers=auth(token))
    assert too_long.status_code == 422


def test_rate_limits_are_counted_per_address_across_clients(app, api, doctor, create_doctor, monkeypatch):
    monkeypatch.setitem(app.config, "HMS_API_RATE_LIMIT_ADDRESS", (3, 3600))
    tokens = [token_for(app, doctor, client_id="app-one"), token_for(app, doctor, client_id="app-two")]
    url = f"/api/v1/doctors/{doctor.id}/appointments"
    answers = [api.get(url, headers=auth(tokens[n % 2])).status_code for n in range(4)]
    assert answers == [200, 200, 200, 429]
