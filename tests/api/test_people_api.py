"""Patients, doctors and departments, availability and the audit trail through the API: the pages' services and
rules, the one access policy (with the token's scopes), and the API's conventions on the real database."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.accounts.models import PasswordToken, Role, User
from app.appointments.models import Appointment, Status
from app.audit.chain import append
from app.clinic.models import DoctorProfile
from app.events.models import OutboxEvent
from app.extensions import db
from app.scheduling.models import Unavailability, WeeklyAvailability
from app.timeutil import clinic_today
from tests.api.tokens import auth, system_token, token_for
from tests.test_booking import a_slot, do_book, open_every_day

pytestmark = pytest.mark.clock  # the care relationship and the time off are dated from today

SIGNUP = {"full_name": "Mary Shelley", "email": "mary@example.com", "password": "a tale of frankenstein",
          "date_of_birth": "1990-08-30", "sex": "female", "phone": "(202) 555-0143", "address": "1 Lake Road",
          "emergency_contact_name": "Percy", "emergency_contact_phone": "+12025550199"}


@pytest.fixture
def api(app):
    return app.test_client()


@pytest.fixture
def doctor(app, create_doctor):
    user = create_doctor(full_name="Dr. Ada Byron")
    user.department_id = open_every_day(app, user.id)
    return user


def today(app):
    with app.app_context():
        return clinic_today()


def events(app, kind: str) -> list[dict]:
    with app.app_context():
        return [e.envelope for e in db.session.scalars(sa.select(OutboxEvent).where(OutboxEvent.type == kind))]


def pointers(answer) -> set[str]:
    return {error["pointer"] for error in answer.get_json()["errors"]}


def in_care(app, doctor, patient) -> None:
    """A confirmed visit: the doctor may read the patient's record (app.policy)."""
    appointment_id = do_book(app, patient.id, doctor.id, doctor.department_id, a_slot(app, doctor.id).start)
    with app.app_context():
        db.session.get(Appointment, appointment_id).status = Status.CONFIRMED
        db.session.commit()


# --- patients ----------------------------------------------------------------------------------------------

def test_a_patient_signs_up_without_a_token_and_never_sees_the_password(app, api):
    answer = api.post("/api/v1/patients", json=SIGNUP)
    assert answer.status_code == 202, answer.get_json()
    assert answer.get_json()["email"] == "mary@example.com"
    assert SIGNUP["password"] not in answer.get_data(as_text=True)
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == "mary@example.com"))
        assert user.role is Role.PATIENT and user.phone == "+12025550143"  # the page's rule: E.164
        user_id = user.id
    assert [e["aggregate_id"] for e in events(app, "patient.registered")] == [str(user_id)]
    token = token_for(app, db_user(app, user_id), "patient/Patient.r")
    me = api.get("/api/v1/patients/me", headers=auth(token)).get_json()
    assert me["id"] == user_id and me["view"] == "self" and me["email"] == "mary@example.com"


def db_user(app, user_id: int) -> User:
    with app.app_context():
        user = db.session.get(User, user_id)
        db.session.expunge(user)
        return user


def test_signup_refuses_every_broken_rule_at_once_as_pointers(app, api):
    future = (today(app) + timedelta(days=1)).isoformat()
    answer = api.post("/api/v1/patients", json={
        **SIGNUP, "email": "not-an-email", "password": "password", "date_of_birth": future, "phone": "12",
        "insurance_policy_number": "P-1"})
    assert answer.status_code == 422
    assert pointers(answer) == {"/email", "/password", "/date_of_birth", "/phone", "/insurance_policy_number"}
    unknown = api.post("/api/v1/patients", json={**SIGNUP, "role": "admin"})
    assert unknown.status_code == 422 and pointers(unknown) == {"/role"}
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0


def test_signup_with_a_registered_email_answers_the_same_and_emails_its_owner(app, api, create_patient):
    owner = create_patient(email="mary@example.com")
    fresh = api.post("/api/v1/patients", json={**SIGNUP, "email": "someone.new@example.com"})
    answer = api.post("/api/v1/patients", json={**SIGNUP, "email": "Mary@Example.com"})
    assert answer.status_code == fresh.status_code == 202
    assert answer.get_json()["detail"].replace("mary@example.com", "X") == \
        fresh.get_json()["detail"].replace("someone.new@example.com", "X")
    assert [e["aggregate_id"] for e in events(app, "user.signup_attempted")] == [str(owner.id)]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 2


