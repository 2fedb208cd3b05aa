"""Doctors and departments through the API: the directory (every role), the admin's management of doctors, and a
doctor's own weekly availability and time off.

The same services as the pages (`app.clinic.services`, `app.scheduling.services`). The directory is the policy's
`directory` area with the `Practitioner` scope; managing doctors is the `admin` area; availability windows and
time off are `Resource.schedule_entry` (the doctor only, another's is 404) with the `Schedule` scope.
Money (the consultation fee) is a decimal written as a string with two places ("120.00"), read from a string or
a number.
"""
from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Annotated

import sqlalchemy as sa
from flask import url_for
from pydantic import AfterValidator, Field, PlainSerializer
from sqlalchemy.orm import joinedload, selectinload

from app.accounts.models import Role, User
from app.api import bp
from app.api.auth import actor, authorize, require_area
from app.api.framework import (MAX_LIMIT, ApiModel, Reply, check_if_match, decode_cursor, operation, page_model,
                               paged)
from app.api.problems import FieldError, Problem
from app.clinic.models import Department, DoctorProfile
from app.clinic.services import (ClinicError, DoctorDetails, create_doctor, departments, doctors_query,
                                 set_doctor_active, update_doctor)
from app.extensions import db
from app.policy import Kind, Resource, Verb
from app.scheduling.models import Unavailability, UnavailabilityKind, WeeklyAvailability
from app.scheduling.services import (ScheduleError, add_unavailability, add_window, delete_unavailability,
                                     delete_window, leave, local_range, windows)

Id = Annotated[int, Field(ge=1, le=10**18)]
Money = Annotated[Decimal, Field(ge=0, le=100000, max_digits=8, decimal_places=2),
                  PlainSerializer(lambda amount: f"{amount:.2f}", return_type=str, when_used="json")]
Day = Annotated[date, Field(ge=date(2000, 1, 1), le=date(2100, 12, 31))]


def _local(moment: time) -> time:
    if moment.tzinfo is not None:
        raise ValueError("Give the clinic's local time, without an offset.")
    return moment


LocalTime = Annotated[time, AfterValidator(_local)]


class DepartmentOut(ApiModel):
    id: int
    name: str
    description: str | None
    active: bool


class DepartmentList(ApiModel):
    items: list[DepartmentOut]


class DoctorOut(ApiModel):
    id: int
    full_name: str
    specialty: str
    departments: list[DepartmentOut]
    bio: str | None
    consultation_fee: Money
    active: bool
    email: str | None = Field(description="Admins only (null for others).")
    phone: str | None = Field(description="Admins only (null for others).")
    licence_number: str | None = Field(description="Admins only (null for others).")


DoctorPage = page_model(DoctorOut)


