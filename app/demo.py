"""`flask seed demo`: demo accounts for a developer's machine. Safe to run again."""
from __future__ import annotations

from datetime import date, time
from decimal import Decimal

import click
from flask import current_app
from flask.cli import with_appcontext

from app.accounts.models import Role, Sex
from app.accounts.services import PatientRegistration, create_user, find_user_by_email, register_patient
from app.clinic.models import DoctorProfile
from app.clinic.services import departments, get_doctor, save_department
from app.extensions import db
from app.notifications.services import install_default_templates
from app.scheduling.services import add_window

seed_cli = click.Group("seed", help="Load data.")

STAFF = [
    (Role.ADMIN, "admin@example.com", "Alex Admin", "demo-admin-pass", "+12025550101"),
    (Role.DOCTOR, "amara.okafor@example.com", "Dr. Amara Okafor", "demo-doctor-pass", "+12025550102"),
    (Role.DOCTOR, "lukas.weber@example.com", "Dr. Lukas Weber", "demo-doctor-pass", "+12025550103"),
    (Role.CLERK, "priya.shah@example.com", "Priya Shah", "demo-clerk-pass", "+12025550104"),
]
PATIENTS = [
    PatientRegistration(full_name="Maria Garcia", email="maria.garcia@example.com", password="demo-patient-pass",
                        date_of_birth=date(1986, 4, 12), sex=Sex.FEMALE, phone="+12025550111",
                        address="12 Elm Street, Springfield", emergency_contact_name="Luis Garcia",
                        emergency_contact_phone="+12025550112", insurance_provider="Acme Health",
                        insurance_policy_number="AH-448812"),
    PatientRegistration(full_name="John Miller", email="john.miller@example.com", password="demo-patient-pass",
                        date_of_birth=date(1958, 9, 30), sex=Sex.MALE, phone="+12025550121",
                        address="7 Harbour Road, Springfield", emergency_contact_name="Ann Miller",
                        emergency_contact_phone="+12025550122"),
]


DEPARTMENTS = ["Cardiology", "General Practice", "Pediatrics"]
PRACTICE = {
    # email: (specialty, licence, fee, departments, bio, weekly windows (weekday, start, end, minutes, department))
    "amara.okafor@example.com": ("Cardiologist", "MD-100231", Decimal("180.00"), ["Cardiology", "General Practice"],
                                 "Heart rhythm and blood pressure; fifteen years at the clinic.",
                                 [(0, "09:00", "12:00", 30, "Cardiology"), (2, "13:00", "17:00", 30, "Cardiology"),
                                  (4, "09:00", "12:00", 20, "General Practice")]),
    "lukas.weber@example.com": ("Pediatrician", "MD-100877", Decimal("120.00"), ["Pediatrics"],
                                "Children from birth to sixteen; vaccinations and development checks.",
                                [(1, "08:30", "12:30", 20, "Pediatrics"), (3, "14:00", "18:00", 20, "Pediatrics")]),
}


def _seed_practice() -> None:
    by_name = {d.name: d for d in departments()}
    for name in DEPARTMENTS:
        if name not in by_name:
            by_name[name] = save_department(None, name=name, description=None)
    for email, (specialty, licence, fee, names, bio, windows) in PRACTICE.items():
        user = find_user_by_email(email)
        if user is None or get_doctor(user.id) is not None:
            continue
        profile = DoctorProfile(user_id=user.id, user=user, specialty=specialty, licence_number=licence,
                                consultation_fee=fee, bio=bio, departments=[by_name[n] for n in names])
        db.session.add(profile)
        db.session.flush()
        for weekday, start, end, minutes, department in windows:
            add_window(profile, department_id=by_name[department].id, weekday=weekday,
                       start=time.fromisoformat(start), end=time.fromisoformat(end), slot_minutes=minutes)


@seed_cli.command("demo")
@with_appcontext
def demo() -> None:
    """Create the demo accounts (if missing) and print their logins."""
    if current_app.config["HMS_ENV"] == "production":
        raise click.ClickException("demo data is not loaded in production")
    rows = []
    for role, email, name, password, phone in STAFF:
        if find_user_by_email(email) is None:
            create_user(role=role, email=email, full_name=name, password=password, phone=phone)
        rows.append((role.label, email, password))
    for registration in PATIENTS:
        if find_user_by_email(registration.email) is None:
            register_patient(registration)
        rows.append((Role.PATIENT.label, registration.email, registration.password))
    _seed_practice()
    install_default_templates()
    db.session.commit()
    click.echo("\nDemo logins (http://127.0.0.1:5000/login):")
    for role, email, password in rows:
        click.echo(f"  {role:<14} {email:<28} {password}")
    click.echo("")
