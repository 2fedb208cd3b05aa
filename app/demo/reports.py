"""Demo billing history for the reports: a year of past visits, invoices, payments, refunds and claims in every
status.

Called by `flask seed demo` (`app.demo`) after the demo accounts exist. Everything goes through the billing
services, except two shortcuts that only a demo may take: the visits are written as completed appointments,
and each invoice's issue day is moved into the past after issuing (the services always issue today). Their
events are dropped in the same transaction: this is back-dated history, not news, so nobody gets a hundred
emails and the audit trail records only what really happened. Runs once (it looks for its own patients).
"""
from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

import sqlalchemy as sa

from app.accounts.models import Sex, User
from app.accounts.services import PatientRegistration, find_user_by_email, register_patient
from app.appointments.models import Appointment, Status
from app.billing import claims, invoices, payments
from app.billing.common import round_money
from app.billing.models import Invoice
from app.clinic.models import DoctorProfile
from app.events.models import OutboxEvent
from app.extensions import db
from app.timeutil import clinic_today, clinic_zone

HISTORY_PATIENTS = [("Nora Lindqvist", Sex.FEMALE), ("Samuel Osei", Sex.MALE), ("Hana Kobayashi", Sex.FEMALE),
                    ("Diego Ramirez", Sex.MALE), ("Fatima Haddad", Sex.FEMALE), ("Tom Becker", Sex.MALE)]
EXTRAS = [("Blood panel", "45.00"), ("ECG", "60.00"), ("Vaccination", "35.00"), ("X-ray", "90.00"),
          ("Dressing change", "20.00"), ("Ultrasound", "120.00")]
PAYERS = ["Acme Health", "Blue Shield", "Mutual Care"]
VISITS = 150


def _history_patients() -> list[User]:
    people = []
    for i, (name, sex) in enumerate(HISTORY_PATIENTS, start=1):
        email = f"demo.history{i}@example.com"
        user = find_user_by_email(email)
        if user is None:
            user = register_patient(PatientRegistration(
                full_name=name, email=email, password="demo-patient-pass", date_of_birth=date(1970 + i * 4, i, 10 + i),
                sex=sex, phone=f"+120255501{30 + i}", address=f"{i * 3} Mill Lane, Springfield",
                emergency_contact_name="Demo Contact", emergency_contact_phone="+12025550199"))
        people.append(user)
    return people


def seed_report_history(clerk: User, admin: User) -> int:
    """About a year of billing for six extra demo patients; returns the number of invoices made (0 if done)."""
    first = find_user_by_email("demo.history1@example.com")
    if first is not None and db.session.scalar(sa.select(Invoice.id).where(Invoice.patient_id == first.id).limit(1)):
        return 0
    doctors = list(db.session.scalars(sa.select(DoctorProfile).where(DoctorProfile.user.has(User.active.is_(True)))))
    if not doctors:
        return 0
    patients = _history_patients()
    db.session.flush()
    last_event = db.session.scalar(sa.select(sa.func.max(OutboxEvent.seq))) or 0
    rng = random.Random(7)
    today, zone = clinic_today(), clinic_zone()
    made = 0
    for n in range(VISITS):
        days_ago = int(365 * (n / VISITS) ** 1.3) + 1  # more visits recently
        day = today - timedelta(days=days_ago)
        doctor = doctors[n % len(doctors)]
        department = doctor.departments[n % len(doctor.departments)]
        patient = patients[n % len(patients)]
        start = datetime.combine(day, time(9 + n % 8, 0), tzinfo=zone).astimezone(timezone.utc)
        visit = Appointment(patient_id=patient.id, doctor_id=doctor.user_id, department_id=department.id,
                            starts_at=start, ends_at=start + timedelta(minutes=30), status=Status.COMPLETED,
                            reason="Follow-up visit")
        db.session.add(visit)
        db.session.flush()
        visit.active = None  # a finished visit holds no slot (the column's default fills a None given on insert)
        invoice = invoices.create_invoice(patient.id, clerk, appointment_id=visit.id, notes="Demo history")
        for description, price in rng.sample(EXTRAS, rng.choice([0, 0, 1, 2])):
            invoices.add_line(invoice.id, clerk, description=description, quantity=1, unit_price=price)
        invoices.issue_invoice(invoice.id, clerk)
        invoice.issued_on, invoice.due_on = day, day + timedelta(days=30)
        invoice.issued_at = invoice.issued_at - timedelta(days=days_ago)
        made += 1
        if n % 23 == 5:
            continue  # never paid: the outstanding report's older buckets
        if n % 4 == 0:  # insured: a claim for 60 %
            claim = claims.submit_claim(invoice.id, clerk, payer=PAYERS[n % 3], policy_number=f"POL-{1000 + n}",
                                        claimed_amount=round_money(invoice.total * Decimal("0.6")))
            if n % 32 == 12:  # filed under the wrong policy and withdrawn: the patient pays it all
                claims.withdraw_claim(claim.id, clerk, "Filed under the wrong policy number")
            elif days_ago < 10:
                continue  # still with the insurer
            elif n % 16 == 4:
                claims.decide_claim(claim.id, clerk, status="denied", reason_code="CO-50")
            elif n % 16 == 8:
                claims.decide_claim(claim.id, clerk, status="partially_approved", reason_code="CO-45",
                                    approved_amount=round_money(claim.claimed_amount / 2))
            else:
                claims.decide_claim(claim.id, clerk, status="approved", payer_reference=f"REF-{n}")
            if days_ago > 20 and n % 16 != 4 and n % 32 != 12:
                claims.mark_claim_paid(claim.id, clerk, paid_on=day + timedelta(days=18))
        paid_on = min(today, day + timedelta(days=rng.randint(0, 12)))
        method = ["card", "card", "cash", "bank_transfer"][n % 4]
        balance = db.session.get(Invoice, invoice.id).balance
        if balance == 0:
            continue
        if days_ago > 45 or n % 3:
            amount = balance
        else:
            amount = round_money(balance / 2)
        payment = payments.record_payment(invoice.id, clerk, amount=amount, method=method, paid_on=paid_on,
                                          idempotency_key=payments.new_idempotency_key(), reference=None)
        if n % 37 == 3:
            refund = payments.request_refund(payment.id, clerk, round_money(amount / 4), "Service not given")
            payments.approve_refund(refund.id, admin)
            payments.record_refund(refund.id, clerk, f"RF-{n}")
    db.session.flush()
    db.session.execute(sa.delete(OutboxEvent).where(OutboxEvent.seq > last_event))
    return made
