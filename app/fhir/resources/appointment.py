"""Appointment: a visit (`appointments`), with `_include` of its Patient and Practitioner; booked with
`POST` (`create`), cancelled with `PUT` (`update`) or a JSON Patch (`patch`), through the same services
(`app.appointments.services.book`, `.transition`) and policy questions as the API (`app.api.appointments`).

HMS's states as FHIR's: requested → pending (the doctor has not accepted), confirmed → booked, checked_in →
checked-in, completed → fulfilled, declined and both cancellations → cancelled (the reason as
`cancelationReason`), no_show → noshow. Each carries `meta.versionId` (`app.fhir.writes.version_id`) and the
identifiers programs gave it when they booked it.
"""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, selectinload

from app.accounts.models import Role, User
from app.api.auth import authorize
from app.appointments.models import Appointment, AppointmentIdentifier, Status
from app.extensions import db
from app.fhir import access
from app.fhir.resources import directory, patient as patients
from app.fhir.resources.common import instant, meta, ref
from app.fhir.search import Page, SearchQuery, Token, as_id, common_sql, sql_page
from app.fhir.writes import versioned
from app.policy import Kind, Resource, Verb

SEARCH_PARAMS = {"patient": "reference", "practitioner": "reference", "date": "date", "status": "token",
                 "identifier": "token"}
INCLUDES = ("Appointment:patient", "Appointment:practitioner")
STATUS = {Status.REQUESTED: "pending", Status.CONFIRMED: "booked", Status.CHECKED_IN: "checked-in",
          Status.COMPLETED: "fulfilled", Status.DECLINED: "cancelled", Status.CANCELLED_BY_PATIENT: "cancelled",
          Status.CANCELLED_BY_CLINIC: "cancelled", Status.NO_SHOW: "noshow"}
DOCTOR_ACCEPTED = (Status.CONFIRMED, Status.CHECKED_IN, Status.COMPLETED, Status.NO_SHOW)


