"""Patients through the API: sign up (no token), read and update the own profile, staff search.

The same services as the pages (`app.accounts.services`: `PatientRegistration.problems`, `sign_up`,
`update_patient_profile`), so a signup or a change is refused for the same reasons, with every reason at once as
JSON pointers. Who reads a profile is the policy's `Resource.patient` rule; what they see of it follows what
their pages show them (the `view` field says which):
- `self`: the patient, everything (never the password);
- `clinical`: a doctor with the patient in their care (or a break-glass grant): name, date of birth and sex, as
  on the chart;
- `billing`: billing clerks and admins: name, email, phone, address and insurance, as on the invoices.
Fields outside the view are null. The sign-in email is not changed here: the page asks for the current password.
"""
from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import sqlalchemy as sa
from pydantic import Field
from sqlalchemy.orm import joinedload

from app.accounts.models import Role, Sex, User
from app.accounts.passwords import MAX_LENGTH
from app.accounts.queries import MIN_TERM, find_patients
from app.accounts.services import AccountError, PatientRegistration, normalize_email
from app.accounts.services import sign_up as services_sign_up
from app.accounts.services import update_patient_profile
from app.api import bp
from app.api.auth import actor, authorize, require_area
from app.api.framework import (MAX_LIMIT, ApiModel, Reply, check_if_match, decode_cursor, operation, page_model,
                               paged)
from app.api.problems import FieldError, Problem
from app.extensions import db
from app.policy import BILLING_STAFF, Kind, Resource, Verb

Name = Annotated[str, Field(min_length=1, max_length=120)]
Phone = Annotated[str, Field(min_length=1, max_length=32,
                             description="National form in the clinic's region, or +international; answered as "
                                         "E.164.")]
Address = Annotated[str, Field(min_length=1, max_length=500)]
Insurer = Annotated[str | None, Field(max_length=120)]
PolicyNumber = Annotated[str | None, Field(max_length=64, description="Needs insurance_provider.")]
View = Literal["self", "clinical", "billing"]


class PatientOut(ApiModel):
    id: int
    view: View = Field(description="What the caller may see: self (everything), clinical (a doctor: name, birth "
                                   "date, sex), billing (billing staff: name and contact, insurance). Fields "
                                   "outside the view are null.")
    full_name: str
    email: str | None
    date_of_birth: date | None
    sex: Sex | None
    phone: str | None
    address: str | None
    emergency_contact_name: str | None
    emergency_contact_phone: str | None
    insurance_provider: str | None
    insurance_policy_number: str | None
    notify_email: bool | None
    notify_sms: bool | None


class PatientSignupIn(ApiModel):
    full_name: Name
    email: Annotated[str, Field(min_length=3, max_length=254)]
    password: Annotated[str, Field(min_length=1, max_length=MAX_LENGTH,
                                   description="At least 8 characters, not one of the most common passwords.")]
    date_of_birth: date
    sex: Sex
    phone: Phone
    address: Address
    emergency_contact_name: Name
    emergency_contact_phone: Phone
    insurance_provider: Insurer = None
    insurance_policy_number: PolicyNumber = None


class PatientPatchIn(ApiModel):
    """The fields to change (any subset); null clears an optional one."""
    phone: Phone = None
    address: Address = None
    emergency_contact_name: Name = None
    emergency_contact_phone: Phone = None
    insurance_provider: Insurer = None
    insurance_policy_number: PolicyNumber = None
    notify_email: bool = None
    notify_sms: bool = None


class PatientSummaryOut(ApiModel):
    id: int
    full_name: str
    email: str | None = Field(description="For billing staff (as their search shows it); null for doctors.")


PatientSummaryPage = page_model(PatientSummaryOut)


