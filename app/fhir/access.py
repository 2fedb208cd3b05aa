"""The FHIR door's questions to the one access policy (`app.policy`), asked through the API's door
(`app.api.auth`: the token's scopes on top, every refusal audited, 403/404 as the policy says).

- The directory (Practitioner, PractitionerRole, Organization, Schedule, Slot) is read by every signed-in
  role whose token's scope names it (the role's own workspace, entered with that scope).
- A patient's data is asked as the policy's resource (`Resource.record`, `.encounter`, `.appointment`), named
  by the FHIR type's scope (`patient/Condition.rs` is the record's `record.read`; a FHIR Patient is the record's
  demographics, named by a `Patient` scope): a doctor without a care relationship gets 403, another patient's
  data is 404.
- A patient's token only ever reaches its own patient, and a clinician's token launched for a patient (SMART
  `launch/patient`) only that patient (the policy's `patient_context`): a search without `patient` is about them.
- Every read of clinical data is audited once per request like a page read (`record_read`), with the client.
"""
from __future__ import annotations

import dataclasses

from app.accounts.models import Role, User
from app.api.auth import actor, authorize
from app.extensions import db
from app.fhir.outcomes import FhirError
from app.fhir.search import as_id
from app.policy import Decision, Kind, Resource, Verb, decide, decide_each
from app.records import services as records

AREA_OF_ROLE = {Role.PATIENT: "patient", Role.DOCTOR: "doctor", Role.CLERK: "billing", Role.ADMIN: "admin"}


def me() -> User:
    return actor().user


def is_patient() -> bool:
    return actor().role is Role.PATIENT


def context_patient() -> int | None:
    """The patient the token is about when a search does not say: a patient's own token, or a clinician's
    launched for one patient (SMART `launch/patient`); None for a clinician's token without a patient."""
    if is_patient():
        return me().id
    return actor().patient_context


def require_directory(kind: Kind) -> Decision:
    """The clinic's directory and free slots: any signed-in role, with a token whose scope names `kind`."""
    return authorize(Verb.READ, Resource.area_of(AREA_OF_ROLE[actor().role], scope_kind=kind))


def require_area(area: str, kind: Kind) -> Decision:
    """A role's workspace, entered with a token whose scope names `kind` (for a search across patients)."""
    return authorize(Verb.READ, Resource.area_of(area, scope_kind=kind))


def named(resource: Resource, kind: Kind) -> Resource:
    """`resource` asked under the FHIR type whose scope names `kind`."""
    return dataclasses.replace(resource, scope_kind=kind)


def read_record(patient_id: int, kind: Kind = Kind.RECORD) -> Decision:
    return authorize(Verb.READ, named(Resource.record(patient_id), kind))


def read_patient(patient_id: int) -> Decision:
    """A FHIR Patient: the patient's own profile; for a clinician, the demographics of a record they may read."""
    if is_patient():
        return authorize(Verb.READ, Resource.patient(patient_id, db.session.get(User, patient_id)))
    return read_record(patient_id, Kind.PATIENT)


def may_read_patient(patient_id: int) -> bool:
    """For `_include` and `$everything`: asked without refusing (an entry the token may not read is left out)."""
    if is_patient():
        return decide(actor(), Verb.READ, Resource.patient(patient_id, db.session.get(User, patient_id))).allowed
    return decide(actor(), Verb.READ, named(Resource.record(patient_id), Kind.PATIENT)).allowed


def may_read_parts(patient_id: int, kinds: tuple[Kind, ...]) -> dict[Kind, bool]:
    """For `$everything`: which FHIR types of the patient's record the token may read (asked without refusing),
    the policy's rule decided once for all of them."""
    decisions = decide_each(actor(), Verb.READ, Resource.record(patient_id), kinds)
    return {kind: decision.allowed for kind, decision in decisions.items()}


def may_read_directory(kind: Kind) -> bool:
    return decide(actor(), Verb.READ, Resource.area_of(AREA_OF_ROLE[actor().role], scope_kind=kind)).allowed


def may(kind: Kind, resource: Resource) -> bool:
    return decide(actor(), Verb.READ, named(resource, kind)).allowed


def searched_patient(query, kind: Kind) -> tuple[int, Decision]:
    """The patient whose clinical data a search reads, and the policy's decision: the `patient` parameter, or the
    patient token's own. A clinician names the patient (one record per request, audited as one read)."""
    ident = query.reference("patient", "Patient")
    if ident is None:
        if context_patient() is None:
            raise FhirError(400, "Name the patient: this search reads one patient's record (patient=<id>).",
                            code="required", expression="patient")
        ident = str(context_patient())
    patient_id = as_id(ident)  # 0 names nobody: the policy's 404
    return patient_id, read_record(patient_id, kind)


def audit(patient_id: int, categories: list[str], *, view: str, decision: Decision | None,
          entity_type: str = "patient", entity_id: int | str | None = None) -> None:
    records.record_read(patient_id, categories, view=view, entity_type=entity_type, entity_id=entity_id,
                        decision=decision)
