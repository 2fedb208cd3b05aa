"""Signing in and out, session rotation and revocation, throttling of guessing."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from app.accounts.models import Role, User
from app.accounts.services import set_password
from app.extensions import db
from app.timeutil import utcnow
from tests.conftest import DEFAULT_PASSWORD
from tests.helpers import Client, text


def test_login_then_logout(client, create_user):
    doctor = create_user(Role.DOCTOR)
    response = client.sign_in(doctor.email.upper(), DEFAULT_PASSWORD)
    assert response.status_code == 303
    assert client.get("/doctor/").status_code == 200
    response = client.post_form("/logout", {})
    assert response.status_code == 303
    assert client.get("/doctor/").status_code == 302


def test_a_cookie_saved_before_sign_out_answers_as_signed_out(app, client, create_user):
    doctor = create_user(Role.DOCTOR)
    client.sign_in(doctor.email, DEFAULT_PASSWORD)
    saved = client.session_cookie()
    other_device = Client(app)  # the same user signed in elsewhere keeps their own session
    other_device.sign_in(doctor.email, DEFAULT_PASSWORD)
    assert client.post_form("/logout", {}).status_code == 303

    replay = Client(app)
    replay.http.set_cookie(app.config["SESSION_COOKIE_NAME"], saved)
    response = replay.get("/doctor/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert other_device.get("/doctor/").status_code == 200
    with app.app_context():
        from app.accounts.models import UserSession

        sessions = list(db.session.scalars(sa.select(UserSession).where(UserSession.user_id == doctor.id)
                                           .order_by(UserSession.id)))
        assert [s.ended_at is not None for s in sessions] == [True, False]
        assert all(len(s.token_hash) == 64 for s in sessions)


def test_logout_is_not_possible_with_get(client, create_user, login):
    login(create_user(Role.CLERK))
    assert client.get("/logout").status_code == 405
    assert client.get("/billing/").status_code == 200


@pytest.mark.parametrize("email,password", [
    ("clerk-known@example.com", "wrong password here"),
    ("nobody@example.com", DEFAULT_PASSWORD),
])
def test_login_failures_answer_one_generic_message(client, create_user, email, password):
    create_user(Role.CLERK, email="clerk-known@example.com")
    response = client.post_form("/login", {"email": email, "password": password})
    assert response.status_code == 422
    assert "Email or password is incorrect." in text(response)


def test_inactive_account_cannot_sign_in(app, client, create_user):
    user = create_user(Role.DOCTOR, active=False)
    response = client.sign_in(user.email, DEFAULT_PASSWORD)
    assert "Email or password is incorrect." in text(response)


def test_session_is_new_after_login(client, create_user):
    user = create_user(Role.ADMIN)
    token_before = client.csrf_token("/login")
    cookie_before = client.session_cookie()
    client.post_form("/login", {"email": user.email, "password": DEFAULT_PASSWORD, "csrf_token": token_before})
    assert client.session_cookie() != cookie_before
    token_after = client.csrf_token("/admin/")
    assert token_after != token_before
    # The token issued before sign-in is no longer accepted.
    response = client.post_form("/logout", {"csrf_token": token_before})
    assert response.status_code == 400


def test_password_change_revokes_existing_sessions(app, client, create_user, login):
    user = create_user(Role.CLERK)
    login(user)
    assert client.get("/billing/").status_code == 200
    with app.app_context():
        set_password(db.session.get(User, user.id), "a whole new passphrase")
        db.session.commit()
    assert client.get("/billing/").status_code == 302


def test_session_cookie_flags(client, create_user):
    user = create_user(Role.CLERK)
    response = client.sign_in(user.email, DEFAULT_PASSWORD)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Expires" in cookie  # lifetime-bound, not "remember me"


def test_next_parameter_only_leads_within_the_site(client, create_user):
    user = create_user(Role.CLERK)
    assert client.sign_in(user.email, DEFAULT_PASSWORD, next="/billing/").headers["Location"] == "/billing/"
    client.post_form("/logout", {})
    assert client.sign_in(user.email, DEFAULT_PASSWORD, next="//evil.example/x").headers["Location"] == "/"


def attempt(client: Client, email: str, password: str, address: str = "127.0.0.1"):
    return client.http.post("/login", data={"email": email, "password": password,
                                            "csrf_token": client.csrf_token()}, environ_base={"REMOTE_ADDR": address})


def test_failures_from_one_address_are_slowed_down_never_locked(app, create_patient):
    user = create_patient()
    client = Client(app)
    start = utcnow()
    with time_machine.travel(start, tick=False) as clock:
        for _ in range(app.config["HMS_LOGIN_FREE_FAILURES"]):
            assert attempt(client, user.email, "not the password").status_code == 422
        waiting = attempt(client, user.email, DEFAULT_PASSWORD)  # too soon: refused before the password is seen
        assert waiting.status_code == 429 and waiting.headers["Retry-After"] == "1"
        assert "Wait 1 second before trying again." in text(waiting)
        clock.shift(timedelta(seconds=1))
        assert attempt(client, user.email, "still not it").status_code == 422
        assert attempt(client, user.email, DEFAULT_PASSWORD).headers["Retry-After"] == "2"  # twice as long each time
        clock.shift(timedelta(seconds=2))
        signed_in = attempt(client, user.email, DEFAULT_PASSWORD)
        assert signed_in.status_code == 303 and signed_in.headers["Location"] == "/"  # the owner is in


def test_guesses_from_elsewhere_never_keep_the_owner_out(app, create_patient, create_user, monkeypatch):
    """Many addresses guessing one account: the right password alone no longer signs in, the owner is emailed a link
    and is in once they set a password through it; with a second factor, the code is the proof."""
    from app.accounts.models import PasswordToken
    from app.accounts.tokens import issue_password_token

    monkeypatch.setitem(app.config, "HMS_LOGIN_ACCOUNT_MAX_FAILURES", 6)
    doctor = create_user(Role.DOCTOR)  # has an authenticator
    for n in range(6):
        attempt(Client(app), doctor.email, "guess", address=f"10.2.0.{n}")
    to_code = attempt(Client(app), doctor.email, DEFAULT_PASSWORD, address="192.0.2.8")
    assert to_code.status_code == 303 and to_code.headers["Location"].startswith("/login/code")
    user = create_patient()
    for n in range(6):
        assert attempt(Client(app), user.email, "guess", address=f"10.1.0.{n}").status_code == 422
    owner = Client(app)
    response = attempt(owner, user.email, DEFAULT_PASSWORD, address="192.0.2.7")
    assert response.status_code == 403 and "We emailed you a link" in text(response)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(PasswordToken).where(
            PasswordToken.user_id == user.id, PasswordToken.purpose == "reset")) == 1
        link = issue_password_token(db.session.get(User, user.id), "reset")  # the emailed link's token, as sent
        db.session.commit()
    new_password = {"password": "a new long passphrase", "password_confirm": "a new long passphrase"}
    assert owner.post_form(f"/password/{link}", new_password).status_code == 303
    signed_in = attempt(owner, user.email, "a new long passphrase", address="192.0.2.7")
    assert signed_in.status_code == 303 and signed_in.headers["Location"] == "/"


def test_an_address_failing_across_accounts_is_refused_others_are_not(app, create_patient, monkeypatch):
    monkeypatch.setitem(app.config, "HMS_LOGIN_ADDRESS_MAX_FAILURES", 4)
    user = create_patient()
    client = Client(app)
    for n in range(4):
        attempt(client, f"guess{n}@example.com", "not the password")
    refused = attempt(client, user.email, DEFAULT_PASSWORD)
    assert refused.status_code == 429 and "from your network" in text(refused)
    assert attempt(Client(app), user.email, DEFAULT_PASSWORD, address="10.9.8.7").status_code == 303


def test_an_unknown_account_costs_a_password_check_too(app, client, monkeypatch):
    """The same work whether or not the account exists: a hash of the same hasher is checked for an unknown email."""
    from app.accounts import passwords, services

    checked: list[str] = []

    def spy(password_hash, password):
        checked.append(password_hash)
        return passwords.verify_password(password_hash, password)

    monkeypatch.setattr(services, "verify_password", spy)
    assert client.post_form("/login", {"email": "nobody@example.com", "password": "whatever it is"}).status_code == 422
    assert len(checked) == 1 and checked[0].startswith("$argon2id$") and not passwords.needs_rehash(checked[0])


def test_successful_login_clears_the_accounts_failures(app, client, create_user):
    user = create_user(Role.CLERK)
    for _ in range(3):
        client.post_form("/login", {"email": user.email, "password": "not the password"})
    client.sign_in(user.email, DEFAULT_PASSWORD)
    with app.app_context():
        from app.accounts.models import LoginFailure

        assert db.session.scalar(sa.select(sa.func.count()).select_from(LoginFailure)
                                 .where(LoginFailure.email == user.email)) == 0
