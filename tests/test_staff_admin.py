"""The admin onboards and offboards billing clerks and admins."""
from __future__ import annotations

import re
import threading
import uuid
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from app.accounts.models import PasswordToken, Role, User
from app.accounts.services import AccountError, set_staff_active
from app.audit.models import AuditEntry
from app.events.models import OutboxEvent
from app.extensions import db
from devtools.mailbox import wait_for_messages
from tests.conftest import DEFAULT_PASSWORD
from tests.helpers import Client, text
from tests.services import wait_until

NEW_PASSWORD = "ledger and stamps"


@pytest.fixture
def admin_user(create_user):
    return create_user(Role.ADMIN, full_name="Ada Admin")


@pytest.fixture
def admin(admin_user, login):
    return login(admin_user)


def events(app, type_: str) -> list[dict]:
    with app.app_context():
        return [r.envelope for r in db.session.scalars(
            sa.select(OutboxEvent).where(OutboxEvent.type == type_).order_by(OutboxEvent.seq))]


def staff_form(**changes) -> dict:
    return {"full_name": "Bill Clerk", "email": "bill.clerk@example.com", "phone": "202 555 0177", "role": "clerk",
            **changes}


def user_by_email(app, email: str) -> User | None:
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == email))
        if user is not None:
            db.session.expunge(user)
        return user


def test_admin_creates_a_clerk_who_sets_a_password_from_the_email_and_reaches_billing(
        app, admin, worker, default_templates, mailbox):
    address = f"clerk-{uuid.uuid4().hex[:10]}@example.com"
    response = admin.post_form("/admin/staff/new", staff_form(email=address.upper()))
    assert response.status_code == 303 and response.headers["Location"] == "/admin/staff"
    assert f"can now set a password with the link sent to {address}" in text(admin.get("/admin/staff"))
    clerk = user_by_email(app, address)
    assert (clerk.role, clerk.password_hash, clerk.phone, clerk.active) == (Role.CLERK, None, "+12025550177", True)
    with app.app_context():
        [token] = db.session.scalars(sa.select(PasswordToken).where(PasswordToken.user_id == clerk.id))
        assert token.purpose == "set_password"
    [created] = [e for e in events(app, "user.created") if e["aggregate_id"] == str(clerk.id)]
    assert created["data"] == {"role": "clerk", "email": address} and created["actor"]["role"] == "admin"

    [message] = wait_for_messages(mailbox, 1, timeout=30, predicate=lambda m: m["To"] == address)
    body = message.get_body(("plain",)).get_content()
    assert "Use this link to set up your account at HMS Clinic" in body
    path = urlsplit(re.search(r"https?://\S+/password/\S+", body).group(0)).path
    newcomer = Client(app)
    assert newcomer.post_form(path, {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}).status_code == 303
    first = newcomer.sign_in(address, NEW_PASSWORD)  # the first sign-in sets up the authenticator
    assert first.status_code == 200 and "Your recovery codes" in text(first)
    assert newcomer.get("/billing/").status_code == 200
    [audited] = wait_until(lambda: audit_rows(app, clerk, "user.created"), timeout=30, message="the audit row")
    assert audited.details["role"] == "clerk"


def audit_rows(app, user: User, action: str) -> list[AuditEntry]:
    with app.app_context():
        rows = list(db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action,
                                                                   AuditEntry.entity_id == str(user.id))))
        db.session.expunge_all()
        return rows


def test_admin_creates_another_admin(app, admin):
    assert admin.post_form("/admin/staff/new", staff_form(email="second@example.com", role="admin",
                                                          phone="")).status_code == 303
    user = user_by_email(app, "second@example.com")
    assert (user.role, user.phone) == (Role.ADMIN, None)
    assert events(app, "user.password_link_issued")[-1]["aggregate_id"] == str(user.id)


@pytest.mark.parametrize("changes,field,message", [
    ({"email": "TAKEN@Example.com"}, "email", "An account with this email already exists."),
    ({"email": "not-an-email"}, "email", "Enter a valid email address"),
    ({"phone": "12"}, "phone", "Enter a valid phone number"),
    ({"full_name": ""}, "full_name", "Enter the person&#39;s full name."),
    ({"role": "doctor"}, "role", "Choose billing clerk or admin."),
    ({"role": "patient"}, "role", "Choose billing clerk or admin."),
    ({"role": ""}, "role", "Choose billing clerk or admin."),
])
def test_staff_form_refuses_bad_input_beside_the_field_and_keeps_what_was_typed(
        app, admin, create_user, changes, field, message):
    create_user(Role.CLERK, email="taken@example.com")
    form = staff_form(**changes)
    response = admin.post_form("/admin/staff/new", form)
    assert response.status_code == 422
    html = text(response)
    assert f'id="{field}-error"' in html and message in html.split(f'id="{field}-error"', 1)[1][:300]
    for name in ("full_name", "email"):
        if form[name]:
            assert f'value="{form[name]}"' in html
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 2  # the admin and "taken"


