"""Demo billing for the two demo patients: the price list, a visit waiting to be billed, and invoices in
each state (draft, issued and overdue, partly paid with a claim at the insurer, paid with a refund waiting
for the admin). Called by `flask seed demo`; runs once (it stops if the price list exists). Everything goes
through the billing services, so the events (audit rows, the patients' emails) are real; only the overdue
invoice's dates are moved into the past, which no service would do."""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import sqlalchemy as sa

from app.accounts.models import User
from app.accounts.services import find_user_by_email
from app.appointments.models import Appointment, Status
from app.billing import claims, invoices, payments
from app.billing.models import PriceItem
from app.clinic.models import DoctorProfile
from app.extensions import db
from app.timeutil import clinic_today, clinic_zone

PRICE_LIST = [
    ("CONSULT-GP", "General consultation", "120.00", "General Practice"),
    ("ECG", "Electrocardiogram (12 leads)", "60.00", "Cardiology"),
    ("ECHO", "Echocardiogram", "240.00", "Cardiology"),
    ("XRAY-CHEST", "Chest X-ray", "90.00", None),
    ("BLOOD-PANEL", "Blood panel", "45.00", None),
    ("VACC", "Vaccination", "35.00", "Pediatrics"),
    ("DRESSING", "Dressing change", "20.00", None),
]


def _completed_visit(patient: User, doctor: DoctorProfile, days_ago: int, hour: int) -> Appointment:
    day = clinic_today() - timedelta(days=days_ago)
    start = datetime.combine(day, time(hour, 0), tzinfo=clinic_zone()).astimezone(timezone.utc)
    visit = Appointment(patient_id=patient.id, doctor_id=doctor.user_id, department_id=doctor.departments[0].id,
                        starts_at=start, ends_at=start + timedelta(minutes=30), status=Status.COMPLETED,
                        reason="Demo visit", active=None)
    db.session.add(visit)
    db.session.flush()
    visit.active = None  # a finished visit holds no slot (the column's default fills a None given on insert)
    return visit


def seed_billing_demo(clerk: User | None, admin: User | None) -> bool:
    if clerk is None or admin is None or db.session.scalar(sa.select(PriceItem.id).limit(1)) is not None:
        return False
    departments = {d.name: d.id for p in db.session.scalars(sa.select(DoctorProfile)) for d in p.departments}
    items = {code: invoices.create_price_item(clerk, code=code, name=name, price=price,
                                              department_id=departments.get(department))
             for code, name, price, department in PRICE_LIST}
    maria, john = find_user_by_email("maria.garcia@example.com"), find_user_by_email("john.miller@example.com")
    okafor = db.session.get(DoctorProfile, find_user_by_email("amara.okafor@example.com").id)
    weber = db.session.get(DoctorProfile, find_user_by_email("lukas.weber@example.com").id)
    if None in (maria, john, okafor, weber):
        return False

    _completed_visit(maria, okafor, days_ago=1, hour=10)  # waiting on the worklist: "Bill visit"

    # Maria: cardiology visit with an ECG, part paid by card, a claim with her insurer still pending.
    visit = _completed_visit(maria, okafor, days_ago=6, hour=9)
    invoice = invoices.create_invoice(maria.id, clerk, appointment_id=visit.id)
    invoices.add_line(invoice.id, clerk, price_item_id=items["ECG"].id)
    invoices.issue_invoice(invoice.id, clerk)
    payments.record_payment(invoice.id, clerk, amount="40.00", method="card", reference="Slip 5531",
                            idempotency_key=payments.new_idempotency_key())
    claims.submit_claim(invoice.id, clerk, payer=maria.patient.insurance_provider or "Acme Health",
                        policy_number=maria.patient.insurance_policy_number or "AH-448812", claimed_amount="180.00")

    # John: a paid visit with a refund waiting for the admin, an overdue bill, and a draft.
    visit = _completed_visit(john, weber, days_ago=20, hour=11)
    invoice = invoices.create_invoice(john.id, clerk, appointment_id=visit.id)
    invoices.add_line(invoice.id, clerk, price_item_id=items["BLOOD-PANEL"].id)
    invoices.issue_invoice(invoice.id, clerk)
    payment = payments.record_payment(invoice.id, clerk, amount=invoice.balance, method="cash",
                                      idempotency_key=payments.new_idempotency_key())
    payments.request_refund(payment.id, clerk, "45.00", "Blood panel cancelled: sample could not be taken")

    overdue = invoices.create_invoice(john.id, clerk)
    invoices.add_line(overdue.id, clerk, price_item_id=items["XRAY-CHEST"].id)
    invoices.add_line(overdue.id, clerk, price_item_id=items["DRESSING"].id, quantity=2)
    invoices.issue_invoice(overdue.id, clerk)
    overdue.issued_on, overdue.due_on = clinic_today() - timedelta(days=45), clinic_today() - timedelta(days=15)
    overdue.issued_at = overdue.issued_at - timedelta(days=45)

    draft = invoices.create_invoice(john.id, clerk)
    invoices.add_line(draft.id, clerk, price_item_id=items["VACC"].id)
    db.session.flush()
    return True
