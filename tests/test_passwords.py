"""Single-use links to set a password: issuing, checking, using, "forgot password", and the email."""
from __future__ import annotations

import hashlib
import re
import threading
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from app.accounts.models import PasswordToken, PatientProfile, Role, User
from app.accounts.tokens import (TokenProblem, check_password_token, issue_password_token, request_password_reset,
                                 use_password_token)
from app.audit.chain import append, verify
from app.audit.models import AuditEntry
from app.events.models import OutboxEvent
from app.extensions import db
from app.notifications.models import Channel, DeliveryStatus, Notification
from app.notifications.services import install_default_templates, record_all_deliveries
from app.timeutil import format_datetime, utcnow
from devtools.mailbox import wait_for_messages
from tests.conftest import DEFAULT_PASSWORD
from tests.helpers import Client, text
from tests.services import wait_until

pytestmark = pytest.mark.clock  # the outcome depends on the clock: see `make test-clock`

NEW_PASSWORD = "a quiet river at dawn"


@pytest.fixture
def templates(app):
    with app.app_context():
        install_default_templates()
        db.session.commit()


def issue(app, user: User, purpose: str = "reset") -> str:
    return issue_with_event(app, user, purpose)[0]


def issue_with_event(app, user: User, purpose: str = "reset") -> tuple[str, dict]:
    """The raw token and its `user.password_link_issued` envelope as emitted, read inside the issuing
    transaction: once committed, the in-process relay publishes the event and strips the link from the
    outbox row (app/events/relay.py), so reading the row afterwards would race the relay."""
    with app.app_context():
        raw = issue_password_token(db.session.get(User, user.id), purpose)
        db.session.flush()
        envelope = db.session.scalars(sa.select(OutboxEvent).where(OutboxEvent.type == "user.password_link_issued")
                                      .order_by(OutboxEvent.seq.desc())).first().envelope
        db.session.commit()
        return raw, envelope


def token_row(app, raw: str) -> PasswordToken:
    with app.app_context():
        row = db.session.scalar(sa.select(PasswordToken).where(
            PasswordToken.token_hash == hashlib.sha256(raw.encode()).hexdigest()))
        db.session.expunge_all()
        return row


def tokens_of(app, user: User) -> list[PasswordToken]:
    with app.app_context():
        rows = list(db.session.scalars(sa.select(PasswordToken).where(PasswordToken.user_id == user.id)
                                       .order_by(PasswordToken.id)))
        db.session.expunge_all()
        return rows


def events(app, type_: str) -> list[dict]:
    with app.app_context():
        return [row.envelope for row in db.session.scalars(
            sa.select(OutboxEvent).where(OutboxEvent.type == type_).order_by(OutboxEvent.seq))]


def set_password_form(password: str = NEW_PASSWORD, again: str | None = None) -> dict:
    return {"password": password, "password_confirm": password if again is None else again}


def sign_in(app, user: User, password: str) -> int:
    return Client(app).sign_in(user.email, password).status_code


def main_text(response) -> str:
    """The page's <main>, which holds no per-session token."""
    return re.search(r"<main.*?</main>", text(response), re.S).group(0)


# --- the token ------------------------------------------------------------------------------------

def test_only_the_hash_of_the_token_is_stored(app, create_user):
    user = create_user(Role.DOCTOR)
    raw = issue(app, user, "set_password")
    [row] = tokens_of(app, user)
    assert row.token_hash == hashlib.sha256(raw.encode()).hexdigest() != raw
    assert row.purpose == "set_password" and row.used_at is None
    assert timedelta(hours=47, minutes=59) < row.expires_at - row.created_at <= timedelta(hours=48)
    with app.app_context(), db.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT * FROM password_tokens").all()
    assert raw not in repr(stored)


def test_the_link_lifetime_comes_from_the_configuration(app, create_user):
    user = create_user(Role.CLERK)
    app.config["HMS_PASSWORD_LINK_HOURS"] = 2
    try:
        raw = issue(app, user)
    finally:
        del app.config["HMS_PASSWORD_LINK_HOURS"]
    row = token_row(app, raw)
    assert row.expires_at - row.created_at == timedelta(hours=2)


def test_an_unknown_purpose_is_refused(app, create_user):
    user = create_user(Role.CLERK)
    with app.app_context(), pytest.raises(ValueError, match="purpose"):
        issue_password_token(db.session.get(User, user.id), "login")


