"""A patient views and edits their profile in place (HTMX fragments on the same URLs)."""
from __future__ import annotations

import pytest

from app.accounts.models import User
from app.extensions import db
from tests.conftest import DEFAULT_PASSWORD
from tests.helpers import text


@pytest.fixture
def patient(create_patient, login):
    user = create_patient(full_name="Grace Hopper", email="grace@example.com")
    login(user)
    return user


def reload(app, user_id: int) -> User:
    with app.app_context():
        user = db.session.get(User, user_id)
        _ = user.patient
        db.session.expunge_all()
        return user


def test_profile_page_shows_every_section(client, patient):
    html = text(client.get(f"/patient/{patient.id}/profile"))
    for title in ("Personal details", "Contact", "Emergency contact", "Insurance", "Sign-in email"):
        assert title in html
    assert "Grace Hopper" in html and "grace@example.com" in html
    assert "<html" in html


def test_htmx_edit_returns_only_the_sections_form(client, patient):
    response = client.get(f"/patient/{patient.id}/profile/contact/edit", htmx=True)
    html = text(response)
    assert response.status_code == 200
    assert "<html" not in html
    assert html.lstrip().startswith('<section class="card')
    assert 'name="phone"' in html and 'value="+12025550123"' in html
    assert response.headers["Vary"].count("HX-Request") == 1


def test_edit_without_htmx_renders_the_whole_page_with_the_form(client, patient):
    html = text(client.get(f"/patient/{patient.id}/profile/contact/edit"))
    assert "<html" in html and 'name="phone"' in html and "Personal details" in html


def test_saving_a_section_in_place_returns_the_updated_section(app, client, patient):
    response = client.post_form(f"/patient/{patient.id}/profile/contact",
                                {"phone": "202-555-0188", "address": "1 New Road\nSpringfield"}, htmx=True)
    html = text(response)
    assert response.status_code == 200
    assert "<html" not in html
    assert "Contact saved." in html and "(202) 555-0188" in html
    saved = reload(app, patient.id)
    assert saved.phone == "+12025550188"
    assert saved.patient.address == "1 New Road\nSpringfield"


def test_saving_without_htmx_redirects_back_to_the_profile(app, client, patient):
    response = client.post_form(f"/patient/{patient.id}/profile/insurance",
                                {"insurance_provider": "Blue Shield", "insurance_policy_number": "BS-9"})
    assert response.status_code == 303
    assert "Insurance saved." in text(client.get(response.headers["Location"]))
    assert reload(app, patient.id).patient.insurance_provider == "Blue Shield"


def test_invalid_section_input_is_shown_in_place_with_422_and_nothing_changes(app, client, patient):
    response = client.post_form(f"/patient/{patient.id}/profile/personal",
                                {"full_name": "", "date_of_birth": "2999-01-01", "sex": "female"}, htmx=True)
    html = text(response)
    assert response.status_code == 422
    assert "<html" not in html
    assert "Enter your full name." in html and "cannot be in the future" in html
    assert reload(app, patient.id).full_name == "Grace Hopper"


def test_cancel_returns_the_read_only_section(client, patient):
    html = text(client.get(f"/patient/{patient.id}/profile/emergency", htmx=True))
    assert "Sam Contact" in html and "<form" not in html


def test_unknown_section_is_404(client, patient):
    assert client.get(f"/patient/{patient.id}/profile/bogus/edit").status_code == 404


def test_changing_email_needs_the_current_password(app, client, patient):
    url = f"/patient/{patient.id}/profile/account"
    response = client.post_form(url, {"email": "new@example.com", "current_password": ""}, htmx=True)
    assert response.status_code == 422 and "Enter your current password." in text(response)
    response = client.post_form(url, {"email": "new@example.com", "current_password": "wrong one"}, htmx=True)
    assert response.status_code == 422 and "The current password is not correct." in text(response)
    assert reload(app, patient.id).email == "grace@example.com"
    response = client.post_form(url, {"email": "New@Example.com", "current_password": DEFAULT_PASSWORD}, htmx=True)
    assert response.status_code == 200
    assert reload(app, patient.id).email == "new@example.com"


def test_changing_email_to_one_in_use_is_refused(app, client, patient, create_patient):
    create_patient(email="taken@example.com")
    response = client.post_form(f"/patient/{patient.id}/profile/account",
                                {"email": "TAKEN@example.com", "current_password": DEFAULT_PASSWORD}, htmx=True)
    assert response.status_code == 422 and "already exists" in text(response)
    assert reload(app, patient.id).email == "grace@example.com"


def test_profile_post_without_csrf_is_refused(app, client, patient):
    response = client.post_form(f"/patient/{patient.id}/profile/contact",
                                {"phone": "202-555-0188", "address": "x"}, csrf=False)
    assert response.status_code == 400
    assert reload(app, patient.id).phone == "+12025550123"