def test_a_signup_retried_with_its_idempotency_key_makes_one_account(app, api):
    first = api.post("/api/v1/patients", json=SIGNUP, headers={"Idempotency-Key": "signup-1"})
    retry = api.post("/api/v1/patients", json=SIGNUP, headers={"Idempotency-Key": "signup-1"})
    assert first.status_code == retry.status_code == 202
    assert retry.get_json() == first.get_json() and retry.headers["Idempotent-Replayed"] == "true"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 1


def test_the_eleventh_signup_from_one_address_in_the_window_is_429(app, api, monkeypatch):
    monkeypatch.setitem(app.config, "HMS_API_RATE_LIMIT_SIGNUP", (10, 3600))
    for _ in range(10):
        assert api.post("/api/v1/patients", json={}).status_code == 422
    refused = api.post("/api/v1/patients", json=SIGNUP)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert refused.headers["RateLimit-Policy"] == '"signup";q=10;w=3600'
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0


def test_a_patient_updates_their_profile_only_with_the_current_etag(app, api, create_patient):
    patient = create_patient()
    token = token_for(app, patient, "patient/Patient.ru")
    url = f"/api/v1/patients/{patient.id}"
    etag = api.get(url, headers=auth(token)).headers["ETag"]
    change = {"phone": "202-555-0177", "insurance_provider": "Acme Health", "insurance_policy_number": "AC-1"}
    assert api.patch(url, json=change, headers=auth(token)).status_code == 428
    assert api.patch(url, json=change, headers=auth(token, **{"If-Match": '"stale"'})).status_code == 412
    answer = api.patch(url, json=change, headers=auth(token, **{"If-Match": etag}))
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["phone"] == "+12025550177" and body["insurance_policy_number"] == "AC-1"
    assert answer.headers["ETag"] != etag
    [changed] = events(app, "patient.profile_changed")
    assert changed["data"] == {"sections": ["contact", "insurance"],
                               "fields": ["phone", "insurance_provider", "insurance_policy_number"]}
    assert changed["actor"]["client_id"] == "test-app"
    again = api.patch(url, json={"address": "2 Elm Street"}, headers=auth(token, **{"If-Match": etag}))
    assert again.status_code == 412  # read before the change: no lost update


def test_a_profile_change_is_refused_with_the_pages_rules(app, api, create_patient):
    patient = create_patient()
    token = token_for(app, patient, "patient/Patient.ru")
    url = f"/api/v1/patients/{patient.id}"
    headers = auth(token, **{"If-Match": "*"})
    phone = api.patch(url, json={"phone": "12"}, headers=headers)
    assert phone.status_code == 422 and pointers(phone) == {"/phone"}
    orphan = api.patch(url, json={"insurance_policy_number": "AC-1"}, headers=headers)
    assert orphan.status_code == 422 and pointers(orphan) == {"/insurance_policy_number"}
    email = api.patch(url, json={"email": "new@example.com"}, headers=headers)
    assert email.status_code == 422 and pointers(email) == {"/email"}  # needs the password: the page's
    blank = api.patch(url, json={"address": None}, headers=headers)
    assert blank.status_code == 422 and pointers(blank) == {"/address"}


def test_who_reads_a_patients_profile_and_what_they_see(app, api, doctor, create_patient, create_doctor):
    owner, other = create_patient(), create_patient()
    url = f"/api/v1/patients/{owner.id}"
    assert api.get(url, headers=auth(token_for(app, other, "patient/Patient.r"))).status_code == 404
    assert api.patch(url, json={}, headers=auth(token_for(app, other, "patient/Patient.u"),
                                                **{"If-Match": "*"})).status_code == 404
    stranger = api.get(url, headers=auth(token_for(app, create_doctor())))
    assert stranger.status_code == 403 and stranger.get_json()["type"].endswith("/no-care-relationship")
    in_care(app, doctor, owner)
    clinical = api.get(url, headers=auth(token_for(app, doctor, "user/Patient.r"))).get_json()
    assert clinical["view"] == "clinical" and clinical["date_of_birth"] == "1980-01-02"
    assert clinical["email"] is None and clinical["address"] is None
    clerk = system_token(app, Role.CLERK)
    billing = api.get(url, headers=auth(clerk)).get_json()
    assert billing["view"] == "billing" and billing["email"] == owner.email and billing["date_of_birth"] is None
    assert api.patch(url, json={"address": "x"}, headers=auth(clerk, **{"If-Match": "*"})).status_code == 404
    scope = api.get(url, headers=auth(token_for(app, owner, "patient/Appointment.r")))
    assert scope.status_code == 403 and scope.get_json()["type"].endswith("/insufficient-scope")
    assert api.get("/api/v1/patients/me", headers=auth(clerk)).status_code == 403