def to_fhir(appointment: Appointment) -> dict:
    doctor_status = ("accepted" if appointment.status in DOCTOR_ACCEPTED
                     else "declined" if appointment.status is Status.DECLINED else "needs-action")
    resource = {
        "resourceType": "Appointment", "id": str(appointment.id), "meta": meta(appointment.updated_at),
        **({"identifier": [identifier(i) for i in appointment.identifiers]} if appointment.identifiers else {}),
        "status": STATUS[appointment.status],
        "serviceType": [{"text": appointment.department.name}],
        "reasonCode": [{"text": appointment.reason}],
        "start": instant(appointment.starts_at), "end": instant(appointment.ends_at),
        "minutesDuration": int((appointment.ends_at - appointment.starts_at).total_seconds() // 60),
        "created": instant(appointment.created_at),
        "participant": [
            {"actor": ref("Patient", appointment.patient_id, appointment.patient.full_name), "required": "required",
             "status": "accepted"},
            {"actor": ref("Practitioner", appointment.doctor_id, appointment.doctor_user.full_name),
             "required": "required", "status": doctor_status}]}
    if STATUS[appointment.status] == "cancelled" and appointment.status_reason:
        resource["cancelationReason"] = {"text": appointment.status_reason}
    return versioned(resource)


def identifier(row: AppointmentIdentifier) -> dict:
    return {**({"system": row.system} if row.system else {}), "value": row.value}


def identifier_clause(token: Token) -> sa.ColumnElement[bool]:
    """An identifier token (`system|value`, `value`, `system|`, `|value`) as a condition on the identifiers."""
    conditions = []
    if token.system is not None:
        conditions.append(AppointmentIdentifier.system == token.system)
    if token.code is not None:
        conditions.append(AppointmentIdentifier.value == token.code)
    return sa.and_(sa.true(), *conditions)


def _appointments() -> sa.Select:
    """Appointments with what the mapping shows of them: the patient's and the doctor's names (not their whole
    account rows), the department, the programs' identifiers."""
    return sa.select(Appointment).options(
        joinedload(Appointment.patient).load_only(User.full_name, User.role),
        joinedload(Appointment.doctor_user).load_only(User.full_name, User.role),
        joinedload(Appointment.department), selectinload(Appointment.identifiers))


def read(ident: str) -> dict:
    appointment_id = as_id(ident)
    appointment = db.session.scalar(_appointments().where(Appointment.id == appointment_id))
    authorize(Verb.READ, Resource.appointment(appointment_id, appointment))
    return to_fhir(appointment)


def _statuses(codes: list[str]) -> list[Status]:
    return [status for status, code in STATUS.items() if code in codes]


def search(query: SearchQuery) -> Page:
    """The appointments the token may list: a patient's own, a doctor's own (with the patient a token was launched
    for, if any), every one for the front desk."""
    me = access.me()
    context = access.context_patient()  # a patient's own token, or one launched for a patient
    own_doctor = me.id if me.role is Role.DOCTOR else None
    authorize(Verb.READ, Resource(Kind.APPOINTMENT, None, patient_id=context, doctor_id=own_doctor))
    select = common_sql(query, _appointments(), Appointment.id, Appointment.updated_at)
    if context is not None:
        select = select.where(Appointment.patient_id == context)
    if own_doctor is not None:
        select = select.where(Appointment.doctor_id == own_doctor)
    for ors in query.references("patient", "Patient"):
        for ident in ors:
            if context is not None and ident != str(context):  # another patient's: the policy's 404
                other = as_id(ident)
                authorize(Verb.READ, Resource.appointments_of(db.session.get(User, other), other))
        select = select.where(Appointment.patient_id.in_([as_id(i) for i in ors]))
    for ors in query.references("practitioner", "Practitioner"):
        for ident in ors:
            if own_doctor is not None and ident != str(own_doctor):  # another doctor's: the policy's 404
                authorize(Verb.READ, Resource.missing(Kind.APPOINTMENT, f"doctor:{ident}"))
        select = select.where(Appointment.doctor_id.in_([as_id(i) for i in ors]))
    for ors in query.dates("date"):
        select = select.where(sa.or_(*(p.clause(Appointment.starts_at) for p in ors)))
    for ors in query.tokens("identifier"):
        select = select.where(sa.exists().where(AppointmentIdentifier.appointment_id == Appointment.id,
                                                sa.or_(*(identifier_clause(t) for t in ors))))
    for ors in query.tokens("status"):
        select = select.where(Appointment.status.in_(_statuses([t.code for t in ors if t.code]) or ["-"]))
    page = sql_page(query, select, Appointment.id, to_fhir)
    page.included = _included(query, page.resources)
    return page


def _included(query: SearchQuery, resources: list[dict]) -> list[dict]:
    """The Patients and Practitioners the page refers to, when asked; one the token may not read is left out."""
    def referred(index: int) -> list[int]:
        return list(dict.fromkeys(int(r["participant"][index]["actor"]["reference"].split("/")[1]) for r in resources))

    included: list[dict] = []
    if "Appointment:patient" in query.include:
        for patient_id in referred(0):
            if access.may_read_patient(patient_id):
                included.append(patients.to_fhir(patients.get(patient_id)))
    if "Appointment:practitioner" in query.include and access.may_read_directory(Kind.PRACTITIONER):
        profiles = {p.user_id: p for p in directory.doctor_profiles(set(referred(1)))}
        included += [directory.practitioner(profiles[i]) for i in referred(1) if i in profiles]
    return included


def of_patient(patient_id: int) -> list[dict]:
    """For `$everything`: the patient's appointments that the token may read."""
    rows = db.session.scalars(_appointments().where(Appointment.patient_id == patient_id).order_by(Appointment.id))
    return [to_fhir(a) for a in rows if access.may(Kind.APPOINTMENT, Resource.appointment(a.id, a))]

