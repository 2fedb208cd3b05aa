"""`flask seed demo`: demo accounts for a developer's machine. Safe to run again.

The accounts, the practice (departments, doctors' profiles and hours), Maria Garcia's record and Dr. Okafor's
coming days are seeded here; billing in `billing` (the price list, invoices in each state) and `reports` (a year
of past bills for the reports)."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal

import click
from flask import current_app
from flask.cli import with_appcontext

from app.accounts.models import Role, Sex
from app.accounts.second_factor import factor_of, has_factor, set_authenticator
from app.accounts.services import PatientRegistration, create_user, find_user_by_email, register_patient
from app.accounts.totp import code_at, step_at
from app.clinic.models import DoctorProfile
from app.clinic.services import departments, get_doctor, save_department
from app.demo.billing import seed_billing_demo
from app.demo.reports import seed_report_history
from app.extensions import db
from app.notifications.services import install_default_templates
from app.scheduling.services import add_window, local_range
from app.timeutil import utcnow

seed_cli = click.Group("seed", help="Load data.")

# The demo staff's authenticator key (RFC 6238): add it to an authenticator app, or ask `flask totp-code EMAIL`.
DEMO_TOTP_SECRET = "HMSDEMOHMSDEMOHMSDEMOHMSDEMOHMSD"

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


# Maria Garcia's record with Dr. Okafor: (days ago, complaint, assessment, plan, vitals, ICD-10 codes, drug,
# (amendment reason, corrected plan))
VISITS = [
    (120, "Annual check-up", "Healthy adult; borderline blood pressure.", "Lifestyle advice; recheck in 3 months.",
     {"systolic": 134, "diastolic": 86, "heart_rate": 74, "spo2": 98, "temperature_c": "36.7", "weight_kg": "71.0",
      "height_cm": "165"}, ["Z00.00"], None, None),
    (60, "Morning headaches", "Stage 1 hypertension.", "Start amlodipine 5 mg; home blood pressure diary.",
     {"systolic": 148, "diastolic": 94, "heart_rate": 80, "spo2": 97, "temperature_c": "36.8", "weight_kg": "72.5",
      "height_cm": "165"}, ["I10"], ("Amlodipine", "5 mg"), None),
    (14, "Blood pressure review", "Hypertension, improving on treatment.", "Continue amlodipine; review in 6 months.",
     {"systolic": 132, "diastolic": 84, "heart_rate": 72, "spo2": 98, "temperature_c": "36.6", "weight_kg": "71.8",
      "height_cm": "165"}, ["I10"], None,
     ("Follow-up interval corrected to 3 months.", "Continue amlodipine; review in 3 months.")),
]


def _seed_records() -> None:
    """Signed visits, vitals over time and an allergy for Maria Garcia, so "My records" has something to show."""
    import sqlalchemy as sa

    from app.appointments.models import Appointment, Status
    from app.records import services as records
    from app.records.models import Encounter, Severity
    from app.timeutil import utcnow

    patient, doctor = find_user_by_email("maria.garcia@example.com"), find_user_by_email("amara.okafor@example.com")
    if patient is None or doctor is None or get_doctor(doctor.id) is None:
        return
    if db.session.scalar(sa.select(sa.func.count()).select_from(Encounter).where(Encounter.patient_id == patient.id)):
        return
    cardiology = next(d for d in departments() if d.name == "Cardiology")
    records.record_allergy(patient.id, substance="Penicillin", reaction="Hives and swelling of the lips",
                           severity=Severity.SEVERE, by=doctor)
    for days_ago, complaint, assessment, plan, vitals, codes, drug, amendment in VISITS:
        starts_at = datetime.combine((utcnow() - timedelta(days=days_ago)).date(), time(14), tzinfo=utcnow().tzinfo)
        appointment = Appointment(patient_id=patient.id, doctor_id=doctor.id, department_id=cardiology.id,
                                  starts_at=starts_at, ends_at=starts_at + timedelta(minutes=30), reason=complaint,
                                  status=Status.COMPLETED, active=None)
        db.session.add(appointment)
        db.session.flush()
        encounter, _ = records.open_encounter(doctor, appointment)
        records.save_notes(encounter, chief_complaint=complaint, subjective="Reported by the patient.",
                           objective="Examination unremarkable apart from the blood pressure.",
                           assessment=assessment, plan=plan)
        records.save_vitals(encounter, vitals)
        encounter.vitals_recorded_at = starts_at
        for code in codes:
            records.add_diagnosis(encounter, code)
        if drug:
            records.add_prescription(encounter, records.PrescriptionInput(
                drug_name=drug[0], strength=drug[1], form="tablet", dose="1 tablet", route="oral",
                frequency="once daily", duration_days=90, quantity=90, refills=1,
                instructions="Take in the morning."), doctor)
        records.sign(encounter, doctor)
        if amendment:
            reason, corrected_plan = amendment
            corrected = records.amend(encounter, doctor, reason)
            records.save_notes(corrected, plan=corrected_plan)
            records.sign(corrected, doctor)


# Dr. Okafor's coming days, relative to now so her dashboard is never empty: (patient, minutes from the
# current half hour, status, reason). The first is already in the waiting room.
SCHEDULE = [
    ("john.miller@example.com", -30, "checked_in", "Shortness of breath when climbing stairs"),
    ("maria.garcia@example.com", 60, "confirmed", "Blood pressure review"),
    ("john.miller@example.com", 2 * 24 * 60, "requested", "Second opinion on a heart murmur"),
    ("maria.garcia@example.com", 3 * 24 * 60 + 90, "requested", "Palpitations after coffee"),
]


def _seed_schedule() -> None:
    """Today's agenda and pending requests for Dr. Okafor (once: not while she has visits from today on)."""
    import sqlalchemy as sa

    from app.appointments.models import Appointment, Status
    from app.timeutil import clinic_today, utcnow

    doctor = find_user_by_email("amara.okafor@example.com")
    if doctor is None or get_doctor(doctor.id) is None:
        return
    now = utcnow().replace(second=0, microsecond=0)
    base = now - timedelta(minutes=now.minute % 30)
    if db.session.scalar(sa.select(sa.func.count()).select_from(Appointment).where(
            Appointment.doctor_id == doctor.id, Appointment.starts_at >= base - timedelta(hours=1))):
        return
    cardiology = next(d for d in departments() if d.name == "Cardiology")
    today_start, _ = local_range(clinic_today(), None, clinic_today(), None)
    for email, minutes, status, reason in SCHEDULE:
        # never before the clinic's midnight: just after it, the waiting-room visit is still today's
        patient, starts_at = find_user_by_email(email), max(base + timedelta(minutes=minutes), today_start)
        db.session.add(Appointment(patient_id=patient.id, doctor_id=doctor.id, department_id=cardiology.id,
                                   starts_at=starts_at, ends_at=starts_at + timedelta(minutes=30), reason=reason,
                                   status=Status(status), active=True))
    db.session.flush()