class PatientSearchQuery(ApiModel):
    q: str = Field(min_length=MIN_TERM, max_length=80, description="Part of the name or email.")
    limit: int = Field(20, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(None, max_length=400)


CLINICAL = {"full_name", "date_of_birth", "sex"}
BILLING = {"full_name", "email", "phone", "address", "insurance_provider", "insurance_policy_number"}


def view_of() -> View:
    """What the token's role sees of a profile the policy let it read."""
    if actor().role is Role.PATIENT:
        return "self"
    return "clinical" if actor().role is Role.DOCTOR else "billing"


def out(user: User, view: View = "self") -> PatientOut:
    profile = user.patient
    values = dict.fromkeys(PatientOut.model_fields.keys() - {"id", "view"})
    values |= {"full_name": user.full_name, "email": user.email, "phone": user.phone}
    if profile is not None:  # a program's service account with the patient role has none
        values |= {name: getattr(profile, name) for name in PatientOut.model_fields if hasattr(profile, name)}
    shown = {"clinical": CLINICAL, "billing": BILLING}.get(view)
    if shown is not None:
        values = {name: (value if name in shown else None) for name, value in values.items()}
    return PatientOut(id=user.id, view=view, **values)


def _load(patient_id: int, verb: Verb) -> User:
    """A patient the token may `verb` (404 otherwise); a change locks the rows and reads them afresh."""
    query = sa.select(User).where(User.id == patient_id).options(joinedload(User.patient))
    if verb is Verb.WRITE:
        query = query.with_for_update().execution_options(populate_existing=True)
    user = db.session.scalar(query)
    authorize(verb, Resource.patient(patient_id, user))
    return user


def _refuse(problems: dict[str, str]):
    raise Problem(422, "Some fields could not be accepted.",
                  errors=[FieldError(f"/{field}", message) for field, message in problems.items()])


# --- signing up --------------------------------------------------------------------------------------------

class SignupAcceptedOut(ApiModel):
    email: str = Field(description="The address the message went to.")
    detail: str


@operation(bp, "POST", "/patients", tag="Patients", summary="Sign up as a patient", body=PatientSignupIn,
           response=SignupAcceptedOut, status=202, public=True, idempotent=True, rate_limit="signup",
           errors=(422, 429))
def sign_up(body: PatientSignupIn):
    """Self-registration, without a token, with the signup page's rules (every refused field at once). The answer
    is the same whether or not the address already has an account, so that it tells no one which addresses do:
    a new address gets its account, one that has an account gets an email to its owner instead. Limited per
    address (`HMS_API_RATE_LIMIT_SIGNUP`). The new patient then connects an app through /oauth/authorize."""
    registration = PatientRegistration(**body.model_dump())
    problems = registration.problems(taken=False)
    if problems:
        _refuse(problems)
    try:
        services_sign_up(registration)
    except AccountError as error:
        _refuse({error.field or "email": str(error)})
    email = normalize_email(body.email)
    return SignupAcceptedOut(email=email, detail=f"We have sent a message to {email}. If this is a new account, it "
                                                 "is ready: sign in with this email and the password you chose.")


# --- reading -----------------------------------------------------------------------------------------------

@operation(bp, "GET", "/patients/me", tag="Patients", summary="The signed-in patient's profile",
           response=PatientOut, scope="Patient.r", errors=(403,))
def get_own_patient():
    """The profile of the patient the token speaks for (403 for other roles)."""
    require_area("patient", Kind.PATIENT, Verb.READ)
    return out(_load(actor().user.id, Verb.READ))


@operation(bp, "GET", "/patients/<id:patient_id>", tag="Patients", summary="Get a patient's profile",
           response=PatientOut, scope="Patient.r", errors=(403, 404))
def get_patient(patient_id: int):
    """The patient themselves; a doctor with the patient in their care (403 without); billing staff. Another
    patient's profile is 404."""
    user = _load(patient_id, Verb.READ)
    return out(user, view_of())


@operation(bp, "GET", "/patients", tag="Patients", summary="Search patients", query=PatientSearchQuery,
           response=PatientSummaryPage, scope="Patient.s", errors=(403, 422))
def search_patients(query: PatientSearchQuery):
    """Active patients whose name or email contains `q`, by name: for doctors (names only, as on their patient
    search; the record itself needs the care relationship) and billing clerks (with the email)."""
    require_area("doctor" if actor().role is Role.DOCTOR else "billing_desk", Kind.PATIENT, Verb.READ)
    position = decode_cursor(query.cursor, (str, int))
    rows = find_patients(query.q, limit=query.limit + 1, after=tuple(position) if position else None)
    items, cursor, headers = paged(rows, query.limit, lambda u: [u.full_name, u.id], "api.search_patients")
    staff = actor().role in BILLING_STAFF
    return Reply(PatientSummaryPage(items=[PatientSummaryOut(id=u.id, full_name=u.full_name,
                                                             email=u.email if staff else None) for u in items],
                                    next_cursor=cursor), headers=headers)


# --- changing ----------------------------------------------------------------------------------------------

@operation(bp, "PATCH", "/patients/<id:patient_id>", tag="Patients", summary="Update the own profile",
           body=PatientPatchIn, response=PatientOut, scope="Patient.u", if_match=True,
           errors=(404, 412, 422, 428))
def update_patient(patient_id: int, body: PatientPatchIn):
    """Contact, emergency contact, insurance and notification choices, by the patient themselves, with the
    profile page's rules. The sign-in email is changed on the profile page (it asks for the password)."""
    user = _load(patient_id, Verb.WRITE)
    check_if_match(out(user))
    if user.patient is None:
        raise Problem(409, "This account has no patient profile to change.")
    try:
        update_patient_profile(user, {name: getattr(body, name) for name in type(body).model_fields
                                      if name in body.model_fields_set})
    except AccountError as error:
        _refuse({error.field or "": str(error)})
    return out(user)