def test_a_new_link_replaces_the_earlier_unused_one(app, client, create_user):
    user = create_user(Role.CLERK)
    first = issue(app, user)
    second = issue(app, user)
    with app.app_context():
        with pytest.raises(TokenProblem) as problem:
            check_password_token(first)
        assert (problem.value.reason, problem.value.email) == ("expired", user.email)
        assert check_password_token(second).user_id == user.id
    assert client.get(f"/password/{first}").status_code == 410
    assert client.get(f"/password/{second}").status_code == 200


def test_an_expired_link_says_so_and_offers_a_new_one_for_the_same_email(app, client, create_user):
    user = create_user(Role.DOCTOR, email="expired.link@example.com")
    raw = issue(app, user)
    with app.app_context():
        db.session.execute(sa.update(PasswordToken).values(expires_at=utcnow() - timedelta(minutes=1)))
        db.session.commit()
    response = client.get(f"/password/{raw}")
    assert response.status_code == 410
    page = text(response)
    assert "This link has expired" in page and 'data-reason="expired"' in page
    assert 'href="/password/forgot?email=expired.link@example.com"' in page
    response = client.post_form(f"/password/{raw}", set_password_form())
    assert response.status_code == 410 and token_row(app, raw).used_at is None
    assert 'value="expired.link@example.com"' in text(client.get("/password/forgot?email=expired.link%40example.com"))


def test_a_used_link_says_it_was_already_used(app, client, create_user):
    user = create_user(Role.CLERK)
    raw = issue(app, user)
    assert client.post_form(f"/password/{raw}", set_password_form()).status_code == 303
    for response in (client.get(f"/password/{raw}"),
                     client.post_form(f"/password/{raw}", set_password_form("another fine passphrase"))):
        assert response.status_code == 410
        assert "This link has already been used" in text(response)
        assert f'href="/password/forgot?email={user.email}"' in text(response)
    assert sign_in(app, user, "another fine passphrase") == 422
    assert sign_in(app, user, NEW_PASSWORD) == 303


def test_an_unknown_link_is_not_valid(client):
    response = client.get(f"/password/{'x' * 43}")
    assert response.status_code == 404
    page = text(response)
    assert "This link is not valid" in page and 'href="/password/forgot"' in page


def test_the_link_of_a_deactivated_account_is_not_valid(app, client, create_user):
    user = create_user(Role.DOCTOR)
    raw = issue(app, user, "set_password")
    with app.app_context():
        db.session.get(User, user.id).active = False
        db.session.commit()
    response = client.get(f"/password/{raw}")
    assert response.status_code == 404 and "This link is not valid" in text(response)


# --- setting the password -------------------------------------------------------------------------

def test_setting_the_password_through_the_link(app, client, create_user):
    user = create_user(Role.DOCTOR)
    raw = issue(app, user, "set_password")
    page = text(client.get(f"/password/{raw}"))
    assert "Set up your account" in page and "New password again" in page
    response = client.post_form(f"/password/{raw}", set_password_form())
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert "Your password is set. Sign in with it." in text(client.get("/login"))
    assert token_row(app, raw).used_at is not None
    assert sign_in(app, user, DEFAULT_PASSWORD) == 422
    assert sign_in(app, user, NEW_PASSWORD) == 303
    [event] = events(app, "user.password_set")
    assert event["actor"] == {"id": user.id, "role": "doctor"} and event["data"] == {"purpose": "set_password"}
    assert event["patient_id"] is None


def test_setting_the_password_revokes_the_users_sessions(app, create_user, login):
    user = create_user(Role.CLERK)
    signed_in = login(user)
    assert signed_in.get("/billing/").status_code == 200
    raw = issue(app, user)
    assert Client(app).post_form(f"/password/{raw}", set_password_form()).status_code == 303
    assert signed_in.get("/billing/").status_code == 302


def test_using_a_link_stops_the_users_other_pending_links(app, create_user):
    user = create_user(Role.CLERK)
    with app.app_context():
        account = db.session.get(User, user.id)
        first = issue_password_token(account, "set_password")
        db.session.add(PasswordToken(user_id=user.id, token_hash="0" * 64, purpose="reset",
                                     expires_at=utcnow() + timedelta(hours=1)))
        db.session.commit()
        use_password_token(first, NEW_PASSWORD)
        db.session.commit()
        other = db.session.scalar(sa.select(PasswordToken).where(PasswordToken.token_hash == "0" * 64))
        assert other.used_at is None and other.expires_at <= utcnow()


