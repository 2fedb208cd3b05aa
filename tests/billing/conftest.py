"""Billing fixtures: staff, a completed appointment to bill, and invoices built through the services."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from itertools import count

import pytest

from app.accounts.models import Role, User
from app.appointments.models import Appointment, Status, StatusChange
from app.billing import invoices
from app.extensions import db
from app.timeutil import utcnow


@pytest.fixture
def clerk(create_user) -> User:
    return create_user(Role.CLERK, full_name="Carla Clerk")


@pytest.fixture
def admin(create_user) -> User:
    return create_user(Role.ADMIN, full_name="Ada Admin")


@pytest.fixture
def patient(create_patient) -> User:
    return create_patient(full_name="Paula Patient")


@pytest.fixture
def doctor(create_doctor, create_department) -> User:
    return create_doctor(full_name="Dr. Dora Doctor", department_ids=[create_department("Cardiology")], fee="150.00")


@pytest.fixture
def completed_appointment(app, patient, doctor):
    """A visit that took place yesterday and was completed: the id."""

    made = count()

    def make(patient_id: int | None = None, days_ago: int = 1) -> int:
        with app.app_context():
            from app.clinic.models import DoctorProfile

            profile = db.session.get(DoctorProfile, doctor.id)
            start = (utcnow() - timedelta(days=days_ago, hours=next(made))).replace(microsecond=0)
            appointment = Appointment(patient_id=patient_id or patient.id, doctor_id=doctor.id,
                                      department_id=profile.departments[0].id, starts_at=start,
                                      ends_at=start + timedelta(minutes=30), status=Status.COMPLETED,
                                      reason="Check-up", active=None)
            db.session.add(appointment)
            db.session.flush()
            appointment.active = None  # the column's default fills a None given on insert
            db.session.add(StatusChange(appointment_id=appointment.id, from_status=Status.CHECKED_IN,
                                        to_status=Status.COMPLETED, actor_id=doctor.id))
            db.session.commit()
            return appointment.id

    return make


def actor(user_id: int) -> User:
    return db.session.get(User, user_id)


@pytest.fixture
def make_invoice(app, patient, clerk):
    """An invoice (issued unless `issue=False`) with the given (description, quantity, unit price) lines: the id."""

    def make(lines=(("Consultation", 1, "100.00"),), *, discount: str | None = None, issue: bool = True,
             patient_id: int | None = None) -> int:
        with app.app_context():
            by = actor(clerk.id)
            invoice = invoices.create_invoice(patient_id or patient.id, by)
            for description, quantity, price in lines:
                invoices.add_line(invoice.id, by, description=description, quantity=quantity, unit_price=price)
            if discount:
                invoices.set_discount(invoice.id, by, Decimal(discount), "Loyalty")
            if issue:
                invoices.issue_invoice(invoice.id, by)
            db.session.commit()
            return invoice.id

    return make
