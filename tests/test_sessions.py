"""Sessions: the idle timeout and the absolute lifetime, last seen written at most once a minute, "Your sessions"
(ending one or all the others), the admin's "Sign out everywhere", and the email about a new browser."""
from __future__ import annotations

import email
import email.policy
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from app.accounts.models import Role, UserSession
from app.accounts.sessions import describe_browser
from app.events.models import OutboxEvent
from app.extensions import db
from app.timeutil import utcnow
from tests.conftest import DEFAULT_PASSWORD
from tests.helpers import Client, text
from tests.services import wait_until

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"


def _signed_in(app, user, agent: str = CHROME) -> Client:
    client = Client(app)
    client.http.environ_base["HTTP_USER_AGENT"] = agent
    response = client.sign_in(user.email, DEFAULT_PASSWORD)
    assert response.status_code == 303
    return client


def _sessions_of(app, user_id: int) -> list[UserSession]:
    with app.app_context():
        rows = list(db.session.scalars(sa.select(UserSession).where(UserSession.user_id == user_id)
                                       .order_by(UserSession.id)))
        db.session.expunge_all()
        return rows


def _events(app, type: str) -> list[dict]:
    with app.app_context():
        return list(db.session.scalars(sa.select(OutboxEvent.envelope).where(OutboxEvent.type == type)))


def test_a_session_ends_after_its_roles_idle_minutes_and_the_sign_in_page_says_why(app, create_user):
    clerk, patient = create_user(Role.CLERK), create_user(Role.PATIENT)
    with time_machine.travel(utcnow(), tick=False) as clock:
        staff, own = _signed_in(app, clerk), _signed_in(app, patient)
        clock.shift(timedelta(minutes=14))
        assert staff.get("/billing/").status_code == 200  # activity: the idle minutes count again from here
        clock.shift(timedelta(minutes=14, seconds=59))
        assert staff.get("/billing/").status_code == 200
        assert own.get("/patient/").status_code == 200
        clock.shift(timedelta(minutes=15))
        response = staff.get("/billing/")
        assert response.status_code == 302 and response.headers["Location"] == "/login?next=/billing/"
        page = text(staff.get(response.headers["Location"]))
        assert "You were signed out after 15 minutes without activity." in page
        assert "without activity" not in text(staff.get("/login"))  # said once
        assert own.get("/patient/").status_code == 200  # a patient's limit is 30 minutes
        clock.shift(timedelta(minutes=30))
        assert own.get("/patient/").status_code == 302
        assert "after 30 minutes without activity" in text(own.get("/login"))


def test_a_session_ends_at_its_absolute_lifetime_however_active(app, create_user):
    clerk = create_user(Role.CLERK)
    client = _signed_in(app, clerk)
    with app.app_context():  # signed in 12 hours ago, active all along
        db.session.execute(sa.update(UserSession).where(UserSession.user_id == clerk.id).values(
            created_at=utcnow() - timedelta(hours=12), last_seen_at=utcnow() - timedelta(seconds=10)))
        db.session.commit()
    response = client.get("/billing/")
    assert response.status_code == 302
    assert "a session lasts at most 12 hours" in text(client.get("/login"))


def test_an_expired_htmx_request_is_sent_to_sign_in_and_back_to_its_page(app, create_user):
    clerk = create_user(Role.CLERK)
    client = _signed_in(app, clerk)
    with time_machine.travel(utcnow() + timedelta(minutes=16), tick=False):  # (the cookie is signed in its time)
        response = client.http.get("/billing/invoices", headers={
            "HX-Request": "true", "HX-Current-URL": "http://localhost/billing/prices?page=2"})
        assert response.status_code == 401
        assert response.headers["HX-Redirect"] == "/login?next=/billing/prices?page%3D2"
        assert "You were signed out after 15 minutes without activity." in text(client.get("/login"))


def _statements(app, client: Client, url: str) -> list[str]:
    """The statements a GET of `url` runs (this thread's, not the background relay's)."""
    statements, me = [], threading.get_ident()
    with app.app_context():
        engine = db.engine

    def listener(conn, cursor, statement, *args):
        if threading.get_ident() == me:
            statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        assert client.get(url).status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)
    return statements


def test_last_seen_is_written_at_most_once_a_minute_and_not_by_polling(app, create_doctor):
    doctor = create_doctor()
    with time_machine.travel(utcnow(), tick=False) as clock:
        client = _signed_in(app, doctor)
        signed_in_at = _sessions_of(app, doctor.id)[0].last_seen_at
        clock.shift(timedelta(seconds=59))
        within = _statements(app, client, "/doctor/profile")
        assert _sessions_of(app, doctor.id)[0].last_seen_at == signed_in_at
        clock.shift(timedelta(seconds=1))
        after = _statements(app, client, "/doctor/profile")
        # the session costs no statement of its own within the minute, and one UPDATE after it
        assert not [s for s in within if "user_sessions" in s and s.startswith("UPDATE")]
        assert len([s for s in after if s.startswith("UPDATE user_sessions")]) == 1
        assert len(after) == len(within) + 1
        signed_in_at = _sessions_of(app, doctor.id)[0].last_seen_at
        clock.shift(timedelta(minutes=5))
        poll = client.http.get("/doctor/", headers={"HX-Request": "true", "HMS-Background": "1"})  # the dashboard's
        assert poll.status_code == 200
        assert _sessions_of(app, doctor.id)[0].last_seen_at == signed_in_at
        response = client.get("/doctor/profile")
        assert _sessions_of(app, doctor.id)[0].last_seen_at == utcnow()
        assert response.headers["HMS-Session-Remaining"] == str(15 * 60)