def test_a_patient_role_service_account_has_a_profile_without_details(app, api):
    token = system_token(app, Role.PATIENT)
    me = api.get("/api/v1/patients/me", headers=auth(token))
    assert me.status_code == 200 and me.get_json()["date_of_birth"] is None
    change = api.patch(f"/api/v1/patients/{me.get_json()['id']}", json={"address": "1 Lane"},
                       headers=auth(token, **{"If-Match": me.headers["ETag"]}))
    assert change.status_code == 409


def test_doctors_and_clerks_search_patients_a_page_at_a_time(app, api, doctor, create_patient):
    for name in ("Tom Alpha", "Tom Beta", "Tom Gamma"):
        create_patient(full_name=name)
    clerk = system_token(app, Role.CLERK)
    first = api.get("/api/v1/patients?q=tom&limit=2", headers=auth(clerk))
    assert first.status_code == 200
    assert [p["full_name"] for p in first.get_json()["items"]] == ["Tom Alpha", "Tom Beta"]
    assert first.get_json()["items"][0]["email"]
    link = first.headers["Link"].split(";")[0].strip("<>")
    assert [p["full_name"] for p in api.get(link, headers=auth(clerk)).get_json()["items"]] == ["Tom Gamma"]
    names = api.get("/api/v1/patients?q=tom", headers=auth(token_for(app, doctor))).get_json()["items"]
    assert len(names) == 3 and all(p["email"] is None for p in names)
    patient = token_for(app, create_patient(), "patient/*.cruds")
    assert api.get("/api/v1/patients?q=tom", headers=auth(patient)).status_code == 403
    assert api.get("/api/v1/patients?q=t", headers=auth(clerk)).status_code == 422
    assert api.get("/api/v1/patients?q=tom", headers=auth(system_token(app, Role.ADMIN))).status_code == 403


# --- doctors and departments -------------------------------------------------------------------------------

def test_the_directory_searches_filters_and_pages(app, api, create_doctor, create_department, create_patient):
    cardiology = create_department("Cardiology")
    a = create_doctor(full_name="Dr. A Heart", department_ids=[cardiology], specialty="Cardiologist")
    b = create_doctor(full_name="Dr. B Heart", department_ids=[cardiology], specialty="Cardiologist")
    create_doctor(full_name="Dr. C Skin", specialty="Dermatologist")
    gone = create_doctor(full_name="Dr. D Heart", department_ids=[cardiology])
    with app.app_context():
        db.session.get(User, gone.id).active = False
        db.session.commit()
    token = token_for(app, create_patient(), "patient/Practitioner.rs")
    first = api.get(f"/api/v1/doctors?department_id={cardiology}&limit=1", headers=auth(token))
    assert first.status_code == 200
    page = first.get_json()
    assert [d["id"] for d in page["items"]] == [a.id] and page["items"][0]["email"] is None
    second = api.get(first.headers["Link"].split(";")[0].strip("<>"), headers=auth(token)).get_json()
    assert [d["id"] for d in second["items"]] == [b.id] and second["next_cursor"] is None
    assert [d["full_name"] for d in api.get("/api/v1/doctors?q=derma", headers=auth(token)).get_json()["items"]] \
        == ["Dr. C Skin"]
    assert api.get(f"/api/v1/doctors/{gone.id}", headers=auth(token)).status_code == 404
    assert api.get("/api/v1/doctors?include_inactive=true", headers=auth(token)).status_code == 403
    admin = system_token(app, Role.ADMIN)
    everyone = api.get("/api/v1/doctors?include_inactive=true", headers=auth(admin)).get_json()["items"]
    assert gone.id in [d["id"] for d in everyone]
    departments = api.get("/api/v1/departments", headers=auth(token)).get_json()["items"]
    assert "Cardiology" in [d["name"] for d in departments]
    no_scope = api.get("/api/v1/doctors", headers=auth(token_for(app, a, "user/Appointment.rs")))
    assert no_scope.status_code == 403 and no_scope.get_json()["type"].endswith("/insufficient-scope")


