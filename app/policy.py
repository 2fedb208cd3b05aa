"""The one access policy: may this actor do this action on this resource?

Every door asks it: the pages through `app.web.access.authorize`, and programs through the same call with
their token's scopes on top. It has no side effects; the caller audits a refusal (`access.denied`).

Who may do what:

- **Areas** (a role's workspace): patients the patient portal, doctors the doctor's workspace, billing clerks
  and admins the billing office (only clerks work its desk: invoices, payments, claims; only admins decide
  refunds), admins the administration. Anyone else: 403.
- **A patient's profile, appointments and bills**: the patient themselves (a bill once it was issued; a draft
  never). A doctor reaches their own appointments. Billing staff reach every bill. A billing clerk is also the
  front desk: they read every appointment and book one for a patient (through the API; the pages have no
  booking screen for them), and change none. Anyone else gets 404, so that another patient's resource does not
  even confirm it exists. Staff read a profile as their pages show the patient: a doctor by the record's rule
  below (the chart shows the patient's name, birth date and sex), billing staff always (the invoices show who
  pays, and how to reach them); only the patient changes it. What each of them sees of it is the caller's to
  trim (`app.api.patients`).
- **A patient's clinical record** (`record`): the patient themselves; a doctor with the patient in their
  care, that is with an appointment that is confirmed, checked in or completed and starts within the last
  `HMS_CARE_RELATIONSHIP_MONTHS` (12) months, or a confirmed one ahead. A requested, declined, cancelled or
  no-show appointment gives nothing beyond the request itself (the doctor sees it on their dashboard, not the
  record). Any other doctor only through an active break-glass grant (a stated reason, BREAK_GLASS_MINUTES
  long); without one: 403, with the break-glass form. Billing clerks and admins: 403, never clinical content.
  The admin runs the clinic and reads the audit trail; they are not a clinician.
- **An encounter** (a visit's note): reading it needs the record, and a draft is readable by its author
  only (a patient never sees one). Writing needs to be its author, the appointment's doctor.
- **A doctor's own schedule entries** (availability windows, time off): that doctor only; others 404.
- **A patient's access report** (`audit` with a patient: who read their record, from the audit trail): the patient
  themselves only. Another patient gets 404; staff 403 (the admin reads the whole trail in their own area).
- **The directory** of doctors and departments (`directory` area): every signed-in role, as the public
  directory pages show it to visitors too.

A token (the API, FHIR) carries scopes (`app.oauth.scopes`): an action also needs the permission of its
resource, e.g. `appointment.read` or `record.write`, and an area entered by a program names the kind its
scope must cover (`Resource.area_of("admin", scope_kind=Kind.AUDIT)`).
A token launched for a patient (SMART `launch/patient`, `Actor.patient_context`) reaches no other patient's data
(404), whatever the role could; a door that searches across patients narrows the search to that patient.
A browser session is not limited by scopes (`Actor.scopes is None`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

import sqlalchemy as sa
from flask import current_app

from app.accounts.models import Role, User
from app.appointments.models import Appointment, Status
from app.extensions import db
from app.records.models import BreakGlassGrant
from app.timeutil import utcnow

if TYPE_CHECKING:
    from app.billing.models import Invoice
    from app.records.models import Encounter

BREAK_GLASS_MINUTES = 60
CARING = (Status.CONFIRMED, Status.CHECKED_IN, Status.COMPLETED)


class Verb(StrEnum):
    READ = "read"
    WRITE = "write"


class Kind(StrEnum):
    AREA = "area"
    PATIENT = "patient"  # a patient's profile
    APPOINTMENT = "appointment"
    INVOICE = "invoice"
    RECORD = "record"  # a patient's clinical record as a whole (chart, allergies, vitals)
    ENCOUNTER = "encounter"
    SCHEDULE = "schedule"  # a doctor's availability window or time off
    PRACTITIONER = "practitioner"  # the directory of doctors and departments (only a token's scope names it)
    AUDIT = "audit"  # the audit trail: a token's scope names it; with a patient, their access report


AREAS: dict[str, tuple[Role, ...]] = {
    "patient": (Role.PATIENT,),
    "doctor": (Role.DOCTOR,),
    "billing": (Role.CLERK, Role.ADMIN),
    "admin": (Role.ADMIN,),
    "account": (Role.PATIENT, Role.DOCTOR, Role.CLERK, Role.ADMIN),  # every signed-in person: consent, connected apps
    "billing_desk": (Role.CLERK,),  # writing invoices, payments, refund requests and claims
    "refund_decisions": (Role.ADMIN,),  # approving a refund: not the clerk who asked for it
    "directory": tuple(Role),  # the doctors and departments, which the public pages show to visitors too
}
BILLING_STAFF = AREAS["billing"]


@dataclass(frozen=True)
class Actor:
    """Who asks: a user, and for a token its scopes (None for a browser session) and client."""
    user: User
    scopes: frozenset[str] | None = None
    client_id: str | None = None
    # A token launched for one patient (SMART `launch/patient`): it reaches that patient's data only.
    patient_context: int | None = None

    @property
    def role(self) -> Role | None:
        return self.user.role if self.user.is_authenticated else None


@dataclass(frozen=True)
class Resource:
    """What is asked about, reduced to what the policy needs. `exists=False` for an id that names nothing."""
    kind: Kind
    id: object
    patient_id: int | None = None  # whose it is
    doctor_id: int | None = None  # the appointment's doctor, the encounter's author, the schedule entry's doctor
    exists: bool = True
    shown_to_patient: bool = True  # an issued bill, a signed encounter
    area: str | None = None
    # An area entered for a token: the kind its scope must name. For another resource: asked under another name
    # (a FHIR Patient is the record's demographics, named by a `Patient` scope), the token's scope names that.
    scope_kind: Kind | None = None

    @classmethod
    def area_of(cls, name: str, *, scope_kind: Kind | None = None) -> Resource:
        """A role's workspace; `scope_kind` for a program's door, whose token also needs that kind's scope."""
        return cls(Kind.AREA, name, area=name, scope_kind=scope_kind)

    @classmethod
    def missing(cls, kind: Kind, ident: object) -> Resource:
        return cls(kind, ident, exists=False)

    @classmethod
    def patient(cls, ident: int, user: User | None) -> Resource:
        if user is None or user.role is not Role.PATIENT:
            return cls.missing(Kind.PATIENT, ident)
        return cls(Kind.PATIENT, ident, patient_id=user.id)

    @classmethod
    def appointment(cls, ident: int, appointment: Appointment | None) -> Resource:
        if appointment is None:
            return cls.missing(Kind.APPOINTMENT, ident)
        return cls(Kind.APPOINTMENT, ident, patient_id=appointment.patient_id, doctor_id=appointment.doctor_id)

    @classmethod
    def appointments_of(cls, patient: User | None, patient_id: int) -> Resource:
        """A patient's appointments as a whole (`id` None): booking a new one, listing them."""
        if patient is None or patient.role is not Role.PATIENT:
            return cls.missing(Kind.APPOINTMENT, patient_id)
        return cls(Kind.APPOINTMENT, None, patient_id=patient.id)

    @classmethod
    def invoice(cls, ident: int, invoice: Invoice | None) -> Resource:
        if invoice is None:
            return cls.missing(Kind.INVOICE, ident)
        from app.billing.queries import shown_to_patient

        return cls(Kind.INVOICE, ident, patient_id=invoice.patient_id, shown_to_patient=shown_to_patient(invoice))

    @classmethod
    def record(cls, patient_id: int) -> Resource:
        user = db.session.get(User, patient_id)  # in the session's identity map for the view that shows it
        exists = user is not None and user.role is Role.PATIENT
        return cls(Kind.RECORD, patient_id, patient_id=patient_id, exists=exists)

    @classmethod
    def access_report(cls, patient_id: int) -> Resource:
        """The audit trail of one patient's record, as the patient reads it ("Who has seen my record")."""
        user = db.session.get(User, patient_id)
        exists = user is not None and user.role is Role.PATIENT
        return cls(Kind.AUDIT, patient_id, patient_id=patient_id, exists=exists)

    @classmethod
    def encounter(cls, ident: int, encounter: Encounter | None) -> Resource:
        if encounter is None:
            return cls.missing(Kind.ENCOUNTER, ident)
        return cls(Kind.ENCOUNTER, ident, patient_id=encounter.patient_id, doctor_id=encounter.doctor_id,
                   shown_to_patient=encounter.signed)

    @classmethod
    def visit_encounter(cls, appointment_id: int, appointment: Appointment | None) -> Resource:
        """The encounter a visit has or is about to have (opening it): its author is the appointment's doctor.
        A program opens it with an encounter scope rather than an appointment one."""
        ident = f"appointment:{appointment_id}"
        if appointment is None:
            return cls.missing(Kind.ENCOUNTER, ident)
        return cls(Kind.ENCOUNTER, ident, patient_id=appointment.patient_id, doctor_id=appointment.doctor_id,
                   shown_to_patient=False)

    @classmethod
    def schedule_entry(cls, ident: int, entry) -> Resource:
        if entry is None:
            return cls.missing(Kind.SCHEDULE, ident)
        return cls(Kind.SCHEDULE, ident, doctor_id=entry.doctor_id)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    status: int  # 200, 403 or 404
    basis: str  # why: self, owner, care_relationship, break_glass, billing_staff, role, or the refusal's reason
    grant: BreakGlassGrant | None = None

    @property
    def offers_break_glass(self) -> bool:
        return self.basis == "no_relationship"


