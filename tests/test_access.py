"""The role guard and ownership: every role against every protected page."""
from __future__ import annotations

import pytest

from app.accounts.models import Role
from tests.helpers import page_without_csrf, text

ROLE_HOMES = {Role.PATIENT: "/patient/", Role.DOCTOR: "/doctor/", Role.CLERK: "/billing/", Role.ADMIN: "/admin/"}
# Admins also enter the billing workspace (refund approvals, reading invoices); tests/billing checks each view.
ALSO_ALLOWED = {(Role.ADMIN, Role.CLERK)}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("page_role", list(Role))
def test_each_role_reaches_only_its_own_pages(client, create_user, login, role, page_role):
    login(create_user(role))
    response = client.get(ROLE_HOMES[page_role])
    if role is page_role or (role, page_role) in ALSO_ALLOWED:
        assert response.status_code == 200
    else:
        assert response.status_code == 403
        assert "Your account does not have access to this page." in text(response)
        assert 'data-testid="error-page"' in text(response)


@pytest.mark.parametrize("role", list(Role))
def test_home_sends_each_role_to_its_workspace(client, create_user, login, role):
    login(create_user(role))
    assert client.get("/").headers["Location"] == ROLE_HOMES[role]


@pytest.mark.parametrize("page", [*ROLE_HOMES.values(), "/patient/1/profile"])
def test_anonymous_visitors_are_sent_to_sign_in(client, page):
    response = client.get(page)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_anonymous_htmx_request_is_told_where_to_sign_in(client):
    response = client.get("/patient/1/profile/contact/edit", htmx=True)
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login?next=")


@pytest.mark.parametrize("role", [Role.DOCTOR, Role.CLERK, Role.ADMIN])
def test_navigation_shows_only_the_roles_own_links(client, create_user, login, role):
    login(create_user(role))
    html = text(client.get(ROLE_HOMES[role]))
    for other, home in ROLE_HOMES.items():
        if other is not role:
            assert f'href="{home}"' not in html


# GET routes of the role areas that are not pages of the menu: downloads, the fragments a page fetches, and the
# consent page (a client's link leads there).
NOT_PAGES = {"patients.bill_pdf", "doctors.icd10_search", "reports.export", "admin.audit_csv", "admin.audit_json",
             "patients.access_report_csv",
             "oauth_pages.authorize", "oauth_pages.patient_choices"}


def test_every_page_of_a_role_area_lights_up_a_navigation_item(app):
    """A new page must say which menu entry it belongs to (app/web/navigation.py), or the menu shows the
    user nowhere."""
    from app.web.navigation import NAV

    covered = {endpoint for items in NAV.values() for _, main, also in items for endpoint in (main, *also)}
    areas = {"patients", "doctors", "billing", "reports", "admin", "directory", "oauth_pages", "sessions"}
    pages = {rule.endpoint for rule in app.url_map.iter_rules()
             if "GET" in rule.methods and rule.endpoint.split(".")[0] in areas}
    assert pages - NOT_PAGES - covered == set()
    assert covered - pages == set()  # no menu entry names a route that does not exist


def test_patient_cannot_read_another_patients_profile(client, create_patient, login):
    me, other = create_patient(), create_patient()
    login(me)
    assert client.get(f"/patient/{me.id}/profile").status_code == 200
    for url in (f"/patient/{other.id}/profile", f"/patient/{other.id}/profile/contact",
                f"/patient/{other.id}/profile/contact/edit"):
        assert client.get(url).status_code == 404, url
        assert client.get(url, htmx=True).status_code == 404, url


def test_patient_cannot_edit_another_patients_profile(app, client, create_patient, login):
    me, other = create_patient(), create_patient(full_name="Other Person")
    login(me)
    response = client.post_form(f"/patient/{other.id}/profile/personal",
                                {"full_name": "Hijacked", "date_of_birth": "1990-01-01", "sex": "male"})
    assert response.status_code == 404
    from app.accounts.models import User
    from app.extensions import db

    with app.app_context():
        assert db.session.get(User, other.id).full_name == "Other Person"


def test_staff_cannot_open_patient_profile_pages(client, create_patient, create_user, login):
    patient = create_patient()
    login(create_user(Role.ADMIN))
    assert client.get(f"/patient/{patient.id}/profile").status_code == 403


# --- refusals are audited --------------------------------------------------------------------------------------


