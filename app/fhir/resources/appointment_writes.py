"""Booking and cancelling an Appointment through FHIR: `POST` (create, conditional on an identifier), `PUT` and
JSON Patch of its status. The API's services and policy questions (`app.api.appointments`), FHIR's shapes:

- **Create.** `status` `proposed` (or `pending`, what HMS shows for a request); the time of a free Slot: a `slot`
  reference (`Slot/<doctor>-<department>-<start>`), or a Practitioner (or PractitionerRole) participant and
  `start`; the Patient participant (a patient's token: themselves, may be left out; the front desk names the
  patient); the reason as `reasonCode[0].text` (or `description`). The appointment is `requested` (FHIR
  `pending`) until the doctor accepts. `identifier`s are kept (unique per patient), shown and searchable.
- **Update/patch.** Only a cancellation: `status` becomes `cancelled`, with `cancelationReason.text` as the reason
  (a patient's cancellation, or the clinic's for the doctor, by the same rules as the pages). Every other element
  HMS holds must stay as it is.
"""
from __future__ import annotations

from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError
from sqlalchemy.exc import IntegrityError

from app.accounts.models import Role, User
from app.api.auth import authorize
from app.appointments.models import Appointment, AppointmentIdentifier, Status
from app.appointments.services import TRANSITIONS, BookingError, TransitionError, bookable_slots, book, transition
from app.extensions import db
from app.fhir import access
from app.fhir.outcomes import FhirError
from app.fhir.resources.appointment import _appointments, identifier_clause, to_fhir
from app.fhir.resources.scheduling import decode_slot_id, slot_id
from app.fhir.search import as_id, base_url, parse_token
from app.fhir.writes import apply_patch, check_if_match, if_none_exist, patch_body, resource_body
from app.policy import Resource, Verb
from app.scheduling.slots import free_slots
from app.timeutil import clinic_zone

NEW_STATUSES = ("proposed", "pending")
CONFLICTS = {"slot_taken", "patient_overlap"}  # 409 conflict; any other refusal of a booking is 422 business-rule
MAX_REASON = 500  # the reason columns' length
MAX_IDENTIFIER = 255
MIN_YEAR, MAX_YEAR = 1900, 9000


# --- the incoming resource: the elements HMS reads, typed; any other element is accepted and not kept ----------