def _allow(basis: str, grant: BreakGlassGrant | None = None) -> Decision:
    return Decision(True, 200, basis, grant)


def _hidden(reason: str) -> Decision:
    return Decision(False, 404, reason)


def _forbidden(reason: str) -> Decision:
    return Decision(False, 403, reason)


def required_scope(verb: Verb, resource: Resource) -> str | None:
    kind = resource.scope_kind if resource.kind is Kind.AREA or resource.scope_kind else resource.kind
    return None if kind is None else f"{kind.value}.{verb.value}"


def decide(actor: Actor, verb: Verb, resource: Resource, now: datetime | None = None) -> Decision:
    """May `actor` `verb` `resource`? No side effects."""
    if actor.role is None:
        return _hidden("anonymous")
    scope = required_scope(verb, resource)
    if actor.scopes is not None and scope is not None and scope not in actor.scopes:
        return _forbidden(f"scope_{scope}")
    if actor.patient_context is not None and resource.patient_id not in (None, actor.patient_context):
        return _hidden("outside_launch_context")
    if resource.kind is Kind.AREA:
        if actor.role in AREAS[resource.area or ""]:
            return _allow("role")
        return _forbidden(f"role_{actor.role.value}")
    if not resource.exists:
        return _hidden("not_found")
    return _RULES[resource.kind](actor.user, verb, resource, now)