def test_the_admin_adds_changes_and_deactivates_a_doctor(app, api, create_department, create_patient):
    department = create_department("Neurology")
    admin = system_token(app, Role.ADMIN)
    new = {"full_name": "Dr. New", "email": "new.doctor@example.com", "phone": "202 555 0111",
           "department_ids": [department], "specialty": "Neurologist", "licence_number": "LIC-9",
           "consultation_fee": "120"}
    assert api.post("/api/v1/doctors", json=new, headers=auth(system_token(app, Role.CLERK))).status_code == 403
    created = api.post("/api/v1/doctors", json=new, headers=auth(admin, **{"Idempotency-Key": "doc-1"}))
    assert created.status_code == 201, created.get_json()
    doctor = created.get_json()
    assert doctor["consultation_fee"] == "120.00" and doctor["phone"] == "+12025550111"
    replay = api.post("/api/v1/doctors", json=new, headers=auth(admin, **{"Idempotency-Key": "doc-1"}))
    assert replay.get_json() == doctor and replay.headers["Idempotent-Replayed"] == "true"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(PasswordToken)
                                 .where(PasswordToken.user_id == doctor["id"])) == 1
    bad = api.post("/api/v1/doctors", json={**new, "email": "other@example.com", "phone": "12"},
                   headers=auth(admin))
    assert bad.status_code == 422 and pointers(bad) == {"/phone"}
    url = created.headers["Location"]
    etag = created.headers["ETag"]
    changed = api.patch(url, json={"consultation_fee": 150.5, "bio": "Headaches."},
                        headers=auth(admin, **{"If-Match": etag}))
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["consultation_fee"] == "150.50" and changed.get_json()["bio"] == "Headaches."
    stale = api.post(f"{url}/deactivate", headers=auth(admin, **{"If-Match": etag}))
    assert stale.status_code == 412
    gone = api.post(f"{url}/deactivate", headers=auth(admin, **{"If-Match": changed.headers["ETag"]}))
    assert gone.status_code == 200 and gone.get_json()["active"] is False
    assert [e["aggregate_id"] for e in events(app, "doctor.deactivated")] == [str(doctor["id"])]
    patient = token_for(app, create_patient(), "patient/Practitioner.r")
    assert api.get(url, headers=auth(patient)).status_code == 404


# --- availability and time off -----------------------------------------------------------------------------

def test_a_doctor_keeps_their_own_weekly_windows(app, api, create_doctor, create_patient):
    doctor = create_doctor()
    with app.app_context():
        department_id = db.session.get(DoctorProfile, doctor.id).departments[0].id
    token = token_for(app, doctor, "user/Schedule.cruds")
    url = f"/api/v1/doctors/{doctor.id}/availability"
    window = {"department_id": department_id, "weekday": 0, "start_time": "09:00", "end_time": "12:00",
              "slot_minutes": 20}
    added = api.post(url, json=window, headers=auth(token))
    assert added.status_code == 201, added.get_json()
    assert added.get_json()["start_time"] == "09:00:00"
    overlap = api.post(url, json={**window, "start_time": "11:00", "end_time": "13:00"}, headers=auth(token))
    assert overlap.status_code == 422 and pointers(overlap) == {"/start_time"}
    backwards = api.post(url, json={**window, "weekday": 1, "end_time": "08:00"}, headers=auth(token))
    assert backwards.status_code == 422 and pointers(backwards) == {"/end_time"}
    offset = api.post(url, json={**window, "weekday": 2, "start_time": "09:00+02:00"}, headers=auth(token))
    assert offset.status_code == 422 and pointers(offset) == {"/start_time"}  # the clinic's local time
    assert [w["id"] for w in api.get(url, headers=auth(token)).get_json()["items"]] == [added.get_json()["id"]]
    assert [e["data"]["change"] for e in events(app, "doctor.availability_changed")] == ["added"]
    other = token_for(app, create_doctor(), "user/Schedule.cruds")
    assert api.get(url, headers=auth(other)).status_code == 404
    assert api.delete(f"{url}/{added.get_json()['id']}", headers=auth(other, **{"If-Match": "*"})).status_code == 404
    assert api.get(url, headers=auth(token_for(app, create_patient(), "patient/*.cruds"))).status_code == 403
    assert api.get(url, headers=auth(token_for(app, doctor, "user/Appointment.rs"))).status_code == 403
    window_url = added.headers["Location"]
    assert window_url == f"{url}/{added.get_json()['id']}"
    assert api.delete(window_url, headers=auth(token)).status_code == 428
    assert api.delete(window_url, headers=auth(token, **{"If-Match": '"stale"'})).status_code == 412
    read = api.get(window_url, headers=auth(token))
    assert read.get_json() == added.get_json() and read.headers["ETag"] == added.headers["ETag"]
    removed = api.delete(window_url, headers=auth(token, **{"If-Match": read.headers["ETag"]}))
    assert removed.status_code == 204
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(WeeklyAvailability)) == 0
    assert api.delete(window_url, headers=auth(token, **{"If-Match": read.headers["ETag"]})).status_code == 404