def denials(app) -> list[dict]:
    import sqlalchemy as sa

    from app.events.models import OutboxEvent
    from app.extensions import db

    with app.app_context():
        return [e.envelope for e in db.session.scalars(
            sa.select(OutboxEvent).where(OutboxEvent.type == "access.denied").order_by(OutboxEvent.seq))]


@pytest.fixture
def others_appointment(app, create_patient, create_doctor, create_department):
    from app.appointments.models import Status
    from app.extensions import db
    from tests.records.clinical_data import add_appointment

    department = create_department("General Practice")
    doctor = create_doctor(department_ids=[department])
    owner = create_patient(full_name="Owner Person")
    with app.app_context():
        appointment = add_appointment(owner.id, doctor.id, department, days_ago=-5, status=Status.CONFIRMED)
        db.session.commit()
        return owner, doctor, appointment.id


def test_a_patient_opening_or_cancelling_another_patients_appointment_is_audited(
        app, client, create_patient, login, others_appointment):
    owner, _, appointment_id = others_appointment
    intruder = create_patient()
    login(intruder)
    assert client.get(f"/patient/appointments/{appointment_id}").status_code == 404
    assert client.post_form(f"/patient/appointments/{appointment_id}/cancel",
                            {"reason": "not mine"}).status_code == 404
    missing = client.get(f"/patient/appointments/{appointment_id + 1000}")
    assert missing.status_code == 404
    assert page_without_csrf(missing) == page_without_csrf(client.get(f"/patient/appointments/{appointment_id}"))
    seen = denials(app)
    assert [(d["aggregate_type"], d["aggregate_id"], d["patient_id"], d["data"]["reason"]) for d in seen] == [
        ("appointment", str(appointment_id), owner.id, "not_own"),
        ("appointment", str(appointment_id), owner.id, "not_own"),
        ("appointment", str(appointment_id + 1000), None, "not_found"),
        ("appointment", str(appointment_id), owner.id, "not_own")]
    assert all(d["actor"]["id"] == intruder.id and d["outcome"] == "denied" and d["data"]["status"] == 404
               for d in seen)
    assert seen[1]["data"]["method"] == "POST"


def test_a_patient_opening_another_patients_profile_is_audited(app, client, create_patient, login):
    me, other = create_patient(), create_patient()
    login(me)
    assert client.get(f"/patient/{other.id}/profile/contact").status_code == 404
    [denied] = denials(app)
    assert (denied["aggregate_type"], denied["patient_id"], denied["actor"]["id"]) == ("patient", other.id, me.id)


def test_another_doctors_appointment_is_refused_and_audited(app, client, create_doctor, login, others_appointment):
    _, _, appointment_id = others_appointment
    stranger = create_doctor(department_ids=[])
    login(stranger)
    assert client.post_form(f"/doctor/appointments/{appointment_id}/cancel", {"reason": "x"}).status_code == 404
    [denied] = denials(app)
    assert denied["aggregate_id"] == str(appointment_id) and denied["actor"]["id"] == stranger.id


def test_a_clerk_opening_a_chart_is_refused_and_audited(app, client, create_user, create_patient, login):
    patient = create_patient()
    clerk = create_user(Role.CLERK)
    login(clerk)
    assert client.get(f"/doctor/patients/{patient.id}/chart").status_code == 403
    [denied] = denials(app)
    assert (denied["aggregate_type"], denied["aggregate_id"]) == ("area", "doctor")
    assert denied["data"]["path"] == f"/doctor/patients/{patient.id}/chart" and denied["data"]["status"] == 403
    assert denied["data"]["reason"] == "role_clerk" and denied["actor"]["role"] == "clerk"


def test_staff_read_a_patients_profile_by_the_policy_and_only_the_patient_changes_it(
        app, create_user, create_doctor, others_appointment):
    from app.accounts.models import User
    from app.extensions import db
    from app.policy import Actor, Resource, Verb, decide

    owner, doctor, _ = others_appointment
    stranger, clerk = create_doctor(), create_user(Role.CLERK)
    with app.app_context():
        profile = Resource.patient(owner.id, db.session.get(User, owner.id))

        def answer(user, verb):
            decision = decide(Actor(db.session.get(User, user.id)), verb, profile)
            return decision.status, decision.basis

        assert answer(owner, Verb.WRITE) == (200, "self")
        assert answer(doctor, Verb.READ) == (200, "care_relationship")
        assert answer(stranger, Verb.READ) == (403, "no_relationship")
        assert answer(clerk, Verb.READ) == (200, "billing_staff")
        assert answer(doctor, Verb.WRITE)[0] == answer(clerk, Verb.WRITE)[0] == 404
