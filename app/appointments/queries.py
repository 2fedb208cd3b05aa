"""Reads of appointments for the patient's and the doctor's pages: lists, the next visit, and the digest the
doctor's dashboard refresh compares."""
from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa

from app.accounts.models import User
from app.appointments.models import ACTIVE, Appointment, Status
from app.clinic.models import Department
from app.extensions import db
from app.timeutil import utcnow

def next_for_patient(patient_id: int) -> Appointment | None:
    """The patient's next upcoming appointment, if any (for their home page)."""
    upcoming, _ = for_patient(patient_id)
    return upcoming[0] if upcoming else None


def for_patient(patient_id: int) -> tuple[list[Appointment], list[Appointment]]:
    """(upcoming, past) appointments of a patient, with doctor and department loaded."""
    now = utcnow()
    rows = list(db.session.scalars(
        sa.select(Appointment).where(Appointment.patient_id == patient_id)
        .options(sa.orm.joinedload(Appointment.doctor_user), sa.orm.joinedload(Appointment.department))
        .order_by(Appointment.starts_at)))
    upcoming = [a for a in rows if a.ends_at > now and a.status in ACTIVE]
    past = [a for a in reversed(rows) if a not in upcoming]
    return upcoming, past


def for_doctor(doctor_id: int, *, start: datetime | None = None, end: datetime | None = None,
               statuses: list[Status] | None = None) -> sa.Select:
    query = (sa.select(Appointment).where(Appointment.doctor_id == doctor_id)
             .options(sa.orm.joinedload(Appointment.patient), sa.orm.joinedload(Appointment.department))
             .order_by(Appointment.starts_at, Appointment.id))
    if start is not None:
        query = query.where(Appointment.starts_at >= start)
    if end is not None:
        query = query.where(Appointment.starts_at < end)
    if statuses:
        query = query.where(Appointment.status.in_(statuses))
    return query


def schedule_version(doctor_id: int, since: datetime, *, now: datetime, today: date,
                     statuses: list[Status]) -> str:
    """A digest of everything the dashboard shows from `since` on: each appointment's id, status, times,
    reasons, patient and department (CRC32s XOR-ed in SQL, so no row is read into Python), how many have
    started (that moves "Cancel" to "No-show"), and the clinic's date (that moves "Check in" to a day)."""
    fields = sa.func.concat_ws("|", Appointment.id, Appointment.status, Appointment.starts_at, Appointment.ends_at,
                               Appointment.reason, Appointment.status_reason, User.full_name, Department.name)
    started = sa.func.sum(sa.case((Appointment.starts_at <= now, 1), else_=0))
    count, digest, started = db.session.execute(
        sa.select(sa.func.count(), sa.func.bit_xor(sa.func.crc32(fields)), started)
        .join(User, User.id == Appointment.patient_id).join(Department, Department.id == Appointment.department_id)
        .where(Appointment.doctor_id == doctor_id, Appointment.starts_at >= since,
               Appointment.status.in_(statuses))).one()
    return f"{today.isoformat()}.{count}.{digest or 0}.{started or 0}"
