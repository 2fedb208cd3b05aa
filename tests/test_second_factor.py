"""Two-factor sign-in: RFC 6238 codes, the second step of signing in, recovery codes, the per-role requirement,
and an admin's reset."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
import time_machine

from app.accounts import totp
from app.accounts.models import LoginFailure, RecoveryCode, Role, TotpFactor
from app.events.models import OutboxEvent
from app.extensions import db
from tests.conftest import DEFAULT_PASSWORD
from tests.helpers import TEST_TOTP_SECRET, Client, authenticator_code, text

# RFC 6238 appendix B: the SHA-1 key "12345678901234567890" and its 8-digit codes at these Unix times.
RFC_6238_SHA1 = [(59, "94287082"), (1111111109, "07081804"), (1111111111, "14050471"), (1234567890, "89005924"),
                 (2000000000, "69279037"), (20000000000, "65353130")]


@pytest.mark.parametrize("unix_time, expected", RFC_6238_SHA1)
def test_codes_match_the_rfc_6238_test_vectors(unix_time, expected):
    assert totp.hotp(b"12345678901234567890", unix_time // 30, digits=8) == expected


def test_a_code_is_accepted_one_step_either_side_and_no_further():
    moment = datetime(2027, 3, 1, 12, 0, 10, tzinfo=timezone.utc)
    now = totp.step_at(moment)
    for offset in (-1, 0, 1):
        assert totp.matching_step(TEST_TOTP_SECRET, totp.code_at(TEST_TOTP_SECRET, now + offset), moment) == now + offset
    for offset in (-2, 2):
        assert totp.matching_step(TEST_TOTP_SECRET, totp.code_at(TEST_TOTP_SECRET, now + offset), moment) is None
    assert totp.matching_step(TEST_TOTP_SECRET, "12345a", moment) is None


def test_the_provisioning_uri_names_the_clinic_and_the_account():
    uri = totp.provisioning_uri("ABCDEFGH", "ana@example.com", "HMS Clinic")
    assert uri == ("otpauth://totp/HMS%20Clinic:ana@example.com?secret=ABCDEFGH&issuer=HMS+Clinic&algorithm=SHA1"
                   "&digits=6&period=30")


def _events(app, kind: str) -> list[dict]:
    with app.app_context():
        return [e.envelope for e in db.session.scalars(sa.select(OutboxEvent).where(OutboxEvent.type == kind))]


def test_after_the_password_no_page_opens_until_the_code_is_given(app, client, create_user):
    doctor = create_user(Role.DOCTOR)
    response = client.post_form("/login?next=/doctor/appointments", {"email": doctor.email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 303 and response.headers["Location"] == "/login/code"
    for url in ("/doctor/", "/account/two-factor", "/account/apps", "/doctor/appointments"):
        assert client.get(url).headers["Location"].startswith("/login?next="), url
    assert _events(app, "user.login_succeeded") == []
    response = client.post_form("/login/code", {"code": authenticator_code(doctor.email)})
    assert response.status_code == 303 and response.headers["Location"] == "/doctor/appointments"
    assert client.get("/doctor/").status_code == 200
    assert [e["data"]["method"] for e in _events(app, "user.login_succeeded")] == ["totp"]


def test_a_replayed_code_is_refused_and_wrong_codes_count_towards_the_throttle(app, client, create_user):
    clerk = create_user(Role.CLERK)
    code = authenticator_code(clerk.email)
    client.post_form("/login", {"email": clerk.email, "password": DEFAULT_PASSWORD})
    assert client.post_form("/login/code", {"code": code}).status_code == 303
    other = Client(app)  # someone who saw the code and knows the password
    other.post_form("/login", {"email": clerk.email, "password": DEFAULT_PASSWORD})
    replay = other.post_form("/login/code", {"code": code})
    assert replay.status_code == 422 and "That code is not right" in text(replay)
    assert other.get("/billing/").status_code == 302
    wrong = other.post_form("/login/code", {"code": "000000" if code != "000000" else "111111"})
    assert wrong.status_code == 422
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(LoginFailure)
                                 .where(LoginFailure.email == clerk.email)) == 2
    assert [e["data"]["reason"] for e in _events(app, "user.second_factor_failed")] == ["replayed code", "wrong code"]


def test_wrong_codes_slow_the_second_step_down_like_wrong_passwords(app, client, create_user):
    admin = create_user(Role.ADMIN)
    with time_machine.travel(datetime(2027, 5, 3, 10, 0, 5, tzinfo=timezone.utc), tick=False):
        client.post_form("/login", {"email": admin.email, "password": DEFAULT_PASSWORD})
        right = totp.code_at(TEST_TOTP_SECRET, totp.step_at(datetime.now(timezone.utc)))
        wrong = "999999" if right != "999999" else "888888"
        for _ in range(app.config["HMS_LOGIN_FREE_FAILURES"]):
            assert client.post_form("/login/code", {"code": wrong}).status_code == 422
        # the next try waits, even with the right code: it is refused before the code is looked at
        assert client.post_form("/login/code", {"code": right}).status_code == 429
        # and a correct password does not clear the count while the second factor is outstanding
        assert client.post_form("/login", {"email": admin.email, "password": DEFAULT_PASSWORD}).status_code == 429
        assert client.get("/admin/").status_code == 302


def test_a_recovery_code_signs_in_once(app, client, create_user):
    doctor = create_user(Role.DOCTOR)
    with app.app_context():
        from app.accounts.models import User
        from app.accounts.second_factor import issue_recovery_codes

        codes = issue_recovery_codes(db.session.get(User, doctor.id))
        db.session.commit()
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(re.fullmatch(r"[A-Z2-7]{5}(-[A-Z2-7]{5}){3}-[A-Z2-7]{6}", code) for code in codes)
    client.post_form("/login", {"email": doctor.email, "password": DEFAULT_PASSWORD})
    response = client.post_form("/login/code", {"code": codes[3].lower().replace("-", " ")})
    assert response.status_code == 303
    assert "9 left" in text(client.get("/doctor/"))
    again = Client(app)
    again.post_form("/login", {"email": doctor.email, "password": DEFAULT_PASSWORD})
    assert again.post_form("/login/code", {"code": codes[3]}).status_code == 422
    with app.app_context():
        stored = set(db.session.scalars(sa.select(RecoveryCode.code_hash)))
    assert stored and not stored & {code.replace("-", "") for code in codes}  # only digests are kept


def test_staff_without_a_factor_must_set_one_up_and_see_their_recovery_codes_once(app, client, create_user):
    clerk = create_user(Role.CLERK, authenticator=False)
    response = client.post_form("/login", {"email": clerk.email, "password": DEFAULT_PASSWORD})
    assert response.headers["Location"] == "/login/setup"
    assert client.get("/billing/").status_code == 302
    page = text(client.get("/login/setup"))
    assert "<svg" in page and "<script" not in page.split("<main", 1)[-1].split("</main>")[0]
    secret = re.search(r'data-secret="([A-Z2-7]+)"', page).group(1)
    assert client.post_form("/login/setup", {"code": "123"}).status_code == 422
    step = totp.step_at(datetime.now(timezone.utc))
    response = client.post_form("/login/setup", {"code": totp.code_at(secret, step)})
    assert response.status_code == 200
    codes = re.findall(r"[A-Z2-7]{5}-[A-Z2-7]{5}-[A-Z2-7]{5}-[A-Z2-7]{5}-[A-Z2-7]{6}", text(response))
    assert len(codes) == 10
    assert client.get("/billing/").status_code == 200
    assert "10 unused recovery codes" in text(client.get("/account/two-factor"))
    with app.app_context():
        assert db.session.get(TotpFactor, clerk.id).secret == secret


def test_only_the_configured_roles_must_have_a_factor_and_patients_may_opt_in(app, client, create_patient, login):
    patient = create_patient()
    login(patient)  # no factor, not required: signed in with the password
    assert client.get("/account/two-factor").status_code == 200
    page = text(client.get("/account/two-factor/setup"))
    secret = re.search(r'data-secret="([A-Z2-7]+)"', page).group(1)
    now = totp.step_at(datetime.now(timezone.utc))
    assert client.post_form("/account/two-factor/setup", {"code": totp.code_at(secret, now)}).status_code == 200
    client.post_form("/logout", {})
    response = client.post_form("/login", {"email": patient.email, "password": DEFAULT_PASSWORD})
    assert response.headers["Location"] == "/login/code"
    assert client.post_form("/login/code", {"code": authenticator_code(patient.email)}).status_code == 303
    # a patient may turn it off again (with a code); staff may not
    response = client.post_form("/account/two-factor/remove", {"code": authenticator_code(patient.email)})
    assert response.status_code == 303
    with app.app_context():
        assert db.session.get(TotpFactor, patient.id) is None
    app.config["HMS_2FA_REQUIRED_ROLES"] = (Role.PATIENT,)
    try:
        other = Client(app)
        response = other.post_form("/login", {"email": patient.email, "password": DEFAULT_PASSWORD})
        assert response.headers["Location"] == "/login/setup"
    finally:
        app.config["HMS_2FA_REQUIRED_ROLES"] = (Role.DOCTOR, Role.CLERK, Role.ADMIN)


def test_staff_cannot_turn_their_factor_off(client, create_user, login):
    doctor = create_user(Role.DOCTOR)
    login(doctor)
    response = client.post_form("/account/two-factor/remove", {"code": "123456"})
    assert response.status_code == 409 and "cannot be turned off" in text(response)


def test_an_admin_resets_a_factor_the_person_is_signed_out_emailed_and_sets_up_again(
        app, client, create_user, login, default_templates, worker, mailbox):
    from tests.services import wait_until

    doctor = create_user(Role.DOCTOR, email="lost.phone@example.com", full_name="Dr. Lost Phone")
    doctors_browser = Client(app)
    assert doctors_browser.sign_in(doctor.email, DEFAULT_PASSWORD).status_code == 303
    login(create_user(Role.ADMIN))
    response = client.post_form(f"/admin/users/{doctor.id}/second-factor/reset", {"next": "/admin/staff"})
    assert response.status_code == 303 and response.headers["Location"] == "/admin/staff"
    assert "second factor is reset" in text(client.get("/admin/staff"))
    with app.app_context():
        assert db.session.get(TotpFactor, doctor.id) is None
        assert db.session.scalar(sa.select(sa.func.count()).select_from(RecoveryCode)) == 0
    reset = _events(app, "user.second_factor_reset")
    assert len(reset) == 1 and reset[0]["aggregate_id"] == str(doctor.id) and reset[0]["actor"]["role"] == "admin"
    wait_until(lambda: any("lost.phone@example.com" in p.read_text() for p in mailbox.glob("*.eml")),
               message="the reset notice")
    mail = next(p.read_text() for p in mailbox.glob("*.eml") if "lost.phone@example.com" in p.read_text())
    assert "two-factor sign-in was reset" in mail
    fresh = Client(app)
    response = fresh.post_form("/login", {"email": doctor.email, "password": DEFAULT_PASSWORD})
    assert response.headers["Location"] == "/login/setup"
    assert doctors_browser.get("/doctor/").status_code == 302  # signed out everywhere


def test_only_admins_reset_factors(app, client, create_user, login):
    doctor = create_user(Role.DOCTOR)
    login(create_user(Role.CLERK))
    assert client.post_form(f"/admin/users/{doctor.id}/second-factor/reset", {}).status_code == 403
    with app.app_context():
        assert db.session.get(TotpFactor, doctor.id) is not None


def test_new_recovery_codes_need_a_code_and_replace_the_old_ones(app, client, create_user, login):
    doctor = create_user(Role.DOCTOR)
    login(doctor)
    assert client.post_form("/account/two-factor/recovery-codes", {"code": "12345678"}).status_code == 422
    first = re.findall(r"[A-Z2-7]{5}(?:-[A-Z2-7]{5}){3}-[A-Z2-7]{6}", text(client.post_form(
        "/account/two-factor/recovery-codes", {"code": authenticator_code(doctor.email)})))
    second = re.findall(r"[A-Z2-7]{5}(?:-[A-Z2-7]{5}){3}-[A-Z2-7]{6}", text(client.post_form(
        "/account/two-factor/recovery-codes", {"code": first[0]})))  # a recovery code proves the factor too
    assert len(first) == len(second) == 10 and not set(first) & set(second)
    other = Client(app)
    other.post_form("/login", {"email": doctor.email, "password": DEFAULT_PASSWORD})
    assert other.post_form("/login/code", {"code": first[1]}).status_code == 422  # replaced
    assert other.post_form("/login/code", {"code": second[1]}).status_code == 303


def test_the_second_step_must_follow_the_password_within_ten_minutes(app, client, create_user):
    admin = create_user(Role.ADMIN)
    start = datetime(2027, 6, 1, 9, 0, tzinfo=timezone.utc)
    with time_machine.travel(start, tick=False):
        client.post_form("/login", {"email": admin.email, "password": DEFAULT_PASSWORD})
    with time_machine.travel(start.replace(minute=10, second=30), tick=False):
        response = client.post_form("/login/code", {"code": authenticator_code(admin.email)})
        assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert client.get("/admin/").status_code == 302


def test_moving_to_a_new_phone_needs_a_code_of_the_old_one(app, client, create_user, login):
    clerk = create_user(Role.CLERK)
    login(clerk)
    secret = re.search(r'data-secret="([A-Z2-7]+)"', text(client.get("/account/two-factor/setup"))).group(1)
    new_code = totp.code_at(secret, totp.step_at(datetime.now(timezone.utc)))
    refused = client.post_form("/account/two-factor/setup", {"code": new_code, "current_code": "12345678"})
    assert refused.status_code == 422 and 'id="current_code-error"' in text(refused)
    with app.app_context():
        assert db.session.get(TotpFactor, clerk.id).secret == TEST_TOTP_SECRET
    moved = client.post_form("/account/two-factor/setup",
                             {"code": new_code, "current_code": authenticator_code(clerk.email)})
    assert moved.status_code == 200 and "Your recovery codes" in text(moved)
    with app.app_context():
        assert db.session.get(TotpFactor, clerk.id).secret == secret