class _Element(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class _Reference(_Element):
    reference: StrictStr | None = None


class _Concept(_Element):
    text: StrictStr | None = None


class _Identifier(_Element):
    system: StrictStr | None = None
    value: StrictStr | None = None


class _Participant(_Element):
    actor: _Reference | None = None


class AppointmentIn(_Element):
    resourceType: Literal["Appointment"]
    id: StrictStr | None = None
    status: StrictStr
    start: StrictStr | None = None
    end: StrictStr | None = None
    slot: list[_Reference] = Field(default_factory=list)
    participant: list[_Participant] = Field(default_factory=list)
    reasonCode: list[_Concept] = Field(default_factory=list)
    description: StrictStr | None = None
    identifier: list[_Identifier] = Field(default_factory=list)
    cancelationReason: _Concept | None = None


def parse(body: dict) -> AppointmentIn:
    try:
        resource = AppointmentIn.model_validate(body)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = "Appointment" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
        message = "required" if first["type"] == "missing" else first["msg"]
        raise FhirError(400, f"{where}: {message}.", code="invalid", expression=where) from None
    _instant(resource.start, "start")
    _instant(resource.end, "end")
    return resource


def _instant(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise FhirError(400, f"Appointment.{name}: {text[:40]!r} is not an instant (a dateTime with its zone).",
                        code="invalid", expression=f"Appointment.{name}")
    if not MIN_YEAR <= moment.year <= MAX_YEAR:  # far from any slot, and safe to compute with in every zone
        raise FhirError(400, f"Appointment.{name}: {text[:40]!r} is out of range.", code="invalid",
                        expression=f"Appointment.{name}")
    return moment


def _referenced(reference: _Reference | None) -> tuple[str, str] | None:
    """(type, id) of a literal reference: `Type/id` or the full URL on this server."""
    text = (reference.reference if reference else None) or ""
    if text.startswith(base_url() + "/"):
        text = text[len(base_url()) + 1:]
    kind, _, ident = text.partition("/")
    return (kind, ident) if kind and ident and "/" not in ident else None


def _participants(resource: AppointmentIn) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for index, participant in enumerate(resource.participant):
        reference = _referenced(participant.actor)
        if participant.actor is not None and participant.actor.reference is not None and reference is None:
            raise FhirError(400, f"Appointment.participant[{index}].actor: a reference Type/id.", code="invalid",
                            expression=f"Appointment.participant[{index}].actor")
        if reference is not None:
            found.setdefault(reference[0], []).append(reference[1])
    return found


def _business(detail: str, expression: str | None = None, status: int = 422) -> FhirError:
    return FhirError(status, detail, code="business-rule" if status == 422 else "conflict", expression=expression)


def _one(values: list[str], what: str) -> str | None:
    if len(set(values)) > 1:
        raise _business(f"Name one {what}.", "Appointment.participant")
    return values[0] if values else None


def _reason(resource: AppointmentIn) -> str:
    texts = [c.text for c in resource.reasonCode if c.text and c.text.strip()]
    reason = texts[0] if texts else resource.description
    if not reason or not reason.strip():
        raise _business("Give the reason for the visit (reasonCode[0].text or description).", "Appointment.reasonCode")
    if len(reason.strip()) > MAX_REASON:
        raise _business(f"The reason is at most {MAX_REASON} characters.", "Appointment.reasonCode")
    return reason


def _identifiers(resource: AppointmentIn) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for index, item in enumerate(resource.identifier):
        where = f"Appointment.identifier[{index}]"
        if not item.value:
            raise FhirError(400, f"{where}.value: required.", code="invalid", expression=where)
        if len(item.value) > MAX_IDENTIFIER or len(item.system or "") > MAX_IDENTIFIER:
            raise _business(f"{where}: a system and a value of at most {MAX_IDENTIFIER} characters each.", where)
        if (item.system or "", item.value) not in found:
            found.append((item.system or "", item.value))
    return found


# --- create -------------------------------------------------------------------------------------------------

def _patient_to_book_for(named: str | None) -> User:
    """The token's own patient, or the one the front desk names; the policy decides (another patient: 404)."""
    me = access.me()
    if named is None:
        if me.role is not Role.PATIENT:
            raise _business("Name the patient to book for (a participant whose actor is Patient/<id>).",
                            "Appointment.participant")
        patient_id = me.id
    else:
        patient_id = as_id(named)
    patient = db.session.get(User, patient_id) if patient_id else None
    authorize(Verb.WRITE, Resource.appointments_of(patient, patient_id))
    return patient


def _schedule_slot(doctor_id: int, department_id: int | None, start: datetime, *, free: bool):
    """The slot of the doctor's schedule starting at `start` (the one slot engine): bookable now (`free`), or
    whether booked or not."""
    day = start.astimezone(clinic_zone()).date()
    if free:
        slots = bookable_slots([doctor_id], day, day, department_id=department_id).get(doctor_id, [])
    else:
        slots = free_slots([doctor_id], day, day, busy={}, department_id=department_id).get(doctor_id, [])
    return next((s for s in slots if s.start == start), None)


def _what_to_book(resource: AppointmentIn, participants: dict[str, list[str]]) -> tuple[int, int | None, datetime]:
    """(doctor, department, start) from the `slot` reference, or from a Practitioner (or PractitionerRole)
    participant and `start`."""
    start = _instant(resource.start, "start")
    practitioner = _one(participants.get("Practitioner", []), "Practitioner")
    role = _one(participants.get("PractitionerRole", []), "PractitionerRole")
    doctor_id, department_id = (as_id(practitioner), None) if practitioner else (None, None)
    if role is not None:
        parts = role.split("-")
        if len(parts) != 2 or not all(as_id(p) for p in parts) or (doctor_id and doctor_id != as_id(parts[0])):
            raise _business(f"PractitionerRole/{role[:64]} is not a role of the practitioner.",
                            "Appointment.participant")
        doctor_id, department_id = as_id(parts[0]), as_id(parts[1])
    if len(resource.slot) > 1:
        raise _business("Book one slot at a time.", "Appointment.slot")
    if resource.slot:
        reference = _referenced(resource.slot[0])
        try:
            if reference is None or reference[0] != "Slot":
                raise FhirError(404, "")
            slot_doctor, slot_department, slot_start = decode_slot_id(reference[1])
        except FhirError:
            raise _business("Appointment.slot: a reference to a Slot of this server (Slot/<doctor>-<department>-"
                            "<start>).", "Appointment.slot") from None
        if doctor_id not in (None, slot_doctor) or department_id not in (None, slot_department):
            raise _business("The participant's practitioner is not the slot's.", "Appointment.participant")
        if start is not None and start != slot_start:
            raise _business("Appointment.start is not the slot's start.", "Appointment.start")
        return slot_doctor, slot_department, slot_start
    if not doctor_id or start is None:
        raise _business("Name a free Slot (Appointment.slot), or a Practitioner participant and the start.",
                        "Appointment.slot")
    if department_id is None:  # the department whose free slot (or booked one) starts then
        found = _schedule_slot(doctor_id, None, start, free=True) or _schedule_slot(doctor_id, None, start, free=False)
        department_id = found.department_id if found is not None else None
    return doctor_id, department_id, start


def _existing(patient: User, condition: dict[str, str]) -> dict | None:
    """The one appointment of the patient whose identifier matches (412 for more than one). Only the patient's
    own identifiers are searched: another patient's are never matched, nor revealed."""
    token = parse_token(condition["identifier"])
    matches = list(db.session.scalars(sa.select(AppointmentIdentifier.appointment_id).distinct().where(
        AppointmentIdentifier.patient_id == patient.id, identifier_clause(token)).limit(2)))
    if len(matches) > 1:
        raise FhirError(412, "If-None-Exist matches more than one appointment; name the identifier's system and "
                             "value.", code="duplicate")
    if not matches:
        return None
    appointment = db.session.scalar(_appointments().where(Appointment.id == matches[0]))
    authorize(Verb.READ, Resource.appointment(appointment.id, appointment))
    return to_fhir(appointment)


def _refuse(refused: BookingError, doctor_id: int, department_id: int | None, start: datetime):
    nearby = "".join(f" Slot/{slot_id(s)}" for s in refused.alternatives)
    hint = f" Free nearby:{nearby}." if nearby else ""
    if refused.code == "slot_taken" and _schedule_slot(doctor_id, department_id, start, free=False) is None:
        raise _business(f"{start.isoformat()} is not a slot of Practitioner/{doctor_id}'s schedule "
                        f"(search Slot?schedule=...&status=free).{hint}", "Appointment.start")
    if refused.code in CONFLICTS:
        raise _business(f"{refused}{hint}", "Appointment.slot", status=409)
    raise _business(f"{refused}{hint}", "Appointment.start")


def create() -> tuple[dict, int]:
    """Book: 201 and the new appointment, or 200 and the one an `If-None-Exist` identifier matched."""
    resource = parse(resource_body("Appointment"))
    condition = if_none_exist(("identifier",))
    if resource.status not in NEW_STATUSES:
        raise _business(f"A new appointment is a request: status {' or '.join(NEW_STATUSES)} (the doctor accepts "
                        f"it), not {resource.status[:20]!r}.", "Appointment.status")
    participants = _participants(resource)
    unknown = set(participants) - {"Patient", "Practitioner", "PractitionerRole"}
    if unknown:
        raise _business(f"Participants are the Patient and the Practitioner, not {sorted(unknown)[0][:40]}.",
                        "Appointment.participant")
    patient = _patient_to_book_for(_one(participants.get("Patient", []), "Patient"))
    if condition is not None:
        existing = _existing(patient, condition)
        if existing is not None:
            return existing, 200
    identifiers = _identifiers(resource)
    reason = _reason(resource)
    doctor_id, department_id, start = _what_to_book(resource, participants)
    department_id = department_id or 0  # no slot of the doctor starts then: 0 names no department, and `book`
    # refuses with its own reason (past, beyond the horizon, a doctor who cannot be booked) or as no slot
    try:
        appointment = book(patient, doctor_id=doctor_id, department_id=department_id, starts_at=start, reason=reason)
    except BookingError as refused:
        _refuse(refused, doctor_id, department_id, start)
    end = _instant(resource.end, "end")
    if end is not None and end != appointment.ends_at:
        raise _business(f"Appointment.end is not the slot's end ({appointment.ends_at.isoformat()}).",
                        "Appointment.end")
    _keep_identifiers(appointment, identifiers)
    return to_fhir(appointment), 201


def _keep_identifiers(appointment: Appointment, identifiers: list[tuple[str, str]]) -> None:
    try:
        with db.session.begin_nested():
            db.session.add_all(AppointmentIdentifier(appointment_id=appointment.id, patient_id=appointment.patient_id,
                                                     system=system, value=value) for system, value in identifiers)
            db.session.flush()
    except IntegrityError:
        raise FhirError(409, "An appointment of this patient already has that identifier (If-None-Exist finds it).",
                        code="duplicate", expression="Appointment.identifier") from None
    db.session.expire(appointment, ["identifiers"])


# --- update and patch: cancelling ------------------------------------------------------------------------

def _held(resource: dict) -> dict:
    """The elements HMS holds and a client may not change, as comparable values."""
    parsed = parse(resource)

    def actors():
        return sorted("/".join(r) for r in (_referenced(p.actor) for p in parsed.participant) if r)

    return {"start": _instant(parsed.start, "start"), "end": _instant(parsed.end, "end"),
            "participant": actors(),
            "reasonCode": [c.text for c in parsed.reasonCode if c.text],
            "identifier": sorted((i.system or "", i.value or "") for i in parsed.identifier)}


def _load(ident: str) -> tuple[Appointment, dict]:
    appointment_id = as_id(ident)
    appointment = db.session.scalar(_appointments().where(Appointment.id == appointment_id).with_for_update()
                                     .execution_options(populate_existing=True))
    authorize(Verb.WRITE, Resource.appointment(appointment_id, appointment))
    current = to_fhir(appointment)
    check_if_match(current)
    return appointment, current


def update(ident: str) -> dict:
    body = resource_body("Appointment")
    appointment, current = _load(ident)
    if body.get("id") != current["id"]:
        raise FhirError(400, f"The resource's id must be the one of the URL ({current['id']}).", code="invalid",
                        expression="Appointment.id")
    return _change(appointment, current, body)


def patch(ident: str) -> dict:
    operations = patch_body()
    appointment, current = _load(ident)
    wanted = apply_patch(current, operations)
    if not isinstance(wanted, dict) or wanted.get("resourceType") != "Appointment" or wanted.get("id") != current["id"]:
        raise _business("A patch cannot change the resource's type or id.", "Appointment.id")
    return _change(appointment, current, wanted)


def _change(appointment: Appointment, current: dict, wanted: dict) -> dict:
    """The change from `current` to `wanted`: none, or a cancellation through the domain's rules."""
    resource = parse(wanted)
    held = _held(current)
    changed = [name for name, value in _held(wanted).items() if value != held[name]]
    if changed:
        raise _business(f"Only the status (to cancelled) and cancelationReason can change here; not "
                        f"{', '.join(changed)}. Book another appointment to change the time.",
                        f"Appointment.{changed[0]}")
    reason = resource.cancelationReason.text if resource.cancelationReason else None
    if resource.status == current["status"]:
        if reason != current.get("cancelationReason", {}).get("text"):
            raise _business("The reason changes only with the cancellation.", "Appointment.cancelationReason")
        return current
    if resource.status != "cancelled":
        raise _business(f"Appointments are only cancelled here (status cancelled), not made {resource.status[:20]!r}"
                        "; the doctor accepts and checks in on their workspace.", "Appointment.status")
    if reason is not None and len(reason.strip()) > MAX_REASON:
        raise _business(f"The reason is at most {MAX_REASON} characters.", "Appointment.cancelationReason")
    me = access.me()
    target = Status.CANCELLED_BY_PATIENT if me.role is Role.PATIENT else Status.CANCELLED_BY_CLINIC
    rule = TRANSITIONS.get((appointment.status, target))
    if rule is not None and rule.reason_required and not (reason or "").strip():
        raise _business("Give a reason (cancelationReason.text); the patient will see it.",
                        "Appointment.cancelationReason")
    try:
        transition(appointment, target, me, reason=reason)
    except TransitionError as error:
        raise _business(str(error), "Appointment.status") from None
    return to_fhir(appointment)

