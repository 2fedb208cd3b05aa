"""Patient: a patient's account and profile (`users` + `patient_profiles`)."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from app.accounts.models import PatientProfile, Role, User
from app.extensions import db
from app.fhir import access
from app.fhir.resources.common import day, human_name, meta, system
from app.fhir.search import Page, SearchQuery, as_id, common_sql, sql_page, string_clause
from app.policy import Kind, in_care_of, opened_by_break_glass
from app.records.services import DEMOGRAPHICS

SEARCH_PARAMS = {"name": "string", "birthdate": "date", "identifier": "token", "email": "token"}
V2_RELATIONSHIP = "http://terminology.hl7.org/CodeSystem/v2-0131"


def to_fhir(user: User) -> dict:
    profile: PatientProfile | None = user.patient
    resource = {"resourceType": "Patient", "id": str(user.id), "meta": meta(user.updated_at),
                "identifier": [{"use": "usual", "system": system("patient"), "value": str(user.id)}],
                "active": user.active, "name": [human_name(user.full_name)],
                "telecom": [{"system": "email", "value": user.email, "use": "home"}]}
    if user.phone:
        resource["telecom"].append({"system": "phone", "value": user.phone, "use": "mobile"})
    if profile is not None:
        resource["gender"] = profile.sex.value
        resource["birthDate"] = day(profile.date_of_birth)
        resource["address"] = [{"use": "home", "text": profile.address}]
        resource["contact"] = [{
            "relationship": [{"coding": [{"system": V2_RELATIONSHIP, "code": "C", "display": "Emergency Contact"}]}],
            "name": {"text": profile.emergency_contact_name},
            "telecom": [{"system": "phone", "value": profile.emergency_contact_phone}]}]
    return resource


def patients() -> sa.Select:
    return sa.select(User).where(User.role == Role.PATIENT).options(joinedload(User.patient))


def get(patient_id: int) -> User | None:
    return db.session.scalar(patients().where(User.id == patient_id))


def read(ident: str) -> dict:
    patient_id = as_id(ident)
    decision = access.read_patient(patient_id)
    access.audit(patient_id, [DEMOGRAPHICS], view="fhir.Patient.read", decision=decision)
    return to_fhir(get(patient_id))


def findable() -> sa.Select:
    """The patients the token may find: a patient only themselves, a token launched for a patient only that one;
    a doctor those in their care or opened by an active break-glass grant (whose records they may read); no
    other role (the policy's 403)."""
    me = access.me()
    if (context := access.context_patient()) is not None:  # a patient's token, or one launched for a patient
        access.read_patient(context)
        return patients().where(User.id == context)
    access.require_area("doctor", Kind.PATIENT)
    return patients().where(sa.or_(User.id.in_(in_care_of(me.id)), User.id.in_(opened_by_break_glass(me.id))))


def search(query: SearchQuery) -> Page:
    """Audited as a read of each patient the page shows (their demographics)."""
    page = sql_page(query, narrowed(query, findable()), User.id, to_fhir)
    for resource in page.resources:
        access.audit(int(resource["id"]), [DEMOGRAPHICS], view="fhir.Patient.search", decision=None)
    return page


def narrowed(query: SearchQuery, select: sa.Select) -> sa.Select:
    """`select` (the patients the token may find) narrowed by the search parameters."""
    select = common_sql(query, select, User.id, User.updated_at)
    for ors in query.strings("name"):
        select = select.where(sa.or_(*(string_clause(User.full_name, m, text) for m, text in ors)))
    for ors in query.dates("birthdate"):
        born = sa.or_(*(p.clause(PatientProfile.date_of_birth, dates=True) for p in ors))
        select = select.where(User.id.in_(sa.select(PatientProfile.user_id).where(born)))
    for ors in query.tokens("email"):
        select = select.where(User.email.in_([t.code for t in ors if t.system in (None, "email") and t.code]
                                             or [""]))
    for ors in query.tokens("identifier"):
        select = select.where(User.id.in_([as_id(t.code) for t in ors if t.system in (None, system("patient"))]
                                          or [0]))
    return select