def test_a_doctors_time_off_blocks_their_slots(app, api, doctor):
    token = token_for(app, doctor, "user/Schedule.cruds user/Slot.rs")
    slot = a_slot(app, doctor.id, days_ahead=5)
    day = (today(app) + timedelta(days=5)).isoformat()
    url = f"/api/v1/doctors/{doctor.id}/time-off"
    backwards = api.post(url, json={"start_day": day, "start_time": "12:00", "end_day": day, "end_time": "09:00",
                                    "reason": "Course"}, headers=auth(token))
    assert backwards.status_code == 422 and pointers(backwards) == {"/end_day"}
    added = api.post(url, json={"kind": "conference", "start_day": day, "end_day": day, "reason": "Course"},
                     headers=auth(token))
    assert added.status_code == 201, added.get_json()
    entry = added.get_json()
    assert entry["starts_at"].endswith("Z") and entry["kind"] == "conference"
    assert api.get(url, headers=auth(token)).get_json()["items"] == [entry]
    slots = api.get(f"/api/v1/doctors/{doctor.id}/slots?start={day}&end={day}", headers=auth(token)).get_json()
    assert slot.start.isoformat().replace("+00:00", "Z") not in [s["starts_at"] for s in slots["items"]]
    assert added.headers["Location"] == f"{url}/{entry['id']}"
    assert api.delete(added.headers["Location"], headers=auth(token)).status_code == 428
    assert api.delete(added.headers["Location"], headers=auth(token, **{"If-Match": added.headers["ETag"]})).status_code == 204
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Unavailability)) == 0


# --- the audit trail ---------------------------------------------------------------------------------------

def test_the_admin_reads_the_audit_trail_with_filters_and_a_cursor(app, api, create_patient):
    patient = create_patient()
    token = token_for(app, patient, "patient/Patient.ru")
    for address in ("2 Elm Street", "3 Oak Street", "4 Ash Street"):
        assert api.patch(f"/api/v1/patients/{patient.id}", json={"address": address},
                         headers=auth(token, **{"If-Match": "*"})).status_code == 200
    with app.app_context():
        for envelope in [e.envelope for e in db.session.scalars(sa.select(OutboxEvent).order_by(OutboxEvent.id))]:
            append(envelope)
        db.session.commit()
    admin = system_token(app, Role.ADMIN, "system/AuditEvent.rs")
    url = f"/api/v1/audit-events?patient_id={patient.id}&action=patient.profile_changed&limit=2"
    first = api.get(url, headers=auth(admin))
    assert first.status_code == 200, first.get_json()
    items = first.get_json()["items"]
    assert len(items) == 2 and items[0]["seq"] > items[1]["seq"]  # newest first
    assert all(e["client_id"] == "test-app" and e["actor_id"] == patient.id for e in items)
    assert items[0]["details"]["fields"] == ["address"]
    rest = api.get(first.headers["Link"].split(";")[0].strip("<>"), headers=auth(admin)).get_json()
    assert len(rest["items"]) == 1 and rest["items"][0]["seq"] < items[1]["seq"] and rest["next_cursor"] is None
    day = today(app)
    later = api.get(f"/api/v1/audit-events?date_from={day + timedelta(days=1)}", headers=auth(admin))
    assert later.status_code == 200 and later.get_json()["items"] == []
    backwards = api.get(f"/api/v1/audit-events?date_from={day}&date_to={day - timedelta(days=1)}",
                        headers=auth(admin))
    assert backwards.status_code == 422
    assert api.get("/api/v1/audit-events", headers=auth(system_token(app, Role.CLERK))).status_code == 403
    no_scope = api.get("/api/v1/audit-events", headers=auth(system_token(app, Role.ADMIN, "system/Patient.rs")))
    assert no_scope.status_code == 403 and no_scope.get_json()["type"].endswith("/insufficient-scope")