def decide_each(actor: Actor, verb: Verb, resource: Resource, kinds: tuple[Kind, ...],
                now: datetime | None = None) -> dict[Kind, Decision]:
    """`resource` asked under each of `kinds` (a program reading several FHIR types of one record at once): the
    rule is decided once (the care relationship is one query, not one per kind), each kind's scope as `decide`
    checks it."""
    rule = decide(replace(actor, scopes=None), verb, resource, now)
    decisions = {}
    for kind in kinds:
        scope = required_scope(verb, replace(resource, scope_kind=kind))
        missing = actor.role is not None and actor.scopes is not None and scope not in actor.scopes
        decisions[kind] = _forbidden(f"scope_{scope}") if missing else rule
    return decisions


def _own_by_patient(user: User, resource: Resource) -> Decision | None:
    if user.role is Role.PATIENT:
        if user.id == resource.patient_id and resource.shown_to_patient:
            return _allow("self")
        return _hidden("not_own")
    return None


def _patient_profile(user: User, verb: Verb, resource: Resource, now) -> Decision:
    if (own := _own_by_patient(user, resource)) is not None or verb is not Verb.READ:
        return own or _hidden("not_own")
    if user.role is Role.DOCTOR:
        return _record(user, verb, Resource(Kind.RECORD, resource.patient_id, patient_id=resource.patient_id), now)
    if user.role in BILLING_STAFF:
        return _allow("billing_staff")
    return _hidden("not_own")


def _appointment(user: User, verb: Verb, resource: Resource, now) -> Decision:
    if (own := _own_by_patient(user, resource)) is not None:
        return own
    if user.role is Role.DOCTOR and user.id == resource.doctor_id:
        return _allow("owner")
    if user.role is Role.CLERK and (verb is Verb.READ or resource.id is None):
        return _allow("front_desk")  # reads the clinic's appointments, books for a patient; changes none
    return _hidden("not_own")


