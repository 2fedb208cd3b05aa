"""The clinic's directory: Practitioner (a doctor), PractitionerRole (a doctor in a department, with their
specialty), Organization (the clinic, and each department as part of it). Read by every signed-in role whose
token's scope names them (`Practitioner`, `PractitionerRole`, `Organization`: the policy's `practitioner`)."""
from __future__ import annotations

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import joinedload, selectinload

from app.accounts.models import User
from app.clinic.models import Department, DoctorProfile
from app.extensions import db
from app.fhir import access
from app.fhir.outcomes import FhirError
from app.fhir.resources.common import human_name, meta, ref, system
from app.fhir.search import (Page, SearchQuery, as_id, common_sql, list_page, sql_page, string_clause,
                             string_matches)
from app.policy import Kind

CLINIC_ID = "clinic"
ORGANIZATION_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
PRACTITIONER_PARAMS = {"name": "string"}
ROLE_PARAMS = {"practitioner": "reference", "organization": "reference"}
ORGANIZATION_PARAMS = {"name": "string"}


# --- Practitioner ------------------------------------------------------------------------------------------

def practitioner(profile: DoctorProfile) -> dict:
    user = profile.user
    return {"resourceType": "Practitioner", "id": str(user.id), "meta": meta(user.updated_at),
            "identifier": [{"use": "official", "system": system("licence"), "value": profile.licence_number}],
            "active": user.active, "name": [human_name(user.full_name)],
            "qualification": [{"code": {"text": profile.specialty}}]}


def _doctors() -> sa.Select:
    return (sa.select(DoctorProfile).join(DoctorProfile.user)
            .options(joinedload(DoctorProfile.user), selectinload(DoctorProfile.departments)))


def doctor_profiles(ids: set[int]) -> list[DoctorProfile]:
    if not ids:
        return []
    return list(db.session.scalars(_doctors().where(DoctorProfile.user_id.in_(ids))).unique())


def read_practitioner(ident: str) -> dict:
    access.require_directory(Kind.PRACTITIONER)
    profile = db.session.scalar(_doctors().where(DoctorProfile.user_id == as_id(ident)))
    if profile is None:
        raise not_found("Practitioner", ident)
    return practitioner(profile)


def search_practitioner(query: SearchQuery) -> Page:
    access.require_directory(Kind.PRACTITIONER)
    select = common_sql(query, _doctors(), DoctorProfile.user_id, User.updated_at)
    for ors in query.strings("name"):
        select = select.where(sa.or_(*(string_clause(User.full_name, m, text) for m, text in ors)))
    return sql_page(query, select, DoctorProfile.user_id, practitioner, id_of=lambda p: p.user_id)


# --- PractitionerRole --------------------------------------------------------------------------------------

def role_id(doctor_id: int, department_id: int) -> str:
    return f"{doctor_id}-{department_id}"


def practitioner_role(profile: DoctorProfile, department: Department) -> dict:
    user = profile.user
    return {"resourceType": "PractitionerRole", "id": role_id(user.id, department.id),
            "active": user.active and department.active,
            "practitioner": ref("Practitioner", user.id, user.full_name),
            "organization": ref("Organization", department.id, department.name),
            "specialty": [{"text": profile.specialty}]}


def _roles() -> list[dict]:
    profiles = db.session.scalars(_doctors()).unique()
    return [practitioner_role(p, d) for p in profiles for d in p.departments]


def read_practitioner_role(ident: str) -> dict:
    access.require_directory(Kind.PRACTITIONER)
    doctor_id, department_id = split_pair(ident, "PractitionerRole")
    profile = db.session.scalar(_doctors().where(DoctorProfile.user_id == doctor_id))
    department = next((d for d in profile.departments if d.id == department_id), None) if profile else None
    if department is None:
        raise not_found("PractitionerRole", ident)
    return practitioner_role(profile, department)


def search_practitioner_role(query: SearchQuery) -> Page:
    access.require_directory(Kind.PRACTITIONER)
    roles = _roles()
    for ors in query.references("practitioner", "Practitioner"):
        roles = [r for r in roles if r["practitioner"]["reference"].split("/")[1] in ors]
    for ors in query.references("organization", "Organization"):
        roles = [r for r in roles if r["organization"]["reference"].split("/")[1] in ors]
    return list_page(query, roles, key=lambda r: [int(part) for part in r["id"].split("-")])


# --- Organization ------------------------------------------------------------------------------------------

def clinic() -> dict:
    return {"resourceType": "Organization", "id": CLINIC_ID, "active": True,
            "type": [{"coding": [{"system": ORGANIZATION_TYPE, "code": "prov", "display": "Healthcare Provider"}]}],
            "name": current_app.config["HMS_CLINIC_NAME"]}


def department_organization(department: Department) -> dict:
    resource = {"resourceType": "Organization", "id": str(department.id), "meta": meta(department.created_at),
                "active": department.active,
                "type": [{"coding": [{"system": ORGANIZATION_TYPE, "code": "dept", "display": "Hospital Department"}]}],
                "name": department.name, "partOf": ref("Organization", CLINIC_ID, current_app.config["HMS_CLINIC_NAME"])}
    if department.description:
        resource["alias"] = [department.description]
    return resource


def read_organization(ident: str) -> dict:
    access.require_directory(Kind.PRACTITIONER)
    if ident == CLINIC_ID:
        return clinic()
    department = db.session.get(Department, as_id(ident))
    if department is None:
        raise not_found("Organization", ident)
    return department_organization(department)


def search_organization(query: SearchQuery) -> Page:
    access.require_directory(Kind.PRACTITIONER)
    organizations = [clinic(), *(department_organization(d) for d in db.session.scalars(sa.select(Department)))]
    for ors in query.strings("name"):
        organizations = [o for o in organizations if any(string_matches(o["name"], m, t) for m, t in ors)]
    return list_page(query, organizations, key=lambda o: [0 if o["id"] == CLINIC_ID else int(o["id"])])


# --- shared -----------------------------------------------------------------------------------------------

def not_found(resource_type: str, ident: str) -> FhirError:
    return FhirError(404, f"{resource_type}/{ident[:64]} is not known.", code="not-found")


def split_pair(ident: str, resource_type: str) -> tuple[int, int]:
    """`<doctor>-<department>` (a PractitionerRole's or Schedule's id)."""
    parts = ident.split("-")
    if len(parts) != 2 or not all(as_id(p) for p in parts):
        raise not_found(resource_type, ident)
    return as_id(parts[0]), as_id(parts[1])