class DoctorQuery(ApiModel):
    q: str | None = Field(None, max_length=80, description="Part of the name, specialty or licence number.")
    department_id: Id | None = None
    include_inactive: bool = Field(False, description="Deactivated doctors too (admins only).")
    limit: int = Field(50, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(None, max_length=400)


class DoctorIn(ApiModel):
    full_name: Annotated[str, Field(min_length=1, max_length=120)]
    email: Annotated[str, Field(min_length=3, max_length=254)]
    phone: Annotated[str, Field(min_length=1, max_length=32)]
    department_ids: list[Id] = Field(min_length=1, max_length=50)
    specialty: Annotated[str, Field(min_length=1, max_length=80)]
    licence_number: Annotated[str, Field(min_length=1, max_length=40)]
    consultation_fee: Money
    bio: Annotated[str | None, Field(max_length=2000)] = None


class DoctorPatchIn(ApiModel):
    """The fields to change (any subset); null clears the bio."""
    full_name: Annotated[str, Field(min_length=1, max_length=120)] = None
    email: Annotated[str, Field(min_length=3, max_length=254)] = None
    phone: Annotated[str, Field(min_length=1, max_length=32)] = None
    department_ids: list[Id] = Field(None, min_length=1, max_length=50)
    specialty: Annotated[str, Field(min_length=1, max_length=80)] = None
    licence_number: Annotated[str, Field(min_length=1, max_length=40)] = None
    consultation_fee: Money = None
    bio: Annotated[str | None, Field(max_length=2000)] = None


class WindowOut(ApiModel):
    id: int
    doctor_id: int
    department_id: int
    weekday: int = Field(description="0 = Monday … 6 = Sunday.")
    start_time: time = Field(description="In the clinic's time zone.")
    end_time: time
    slot_minutes: int


class WindowList(ApiModel):
    items: list[WindowOut]


class WindowIn(ApiModel):
    department_id: Id
    weekday: int = Field(ge=0, le=6, description="0 = Monday … 6 = Sunday.")
    start_time: LocalTime = Field(description="Local time of the clinic, e.g. 09:00.")
    end_time: LocalTime
    slot_minutes: int = Field(30, ge=10, le=120)


class TimeOffOut(ApiModel):
    id: int
    doctor_id: int
    kind: UnavailabilityKind
    starts_at: datetime
    ends_at: datetime
    reason: str


class TimeOffList(ApiModel):
    items: list[TimeOffOut]


class TimeOffIn(ApiModel):
    kind: UnavailabilityKind = UnavailabilityKind.LEAVE
    start_day: Day = Field(description="The first day, in the clinic's time zone.")
    start_time: LocalTime | None = Field(None, description="Empty: from the start of the day.")
    end_day: Day = Field(description="The last day.")
    end_time: LocalTime | None = Field(None, description="Empty: to the end of the day.")
    reason: Annotated[str, Field(min_length=1, max_length=200)]


class TimeOffQuery(ApiModel):
    from_day: Day | None = Field(None, description="Only time off that ends on or after this day (clinic zone).")


def _is_admin() -> bool:
    return actor().role is Role.ADMIN


def department_out(department: Department) -> DepartmentOut:
    return DepartmentOut(id=department.id, name=department.name, description=department.description,
                         active=department.active)


def out(profile: DoctorProfile) -> DoctorOut:
    user, admin = profile.user, _is_admin()
    return DoctorOut(id=user.id, full_name=user.full_name, specialty=profile.specialty,
                     departments=[department_out(d) for d in profile.departments], bio=profile.bio,
                     consultation_fee=profile.consultation_fee, active=user.active,
                     email=user.email if admin else None, phone=user.phone if admin else None,
                     licence_number=profile.licence_number if admin else None)


def window_out(window: WeeklyAvailability) -> WindowOut:
    return WindowOut(id=window.id, doctor_id=window.doctor_id, department_id=window.department_id,
                     weekday=window.weekday, start_time=window.start_time, end_time=window.end_time,
                     slot_minutes=window.slot_minutes)


def time_off_out(entry: Unavailability) -> TimeOffOut:
    return TimeOffOut(id=entry.id, doctor_id=entry.doctor_id, kind=entry.kind,
                      starts_at=entry.starts_at.astimezone(UTC), ends_at=entry.ends_at.astimezone(UTC),
                      reason=entry.reason)


def _doctor(doctor_id: int, *, lock: bool = False) -> DoctorProfile:
    """A doctor of the directory (a deactivated one for admins only), or 404; `lock` for a change."""
    query = (sa.select(DoctorProfile).where(DoctorProfile.user_id == doctor_id)
             .options(joinedload(DoctorProfile.user), selectinload(DoctorProfile.departments)))
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    profile = db.session.scalar(query)
    if profile is None or not (profile.user.active or _is_admin()):
        raise Problem(404, "No such doctor.")
    return profile


def _clinic_refusal(error: ClinicError):
    raise Problem(422, str(error), errors=[FieldError(f"/{error.field}" if error.field else "/", str(error))])


# --- the directory -----------------------------------------------------------------------------------------

@operation(bp, "GET", "/departments", tag="Doctors", summary="List the departments", response=DepartmentList,
           scope="Practitioner.r")
def list_departments():
    """The active departments by name (admins: every department, with `active`)."""
    require_area("directory", Kind.PRACTITIONER, Verb.READ)
    return DepartmentList(items=[department_out(d) for d in departments(active_only=not _is_admin())])


@operation(bp, "GET", "/doctors", tag="Doctors", summary="List and search doctors", query=DoctorQuery,
           response=DoctorPage, scope="Practitioner.s", errors=(403, 422))
def list_doctors(query: DoctorQuery):
    """Active doctors by name, searched over name, specialty and licence, filtered by department; a cursor gives
    the next page."""
    require_area("directory", Kind.PRACTITIONER, Verb.READ)
    if query.include_inactive:
        require_area("admin", Kind.PRACTITIONER, Verb.READ)
    select = doctors_query(search=query.q, department_id=query.department_id,
                           active=None if query.include_inactive else True)
    position = decode_cursor(query.cursor, (str, int))
    if position is not None:
        select = select.where(sa.or_(User.full_name > position[0],
                                     sa.and_(User.full_name == position[0], User.id > position[1])))
    rows = list(db.session.scalars(select.limit(query.limit + 1)).unique())
    items, cursor, headers = paged(rows, query.limit, lambda p: [p.user.full_name, p.user_id], "api.list_doctors")
    return Reply(DoctorPage(items=[out(p) for p in items], next_cursor=cursor), headers=headers)


@operation(bp, "GET", "/doctors/<id:doctor_id>", tag="Doctors", summary="Get a doctor", response=DoctorOut,
           scope="Practitioner.r", errors=(404,))
def get_doctor(doctor_id: int):
    """A doctor of the directory (admins also see deactivated ones, and the contact and licence)."""
    require_area("directory", Kind.PRACTITIONER, Verb.READ)
    return out(_doctor(doctor_id))


# --- the admin's management --------------------------------------------------------------------------------

@operation(bp, "POST", "/doctors", tag="Doctors", summary="Add a doctor", body=DoctorIn, response=DoctorOut,
           status=201, scope="Practitioner.c", idempotent=True, errors=(403, 422))
def create_doctor_account(body: DoctorIn):
    """The doctor's login (no password: a set-password link is emailed, as from the admin's page) and profile."""
    from app.accounts.tokens import issue_password_token

    require_area("admin", Kind.PRACTITIONER)
    try:
        profile = create_doctor(DoctorDetails(**body.model_dump()))
    except ClinicError as error:
        _clinic_refusal(error)
    issue_password_token(profile.user, "set_password")
    return Reply(out(profile), headers={"Location": url_for("api.get_doctor", doctor_id=profile.user_id)})


@operation(bp, "PATCH", "/doctors/<id:doctor_id>", tag="Doctors", summary="Update a doctor", body=DoctorPatchIn,
           response=DoctorOut, scope="Practitioner.u", if_match=True, errors=(403, 404, 412, 422, 428))
def update_doctor_profile(doctor_id: int, body: DoctorPatchIn):
    """The admin changes a doctor's details (any subset of the fields)."""
    require_area("admin", Kind.PRACTITIONER)
    profile = _doctor(doctor_id, lock=True)
    check_if_match(out(profile))
    user = profile.user
    current = {"full_name": user.full_name, "email": user.email, "phone": user.phone,
               "department_ids": [d.id for d in profile.departments], "specialty": profile.specialty,
               "licence_number": profile.licence_number, "consultation_fee": profile.consultation_fee,
               "bio": profile.bio}
    changes = {name: getattr(body, name) for name in type(body).model_fields if name in body.model_fields_set}
    nulls = sorted(name for name, value in changes.items() if value is None and name != "bio")
    if nulls:
        raise Problem(422, "Some fields could not be accepted.",
                      errors=[FieldError(f"/{name}", "May not be null.") for name in nulls])
    try:
        update_doctor(profile, DoctorDetails(**{**current, **changes}))
    except ClinicError as error:
        _clinic_refusal(error)
    return out(profile)


def _set_active(doctor_id: int, active: bool) -> DoctorOut:
    require_area("admin", Kind.PRACTITIONER)
    profile = _doctor(doctor_id, lock=True)
    check_if_match(out(profile))
    set_doctor_active(profile, active)
    return out(profile)


@operation(bp, "POST", "/doctors/<id:doctor_id>/deactivate", tag="Doctors", summary="Deactivate a doctor",
           response=DoctorOut, scope="Practitioner.u", if_match=True, errors=(403, 404, 412, 428))
def deactivate_doctor(doctor_id: int):
    """The doctor can no longer sign in (their tokens stop at once) or be booked; nothing is removed."""
    return _set_active(doctor_id, False)


@operation(bp, "POST", "/doctors/<id:doctor_id>/activate", tag="Doctors", summary="Reactivate a doctor",
           response=DoctorOut, scope="Practitioner.u", if_match=True, errors=(403, 404, 412, 428))
def activate_doctor(doctor_id: int):
    """A deactivated doctor signs in and can be booked again."""
    return _set_active(doctor_id, True)


# --- the doctor's own availability and time off ------------------------------------------------------------

def _own_schedule(doctor_id: int, verb: Verb) -> DoctorProfile:
    """The token's own doctor profile (another doctor's schedule is 404); a change locks it, so two changes of
    one schedule are checked for overlaps one after the other."""
    require_area("doctor", Kind.SCHEDULE, verb)
    if actor().user.id != doctor_id:
        authorize(verb, Resource.missing(Kind.SCHEDULE, f"doctor:{doctor_id}"))
    return _doctor(doctor_id, lock=verb is Verb.WRITE)


def _entry(model, doctor_id: int, entry_id: int, verb: Verb = Verb.WRITE):
    """One of the doctor's windows or time off (404 otherwise); a change locks it."""
    query = sa.select(model).where(model.id == entry_id)
    if verb is Verb.WRITE:
        query = query.with_for_update().execution_options(populate_existing=True)
    entry = db.session.scalar(query)
    authorize(verb, Resource.schedule_entry(entry_id, entry))
    if entry.doctor_id != doctor_id:
        raise Problem(404, "No such resource.")
    return entry


def _schedule_refusal(error: ScheduleError):
    raise Problem(422, str(error), errors=[FieldError(f"/{error.field}" if error.field else "/", str(error))])


@operation(bp, "GET", "/doctors/<id:doctor_id>/availability", tag="Availability",
           summary="A doctor's weekly availability", response=WindowList, scope="Schedule.r", errors=(403, 404))
def list_availability(doctor_id: int):
    """The doctor's own weekly windows, by weekday and start."""
    _own_schedule(doctor_id, Verb.READ)
    return WindowList(items=[window_out(w) for w in windows(doctor_id)])


@operation(bp, "POST", "/doctors/<id:doctor_id>/availability", tag="Availability", body=WindowIn,
           summary="Add a weekly availability window", response=WindowOut, status=201, scope="Schedule.c",
           idempotent=True, errors=(403, 404, 422))
def add_availability(doctor_id: int, body: WindowIn):
    """A window of the week in one of the doctor's departments; it may not overlap another of the same day."""
    profile = _own_schedule(doctor_id, Verb.WRITE)
    try:
        window = add_window(profile, department_id=body.department_id, weekday=body.weekday,
                            start=body.start_time, end=body.end_time, slot_minutes=body.slot_minutes)
    except ScheduleError as error:
        _schedule_refusal(error)
    return Reply(window_out(window), headers={"Location": url_for("api.get_availability", doctor_id=doctor_id,
                                                                    window_id=window.id)})


@operation(bp, "GET", "/doctors/<id:doctor_id>/availability/<id:window_id>", tag="Availability",
           summary="One weekly availability window", response=WindowOut, scope="Schedule.r", errors=(403, 404))
def get_availability(doctor_id: int, window_id: int):
    """One of the doctor's own windows, with the ETag its removal needs."""
    _own_schedule(doctor_id, Verb.READ)
    return window_out(_entry(WeeklyAvailability, doctor_id, window_id, Verb.READ))


@operation(bp, "DELETE", "/doctors/<id:doctor_id>/availability/<id:window_id>", tag="Availability",
           summary="Remove a weekly availability window", status=204, scope="Schedule.d", if_match=True,
           errors=(403, 404))
def remove_availability(doctor_id: int, window_id: int):
    """Booked appointments stay; no new ones are offered in the window. If-Match: the window's ETag."""
    profile = _own_schedule(doctor_id, Verb.WRITE)
    window = _entry(WeeklyAvailability, doctor_id, window_id)
    check_if_match(window_out(window))
    delete_window(profile, window)
    return Reply(status=204)


@operation(bp, "GET", "/doctors/<id:doctor_id>/time-off", tag="Availability", query=TimeOffQuery,
           summary="A doctor's time off", response=TimeOffList, scope="Schedule.r", errors=(403, 404, 422))
def list_time_off(doctor_id: int, query: TimeOffQuery):
    """The doctor's own time off, by start."""
    _own_schedule(doctor_id, Verb.READ)
    return TimeOffList(items=[time_off_out(e) for e in leave(doctor_id, from_day=query.from_day)])


@operation(bp, "POST", "/doctors/<id:doctor_id>/time-off", tag="Availability", body=TimeOffIn,
           summary="Add time off", response=TimeOffOut, status=201, scope="Schedule.c", idempotent=True,
           errors=(403, 404, 422))
def add_time_off(doctor_id: int, body: TimeOffIn):
    """Days (or part of them) in the clinic's zone when the doctor cannot be booked, as on the availability page."""
    profile = _own_schedule(doctor_id, Verb.WRITE)
    starts, ends = local_range(body.start_day, body.start_time, body.end_day, body.end_time)
    try:
        entry = add_unavailability(profile, starts=starts, ends=ends, kind=body.kind, reason=body.reason)
    except ScheduleError as error:
        _schedule_refusal(error)
    return Reply(time_off_out(entry), headers={"Location": url_for("api.get_time_off", doctor_id=doctor_id,
                                                                    entry_id=entry.id)})


@operation(bp, "GET", "/doctors/<id:doctor_id>/time-off/<id:entry_id>", tag="Availability",
           summary="One entry of time off", response=TimeOffOut, scope="Schedule.r", errors=(403, 404))
def get_time_off(doctor_id: int, entry_id: int):
    """One of the doctor's own entries of time off, with the ETag its removal needs."""
    _own_schedule(doctor_id, Verb.READ)
    return time_off_out(_entry(Unavailability, doctor_id, entry_id, Verb.READ))


@operation(bp, "DELETE", "/doctors/<id:doctor_id>/time-off/<id:entry_id>", tag="Availability",
           summary="Remove time off", status=204, scope="Schedule.d", if_match=True, errors=(403, 404))
def remove_time_off(doctor_id: int, entry_id: int):
    """Its slots can be booked again. If-Match: the entry's ETag."""
    profile = _own_schedule(doctor_id, Verb.WRITE)
    entry = _entry(Unavailability, doctor_id, entry_id)
    check_if_match(time_off_out(entry))
    delete_unavailability(profile, entry)
    return Reply(status=204)