def _invoice(user: User, verb: Verb, resource: Resource, now) -> Decision:
    if user.role in BILLING_STAFF:
        return _allow("billing_staff")
    return _own_by_patient(user, resource) or _hidden("not_own")


def _record(user: User, verb: Verb, resource: Resource, now) -> Decision:
    if user.role is Role.PATIENT:
        return _allow("self") if user.id == resource.patient_id and verb is Verb.READ else _hidden("not_own")
    if user.role is not Role.DOCTOR:
        return _forbidden(f"role_{user.role.value}")
    assert resource.patient_id is not None
    if has_care_relationship(user.id, resource.patient_id, now):
        return _allow("care_relationship")
    grant = active_grant(user.id, resource.patient_id, now)
    if grant is not None:
        return _allow("break_glass", grant)
    return _forbidden("no_relationship")


def _encounter(user: User, verb: Verb, resource: Resource, now) -> Decision:
    if user.role is Role.PATIENT:
        return _own_by_patient(user, resource) if verb is Verb.READ else _hidden("not_own")
    if user.role is Role.DOCTOR and verb is Verb.WRITE:
        return _allow("author") if user.id == resource.doctor_id else _hidden("not_author")
    record = _record(user, verb, Resource(Kind.RECORD, resource.patient_id, patient_id=resource.patient_id), now)
    if record.allowed and not resource.shown_to_patient and user.id != resource.doctor_id:
        return _hidden("draft_of_another")  # a draft is its author's alone, break-glass or not
    return record


def _schedule(user: User, verb: Verb, resource: Resource, now) -> Decision:
    if user.role is Role.DOCTOR and user.id == resource.doctor_id:
        return _allow("owner")
    return _hidden("not_own")


def _access_report(user: User, verb: Verb, resource: Resource, now) -> Decision:
    if user.role is Role.PATIENT:
        return _allow("self") if user.id == resource.patient_id and verb is Verb.READ else _hidden("not_own")
    return _forbidden(f"role_{user.role.value}")


_RULES = {Kind.PATIENT: _patient_profile, Kind.APPOINTMENT: _appointment, Kind.INVOICE: _invoice,
          Kind.RECORD: _record, Kind.ENCOUNTER: _encounter, Kind.SCHEDULE: _schedule, Kind.AUDIT: _access_report}


# --- the care relationship and break-glass ---------------------------------------------------------------

def in_care_of(doctor_id: int, now: datetime | None = None) -> sa.Select:
    """The ids of the patients in `doctor_id`'s care (see the module's docstring): for the policy and the
    doctor's "my patients" list alike."""
    now = now or utcnow()  # a month counts as 30.44 days
    since = now - timedelta(days=round(30.44 * current_app.config["HMS_CARE_RELATIONSHIP_MONTHS"]))
    return sa.select(Appointment.patient_id).where(
        Appointment.doctor_id == doctor_id, Appointment.status.in_(CARING),
        sa.or_(Appointment.starts_at >= since, sa.and_(Appointment.status == Status.CONFIRMED,
                                                       Appointment.starts_at >= now)))


def has_care_relationship(doctor_id: int, patient_id: int, now: datetime | None = None) -> bool:
    return db.session.scalar(sa.select(sa.exists(
        in_care_of(doctor_id, now).where(Appointment.patient_id == patient_id)))) is True


def opened_by_break_glass(doctor_id: int, now: datetime | None = None) -> sa.Select:
    """The ids of the patients whose record `doctor_id` opened with a break-glass grant that is still active."""
    return sa.select(BreakGlassGrant.patient_id).where(BreakGlassGrant.doctor_id == doctor_id,
                                                       BreakGlassGrant.expires_at > (now or utcnow()))


def active_grant(doctor_id: int, patient_id: int, now: datetime | None = None) -> BreakGlassGrant | None:
    return db.session.scalar(sa.select(BreakGlassGrant).where(
        BreakGlassGrant.doctor_id == doctor_id, BreakGlassGrant.patient_id == patient_id,
        BreakGlassGrant.expires_at > (now or utcnow())).order_by(BreakGlassGrant.expires_at.desc()).limit(1))
