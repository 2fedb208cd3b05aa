"""Departments and doctors: what the admin manages and what the directory shows.

Functions here add and flush; the caller commits once.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, selectinload

from app.accounts.models import Role, User
from app.accounts.services import AccountError, create_user
from app.clinic.models import Department, DoctorProfile, doctor_departments
from app.events.outbox import emit
from app.extensions import db


class ClinicError(Exception):
    """A change the clinic's rules refuse; `field` names the form field to blame."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


# --- departments ------------------------------------------------------------------------------------

def departments(*, active_only: bool = False) -> list[Department]:
    query = sa.select(Department).order_by(Department.name)
    if active_only:
        query = query.where(Department.active.is_(True))
    return list(db.session.scalars(query))


def department_doctor_counts() -> dict[int, int]:
    rows = db.session.execute(sa.select(doctor_departments.c.department_id, sa.func.count())
                              .group_by(doctor_departments.c.department_id))
    return dict(rows.all())


def _name_taken(name: str, excluding: int | None = None) -> bool:
    query = sa.select(Department.id).where(Department.name == name.strip())
    if excluding is not None:
        query = query.where(Department.id != excluding)
    return db.session.scalar(query) is not None


def save_department(department: Department | None, *, name: str, description: str | None) -> Department:
    if _name_taken(name, department.id if department else None):
        raise ClinicError("A department with this name already exists.", field="name")
    created = department is None
    department = department or Department()
    department.name, department.description = name.strip(), (description or "").strip() or None
    db.session.add(department)
    db.session.flush()
    emit("department.created" if created else "department.updated", "department", department.id,
         {"name": department.name})
    return department


def set_department_active(department: Department, active: bool) -> None:
    department.active = active
    emit("department.activated" if active else "department.deactivated", "department", department.id,
         {"name": department.name})


def delete_department(department: Department) -> None:
    doctors = department_doctor_counts().get(department.id, 0)
    if doctors:
        raise ClinicError(f"{department.name} has {doctors} doctor{'s' if doctors != 1 else ''}. Move them to another "
                          "department first, or deactivate the department instead.")
    db.session.delete(department)
    emit("department.deleted", "department", department.id, {"name": department.name})


# --- doctors ----------------------------------------------------------------------------------------

@dataclass
class DoctorDetails:
    full_name: str
    email: str
    phone: str | None
    department_ids: list[int]
    specialty: str
    licence_number: str
    consultation_fee: Decimal
    bio: str | None


def _licence_taken(licence: str, excluding: int | None = None) -> bool:
    query = sa.select(DoctorProfile.user_id).where(DoctorProfile.licence_number == licence.strip())
    if excluding is not None:
        query = query.where(DoctorProfile.user_id != excluding)
    return db.session.scalar(query) is not None


def _departments_by_id(ids: list[int]) -> list[Department]:
    found = list(db.session.scalars(sa.select(Department).where(Department.id.in_(ids)))) if ids else []
    if not found or len(found) != len(set(ids)):
        raise ClinicError("Choose at least one department.", field="department_ids")
    return found


REQUIRED = {"full_name": "the doctor's name", "specialty": "the specialty", "licence_number": "the licence number"}
LIMITS = {"full_name": 120, "email": 254, "specialty": 80, "licence_number": 40, "bio": 2000}
MAX_FEE = Decimal("100000")


def _check(details: DoctorDetails) -> None:
    """The rules of a doctor's details that the admin's form checks too; the phone becomes E.164."""
    from app.accounts.phones import normalize_phone
    from app.accounts.services import email_problem

    for name, what in REQUIRED.items():
        if not getattr(details, name).strip():
            raise ClinicError(f"Enter {what}.", field=name)
    for name, limit in LIMITS.items():
        if len(getattr(details, name) or "") > limit:
            raise ClinicError(f"Use at most {limit:,} characters.", field=name)
    if problem := email_problem(details.email):
        raise ClinicError(problem, field="email")
    if not details.phone:
        raise ClinicError("Enter a phone number.", field="phone")
    try:
        details.phone = normalize_phone(details.phone)
    except ValueError:
        raise ClinicError("Enter a valid phone number, e.g. +1 202 555 0143.", field="phone") from None
    if not Decimal("0") <= details.consultation_fee <= MAX_FEE:
        raise ClinicError("Enter an amount from 0 to 100,000.", field="consultation_fee")


