"""A visitor signs up as a patient; bad input is answered beside the field and saves nothing."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa
import time_machine

from app.accounts.models import PatientProfile, Role, Sex, User
from app.extensions import db
from app.timeutil import utcnow
from tests.helpers import Client, text

pytestmark = pytest.mark.clock  # the outcome depends on the clock: see `make test-clock`

VALID = {
    "full_name": "Ada Lovelace",
    "email": "Ada@Example.com",
    "password": "analytical engine 1843",
    "password_confirm": "analytical engine 1843",
    "date_of_birth": "1985-12-10",
    "sex": "female",
    "phone": "(202) 555-0143",
    "address": "12 St James's Square\nLondon",
    "emergency_contact_name": "Charles Babbage",
    "emergency_contact_phone": "+44 20 7946 0958",
    "insurance_provider": "",
    "insurance_policy_number": "",
}


def users_count(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(User))


def test_signup_creates_the_patient_who_then_signs_in(app, client):
    response = client.post_form("/signup", VALID)
    assert response.status_code == 200 and "Check your email" in text(response)
    assert client.get("/patient/").status_code == 302  # not signed in: the same answer as for a taken address
    with app.app_context():
        user = db.session.scalar(sa.select(User))
        assert user.email == "ada@example.com"
        assert user.role is Role.PATIENT
        assert user.phone == "+12025550143"
        assert user.password_hash.startswith("$argon2id$")
        profile = db.session.get(PatientProfile, user.id)
        assert profile.date_of_birth == date(1985, 12, 10)
        assert profile.emergency_contact_phone == "+442079460958"
        assert profile.insurance_provider is None
    assert 'value="ada@example.com"' in text(client.get("/login?email=ada%40example.com"))
    signed_in = client.post_form("/login", {"email": VALID["email"], "password": VALID["password"]})
    assert signed_in.status_code == 303
    assert "Hello, Ada Lovelace" in text(client.get("/patient/"))


def test_signup_with_insurance_keeps_it(app, client):
    client.post_form("/signup", VALID | {"insurance_provider": "Acme Health", "insurance_policy_number": "P-1"})
    with app.app_context():
        profile = db.session.scalar(sa.select(PatientProfile))
        assert (profile.insurance_provider, profile.insurance_policy_number) == ("Acme Health", "P-1")


def test_argon2_defaults_are_rfc_9106s_and_production_refuses_weaker(monkeypatch):
    from argon2 import PasswordHasher, extract_parameters

    from app.accounts.passwords import RFC_9106, argon2_parameters, hash_password

    assert extract_parameters(hash_password("some long password")).type.name == "ID"
    for name in ("HMS_ARGON2_TIME_COST", "HMS_ARGON2_MEMORY_KIB", "HMS_ARGON2_PARALLELISM"):
        monkeypatch.delenv(name, raising=False)
    assert argon2_parameters() == {"time_cost": 3, "memory_cost": 65536, "parallelism": 4} == RFC_9106
    params = extract_parameters(PasswordHasher(**argon2_parameters()).hash("some long password"))
    assert (params.type.name, params.time_cost, params.memory_cost, params.parallelism) == ("ID", 3, 65536, 4)
    monkeypatch.setenv("HMS_ENV", "production")
    monkeypatch.setenv("HMS_ARGON2_MEMORY_KIB", "1024")
    with pytest.raises(RuntimeError, match="RFC 9106"):
        argon2_parameters()


TOO_LONG = "x" * 10_000
future = (date.today() + timedelta(days=2)).isoformat()


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"email": "not-an-email"}, "email", "Enter a valid email address"),
    ({"email": ""}, "email", "Enter your email address"),
    ({"date_of_birth": future}, "date_of_birth", "cannot be in the future"),
    ({"date_of_birth": "1899-12-31"}, "date_of_birth", "after 1900"),
    ({"date_of_birth": "31/12/1990"}, "date_of_birth", "Not a valid date"),
    ({"phone": "12345"}, "phone", "Enter a valid phone number"),
    ({"phone": "call me maybe"}, "phone", "Enter a valid phone number"),
    ({"emergency_contact_phone": "555"}, "emergency_contact_phone", "Enter a valid phone number"),
    ({"password_confirm": "something else entirely"}, "password_confirm", "do not match"),
    ({"password": "short", "password_confirm": "short"}, "password", "at least 8 characters"),
    ({"password": "p" * 129, "password_confirm": "p" * 129}, "password", "at most 128 characters"),
    ({"password": "password1", "password_confirm": "password1"}, "password", "most common"),
    ({"password": "Qwertyuiop", "password_confirm": "Qwertyuiop"}, "password", "most common"),
    ({"sex": "robot"}, "sex", "Not a valid choice"),
    ({"sex": ""}, "sex", "Enter your sex"),
    ({"full_name": TOO_LONG}, "full_name", "at most 120 characters"),
    ({"address": TOO_LONG}, "address", "at most 500 characters"),
    ({"email": TOO_LONG + "@example.com"}, "email", "at most 254 characters"),
    ({"phone": TOO_LONG}, "phone", "at most 32 characters"),
    ({"emergency_contact_name": TOO_LONG}, "emergency_contact_name", "at most 120 characters"),
    ({"insurance_provider": TOO_LONG}, "insurance_provider", "at most 120 characters"),
    ({"insurance_policy_number": TOO_LONG, "insurance_provider": "Acme"}, "insurance_policy_number", "at most 64"),
    ({"insurance_policy_number": "P-1"}, "insurance_policy_number", "Enter the insurance provider"),
    ({"password": TOO_LONG, "password_confirm": TOO_LONG}, "password", "at most 128 characters"),
])
def test_signup_refuses_bad_input_beside_the_field(app, client, changes, field, message):
    response = client.post_form("/signup", VALID | changes)
    assert response.status_code == 422
    html = text(response)
    error_block = html.split(f'id="{field}-error"', 1)
    assert len(error_block) == 2, f"no error shown for {field}"
    assert message in error_block[1].split("</div>", 1)[0]
    assert users_count(app) == 0


def test_an_email_already_used_gets_the_same_answer_and_its_owner_an_email(app, client, create_patient):
    """Sign-up never tells whether an address has an account (whatever its case): the same page as for a new one;
    the owner is told by email instead, and nothing of theirs changes."""
    from app.events.models import OutboxEvent

    owner = create_patient(email="ada@example.com")
    fresh = text(Client(app).post_form("/signup", VALID | {"email": "someone.new@example.com"}))
    response = client.post_form("/signup", VALID | {"email": "ADA@EXAMPLE.COM"})
    assert response.status_code == 200
    assert _main(text(response)).replace("ada@example.com", "X") == _main(fresh).replace("someone.new@example.com", "X")
    assert users_count(app) == 2
    with app.app_context():
        [attempt] = db.session.scalars(sa.select(OutboxEvent).where(OutboxEvent.type == "user.signup_attempted"))
        assert attempt.envelope["aggregate_id"] == str(owner.id)
        assert db.session.get(User, owner.id).password_hash == owner.password_hash


def _main(page: str) -> str:
    return page[page.index("<main"):page.index("</main>")]


def test_signup_without_csrf_token_is_refused_and_saves_nothing(app, client):
    response = client.post_form("/signup", VALID, csrf=False)
    assert response.status_code == 400
    assert "security token" in text(response)
    assert users_count(app) == 0


def test_signup_page_is_for_visitors_only(client, create_patient, login):
    login(create_patient())
    assert client.get("/signup").status_code == 302


def test_the_registration_service_itself_refuses_what_the_form_refuses(app):
    """The rules live in the service (the API calls it without the form): every one of them, by field."""
    from app.accounts.services import AccountError, PatientRegistration, register_patient

    with app.app_context():
        registration = PatientRegistration(
            full_name=" ", email="not-an-email", password="password", date_of_birth=date(1850, 1, 1),
            sex=Sex.FEMALE, phone="12", address="1 Main Street", emergency_contact_name="Sam",
            emergency_contact_phone="+12025550199", insurance_policy_number="P-1")
        assert set(registration.problems()) == {"full_name", "email", "password", "date_of_birth", "phone",
                                                "insurance_policy_number"}
        with pytest.raises(AccountError) as refused:
            register_patient(registration)
        assert refused.value.field == "full_name"


@pytest.fixture
def one_window():
    """The clock held inside one rate-limit window (windows start on the hour), so no count is cut in two."""
    with time_machine.travel(utcnow().replace(minute=10, second=0, microsecond=0), tick=False):
        yield


def test_sign_ups_and_password_links_are_limited_per_address(app, monkeypatch, one_window):
    monkeypatch.setitem(app.config, "HMS_EMAIL_FORM_RATE_LIMIT", (2, 3600))
    for n in range(2):
        assert Client(app).post_form("/signup", {**VALID, "email": f"flood{n}@example.com"}).status_code == 200
    refused = Client(app).post_form("/signup", {**VALID, "email": "flood2@example.com"})
    assert refused.status_code == 429 and "Too many requests for now" in text(refused)
    assert 'value="Ada Lovelace"' in text(refused)  # nothing typed is lost
    assert users_count(app) == 2
    elsewhere = Client(app)
    answer = elsewhere.http.post("/signup", data={**VALID, "email": "flood2@example.com",
                                                  "csrf_token": elsewhere.csrf_token("/signup")},
                                 environ_base={"REMOTE_ADDR": "10.7.7.7"})
    assert answer.status_code == 200 and users_count(app) == 3
    forgot = Client(app)
    for _ in range(2):
        assert forgot.post_form("/password/forgot", {"email": "flood0@example.com"}).status_code == 200
    assert forgot.post_form("/password/forgot", {"email": "flood0@example.com"}).status_code == 429


def test_sign_ups_to_one_email_are_limited_whatever_the_address(app, monkeypatch, create_patient, one_window):
    """Sign-ups with an address that has an account email its owner: so they are limited per email too, and the
    limit answers the same whether or not the account exists."""
    monkeypatch.setitem(app.config, "HMS_EMAIL_FORM_RATE_LIMIT_EMAIL", (2, 3600))
    create_patient(email="inbox@example.com")

    def sign_up(email: str, address: str):
        client = Client(app)
        return client.http.post("/signup", data={**VALID, "email": email, "csrf_token": client.csrf_token("/signup")},
                                environ_base={"REMOTE_ADDR": address})

    for n, email in enumerate(("inbox@example.com", "new@example.com")):
        assert [sign_up(email, f"10.3.{n}.{k}").status_code for k in range(3)] == [200, 200, 429]
