"""The admin manages departments and doctors."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.accounts.models import PasswordToken, Role, User
from app.clinic.models import Department, DoctorProfile
from app.events.models import OutboxEvent
from app.extensions import db
from tests.conftest import DEFAULT_PASSWORD
from tests.helpers import text


@pytest.fixture
def admin(client, create_user, login):
    login(create_user(Role.ADMIN))
    return client


def events(app, type_: str) -> list[dict]:
    with app.app_context():
        return [r.envelope for r in db.session.scalars(sa.select(OutboxEvent).where(OutboxEvent.type == type_))]


def doctor_form(department_id: int, **changes) -> dict:
    return {"full_name": "Dr. Jane Foster", "email": "jane.foster@example.com", "phone": "202 555 0150",
            "department_ids": [department_id], "specialty": "Neurologist", "licence_number": "NEU-7781",
            "consultation_fee": "150.50", "bio": "Headaches and sleep.", **changes}


# --- departments ------------------------------------------------------------------------------------

def test_admin_creates_renames_and_deactivates_a_department(app, admin):
    assert admin.post_form("/admin/departments", {"name": "Dermatology"}).status_code == 303
    with app.app_context():
        department_id = db.session.scalar(sa.select(Department.id).where(Department.name == "Dermatology"))
    assert admin.post_form(f"/admin/departments/{department_id}", {"name": "Skin clinic"}).status_code == 303
    assert admin.post_form(f"/admin/departments/{department_id}/deactivate", {}).status_code == 303
    with app.app_context():
        department = db.session.get(Department, department_id)
        assert (department.name, department.active) == ("Skin clinic", False)
    assert [e["data"]["name"] for e in events(app, "department.created")] == ["Dermatology"]


def test_department_names_are_unique_and_required(admin, create_department):
    create_department("Cardiology")
    response = admin.post_form("/admin/departments", {"name": "Cardiology"})
    assert response.status_code == 422 and "already exists" in text(response)
    response = admin.post_form("/admin/departments", {"name": ""})
    assert response.status_code == 422 and "Enter a name." in text(response)


def test_a_department_with_doctors_cannot_be_deleted_and_says_why(app, admin, create_department, create_doctor):
    department_id = create_department("Oncology")
    create_doctor(department_ids=[department_id])
    response = admin.post_form(f"/admin/departments/{department_id}/delete", {})
    assert response.status_code == 303
    page = text(admin.get("/admin/departments"))
    assert "Oncology has 1 doctor. Move them to another department first, or deactivate" in page
    with app.app_context():
        assert db.session.get(Department, department_id) is not None


def test_an_empty_department_can_be_deleted(app, admin, create_department):
    department_id = create_department("Temporary")
    admin.post_form(f"/admin/departments/{department_id}/delete", {})
    with app.app_context():
        assert db.session.get(Department, department_id) is None


# --- doctors ----------------------------------------------------------------------------------------

def test_admin_creates_a_doctor_with_a_login_and_a_set_password_link(app, admin, create_department):
    department_id = create_department("Neurology")
    response = admin.post_form("/admin/doctors/new", doctor_form(department_id))
    assert response.status_code == 303
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == "jane.foster@example.com"))
        profile = db.session.get(DoctorProfile, user.id)
        assert user.role is Role.DOCTOR and user.password_hash is None and user.phone == "+12025550150"
        assert (profile.specialty, profile.licence_number, str(profile.consultation_fee)) == (
            "Neurologist", "NEU-7781", "150.50")
        assert [d.name for d in profile.departments] == ["Neurology"]
        token = db.session.scalar(sa.select(PasswordToken).where(PasswordToken.user_id == user.id))
        assert token.purpose == "set_password" and token.used_at is None
    [created] = events(app, "doctor.created")
    assert created["data"]["licence_number"] == "NEU-7781"
    assert events(app, "user.password_link_issued")
    assert "Jane Foster" in text(admin.get(f"/admin/doctors/{user.id}"))


@pytest.mark.parametrize("changes,field,message", [
    ({"licence_number": "TAKEN-1"}, "licence_number", "Another doctor has this licence number."),
    ({"email": "TAKEN@example.com"}, "email", "already exists"),
    ({"consultation_fee": "-1"}, "consultation_fee", "Enter an amount from 0 to 100,000."),
    ({"consultation_fee": "lots"}, "consultation_fee", "Not a valid decimal value."),
    ({"consultation_fee": "sNaN"}, "consultation_fee", "Not a valid decimal value."),
    ({"consultation_fee": "Infinity"}, "consultation_fee", "Not a valid decimal value."),
    ({"department_ids": []}, "department_ids", "Choose at least one department."),
    ({"phone": "12"}, "phone", "Enter a valid phone number"),
    ({"specialty": "x" * 81}, "specialty", "at most 80 characters"),
    ({"full_name": ""}, "full_name", "Enter the doctor&#39;s name."),
])
def test_doctor_form_refuses_bad_input_beside_the_field(app, admin, create_department, create_doctor, create_user,
                                                        changes, field, message):
    department_id = create_department()
    taken = create_doctor(email="taken@example.com")
    with app.app_context():
        db.session.get(DoctorProfile, taken.id).licence_number = "TAKEN-1"
        db.session.commit()
    response = admin.post_form("/admin/doctors/new", doctor_form(department_id, **changes))
    assert response.status_code == 422
    html = text(response)
    assert f'id="{field}-error"' in html and message in html.split(f'id="{field}-error"', 1)[1][:300]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(DoctorProfile)) == 1


def test_the_doctors_list_searches_filters_and_paginates(app, admin, create_department, create_doctor):
    cardio, peds = create_department("Cardiology"), create_department("Pediatrics")
    for n in range(55):
        create_doctor(full_name=f"Dr. Heart {n:02}", specialty="Cardiologist", department_ids=[cardio])
    create_doctor(full_name="Dr. Small", specialty="Pediatrician", department_ids=[peds])
    assert "Page 1 of 2 · 56 in all" in text(admin.get("/admin/doctors"))
    html = text(admin.get("/admin/doctors?q=pediat", htmx=True))
    assert "<html" not in html and "Dr. Small" in html and "1 in all" in html
    assert "55 in all" in text(admin.get(f"/admin/doctors?department={cardio}"))
    assert "56 in all" in text(admin.get("/admin/doctors?q=LIC-"))  # licence numbers are searched too


def test_admin_edits_a_doctor(app, admin, create_department, create_doctor):
    department_id = create_department()
    doctor = create_doctor(department_ids=[department_id])
    response = admin.post_form(f"/admin/doctors/{doctor.id}/edit",
                               doctor_form(department_id, email=doctor.email, consultation_fee="99.99"))
    assert response.status_code == 303
    with app.app_context():
        assert str(db.session.get(DoctorProfile, doctor.id).consultation_fee) == "99.99"
    assert events(app, "doctor.updated")


def test_a_deactivated_doctor_cannot_sign_in_and_history_stays(app, admin, client, create_doctor):
    doctor = create_doctor()
    admin.post_form(f"/admin/doctors/{doctor.id}/deactivate", {})
    html = text(admin.get("/admin/doctors?state=inactive"))
    assert doctor.full_name in html
    admin.post_form("/logout", {})
    response = client.sign_in(doctor.email, DEFAULT_PASSWORD)
    assert "Email or password is incorrect." in text(response)
    with app.app_context():
        assert db.session.get(DoctorProfile, doctor.id) is not None
    assert events(app, "doctor.deactivated")


@pytest.mark.parametrize("role", [Role.PATIENT, Role.CLERK, Role.DOCTOR])
@pytest.mark.parametrize("page", ["/admin/doctors", "/admin/doctors/new", "/admin/departments"])
def test_only_admins_reach_the_clinic_admin_pages(client, create_user, login, role, page):
    login(create_user(role))
    assert client.get(page).status_code == 403
