"""The navigation each role sees: one table, read by base.html."""
from __future__ import annotations

from dataclasses import dataclass

from flask import request, url_for
from flask_login import current_user

from app.accounts.models import Role


@dataclass(frozen=True)
class NavItem:
    label: str
    url: str
    active: bool


# role -> (label, endpoint, endpoints that also highlight the item)
NAV: dict[Role, list[tuple[str, str, tuple[str, ...]]]] = {
    Role.PATIENT: [("Home", "patients.home", ()),
                   ("Book a visit", "patients.book", ()),
                   ("My appointments", "patients.appointments", ("patients.appointment",
                                                                  "patients.reschedule_appointment")),
                   ("My records", "patients.records", ("patients.records_diagnoses", "patients.records_prescriptions",
                                                       "patients.records_allergies", "patients.records_vitals",
                                                       "patients.record_visit", "patients.record_print_summary",
                                                       "patients.record_print_prescription",
                                                       "patients.access_report")),
                   ("My bills", "patients.bills", ("patients.bill", "patients.bills_history")),
                   ("Find a doctor", "directory.index", ("directory.doctor",)),
                   ("My profile", "patients.profile", ("patients.profile_section", "patients.edit_profile_section",
                                                       "sessions.index"))],
    Role.DOCTOR: [("Today", "doctors.home", ()),
                  ("Appointments", "doctors.appointments", ()),
                  ("Patients", "doctors.patients", ("doctors.chart", "doctors.encounter", "doctors.break_glass")),
                  ("Availability", "doctors.availability", ()),
                  ("My profile", "doctors.profile", ("sessions.index",))],
    Role.CLERK: [("Billing", "billing.home", ()),
                 ("Invoices", "billing.invoices", ("billing.new_invoice", "billing.invoice", "billing.new_payment",
                                                   "billing.request_refund", "billing.new_claim",
                                                   "billing.decide_claim", "billing.claim_paid", "billing.withdraw_claim")),
                 ("Refunds", "billing.refunds", ("billing.refund",)),
                 ("Price list", "billing.prices", ("billing.new_price", "billing.edit_price")),
                 ("Reports", "reports.index", ("reports.report",)),
                 ("Connected apps", "oauth_pages.connected_apps", ())],
    Role.ADMIN: [("Overview", "admin.home", ()),
                 ("Doctors", "admin.doctors", ("admin.new_doctor", "admin.doctor_detail", "admin.edit_doctor")),
                 ("Departments", "admin.departments_page", ("admin.edit_department",)),
                 ("Staff", "admin.staff", ("admin.new_staff",)),
                 ("Templates", "admin.templates", ("admin.edit_template",)),
                 ("Notifications", "admin.notifications", ()),
                 ("Audit log", "admin.audit", ()),
                 ("API clients", "admin.clients", ("admin.new_client", "admin.client")),
                 ("Refunds", "billing.refunds", ("billing.refund", "billing.invoice", "billing.home")),
                 ("Billing reports", "reports.index", ("reports.report",)),
                 ("Connected apps", "oauth_pages.connected_apps", ())],
}


def _url(endpoint: str) -> str:
    if endpoint == "patients.profile":
        return url_for(endpoint, patient_id=current_user.id)
    return url_for(endpoint)


def navigation() -> list[NavItem]:
    if not current_user.is_authenticated:
        return []
    return [NavItem(label, _url(endpoint), request.endpoint in (endpoint, *also))
            for label, endpoint, also in NAV[current_user.role]]