def test_the_staff_list_shows_clerks_and_admins_but_not_doctors_or_patients(admin, create_user, create_patient):
    create_user(Role.CLERK, full_name="Carla Clerk", email="carla@example.com")
    create_user(Role.DOCTOR, full_name="Dr. Not Here")
    create_patient(full_name="Pat Not Here")
    html = text(admin.get("/admin/staff"))
    assert "Carla Clerk" in html and "carla@example.com" in html and "Billing clerk" in html and "Ada Admin" in html
    assert "Dr. Not Here" not in html and "Pat Not Here" not in html
    assert 'aria-label="Deactivate Carla Clerk"' in html and 'aria-label="Deactivate Ada Admin"' not in html


def test_the_staff_list_has_an_empty_state(app):
    with app.test_request_context():
        from flask import render_template

        html = render_template("admin/_staff_table.html", page=type("Page", (), {"items": [], "pages": 0, "total": 0})())
    assert "No billing clerks or admins yet" in html


def test_a_deactivated_clerk_is_signed_out_cannot_sign_in_and_is_restored_by_reactivation(app, admin, create_user):
    clerk = create_user(Role.CLERK)
    clerk_client = Client(app)
    assert clerk_client.sign_in(clerk.email, DEFAULT_PASSWORD).status_code == 303
    assert clerk_client.get("/billing/").status_code == 200

    assert admin.post_form(f"/admin/staff/{clerk.id}/deactivate", {}).status_code == 303
    assert "is deactivated: they are signed out" in text(admin.get("/admin/staff"))
    assert clerk_client.get("/billing/").status_code == 302  # the open session is gone
    response = Client(app).sign_in(clerk.email, DEFAULT_PASSWORD)
    assert "Email or password is incorrect." in text(response)
    assert user_by_email(app, clerk.email) is not None

    assert admin.post_form(f"/admin/staff/{clerk.id}/activate", {}).status_code == 303
    assert Client(app).sign_in(clerk.email, DEFAULT_PASSWORD).status_code == 303
    assert [e["aggregate_id"] for e in events(app, "user.deactivated")] == [str(clerk.id)]
    assert [e["aggregate_id"] for e in events(app, "user.activated")] == [str(clerk.id)]


def test_an_admin_cannot_deactivate_themself(app, admin, admin_user):
    admin.post_form(f"/admin/staff/{admin_user.id}/deactivate", {})
    assert "You cannot deactivate your own account." in text(admin.get("/admin/staff"))
    assert user_by_email(app, admin_user.email).active
    assert events(app, "user.deactivated") == []


def test_the_last_active_admin_cannot_be_deactivated(app, admin_user, create_user):
    other = create_user(Role.ADMIN)
    with app.app_context():
        set_staff_active(db.session.get(User, other.id), False, by=db.session.get(User, admin_user.id))
        db.session.commit()
    # `other`, though deactivated, is the actor here: the rule holds whoever asks.
    with app.app_context(), pytest.raises(AccountError, match="is the last active admin"):
        set_staff_active(db.session.get(User, admin_user.id), False, by=db.session.get(User, other.id))
    assert user_by_email(app, admin_user.email).active


def test_two_admins_deactivating_each_other_at_once_leave_one_active(app, create_user):
    first, second = create_user(Role.ADMIN), create_user(Role.ADMIN)
    barrier, outcomes = threading.Barrier(2), []

    def deactivate(target: User, by: User) -> None:
        with app.app_context():
            actor, user = db.session.get(User, by.id), db.session.get(User, target.id)
            barrier.wait()
            try:
                set_staff_active(user, False, by=actor)
                db.session.commit()
                outcomes.append("done")
            except AccountError:
                db.session.rollback()
                outcomes.append("refused")

    threads = [threading.Thread(target=deactivate, args=(second, first)),
               threading.Thread(target=deactivate, args=(first, second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["done", "refused"]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)
                                 .where(User.role == Role.ADMIN, User.active.is_(True))) == 1


def test_doctors_and_patients_are_not_managed_here(admin, create_user, create_patient):
    doctor, patient = create_user(Role.DOCTOR), create_patient()
    for user in (doctor, patient):
        assert admin.post_form(f"/admin/staff/{user.id}/deactivate", {}).status_code == 404


@pytest.mark.parametrize("role", [Role.PATIENT, Role.CLERK, Role.DOCTOR])
def test_only_admins_reach_the_staff_pages(client, create_user, login, role):
    target = create_user(Role.CLERK)
    login(create_user(role))
    assert client.get("/admin/staff").status_code == 403
    assert client.get("/admin/staff/new").status_code == 403
    assert client.post_form("/admin/staff/new", staff_form()).status_code == 403
    assert client.post_form(f"/admin/staff/{target.id}/deactivate", {}).status_code == 403


def test_anonymous_visitors_are_sent_to_sign_in_from_the_staff_pages(client):
    for url in ("/admin/staff", "/admin/staff/new"):
        assert client.get(url).headers["Location"].startswith("/login?next=")
