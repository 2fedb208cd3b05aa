"""Departments and doctors' professional profiles."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.accounts.models import User
from app.db_types import UTCDateTime
from app.extensions import db
from app.timeutil import utcnow

doctor_departments = sa.Table(
    "doctor_departments",
    db.metadata,
    sa.Column("doctor_id", sa.ForeignKey("doctor_profiles.user_id"), primary_key=True),
    sa.Column("department_id", sa.ForeignKey("departments.id"), primary_key=True),
)


class Department(db.Model):
    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    description: Mapped[str | None] = mapped_column(sa.String(500))
    active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    doctors: Mapped[list[DoctorProfile]] = relationship(secondary=doctor_departments, back_populates="departments")


class DoctorProfile(db.Model):
    __tablename__ = "doctor_profiles"

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    specialty: Mapped[str] = mapped_column(sa.String(80), index=True)
    licence_number: Mapped[str] = mapped_column(sa.String(40), unique=True)
    consultation_fee: Mapped[Decimal] = mapped_column(sa.Numeric(10, 2))
    bio: Mapped[str | None] = mapped_column(sa.String(2000))

    user: Mapped[User] = relationship()
    departments: Mapped[list[Department]] = relationship(secondary=doctor_departments, back_populates="doctors",
                                                         order_by="Department.name")