def test_your_sessions_lists_where_and_when_and_ends_one_or_all_others(app, create_user):
    clerk, other_person = create_user(Role.CLERK), create_user(Role.CLERK)
    here, laptop, phone = _signed_in(app, clerk), _signed_in(app, clerk, FIREFOX), _signed_in(app, clerk)
    elsewhere = _signed_in(app, other_person)
    page = text(here.get("/account/sessions"))
    assert page.count('data-testid="session"') == 3 and page.count("This browser") == 1
    assert "Firefox on Windows" in page and "Chrome on Linux" in page and "From 127.0.0.1" in page

    laptop_session = _sessions_of(app, clerk.id)[1]
    assert elsewhere.post_form(f"/account/sessions/{laptop_session.id}/end", {}).status_code == 404  # not theirs
    assert laptop.get("/billing/").status_code == 200
    response = here.post_form(f"/account/sessions/{laptop_session.id}/end", {})
    assert response.status_code == 303
    assert "The session of Firefox on Windows has ended." in text(here.get(response.headers["Location"]))
    assert laptop.get("/billing/").status_code == 302
    assert phone.get("/billing/").status_code == 200

    assert here.post_form("/account/sessions/end-others", {}).status_code == 303
    assert phone.get("/billing/").status_code == 302
    assert here.get("/billing/").status_code == 200 and elsewhere.get("/billing/").status_code == 200
    assert text(here.get("/account/sessions")).count('data-testid="session"') == 1
    assert [e["data"]["by"] for e in _events(app, "user.session_ended")] == ["owner"]
    assert len(_events(app, "user.other_sessions_ended")) == 1


def test_the_admin_signs_a_person_out_everywhere_audited(app, create_user, create_doctor):
    admin, doctor = create_user(Role.ADMIN), create_doctor()
    first, second = _signed_in(app, doctor), _signed_in(app, doctor)
    console = _signed_in(app, admin)
    response = console.post_form(f"/admin/users/{doctor.id}/sign-out", {"next": f"/admin/doctors/{doctor.id}"})
    assert response.status_code == 303 and response.headers["Location"] == f"/admin/doctors/{doctor.id}"
    assert "have ended (2 open sessions)" in text(console.get(response.headers["Location"]))
    assert first.get("/doctor/").status_code == 302 and second.get("/doctor/").status_code == 302
    [event] = _events(app, "user.signed_out_everywhere")
    assert event["actor"] == {"id": admin.id, "role": "admin"} and event["aggregate_id"] == str(doctor.id)
    assert console.post_form(f"/admin/users/{admin.id}/sign-out", {}).status_code == 404  # not oneself


def test_a_sign_in_from_a_new_browser_is_emailed_with_a_link_that_ends_it(app, create_user, default_templates,
                                                                             worker, mailbox):
    patient = create_user(Role.PATIENT)
    usual = _signed_in(app, patient)  # the first browser: nothing to tell
    usual.post_form("/logout", {})
    usual.post_form("/login", {"email": patient.email, "password": DEFAULT_PASSWORD})  # the same browser again
    stranger = _signed_in(app, patient, FIREFOX)
    assert len(_events(app, "user.new_browser_sign_in")) == 1

    def notices():
        messages = [email.message_from_bytes(path.read_bytes(), policy=email.policy.default) for path in mailbox.glob("*.eml")]
        return [m for m in messages if m["Subject"].startswith("New sign-in")]

    [message] = wait_until(notices, timeout=30)
    assert message["To"] == patient.email
    body = message.get_body(("plain",)).get_content()
    assert "Firefox on Windows, from 127.0.0.1" in body
    link = next(word for word in body.split() if "/account/sessions/end/" in word)
    path = link.split("127.0.0.1:5000", 1)[-1]

    nobody = Client(app)
    assert "End this session?" in text(nobody.get(path))
    assert stranger.get("/patient/").status_code == 200  # a GET (a mail scanner's) ends nothing
    assert "That session has ended" in text(nobody.post_form(path, {}))
    assert stranger.get("/patient/").status_code == 302
    assert usual.get("/patient/").status_code == 200
    assert "already ended" in text(nobody.post_form(path, {}))  # the link works once


@pytest.mark.parametrize("agent,summary", [
    (CHROME, "Chrome on Linux"), (FIREFOX, "Firefox on Windows"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/18.1 Mobile/15E148 Safari/604.1", "Safari on iOS"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
     "Safari/537.36 Edg/131.0.0.0", "Edge on Windows"),
    ("curl/8.5.0", "Unknown browser"), ("", "Unknown browser"),
])
def test_the_browser_is_summarised_from_its_user_agent(agent, summary):
    assert describe_browser(agent) == summary

