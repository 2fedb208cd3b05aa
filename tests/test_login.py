"""Signing in and out, session rotation and revocation, throttling of guessing."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.accounts.models import Role, User
from app.accounts.services import set_password
from app.extensions import db
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


def test_more_than_ten_failures_for_an_account_lock_it_out_for_a_while(app, client, create_user):
    user = create_user(Role.CLERK)
    for _ in range(10):
        response = client.post_form("/login", {"email": user.email, "password": "not the password"})
        assert response.status_code == 422
    response = client.sign_in(user.email, DEFAULT_PASSWORD)
    assert response.status_code == 429
    assert "Too many failed sign-in attempts. Try again in 15 minutes." in text(response)


def test_failures_from_one_address_across_accounts_are_limited(app, create_user):
    user = create_user(Role.CLERK)
    client = Client(app)
    for n in range(10):
        client.post_form("/login", {"email": f"guess{n}@example.com", "password": "not the password"})
    response = client.sign_in(user.email, DEFAULT_PASSWORD)
    assert response.status_code == 429
    other_address = Client(app)
    response = other_address.http.post("/login", data={
        "email": user.email, "password": DEFAULT_PASSWORD, "csrf_token": other_address.csrf_token()},
        environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert response.status_code == 303


def test_successful_login_clears_the_accounts_failures(app, client, create_user):
    user = create_user(Role.CLERK)
    for _ in range(3):
        client.post_form("/login", {"email": user.email, "password": "not the password"})
    client.sign_in(user.email, DEFAULT_PASSWORD)
    with app.app_context():
        from app.accounts.models import LoginFailure

        assert db.session.scalar(sa.select(sa.func.count()).select_from(LoginFailure)
                                 .where(LoginFailure.email == user.email)) == 0