@pytest.mark.parametrize("password,again,message", [
    ("password", "password", "This password is one of the most common ones; choose another."),
    ("short", "short", "Use at least 8 characters."),
    (NEW_PASSWORD, "something else entirely", "The two passwords do not match."),
])
def test_a_refused_password_is_named_beside_the_field_and_the_link_stays_usable(app, client, create_user,
                                                                                 password, again, message):
    user = create_user(Role.CLERK)
    raw = issue(app, user)
    response = client.post_form(f"/password/{raw}", set_password_form(password, again))
    assert response.status_code == 422
    field = "password_confirm" if "match" in message else "password"
    assert re.search(rf'id="{field}-error">{re.escape(message)}</div>', text(response))
    assert token_row(app, raw).used_at is None
    assert sign_in(app, user, DEFAULT_PASSWORD) == 303
    assert client.post_form(f"/password/{raw}", set_password_form()).status_code == 303


def test_the_service_refuses_a_weak_password_too(app, create_user):
    from app.accounts.services import AccountError

    user = create_user(Role.CLERK)
    raw = issue(app, user)
    with app.app_context(), pytest.raises(AccountError) as error:
        use_password_token(raw, "password")
    assert error.value.field == "password"
    assert token_row(app, raw).used_at is None


def test_a_link_form_sent_without_a_csrf_token_is_refused(app, client, create_user):
    user = create_user(Role.CLERK)
    raw = issue(app, user)
    client.get(f"/password/{raw}")
    assert client.post_form(f"/password/{raw}", set_password_form(), csrf=False).status_code == 400
    assert token_row(app, raw).used_at is None


def concurrently(app, count: int, work) -> list:
    """Run `work()` in `count` threads started together, each in its own app context and transaction."""
    barrier, results = threading.Barrier(count), []

    def run():
        with app.app_context():
            barrier.wait()
            try:
                results.append(work())
                db.session.commit()
            except Exception as error:  # noqa: BLE001 - the test looks at what each thread met
                db.session.rollback()
                results.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_a_link_used_twice_at_once_sets_the_password_once(app, create_user):
    user = create_user(Role.CLERK)
    raw = issue(app, user)
    results = concurrently(app, 2, lambda: use_password_token(raw, NEW_PASSWORD).id)
    assert sorted(map(type, results), key=str) == sorted([int, TokenProblem], key=str)
    assert next(r for r in results if isinstance(r, TokenProblem)).reason == "used"
    assert len(events(app, "user.password_set")) == 1


# --- forgot password ------------------------------------------------------------------------------

def test_the_login_page_links_to_forgot_password(client):
    assert 'href="/password/forgot">Forgot your password?</a>' in text(client.get("/login"))


def test_forgot_password_answers_the_same_whether_or_not_the_account_exists(app, create_user):
    user = create_user(Role.DOCTOR, email="known.person@example.com")
    known = Client(app).post_form("/password/forgot", {"email": "Known.Person@example.com"})
    unknown = Client(app).post_form("/password/forgot", {"email": "nobody.here@example.com"})
    assert known.status_code == unknown.status_code == 200
    assert main_text(known) == main_text(unknown)
    assert "If an account exists for that address, we have sent a link" in main_text(known)
    [row] = tokens_of(app, user)
    assert row.purpose == "reset"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(PasswordToken)) == 1


def test_an_invalid_email_is_named_beside_the_field(client):
    response = client.post_form("/password/forgot", {"email": "not an email"})
    assert response.status_code == 422
    assert 'id="email-error">Enter a valid email address, like name@example.com.</div>' in text(response)


def test_an_inactive_account_gets_no_link(app, client, create_user):
    user = create_user(Role.CLERK, active=False)
    response = client.post_form("/password/forgot", {"email": user.email})
    assert response.status_code == 200 and "we have sent a link" in text(response)
    assert tokens_of(app, user) == []


def test_at_most_three_reset_links_an_hour(app, client, create_user):
    user = create_user(Role.PATIENT)
    answers = {main_text(client.post_form("/password/forgot", {"email": user.email})) for _ in range(5)}
    assert len(answers) == 1
    assert len(tokens_of(app, user)) == 3
    assert len(events(app, "user.password_link_issued")) == 3
    with app.app_context():
        db.session.execute(sa.update(PasswordToken).values(created_at=utcnow() - timedelta(minutes=61)))
        db.session.commit()
    client.post_form("/password/forgot", {"email": user.email})
    assert len(tokens_of(app, user)) == 4


def test_simultaneous_requests_still_send_at_most_three_links(app, create_user):
    user = create_user(Role.CLERK)
    concurrently(app, 6, lambda: request_password_reset(user.email))
    assert len(tokens_of(app, user)) == 3


