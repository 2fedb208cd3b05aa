"""Who reaches the doctor's records pages: the related doctor, an unrelated one (403 with the break-glass
form), break-glass for 60 minutes then expiry, clerks and admins (403, no clinical content), patients and
anonymous users; break-glass flagged on the admin's audit page."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.accounts.models import Role
from app.appointments.models import Status
from app.audit.models import AuditEntry
from app.events.models import OutboxEvent
from app.extensions import db
from app.policy import BREAK_GLASS_MINUTES
from app.records.models import BreakGlassGrant
from tests.conftest import DEFAULT_PASSWORD
from tests.helpers import Client, text
from tests.records.clinical_data import CLINICAL_STRINGS, build_chart
from tests.services import wait_until

pytestmark = pytest.mark.clock  # the outcome depends on the clock: see `make test-clock`


@pytest.fixture
def world(app, create_doctor, create_patient, create_department, create_user):
    department = create_department("Cardiology")
    doctor = create_doctor(full_name="Dr. Amara Okafor", department_ids=[department])
    stranger = create_doctor(full_name="Dr. Unrelated", department_ids=[department])
    patient = create_patient(full_name="Maria Garcia")
    with app.app_context():
        chart = build_chart(patient.id, doctor.id, department)
        db.session.commit()

    class World:
        pass

    w = World()
    w.doctor, w.stranger, w.patient, w.chart = doctor, stranger, patient, chart
    w.other_patient = create_patient(full_name="John Miller")
    w.clerk = create_user(Role.CLERK)
    w.admin = create_user(Role.ADMIN)
    return w


def read_urls(w) -> list[str]:
    return [f"/doctor/patients/{w.patient.id}/chart", f"/doctor/encounters/{w.chart.current_id}",
            f"/doctor/encounters/{w.chart.original_id}", f"/doctor/encounters/{w.chart.draft_id}"]


def write_posts(w) -> list[tuple[str, dict]]:
    draft = f"/doctor/encounters/{w.chart.draft_id}"
    return [(f"{draft}/notes", {"chief_complaint": "x"}), (f"{draft}/vitals", {"heart_rate": "70"}),
            (f"{draft}/diagnoses", {"code": "I10"}), (f"{draft}/sign", {}),
            (f"/doctor/encounters/{w.chart.current_id}/amend", {"reason": "x"}),
            (f"/doctor/appointments/{w.chart.appointment_id}/encounter", {})]


def assert_no_clinical_content(response):
    body = text(response)
    for marker in CLINICAL_STRINGS:
        assert marker not in body, marker


def test_the_related_doctor_reads_the_chart_and_every_version(app, world, login):
    client = login(world.doctor)
    for url in read_urls(world):
        assert client.get(url).status_code == 200, url
    chart = text(client.get(f"/doctor/patients/{world.patient.id}/chart"))
    assert "Penicillin" in chart and "2 versions (amended)" in chart


def test_an_unrelated_doctor_gets_403_with_the_break_glass_form_and_no_clinical_content(app, world, login):
    client = login(world.stranger)
    for url in read_urls(world):
        response = client.get(url)
        assert response.status_code == 403, url
        assert 'data-testid="break-glass-form"' in text(response)
        assert_no_clinical_content(response)
    denied = [e.envelope for e in _events(app, "access.denied")]
    assert len(denied) == len(read_urls(world)) and all(e["outcome"] == "denied" for e in denied)


def test_an_unrelated_doctor_cannot_write(app, world, login):
    client = login(world.stranger)
    for url, data in write_posts(world):
        assert client.post_form(url, data).status_code == 404, url
    assert client.post_form(f"/doctor/patients/{world.patient.id}/allergies",
                            {"substance": "Latex", "reaction": "Rash", "severity": "mild"}).status_code == 403


def test_break_glass_needs_a_reason_and_opens_the_record_for_60_minutes(app, world, login):
    client = login(world.stranger)
    refused = client.post_form(f"/doctor/patients/{world.patient.id}/break-glass", {"reason": "x"})
    assert refused.status_code == 422 and "10 to 500 characters" in text(refused)
    granted = client.post_form(f"/doctor/patients/{world.patient.id}/break-glass",
                               {"reason": "Unconscious in the emergency room, need allergies"})
    assert granted.status_code == 303
    with app.app_context():
        grant = db.session.scalar(sa.select(BreakGlassGrant))
        assert grant.doctor_id == world.stranger.id and grant.reason.startswith("Unconscious")
        assert grant.expires_at - grant.started_at == timedelta(minutes=BREAK_GLASS_MINUTES)
    *signed, draft = read_urls(world)
    for url in signed:
        assert client.get(url).status_code == 200, url
    assert client.get(draft).status_code == 404  # another doctor's draft is theirs alone, break-glass or not
    page = text(client.get(f"/doctor/patients/{world.patient.id}/chart"))
    assert 'data-testid="break-glass-active"' in page and "zxq-draft" not in page
    event = _events(app, "record.break_glass")[0].envelope
    assert event["patient_id"] == world.patient.id and event["data"]["reason"].startswith("Unconscious")
    reads = [e.envelope["data"] for e in _events(app, "record.viewed")]
    assert reads and all(d["basis"] == "break_glass" and d["break_glass"] for d in reads)
    # break-glass reads; it does not make the stranger the author of the visit
    for url, data in write_posts(world):
        assert client.post_form(url, data).status_code == 404, url


def test_break_glass_expires(app, world, login):
    client = login(world.stranger)
    client.post_form(f"/doctor/patients/{world.patient.id}/break-glass", {"reason": "Emergency, patient confused"})
    with app.app_context():
        grant = db.session.scalar(sa.select(BreakGlassGrant))
        grant.started_at -= timedelta(minutes=BREAK_GLASS_MINUTES + 1)
        grant.expires_at -= timedelta(minutes=BREAK_GLASS_MINUTES + 1)
        db.session.commit()
    response = client.get(f"/doctor/patients/{world.patient.id}/chart")
    assert response.status_code == 403 and 'data-testid="break-glass-form"' in text(response)


def test_a_grant_for_one_patient_does_not_open_another(app, world, login, create_patient):
    client = login(world.stranger)
    client.post_form(f"/doctor/patients/{world.patient.id}/break-glass", {"reason": "Emergency, patient confused"})
    assert client.get(f"/doctor/patients/{world.other_patient.id}/chart").status_code == 403


@pytest.mark.parametrize("who", ["clerk", "admin", "patient"])
def test_clerks_admins_and_patients_get_403_on_every_doctor_records_route_without_clinical_content(
        app, world, login, who):
    client = login(getattr(world, who))
    for url in [*read_urls(world), f"/doctor/patients/{world.patient.id}/break-glass", "/doctor/patients",
                "/doctor/icd10?q=hypertension"]:
        for htmx in (False, True):
            response = client.get(url, htmx=htmx)
            assert response.status_code == 403, url
            assert_no_clinical_content(response)
    for url, data in write_posts(world):
        assert client.post_form(url, data).status_code == 403, url


def test_anonymous_users_are_sent_to_sign_in(app, world, client):
    for url in read_urls(world):
        response = client.get(url)
        assert response.status_code in (302, 303) and "/login" in response.headers["Location"]
        assert_no_clinical_content(response)


def test_a_doctor_gets_404_for_a_user_who_is_not_a_patient(app, world, login):
    client = login(world.doctor)
    assert client.get(f"/doctor/patients/{world.clerk.id}/chart").status_code == 404
    assert client.get("/doctor/encounters/999999").status_code == 404


def test_the_admin_audit_page_flags_break_glass(app, world, login, worker):
    doctor = login(world.stranger)
    doctor.post_form(f"/doctor/patients/{world.patient.id}/break-glass", {"reason": "Emergency, patient confused"})
    doctor.get(f"/doctor/patients/{world.patient.id}/chart")

    def rows():
        with app.app_context():
            return db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry).where(
                AuditEntry.action.in_(["record.break_glass", "record.viewed"])))

    wait_until(lambda: rows() == 2)
    doctor.http.post("/logout", data={"csrf_token": doctor.csrf_token("/doctor/")})
    admin = login(world.admin)
    page = text(admin.get("/admin/audit"))
    assert page.count('data-testid="break-glass-row"') == 2 and "Reason: Emergency, patient confused" in page
    only = text(admin.get("/admin/audit?break_glass=y", htmx=True))
    assert only.count("<tr") - 1 == 2  # the header row and the two flagged rows


def _events(app, type_: str) -> list[OutboxEvent]:
    with app.app_context():
        rows = list(db.session.scalars(sa.select(OutboxEvent).where(OutboxEvent.type == type_)
                                       .order_by(OutboxEvent.seq)))
        db.session.expunge_all()
        return rows


@pytest.mark.parametrize(("status", "days_ago", "allowed"), [
    (Status.COMPLETED, 31.3, True),
    (Status.CHECKED_IN, 0.01, True),
    (Status.COMPLETED, 360, True),  # within the 12 months
    (Status.COMPLETED, 400, False),  # a visit more than 12 months ago no longer opens the record
    (Status.CONFIRMED, -90, True),  # a confirmed visit ahead, however far
    (Status.REQUESTED, -3, False),  # a request gives nothing beyond the request itself
    (Status.DECLINED, 11.3, False),
    (Status.CANCELLED_BY_PATIENT, 12.3, False),
    (Status.CANCELLED_BY_CLINIC, -5, False),
    (Status.NO_SHOW, 13.3, False),
])
def test_only_a_confirmed_attended_or_recent_visit_opens_the_record(app, world, login, create_doctor, status,
                                                                     days_ago, allowed):
    from tests.records.clinical_data import add_appointment

    other = create_doctor(department_ids=[])
    with app.app_context():
        add_appointment(world.patient.id, other.id, _department(world), days_ago=days_ago, status=status)
        db.session.commit()
    client = login(other)
    chart = client.get(f"/doctor/patients/{world.patient.id}/chart")
    mine = text(client.get("/doctor/patients"))
    if allowed:
        assert chart.status_code == 200 and "Maria Garcia" in mine
    else:
        assert chart.status_code == 403 and 'data-testid="break-glass-form"' in text(chart)
        assert_no_clinical_content(chart)
        assert "Maria Garcia" not in mine  # not listed among the doctor's patients either
        [denied] = [e.envelope for e in _events(app, "access.denied")]
        assert denied["data"]["reason"] == "no_relationship" and denied["actor"]["id"] == other.id


def test_a_draft_is_readable_by_its_author_only(app, world, login, create_doctor):
    """Another doctor with the patient in their care reads the signed visits, never a colleague's draft."""
    from tests.records.clinical_data import add_appointment

    colleague = create_doctor(department_ids=[])
    with app.app_context():
        add_appointment(world.patient.id, colleague.id, _department(world), days_ago=2, status=Status.COMPLETED)
        db.session.commit()
    client = login(colleague)
    chart = client.get(f"/doctor/patients/{world.patient.id}/chart")
    assert chart.status_code == 200 and "zxq-draft" not in text(chart)
    assert client.get(f"/doctor/encounters/{world.chart.current_id}").status_code == 200
    assert client.get(f"/doctor/encounters/{world.chart.draft_id}").status_code == 404
    [denied] = [e.envelope for e in _events(app, "access.denied")]
    assert denied["data"]["reason"] == "draft_of_another" and denied["aggregate_id"] == str(world.chart.draft_id)
    author = Client(app)
    assert author.sign_in(world.doctor.email, DEFAULT_PASSWORD).status_code == 303
    assert "zxq-draft" in text(author.get(f"/doctor/patients/{world.patient.id}/chart"))
    assert "zxq-draft" in text(author.get(f"/doctor/encounters/{world.chart.draft_id}"))


def test_the_window_is_a_setting(app, world, login, create_doctor):
    from tests.records.clinical_data import add_appointment

    other = create_doctor(department_ids=[])
    with app.app_context():
        add_appointment(world.patient.id, other.id, _department(world), days_ago=100.3, status=Status.COMPLETED)
        db.session.commit()
    client = login(other)
    assert client.get(f"/doctor/patients/{world.patient.id}/chart").status_code == 200
    app.config["HMS_CARE_RELATIONSHIP_MONTHS"] = 3
    try:
        assert client.get(f"/doctor/patients/{world.patient.id}/chart").status_code == 403
    finally:
        app.config["HMS_CARE_RELATIONSHIP_MONTHS"] = 12


def _department(world) -> int:
    from app.appointments.models import Appointment

    return db.session.get(Appointment, world.chart.appointment_id).department_id