@seed_cli.command("demo")
@with_appcontext
def demo() -> None:
    """Create the demo accounts (if missing) and print their logins."""
    if current_app.config["HMS_ENV"] == "production":
        raise click.ClickException("demo data is not loaded in production")
    rows = []
    for role, email, name, password, phone in STAFF:
        user = find_user_by_email(email)
        if user is None:
            user = create_user(role=role, email=email, full_name=name, password=password, phone=phone)
        if not has_factor(user):
            set_authenticator(user, DEMO_TOTP_SECRET)
        rows.append((role.label, email, password))
    for registration in PATIENTS:
        if find_user_by_email(registration.email) is None:
            register_patient(registration)
        rows.append((Role.PATIENT.label, registration.email, registration.password))
    _seed_practice()
    _seed_records()
    _seed_schedule()
    install_default_templates()
    _seed_billing()
    _seed_report_history()
    db.session.commit()
    click.echo("\nDemo logins (http://127.0.0.1:5000/login):")
    for role, email, password in rows:
        click.echo(f"  {role:<14} {email:<28} {password}")
    click.echo(f"\nStaff sign in with a second factor too. Their authenticator key is {DEMO_TOTP_SECRET} (add it"
               f" to any authenticator app),\nor print the current code: .venv/bin/flask totp-code EMAIL\n")


@click.command("totp-code")
@click.argument("email")
@with_appcontext
def totp_code(email: str) -> None:
    """Development only: print the current authenticator code of EMAIL (the demo staff's second factor)."""
    if current_app.config["HMS_ENV"] == "production":
        raise click.ClickException("totp-code is for development only")
    user = find_user_by_email(email)
    factor = factor_of(user) if user is not None else None
    if factor is None:
        raise click.ClickException(f"{email} has no authenticator")
    click.echo(code_at(factor.secret, step_at(utcnow())))


def _seed_billing() -> None:
    """The price list and a few invoices in each state for the demo patients."""
    if seed_billing_demo(find_user_by_email("priya.shah@example.com"), find_user_by_email("admin@example.com")):
        click.echo("Billing: price list, a visit to bill, and invoices in each state for the demo patients.")


def _seed_report_history() -> None:
    """A year of past bills for six more patients, so the billing reports have something to show."""
    made = seed_report_history(find_user_by_email("priya.shah@example.com"), find_user_by_email("admin@example.com"))
    if made:
        click.echo(f"Billing history for the reports: {made} invoices over the last year.")