def test_a_staff_set_password_link_does_not_count_towards_the_reset_limit(app, create_user):
    user = create_user(Role.DOCTOR)
    with app.app_context():
        for _ in range(3):
            issue_password_token(db.session.get(User, user.id), "set_password")
        request_password_reset(user.email)
        db.session.commit()
    assert [t.purpose for t in tokens_of(app, user)] == ["set_password"] * 3 + ["reset"]


# --- the event, the audit trail and the email -----------------------------------------------------

def test_the_link_event_is_in_the_outbox_and_the_audit_row_leaves_the_link_out(app, create_patient):
    patient = create_patient()
    raw, event = issue_with_event(app, patient)
    assert len(events(app, "user.password_link_issued")) == 1
    row = token_row(app, raw)
    assert event["aggregate_type"] == "user" and event["aggregate_id"] == str(patient.id)
    assert event["patient_id"] == patient.id
    assert event["data"] == {"purpose": "reset", "link": f"http://127.0.0.1:5000/password/{raw}",
                             "expires_at": row.expires_at.isoformat()}
    with app.app_context():
        entry = append(event)
        db.session.commit()
        assert entry.details == {"purpose": "reset", "expires_at": row.expires_at.isoformat()}
        assert raw not in repr(db.session.execute(sa.text("SELECT * FROM audit_log")).all())
        assert verify().intact


@pytest.mark.parametrize("role", [Role.DOCTOR, Role.CLERK, Role.ADMIN, Role.PATIENT])
def test_every_role_gets_the_link_by_email_only(app, templates, create_user, role):
    user = create_user(role)
    with app.app_context():
        if role is Role.PATIENT:  # the link is sent whatever the patient chose: it is the way back in
            profile = db.session.get(PatientProfile, user.id)
            profile.notify_email, profile.notify_sms = False, True
        db.session.commit()
    raw, event = issue_with_event(app, user)
    assert len(events(app, "user.password_link_issued")) == 1
    with app.app_context():
        expires = format_datetime(token_row(app, raw).expires_at)
        [email] = record_all_deliveries([event])
        db.session.commit()
        assert email.channel is Channel.EMAIL and email.status is DeliveryStatus.PENDING
        assert email.recipient == user.email and email.subject == "Your HMS Clinic password link"
        link = f"http://127.0.0.1:5000/password/{raw}"
        assert f"Use this link to reset your password at HMS Clinic:\n\n{link}\n" in email.body_text
        assert f"until {expires}." in email.body_text
        assert f'<a href="{link}">{link}</a>' in email.body_html
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Notification)
                                 .where(Notification.channel == Channel.SMS)) == 0


def test_a_new_account_link_says_set_up_your_account(app, templates, create_user):
    user = create_user(Role.DOCTOR)
    _, event = issue_with_event(app, user, "set_password")
    with app.app_context():
        [email] = record_all_deliveries([event])
        assert "Use this link to set up your account at HMS Clinic" in email.body_text


def test_forgot_password_end_to_end_with_the_worker_and_the_mailbox(app, worker, templates, create_user, mailbox):
    address = f"reset-{uuid.uuid4().hex[:12]}@example.com"
    user = create_user(Role.DOCTOR, email=address)
    client = Client(app)
    assert client.post_form("/password/forgot", {"email": address}).status_code == 200
    [message] = wait_for_messages(mailbox, 1, timeout=30, predicate=lambda m: m["To"] == address)
    assert message["Subject"] == "Your HMS Clinic password link"
    body = message.get_body(("plain",)).get_content()
    link = re.search(r"https?://\S+/password/\S+", body).group(0)
    path = urlsplit(link).path
    assert "Choose a new password" in text(client.get(path))
    assert client.post_form(path, set_password_form()).status_code == 303
    assert sign_in(app, user, NEW_PASSWORD) == 303
    assert sign_in(app, user, DEFAULT_PASSWORD) == 422
    assert client.get(path).status_code == 410
    [sent] = wait_until(lambda: delivered(app, address), timeout=10, message="the delivery record")
    assert sent.provider_id == message["Message-ID"]
    [audited] = wait_until(lambda: audit_rows(app, user, "user.password_link_issued"), timeout=30,
                           message="the audit row")
    assert "link" not in audited.details and audited.details["purpose"] == "reset"


def delivered(app, address: str) -> list[Notification]:
    with app.app_context():
        rows = list(db.session.scalars(sa.select(Notification).where(Notification.recipient == address,
                                                                     Notification.status == DeliveryStatus.SENT)))
        db.session.expunge_all()
        return rows


def audit_rows(app, user: User, action: str) -> list[AuditEntry]:
    with app.app_context():
        rows = list(db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action,
                                                                   AuditEntry.entity_id == str(user.id))))
        db.session.expunge_all()
        return rows
