"""Schedule (a doctor's bookable time in one department) and Slot (a free slot of it, from the one slot engine,
`app.appointments.services.bookable_slots`: the slots a patient can book now, booked ones and those beyond the
booking horizon left out).

Slots are computed, never stored, so their ids carry what names them: `<doctor>-<department>-<start as Unix
seconds>`. Reading a slot asks the engine again: a slot that is no longer free is 404.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, selectinload

from app.accounts.models import User
from app.appointments.services import bookable_slots
from app.clinic.models import Department, DoctorProfile
from app.extensions import db
from app.fhir import access
from app.fhir.outcomes import FhirError
from app.fhir.resources.common import instant, ref
from app.fhir.resources.directory import not_found, role_id, split_pair
from app.fhir.search import Page, SearchQuery, as_id, list_page
from app.policy import Kind
from app.scheduling.slots import Slot
from app.timeutil import clinic_today, clinic_zone

SCHEDULE_PARAMS = {"actor": "reference"}
SLOT_PARAMS = {"schedule": "reference", "start": "date", "status": "token"}
DEFAULT_DAYS = 14  # a slot search without `start` covers today and the next 13 days
MAX_DAYS = 31


# --- Schedule ----------------------------------------------------------------------------------------------

def schedule(profile: DoctorProfile, department: Department) -> dict:
    user = profile.user
    return {"resourceType": "Schedule", "id": role_id(user.id, department.id),
            "active": user.active and department.active,
            "serviceType": [{"text": department.name}], "specialty": [{"text": profile.specialty}],
            "actor": [ref("PractitionerRole", role_id(user.id, department.id)),
                      ref("Practitioner", user.id, user.full_name)],
            "comment": f"Free slots of {user.full_name} in {department.name}"}


def _profiles(doctor_id: int | None = None) -> list[DoctorProfile]:
    select = sa.select(DoctorProfile).options(joinedload(DoctorProfile.user), selectinload(DoctorProfile.departments))
    if doctor_id is not None:
        select = select.where(DoctorProfile.user_id == doctor_id)
    return list(db.session.scalars(select).unique())


def read_schedule(ident: str) -> dict:
    access.require_directory(Kind.SCHEDULE)
    doctor_id, department_id = split_pair(ident, "Schedule")
    for profile in _profiles(doctor_id):
        for department in profile.departments:
            if department.id == department_id:
                return schedule(profile, department)
    raise not_found("Schedule", ident)


def search_schedule(query: SearchQuery) -> Page:
    access.require_directory(Kind.SCHEDULE)
    schedules = [schedule(p, d) for p in _profiles() for d in p.departments]
    for ors in query.references("actor", "Practitioner"):
        schedules = [s for s in schedules if s["actor"][1]["reference"].split("/")[1] in ors]
    return list_page(query, schedules, key=lambda s: [int(part) for part in s["id"].split("-")])


# --- Slot --------------------------------------------------------------------------------------------------

def slot_id(slot: Slot) -> str:
    return f"{slot.doctor_id}-{slot.department_id}-{int(slot.start.timestamp())}"


def slot(free: Slot) -> dict:
    return {"resourceType": "Slot", "id": slot_id(free),
            "schedule": ref("Schedule", role_id(free.doctor_id, free.department_id)),
            "status": "free", "start": instant(free.start), "end": instant(free.end)}


def decode_slot_id(ident: str) -> tuple[int, int, datetime]:
    parts = ident.split("-")
    if len(parts) != 3 or not all(as_id(p) for p in parts[:2]) or not re.fullmatch(r"[1-9][0-9]{0,11}", parts[2]):
        raise not_found("Slot", ident)
    try:
        start = datetime.fromtimestamp(int(parts[2]), tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise not_found("Slot", ident) from None
    return int(parts[0]), int(parts[1]), start


def read_slot(ident: str) -> dict:
    access.require_directory(Kind.APPOINTMENT)
    doctor_id, department_id, start = decode_slot_id(ident)
    day = start.astimezone(clinic_zone()).date()
    free = bookable_slots([doctor_id], day, day, department_id=department_id).get(doctor_id, [])
    found = next((s for s in free if s.start == start), None)
    if found is None:
        raise FhirError(404, f"Slot/{ident} is not free (booked, past, or not a slot of that schedule).",
                        code="not-found")
    return slot(found)


def _days(query: SearchQuery):
    """The clinic days the `start` parameters cover (by default the next DEFAULT_DAYS), at most MAX_DAYS."""
    first, last = clinic_today(), None
    for ors in query.dates("start"):
        if len(ors) != 1:
            continue  # an OR of ranges: the whole default window, filtered slot by slot
        param = ors[0]
        low = param.low if param.prefix in ("ge", "eq") else param.high if param.prefix == "gt" else None
        high = param.high if param.prefix in ("le", "eq") else param.low if param.prefix == "lt" else None
        if low is not None:
            first = max(first, low.astimezone(clinic_zone()).date())
        if high is not None:
            end = (high - timedelta(microseconds=1)).astimezone(clinic_zone()).date()
            last = end if last is None else min(last, end)
    last = last if last is not None else first + timedelta(days=DEFAULT_DAYS - 1)
    if (last - first).days >= MAX_DAYS:
        raise FhirError(400, f"Ask for at most {MAX_DAYS} days of slots (start=ge…&start=le…).", code="too-costly",
                        expression="start")
    return first, last


def search_slot(query: SearchQuery) -> Page:
    access.require_directory(Kind.APPOINTMENT)
    wanted: set[tuple[int, int]] | None = None
    for ors in query.references("schedule", "Schedule"):
        pairs = set()
        for ident in ors:
            parts = ident.split("-")
            if len(parts) == 2:
                pairs.add((as_id(parts[0]), as_id(parts[1])))
        wanted = pairs if wanted is None else wanted & pairs
    if any(not any(t.code == "free" and t.system in (None, "http://hl7.org/fhir/slotstatus") for t in ors)
           for ors in query.tokens("status")):
        wanted = set()  # only free slots exist here
    first, last = _days(query)
    if wanted is None:
        doctor_ids = list(db.session.scalars(sa.select(DoctorProfile.user_id).join(User, User.id == DoctorProfile.user_id)
                                             .where(User.active.is_(True))))
    else:
        doctor_ids = sorted({doctor for doctor, _ in wanted})
    free = [s for slots in bookable_slots(doctor_ids, first, last).values() for s in slots
            if wanted is None or (s.doctor_id, s.department_id) in wanted] if last >= first and doctor_ids else []
    starts = query.dates("start")
    free = [s for s in free if all(any(p.matches(s.start) for p in ors) for ors in starts)]
    return list_page(query, [slot(s) for s in free], key=_slot_key)


def _slot_key(resource: dict) -> list[int]:
    doctor, department, start = resource["id"].split("-")
    return [int(start), int(doctor), int(department)]