def _apply(profile: DoctorProfile, details: DoctorDetails) -> None:
    profile.specialty = details.specialty.strip()
    profile.licence_number = details.licence_number.strip()
    profile.consultation_fee = details.consultation_fee.quantize(Decimal("0.01"))
    profile.bio = (details.bio or "").strip() or None
    profile.departments = _departments_by_id(details.department_ids)


def _doctor_data(profile: DoctorProfile) -> dict:
    return {"specialty": profile.specialty, "licence_number": profile.licence_number,
            "consultation_fee": str(profile.consultation_fee), "departments": [d.id for d in profile.departments]}


def create_doctor(details: DoctorDetails) -> DoctorProfile:
    """The doctor's login (no password yet) and profile; the caller sends the set-password link."""
    _check(details)
    if _licence_taken(details.licence_number):
        raise ClinicError("Another doctor has this licence number.", field="licence_number")
    departments = _departments_by_id(details.department_ids)
    try:
        user = create_user(role=Role.DOCTOR, email=details.email, full_name=details.full_name, password=None,
                           phone=details.phone)
    except AccountError as error:
        raise ClinicError(str(error), field=error.field) from None
    profile = DoctorProfile(user_id=user.id, user=user)
    _apply(profile, details)
    profile.departments = departments
    db.session.add(profile)
    db.session.flush()
    emit("doctor.created", "doctor", user.id, _doctor_data(profile))
    return profile


def update_doctor(profile: DoctorProfile, details: DoctorDetails) -> None:
    _check(details)
    if _licence_taken(details.licence_number, excluding=profile.user_id):
        raise ClinicError("Another doctor has this licence number.", field="licence_number")
    user = profile.user
    email = details.email.strip().lower()
    if email != user.email:
        from app.accounts.services import email_taken

        if email_taken(email, excluding=user):
            raise ClinicError("An account with this email already exists.", field="email")
        user.email = email
    user.full_name, user.phone = details.full_name.strip(), details.phone
    _apply(profile, details)
    db.session.flush()
    emit("doctor.updated", "doctor", user.id, _doctor_data(profile))


def update_own_profile(profile: DoctorProfile, *, phone: str | None, bio: str | None) -> None:
    """What a doctor may change themself: not the licence or the fee."""
    profile.user.phone = phone
    profile.bio = (bio or "").strip() or None
    db.session.flush()
    emit("doctor.updated", "doctor", profile.user_id, {"fields": ["phone", "bio"]})


def set_doctor_active(profile: DoctorProfile, active: bool) -> None:
    """A deactivated doctor can no longer sign in or be booked; nothing of their history is removed."""
    user = profile.user
    user.active = active
    if not active:
        user.session_version += 1  # ends the doctor's open sessions
    emit("doctor.activated" if active else "doctor.deactivated", "doctor", user.id, {})


def get_doctor(user_id: int) -> DoctorProfile | None:
    return db.session.scalar(sa.select(DoctorProfile).where(DoctorProfile.user_id == user_id)
                             .options(joinedload(DoctorProfile.user), selectinload(DoctorProfile.departments)))


def doctors_query(*, search: str | None = None, department_id: int | None = None,
                  active: bool | None = None) -> sa.Select:
    """Doctors matching a search over name, specialty and licence, with their user and departments loaded."""
    query = (sa.select(DoctorProfile).join(DoctorProfile.user)
             .options(joinedload(DoctorProfile.user), selectinload(DoctorProfile.departments))
             .order_by(User.full_name, User.id))
    if search:
        pattern = f"%{search.strip()}%"
        query = query.where(sa.or_(User.full_name.ilike(pattern), DoctorProfile.specialty.ilike(pattern),
                                   DoctorProfile.licence_number.ilike(pattern)))
    if department_id:
        query = query.where(DoctorProfile.departments.any(Department.id == department_id))
    if active is not None:
        query = query.where(User.active.is_(active))
    return query
