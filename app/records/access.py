"""Who may read a patient's clinical record: the one policy every records view asks.

- A patient: their own record only; anyone else's answers 404 (its existence is not confirmed).
- A doctor: patients in their care, that is with an appointment with them that is confirmed, checked in or
  completed and starts within the last HMS_CARE_RELATIONSHIP_MONTHS (12) months, or a confirmed one ahead. A
  requested, declined, cancelled or no-show appointment gives nothing beyond the request itself (the doctor sees
  it on their dashboard, not the record). Anyone else only through an active break-glass grant (a stated reason,
  BREAK_GLASS_MINUTES long). Without one: 403 with the break-glass form.
- A billing clerk: 403, never any clinical content.
- An admin: 403 as well. The admin runs the clinic and reads the audit trail, which names who read
  which record; they are not a clinician and do not read notes, diagnoses or prescriptions.

Refusals by this policy are audited (`record.access_denied`, outcome "denied").
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import abort, current_app, make_response, render_template
from flask_login import current_user

from app.accounts.models import Role, User
from app.appointments.models import Appointment, Status
from app.events.outbox import emit
from app.extensions import db
from app.records.models import BreakGlassGrant
from app.timeutil import utcnow

BREAK_GLASS_MINUTES = 60


@dataclass(frozen=True)
class Decision:
    allowed: bool
    status: int  # 200, 403 or 404
    basis: str  # self, care_relationship, break_glass, or the reason for a refusal
    grant: BreakGlassGrant | None = None

    @property
    def offers_break_glass(self) -> bool:
        return self.basis == "no_relationship"


CARING = (Status.CONFIRMED, Status.CHECKED_IN, Status.COMPLETED)


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


def active_grant(doctor_id: int, patient_id: int, now: datetime | None = None) -> BreakGlassGrant | None:
    return db.session.scalar(sa.select(BreakGlassGrant).where(
        BreakGlassGrant.doctor_id == doctor_id, BreakGlassGrant.patient_id == patient_id,
        BreakGlassGrant.expires_at > (now or utcnow())).order_by(BreakGlassGrant.expires_at.desc()).limit(1))


def _is_patient(patient_id: int) -> bool:
    return db.session.scalar(sa.select(User.role).where(User.id == patient_id)) is Role.PATIENT


def decide(user: User, patient_id: int, now: datetime | None = None) -> Decision:
    """May `user` read the clinical record of `patient_id`? No side effects."""
    if not user.is_authenticated:
        return Decision(False, 404, "anonymous")
    if user.role is Role.PATIENT:
        return Decision(True, 200, "self") if user.id == patient_id else Decision(False, 404, "not_own")
    if not _is_patient(patient_id):
        return Decision(False, 404, "no_such_patient")
    if user.role is Role.DOCTOR:
        if has_care_relationship(user.id, patient_id, now):
            return Decision(True, 200, "care_relationship")
        grant = active_grant(user.id, patient_id, now)
        if grant is not None:
            return Decision(True, 200, "break_glass", grant)
        return Decision(False, 403, "no_relationship")
    return Decision(False, 403, f"role_{user.role.value}")


def require_record_access(patient_id: int, *, category: str = "encounter") -> Decision:
    """The decision for the signed-in user, or abort: 404 for a patient (not their own), 403 for staff
    (a doctor without a relationship gets the break-glass form). A refusal is audited and committed."""
    decision = decide(current_user, patient_id)
    if decision.allowed:
        return decision
    if decision.basis not in ("anonymous", "no_such_patient"):
        emit("record.access_denied", "patient", patient_id, {"category": category, "basis": decision.basis},
             patient_id=patient_id, outcome="denied")
        db.session.commit()
    if decision.offers_break_glass:
        from app.records.forms import BreakGlassForm

        patient = db.session.get(User, patient_id)
        abort(make_response(render_template("doctors/records/break_glass.html", patient=patient,
                                            form=BreakGlassForm(), minutes=BREAK_GLASS_MINUTES), 403))
    abort(decision.status)


def grant_break_glass(doctor: User, patient_id: int, reason: str) -> BreakGlassGrant:
    """Open the record for BREAK_GLASS_MINUTES; the audit event is what the admin sees flagged."""
    now = utcnow()
    grant = BreakGlassGrant(doctor_id=doctor.id, patient_id=patient_id, reason=reason.strip(), started_at=now,
                            expires_at=now + timedelta(minutes=BREAK_GLASS_MINUTES))
    db.session.add(grant)
    db.session.flush()
    emit("record.break_glass", "break_glass_grant", grant.id,
         {"category": "record", "reason": grant.reason, "expires_at": grant.expires_at.isoformat(),
          "minutes": BREAK_GLASS_MINUTES, "break_glass": True}, patient_id=patient_id)
    return grant
