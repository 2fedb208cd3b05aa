"""Reads of people that several areas share."""
from __future__ import annotations

import sqlalchemy as sa

from app.accounts.models import Role, User
from app.extensions import db

MIN_TERM = 2


def patients_in_care_of(doctor_id: int) -> list[User]:
    """The patients whose records `doctor_id` may read by the care relationship (`app.policy`), by name."""
    from app.policy import in_care_of

    return list(db.session.scalars(sa.select(User).where(User.id.in_(in_care_of(doctor_id)))
                                   .order_by(User.full_name, User.id)))


def patients_doctor_may_open(doctor_id: int, term: str | None = None, limit: int = 50) -> list[User]:
    """The patients whose records `doctor_id` may read now (in their care, or opened by an active break-glass
    grant), by name; `term` narrows to names or emails containing it (`%` and `_` as themselves)."""
    from app.policy import in_care_of, opened_by_break_glass

    query = sa.select(User).where(User.role == Role.PATIENT, User.active.is_(True), sa.or_(
        User.id.in_(in_care_of(doctor_id)), User.id.in_(opened_by_break_glass(doctor_id))))
    term = (term or "").strip()[:120]
    if term:
        query = query.where(sa.or_(User.full_name.contains(term, autoescape=True),
                                   User.email.contains(term, autoescape=True)))
    return list(db.session.scalars(query.order_by(User.full_name, User.id).limit(limit)))


def find_patients(term: str | None, limit: int = 20, *, after: tuple[str, int] | None = None) -> list[User]:
    """Active patients whose name or email contains `term` (at least MIN_TERM characters; `%` and `_` are
    matched as themselves), by name; `after` (a name and id) continues a list after that patient."""
    term = (term or "").strip()
    if len(term) < MIN_TERM:
        return []
    query = sa.select(User).where(
        User.role == Role.PATIENT, User.active.is_(True),
        sa.or_(User.full_name.contains(term, autoescape=True), User.email.contains(term, autoescape=True)))
    if after is not None:
        query = query.where(sa.or_(User.full_name > after[0], sa.and_(User.full_name == after[0], User.id > after[1])))
    return list(db.session.scalars(query.order_by(User.full_name, User.id).limit(limit)))
