"""The route matrix: every route of the app (every rule of `app.url_map` × every method but HEAD and OPTIONS)
asked by seven visitors about resources that belong to someone else, against what the access policy
(`app/policy.py`, docs/architecture.md "Access policy") says each must get.

One world, built once for the module through the domain services: patient A with a confirmed appointment
ahead and a completed one behind with doctor A, its signed encounter (notes, vitals, a diagnosis, a
prescription), a draft encounter of another visit, an allergy, an issued and part-paid invoice with a refund
request and two claims (one awaiting the insurer, one approved), doctor A's weekly windows and time off, the
notification templates, a department, a price list entry. Everything is A's; the visitors are

    anonymous, patient_a (the owner), patient_b, doctor_a (A's doctor), doctor_b (same department, no care
    relationship, no break-glass), clerk, admin.

Each visitor signs in once. MATRIX states per route (its endpoint, per method when they differ) the outcome
class per visitor, built from a few named profiles; a route that is not in it fails
`test_every_route_is_in_the_matrix`, so a new route cannot be forgotten. For every request the test also checks:

- a refusal by the policy (403, 404) of a signed-in visitor wrote exactly one `access.denied` event for that
  request, and nothing else did (an answer that is not the policy's, e.g. a form refused with 422, wrote none);
- a 404 that hides A's resource is the same answer (status and page) as the 404 for an id that names nothing;
- a doctor without a care relationship is offered break-glass with the 403;
- no refused answer, and no answer to a visitor not entitled to it, carries A's data (name, contact details,
  notes, diagnosis, drug, allergy, invoice number);
- an anonymous HTMX request is told where to sign in (401 + HX-Redirect);
- the POSTs change nothing (the unit of work rolls back an error answer): the tables' checksums are the same
  before and after a route's requests. The owners' POSTs are not sent (`OWNER`): they would change the shared
  world, and the other modules test them.

`test_draft` asks the same of A's drafts (a draft encounter, a draft bill), hidden even from A.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from app.accounts.models import Role, Sex, User, UserSession
from app.oauth.models import ClientKind
from app.extensions import db
from app.accounts.second_factor import set_authenticator
from tests.helpers import TEST_TOTP_SECRET, Client, page_without_csrf, text

pytestmark = pytest.mark.clock  # the care relationship and the cancel cutoff depend on the clock


# --- outcome classes ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    name: str
    status: int | None = None  # the exact status, when the class has one
    refused: bool = False  # a refusal by the access policy: audited as `access.denied` for a signed-in visitor

    def __repr__(self) -> str:
        return self.name


OK = Outcome("ok")  # 2xx, or a redirect that is not to the sign-in page
LOGIN = Outcome("login")  # a redirect to /login (HTMX: 401 with HX-Redirect)
FORBIDDEN = Outcome("403", 403, refused=True)
HIDDEN = Outcome("404", 404, refused=True)  # the resource's existence is not confirmed
BREAK_GLASS = Outcome("403+break-glass", 403, refused=True)  # a doctor outside the care relationship: the offer
OWNER = Outcome("skip-owner")  # a POST of the visitor it is for: not sent (it would change the shared world)


def plain(status: int) -> Outcome:
    """An answer that is not the access policy's (no audit): a refused form, an unknown link."""
    return Outcome(str(status), status)


INVALID = plain(422)  # an empty form: refused by its validation, nothing saved

VISITORS = ("anonymous", "patient_a", "patient_b", "doctor_a", "doctor_b", "clerk", "admin")
OWNERS = ("patient_a", "doctor_a", "clerk", "admin")  # the visitors a POST may be skipped for


def profile(default: Outcome, **visitors: Outcome) -> dict[str, Outcome]:
    unknown = set(visitors) - set(VISITORS)
    assert not unknown, unknown
    return {visitor: visitors.get(visitor, default) for visitor in VISITORS}


PUBLIC = profile(OK)
# A role's area: its roles in, the other roles 403 (audited), anonymous visitors to sign in.
PATIENT_AREA = profile(FORBIDDEN, anonymous=LOGIN, patient_a=OK, patient_b=OK)
DOCTOR_AREA = profile(FORBIDDEN, anonymous=LOGIN, doctor_a=OK, doctor_b=OK)
BILLING_AREA = profile(FORBIDDEN, anonymous=LOGIN, clerk=OK, admin=OK)
ADMIN_AREA = profile(FORBIDDEN, anonymous=LOGIN, admin=OK)
# A's own profile, appointment, bill, visit: another patient gets 404, as for an id that names nothing.
PATIENT_OWN = {**PATIENT_AREA, "patient_b": HIDDEN}
PATIENT_OWN_CHANGE = {**PATIENT_OWN, "patient_a": OWNER}
# Doctor A's appointment with A, A's encounter (writing: its author only), doctor A's schedule entries.
DOCTOR_OWN_CHANGE = {**DOCTOR_AREA, "doctor_a": OWNER, "doctor_b": HIDDEN}
# A's clinical record: doctor A in a care relationship; doctor B 403 with the break-glass form.
RECORD_READ = {**DOCTOR_AREA, "doctor_b": BREAK_GLASS}
RECORD_CHANGE = {**RECORD_READ, "doctor_a": OWNER}
# Forms of one's own area that name nothing of A's (an empty form: 422), e.g. booking, one's own profile.
PATIENT_FORM = {**PATIENT_AREA, "patient_a": INVALID, "patient_b": INVALID}
DOCTOR_FORM = {**DOCTOR_AREA, "doctor_a": INVALID, "doctor_b": INVALID}
BILLING_FORM = {**BILLING_AREA, "clerk": INVALID, "admin": INVALID}
# The billing desk (invoices, payments, refund requests, claims): clerks only; refund decisions: admins only.
BILLING_DESK = {**BILLING_AREA, "admin": FORBIDDEN}
BILLING_DESK_CHANGE = {**BILLING_DESK, "clerk": OWNER}
REFUND_DECISION = {**BILLING_AREA, "clerk": FORBIDDEN, "admin": OWNER}
ADMIN_CHANGE = {**ADMIN_AREA, "admin": OWNER}

# The API (`api.*`) and the FHIR endpoint (`fhir.*`) answer a cookie session 401, whoever is signed in: only a
# bearer token authorizes them (tests/api and tests/fhir test the tokens). Not a refusal by the policy: nobody
# asked it, so nothing is audited.
BEARER_ONLY = profile(plain(401))


def methods(get: dict | None = None, post: dict | None = None) -> dict[str, dict[str, Outcome]]:
    return {method: outcomes for method, outcomes in (("GET", get), ("POST", post)) if outcomes is not None}


# endpoint -> outcomes (the same for every method of the route) or {method: outcomes}.
MATRIX: dict[str, dict] = {
    # public: the landing page sends a signed-in visitor to their workspace; sign-in and sign-up pages too
    "main.home": PUBLIC, "main.healthz": PUBLIC, "main.readyz": PUBLIC, "static": PUBLIC,
    "directory.index": PUBLIC, "directory.doctor": PUBLIC,
    "oauth.jwks": PUBLIC, "oauth.metadata": PUBLIC,  # the authorization server's discovery documents
    "api.openapi_document": PUBLIC, "api.documentation": PUBLIC,
    # the authorization server's endpoints for programs: a request without client authentication is 401
    # invalid_client (RFC 6749's JSON), whoever's cookies come with it
    "oauth.token": profile(plain(401)), "oauth.revoke": profile(plain(401)), "oauth.introspect": profile(plain(401)),
    # the consent page: signed in first; a request naming no registered client is an error page (never a redirect)
    "oauth_pages.authorize": profile(plain(400), anonymous=LOGIN),
    # every signed-in person's connected apps; A's grant is revoked by A alone (others: not found)
    "oauth_pages.connected_apps": profile(OK, anonymous=LOGIN),
    "oauth_pages.revoke_app": profile(plain(404), anonymous=LOGIN, patient_a=OWNER),
    # every signed-in person's sessions; A's session is ended by A alone (others: not found); the keep-alive of the
    # idle-timeout warning; the emailed link that ends a session (an unknown link, whoever asks)
    "sessions.index": profile(OK, anonymous=LOGIN), "sessions.keep_alive": profile(OK, anonymous=LOGIN),
    "sessions.end_others": profile(OK, anonymous=LOGIN, patient_a=OWNER),
    "sessions.end": profile(plain(404), anonymous=LOGIN, patient_a=OWNER),
    "session_link.end_by_link": profile(plain(404)),
    "oauth.openid_configuration": PUBLIC,
    # the consent page's patient picker (a clinician's SMART launch/patient): doctors only
    "oauth_pages.patient_choices": profile(plain(404), anonymous=LOGIN, doctor_a=OK, doctor_b=OK),
    "fhir.metadata": PUBLIC, "fhir.smart_configuration": PUBLIC,  # the CapabilityStatement, SMART's discovery
    # FHIR read, search and $everything of A's Patient and record, and the writes of A's appointment (booking,
    # cancelling by PUT and PATCH), asked with each visitor's cookie session (and with each visitor's token:
    # FHIR_BY_TOKEN below)
    **dict.fromkeys(("fhir.read", "fhir.search", "fhir.patient_everything", "fhir.create", "fhir.update",
                     "fhir.patch"), BEARER_ONLY),
    "auth.login": methods(PUBLIC, profile(OK, anonymous=INVALID)),
    "auth.signup": methods(PUBLIC, profile(OK, anonymous=INVALID)),
    "auth.forgot_password": methods(PUBLIC, profile(INVALID)),
    "auth.use_password_link": profile(plain(404)),  # an unknown link, whoever asks
    "auth.logout": profile(LOGIN),  # ends at the sign-in page (asked with a session of its own)
    # the second step of signing in: without a password just checked in this browser, back to the sign-in page;
    # a signed-in visitor is sent on (to their workspace, or to their own two-factor page)
    "second_factor.verify": profile(OK, anonymous=LOGIN), "second_factor.setup": profile(OK, anonymous=LOGIN),
    # one's own second factor (every signed-in person): the staff of this world set theirs up when they signed in
    # (so an empty code is refused, 422, and their role may not turn it off, 409); the patients have none
    "second_factor.manage": profile(OK, anonymous=LOGIN),
    "second_factor.enrol": methods(profile(OK, anonymous=LOGIN), profile(INVALID, anonymous=LOGIN)),
    "second_factor.new_recovery_codes": profile(INVALID, anonymous=LOGIN, patient_a=OK, patient_b=OK),
    "second_factor.remove": profile(plain(409), anonymous=LOGIN, patient_a=OK, patient_b=OK),

    # the patient portal
    "patients.home": PATIENT_AREA, "patients.appointments": PATIENT_AREA, "patients.bills": PATIENT_AREA,
    "patients.bills_history": PATIENT_AREA, "patients.records": PATIENT_AREA,
    "patients.records_diagnoses": PATIENT_AREA, "patients.records_prescriptions": PATIENT_AREA,
    "patients.records_allergies": PATIENT_AREA, "patients.records_vitals": PATIENT_AREA,
    # "Who has seen my record": always the signed-in patient's own (no id in the address), the page and its CSV
    "patients.access_report": PATIENT_AREA, "patients.access_report_csv": PATIENT_AREA,
    "patients.book": methods(PATIENT_AREA, PATIENT_FORM),
    "patients.profile": PATIENT_OWN, "patients.edit_profile_section": PATIENT_OWN,
    "patients.profile_section": methods(PATIENT_OWN, PATIENT_OWN_CHANGE),
    "patients.appointment": PATIENT_OWN,
    "patients.reschedule_appointment": methods(PATIENT_OWN, PATIENT_OWN_CHANGE),
    "patients.cancel_appointment": PATIENT_OWN_CHANGE,
    "patients.bill": PATIENT_OWN, "patients.bill_pdf": PATIENT_OWN,
    "patients.record_visit": PATIENT_OWN, "patients.record_print_summary": PATIENT_OWN,
    "patients.record_print_prescription": PATIENT_OWN,

    # the doctor's workspace
    "doctors.home": DOCTOR_AREA, "doctors.appointments": DOCTOR_AREA, "doctors.availability": DOCTOR_AREA,
    "doctors.icd10_search": DOCTOR_AREA, "doctors.patients": DOCTOR_AREA,
    "doctors.profile": methods(DOCTOR_AREA, DOCTOR_FORM),
    "doctors.add_availability_window": DOCTOR_FORM, "doctors.add_leave": DOCTOR_FORM,
    "doctors.remove_availability_window": DOCTOR_OWN_CHANGE, "doctors.remove_leave": DOCTOR_OWN_CHANGE,
    "doctors.act": DOCTOR_OWN_CHANGE,  # accept, decline, check in, complete, no-show, cancel: six rules
    "doctors.open_encounter": DOCTOR_OWN_CHANGE,
    "doctors.encounter": RECORD_READ, "doctors.chart": RECORD_READ,
    **dict.fromkeys(("doctors.save_notes", "doctors.save_vitals", "doctors.add_diagnosis",
                     "doctors.remove_diagnosis", "doctors.primary_diagnosis", "doctors.add_prescription",
                     "doctors.remove_prescription", "doctors.sign_encounter", "doctors.amend_encounter"),
                    DOCTOR_OWN_CHANGE),  # an encounter is written by its author only
    "doctors.add_allergy": RECORD_CHANGE, "doctors.remove_allergy": RECORD_CHANGE,
    "doctors.break_glass": methods(DOCTOR_AREA, DOCTOR_FORM),  # any doctor may ask, with a reason

    # the billing office: clerks and admins read every bill
    "billing.home": BILLING_AREA, "billing.invoices": BILLING_AREA, "billing.invoice": BILLING_AREA,
    "billing.refunds": BILLING_AREA, "billing.refund": BILLING_AREA, "billing.prices": BILLING_AREA,
    "billing.new_price": methods(BILLING_AREA, BILLING_FORM),
    "billing.edit_price": methods(BILLING_AREA, BILLING_FORM),
    "billing.new_invoice": BILLING_DESK,
    **dict.fromkeys(("billing.create_invoice", "billing.add_line", "billing.remove_line", "billing.set_discount",
                     "billing.issue", "billing.void", "billing.record_refund"), BILLING_DESK_CHANGE),
    **dict.fromkeys(("billing.new_payment", "billing.request_refund", "billing.new_claim", "billing.decide_claim",
                     "billing.claim_paid", "billing.withdraw_claim"), methods(BILLING_DESK, BILLING_DESK_CHANGE)),
    "billing.decide_refund": REFUND_DECISION,
    "reports.index": BILLING_AREA, "reports.report": BILLING_AREA, "reports.export": BILLING_AREA,

    # administration
    **dict.fromkeys(("admin.home", "admin.audit", "admin.audit_csv", "admin.audit_json", "admin.doctors",
                     "admin.doctor_detail", "admin.notifications", "admin.staff", "admin.templates", "admin.clients",
                     "admin.client"),
                    ADMIN_AREA),
    **dict.fromkeys(("admin.departments_page", "admin.edit_department", "admin.edit_doctor", "admin.new_doctor",
                     "admin.new_staff", "admin.edit_template", "admin.new_client"), methods(ADMIN_AREA, ADMIN_CHANGE)),
    **dict.fromkeys(("admin.toggle_department", "admin.remove_department", "admin.toggle_doctor",
                     "admin.toggle_staff", "admin.preview_template", "admin.rotate_client_secret",
                     "admin.toggle_client", "second_factor.reset"), ADMIN_CHANGE),
    "admin.sign_out_everywhere": ADMIN_CHANGE,  # the clerk's sessions: the admin's request is not sent
}

FRESH_SESSION = {"auth.logout"}  # routes that end the visitor's session: asked with a sign-in of their own

# A route of the API or of FHIR that MATRIX does not name is BEARER_ONLY. The API's routes are not asked here (they
# are not keys of MATRIX): tests/api/test_cookie_sessions.py sends every operation with each role's cookie.
BEARER_ONLY_BLUEPRINTS = ("api.", "fhir.")


def expected(endpoint: str, method: str) -> dict[str, Outcome] | None:
    """The outcomes of the route's `method` per visitor, or None when MATRIX does not say."""
    entry = MATRIX.get(endpoint, BEARER_ONLY if endpoint.startswith(BEARER_ONLY_BLUEPRINTS) else None)
    if entry is None:
        return None
    return entry.get(method) if "GET" in entry or "POST" in entry else entry


def app_routes(app) -> set[tuple[str, str]]:
    """(endpoint, method) of every rule of the app, HEAD and OPTIONS left out."""
    return {(rule.endpoint, method) for rule in app.url_map.iter_rules()
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def test_every_route_is_in_the_matrix(app):
    routes = app_routes(app)
    missing = sorted(route for route in routes if expected(*route) is None)
    assert not missing, f"routes missing from MATRIX in tests/test_route_matrix.py: {missing}"
    endpoints = {endpoint for endpoint, _ in routes}
    stale = sorted({endpoint for endpoint in MATRIX if endpoint not in endpoints}
                   | {(endpoint, method) for endpoint, entry in MATRIX.items() for method in ("GET", "POST")
                      if method in entry and (endpoint, method) not in routes})
    assert not stale, f"MATRIX lists routes that do not exist: {stale}"


def test_the_matrix_names_every_visitor_and_skips_only_owners_posts(app):
    for endpoint, method in sorted(app_routes(app)):
        outcomes = expected(endpoint, method)
        if outcomes is not None:
            assert tuple(outcomes) == VISITORS, endpoint
            skipped = {visitor for visitor, outcome in outcomes.items() if outcome is OWNER}
            assert not skipped or method == "POST", f"{endpoint} {method}: only a POST is skipped"
            assert skipped <= set(OWNERS), f"{endpoint} {method}: refused visitors must be asked"


# --- the world -----------------------------------------------------------------------------------------------

PASSWORD = "correct horse battery"
MISSING = 2_000_000_000  # an id that names nothing


@dataclass
class World:
    users: dict[str, User]
    args: dict[str, object]  # URL arguments by name: A's resources
    args_by_endpoint: dict[str, dict[str, object]]
    draft_encounter_id: int
    draft_invoice_id: int
    name: tuple[str, ...]  # A's name
    personal: tuple[str, ...]  # A's name and contact details
    clinical: tuple[str, ...]  # what A's record says
    billing: tuple[str, ...]  # A's invoice number
    clients: dict[str, Client] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # each visitor's CSRF token
    seen: int = 0  # the last outbox event seen

    def url_args(self, endpoint: str) -> dict[str, object]:
        return {**self.args, **self.args_by_endpoint.get(endpoint, {})}


def _build(password_hash: str) -> World:
    from app.accounts.services import PatientRegistration, create_user, register_patient
    from app.appointments.models import Status
    from app.appointments.services import book, bookable_slots, transition
    from app.billing import claims, invoices, payments
    from app.billing.reports import REPORTS
    from app.clinic.services import DoctorDetails, create_doctor, save_department
    from app.notifications.models import NotificationTemplate
    from app.notifications.services import install_default_templates
    from app.records import services as records
    from app.records.models import Severity
    from app.scheduling.models import UnavailabilityKind
    from app.scheduling.services import add_unavailability, add_window
    from app.timeutil import clinic_today, utcnow
    from tests.records.clinical_data import add_appointment

    department = save_department(None, name="Matrix Cardiology", description="Hearts")

    def patient(name: str, email: str, address: str, policy: str) -> User:
        return register_patient(PatientRegistration(
            full_name=name, email=email, password=PASSWORD, date_of_birth=date(1980, 1, 2),
            sex=Sex.FEMALE, phone="+12025550123", address=address, emergency_contact_name="Sam Contact",
            emergency_contact_phone="+12025550199", insurance_provider="Acme Health", insurance_policy_number=policy),
            password_hash=password_hash)

    def doctor(name: str, email: str, licence: str):
        profile = create_doctor(DoctorDetails(full_name=name, email=email, phone="+12025550111",
                                              department_ids=[department.id], specialty="Cardiology",
                                              licence_number=licence, consultation_fee=Decimal("120.00"), bio=None))
        profile.user.password_hash = password_hash  # instead of the emailed set-password link
        return profile

    patient_a = patient("Zenobia Quartermaine", "zenobia.quartermaine@example.com", "17 Juniper Lane, Matrixville",
                        "POL-ZQ-4242")
    patient_b = patient("Bruno Bystander", "bruno.bystander@example.com", "2 Other Road", "POL-BB-1111")
    doctor_a = doctor("Dr. Alma Attending", "alma@example.com", "LIC-A-1")
    doctor_b = doctor("Dr. Boris Elsewhere", "boris@example.com", "LIC-B-1")
    clerk = create_user(role=Role.CLERK, email="carla.clerk@example.com", full_name="Carla Clerk", password=None,
                        password_hash=password_hash)
    admin = create_user(role=Role.ADMIN, email="ada.admin@example.com", full_name="Ada Admin", password=None,
                        password_hash=password_hash)

    # doctor A's week (every day 08:00-18:00) and time off a month ahead
    windows = [add_window(doctor_a, department_id=department.id, weekday=day, start=time(8), end=time(18),
                          slot_minutes=30) for day in range(7)]
    time_off = add_unavailability(doctor_a, starts=utcnow() + timedelta(days=30), ends=utcnow() + timedelta(days=31),
                                  kind=UnavailabilityKind.CONFERENCE, reason="Cardiology congress")

    # a confirmed appointment a week ahead (far from the 24-hour cutoff), booked and accepted
    week_ahead = clinic_today() + timedelta(days=7)
    slot = bookable_slots([doctor_a.user_id], week_ahead, week_ahead + timedelta(days=3),
                          department_id=department.id)[doctor_a.user_id][0]
    upcoming = book(patient_a, doctor_id=doctor_a.user_id, department_id=department.id, starts_at=slot.start,
                    reason="Follow-up of palpitations")
    transition(upcoming, Status.CONFIRMED, doctor_a.user)

    # ten days ago: checked in, its encounter written and signed, then completed (the care relationship)
    visit = add_appointment(patient_a.id, doctor_a.user_id, department.id, days_ago=10, status=Status.CHECKED_IN)
    encounter, _ = records.open_encounter(doctor_a.user, visit)
    records.save_notes(encounter, chief_complaint="Palpitations zqx-complaint", subjective="zqx-subjective racing",
                       objective="zqx-objective irregular pulse", assessment="zqx-assessment stage 1",
                       plan="zqx-plan amlodipine")
    records.save_vitals(encounter, {"systolic": "150", "diastolic": "95", "heart_rate": "88"})
    records.record_allergy(patient_a.id, substance="Penicillin", reaction="Hives", severity=Severity.SEVERE,
                           by=doctor_a.user)
    diagnosis = records.add_diagnosis(encounter, "I10")
    prescription = records.add_prescription(encounter, records.PrescriptionInput(
        drug_name="Amlodipine", strength="5 mg", form="tablet", dose="1 tablet", route="oral",
        frequency="once daily", duration_days=30, quantity=30), doctor_a.user)
    records.sign(encounter, doctor_a.user)
    transition(visit, Status.COMPLETED, doctor_a.user)
    allergy = records.allergies(patient_a.id)[0]

    # two days ago: another visit, its encounter still a draft
    later = add_appointment(patient_a.id, doctor_a.user_id, department.id, days_ago=2, status=Status.CHECKED_IN)
    draft, _ = records.open_encounter(doctor_a.user, later)
    records.save_notes(draft, assessment="zqx-draft-assessment")

    # the bill of the completed visit: issued, part paid, a refund asked, a claim waiting and one approved
    invoice = invoices.create_invoice(patient_a.id, clerk, appointment_id=visit.id)
    invoices.issue_invoice(invoice.id, clerk)
    payment = payments.record_payment(invoice.id, clerk, amount="50.00", method="card",
                                     idempotency_key=payments.new_idempotency_key())
    refund = payments.request_refund(payment.id, clerk, "10.00", "Charged twice for parking")
    waiting = claims.submit_claim(invoice.id, clerk, payer="Acme Health", policy_number="POL-ZQ-4242",
                                   claimed_amount="40.00")
    approved = claims.submit_claim(invoice.id, clerk, payer="Acme Health", policy_number="POL-ZQ-4242",
                                    claimed_amount="20.00")
    claims.decide_claim(approved.id, clerk, status="approved")
    draft_invoice = invoices.create_invoice(patient_a.id, clerk)
    invoices.add_line(draft_invoice.id, clerk, description="Parking", quantity=1, unit_price="5.00")
    item = invoices.create_price_item(clerk, code="XRAY1", name="Chest X-ray", price="80.00")

    install_default_templates()
    # A's connected app
    from app.oauth.models import OAuthGrant
    from app.oauth.services import ClientRegistration, register_client

    api_client, _ = register_client(ClientRegistration(
        name="Matrix app", kind=ClientKind.CONFIDENTIAL, redirect_uris=["https://app.example/cb"],
        grant_types=["authorization_code", "client_credentials"], allowed_scopes="patient/*.rs system/*.rs",
        service_role=Role.CLERK), by=admin)
    grant = OAuthGrant(client_pk=api_client.id, user_id=patient_a.id, scope="patient/*.rs")
    a_session = UserSession(token_hash="a" * 64, user_id=patient_a.id, browser="Firefox on Windows", ip="192.0.2.1")
    db.session.add_all([grant, a_session])
    db.session.flush()
    template_id = db.session.scalar(sa.select(NotificationTemplate.id).order_by(NotificationTemplate.id).limit(1))

    args = {"patient_id": patient_a.id, "key": "contact", "filename": "css/app.css", "template_id": template_id,
            "token": "not-a-token", "department_id": department.id, "doctor_id": doctor_a.user_id,
            "window_id": windows[0].id, "entry_id": time_off.id, "action": "deactivate",
            "appointment_id": upcoming.id, "encounter_id": encounter.id, "diagnosis_id": diagnosis.id,
            "prescription_id": prescription.id, "allergy_id": allergy.id, "invoice_id": invoice.id,
            "line_id": invoice.lines[0].id, "payment_id": payment.id, "refund_id": refund.id, "decision": "approve",
            "claim_id": waiting.id, "item_id": item.id, "user_id": clerk.id, "grant_id": grant.id,
            "client_pk": api_client.id, "session_id": a_session.id}
    report = next(iter(REPORTS))
    by_endpoint = {"billing.claim_paid": {"claim_id": approved.id},
                   "reports.report": {"key": report}, "reports.export": {"key": report},
                   "fhir.read": {"resource_type": "Patient", "resource_id": str(patient_a.id)},
                   "fhir.search": {"resource_type": "Condition"},
                   "fhir.patient_everything": {"resource_id": str(patient_a.id)},
                   "fhir.create": {}, "fhir.update": {"resource_id": str(upcoming.id)},
                   "fhir.patch": {"resource_id": str(upcoming.id)}}
    users = {"patient_a": patient_a, "patient_b": patient_b, "doctor_a": doctor_a.user, "doctor_b": doctor_b.user,
             "clerk": clerk, "admin": admin}
    for staff in (doctor_a.user, doctor_b.user, clerk, admin):
        set_authenticator(staff, TEST_TOTP_SECRET)
    return World(
        users=users, args=args, args_by_endpoint=by_endpoint, draft_encounter_id=draft.id,
        draft_invoice_id=draft_invoice.id,
        name=("Zenobia", "Quartermaine"),
        personal=("Zenobia", "Quartermaine", "zenobia.quartermaine@example.com", "17 Juniper Lane", "POL-ZQ-4242"),
        clinical=("zqx-", "Palpitations", "Essential (primary) hypertension", "Amlodipine", "Penicillin", "Hives"),
        billing=(invoice.number,))


def _audit_what_happened() -> None:
    """The events so far into the audit trail, as the worker's audit consumer would (the admin's pages read it)."""
    from app.audit.chain import append_all
    from app.events.models import OutboxEvent

    append_all([event.envelope for event in db.session.scalars(sa.select(OutboxEvent).order_by(OutboxEvent.seq))])
    db.session.commit()


def sign_in(app, world: World, visitor: str) -> tuple[Client, str]:
    """A client of `visitor` (anonymous: none signed in) and its CSRF token."""
    client = Client(app)
    if visitor != "anonymous":
        response = client.sign_in(world.users[visitor].email, PASSWORD)
        assert response.status_code == 303, text(response)[:300]
    return client, client.csrf_token("/login")


@pytest.fixture(autouse=True)
def _empty_tables():
    """The module's world is shared by its tests (see `world`): the tables are emptied once, after the last."""
    yield


@pytest.fixture(scope="module")
def world(app):
    from app.accounts.passwords import hash_password
    from tests.conftest import empty_tables

    empty_tables(app)  # whatever an earlier module left (it empties after itself; this is a guard)
    with app.app_context():
        built = _build(hash_password(PASSWORD))
        db.session.commit()
        _audit_what_happened()
        for user in built.users.values():
            db.session.refresh(user)
        db.session.expunge_all()
    for visitor in VISITORS:
        built.clients[visitor], built.tokens[visitor] = sign_in(app, built, visitor)
    built.seen = _last_seq(app)
    yield built
    empty_tables(app)


# --- asking ----------------------------------------------------------------------------------------------------

def _last_seq(app) -> int:
    from app.events.models import OutboxEvent

    with app.app_context():
        seq = db.session.scalar(sa.select(sa.func.max(OutboxEvent.seq))) or 0
        db.session.remove()
        return seq


def _new_denials(app, world: World) -> list[dict]:
    """The `access.denied` events written since the last call."""
    from app.events.models import OutboxEvent

    with app.app_context():
        rows = db.session.execute(sa.select(OutboxEvent.seq, OutboxEvent.type, OutboxEvent.envelope)
                                  .where(OutboxEvent.seq > world.seen).order_by(OutboxEvent.seq)).all()
        db.session.remove()
    if rows:
        world.seen = rows[-1].seq
    return [row.envelope for row in rows if row.type == "access.denied"]


# What a request may change without changing the world: the outbox (audit rows), the visitors' sessions and the
# rate-limit counters (the token endpoint counts every request, refused or not).
MAY_CHANGE = ("outbox_events", "user_sessions", "known_browsers", "api_rate_limits")


def _checksums(app) -> dict[str, int]:
    """Each table's checksum, but MAY_CHANGE's."""
    names = sorted(t.name for t in db.metadata.sorted_tables if t.name not in MAY_CHANGE)
    with app.app_context():
        rows = db.session.execute(sa.text(f"CHECKSUM TABLE {', '.join(names)}")).all()
        db.session.remove()
    return {row[0]: row[1] for row in rows}


def _send(client: Client, method: str, url: str, token: str, *, htmx: bool = False):
    """The answer, read and closed (a static file's answer holds the file open until then)."""
    headers = {"HX-Request": "true"} if htmx else None
    data = {"csrf_token": token} if method == "POST" else None
    response = client.http.open(url, method=method, headers=headers, data=data)
    response.get_data()
    response.close()
    return response


def outcome_of(response) -> Outcome | int:
    status = response.status_code
    if status == 401 and urlsplit(response.headers.get("HX-Redirect", "")).path == "/login":
        return LOGIN
    if 300 <= status < 400:
        return LOGIN if urlsplit(response.headers.get("Location", "")).path == "/login" else OK
    return OK if status < 300 else status


def _matches(got: Outcome | int, want: Outcome) -> bool:
    return got is want if want in (OK, LOGIN) else got == want.status


def _page(response) -> str:
    """The answer's text without its CSRF token (the same session's token is signed anew each second)."""
    return page_without_csrf(response) if response.mimetype.startswith("text/") else ""


def _not_entitled(world: World, visitor: str, want: Outcome) -> tuple[str, ...]:
    """A's data that the answer to `visitor` must not carry: what they are not entitled to, and for a refusal
    anything of A's (but the name on the break-glass form, and what A and A's doctor see on every page)."""
    everything = (*world.personal, *world.clinical, *world.billing)
    if visitor in ("patient_a", "doctor_a"):
        return ()
    if want is BREAK_GLASS:
        return tuple(s for s in everything if s not in world.name)
    if want.refused or want is LOGIN:
        return everything
    return {"anonymous": everything, "patient_b": everything,
            "doctor_b": tuple(s for s in everything if s not in world.name),  # names: the patient search
            "clerk": world.clinical, "admin": world.clinical}[visitor]


def _missing_url(rule, args: dict) -> str:
    return rule.build({name: MISSING if name.endswith("_id") else value for name, value in args.items()
                       if name in rule.arguments})[1]


def check(app, world: World, client: Client, token: str, visitor: str, rule, method: str, want: Outcome,
          args: dict | None = None) -> list[str]:
    """Ask the route (with A's resources, or `args`) as `visitor`; what differs from the expectations, as
    messages."""
    args = args or world.url_args(rule.endpoint)
    url = rule.build({name: value for name, value in args.items() if name in rule.arguments})[1]
    where = f"{method} {url} as {visitor}"
    response = _send(client, method, url, token)
    got = outcome_of(response)
    page = _page(response)
    denials = _new_denials(app, world)
    if not _matches(got, want):
        return [f"{where}: expected {want!r}, got {response.status_code} {response.headers.get('Location', '')}"
                f"\n    {page[:300]!r}"]
    problems = []
    if want.refused and visitor != "anonymous":
        mine = [d for d in denials if d["actor"] and d["actor"]["id"] == world.users[visitor].id
                and d["data"]["path"] == urlsplit(url).path and d["data"]["method"] == method
                and d["data"]["status"] == want.status]
        if len(mine) != 1 or len(denials) != 1:
            problems.append(f"{where}: expected one access.denied event for the request, found {denials}")
    elif denials:
        problems.append(f"{where}: {want!r} is not a refusal by the policy, yet audited as one: {denials}")
    if want is BREAK_GLASS:
        offer = f'action="/doctor/patients/{world.args["patient_id"]}/break-glass"'
        if offer not in page:
            problems.append(f"{where}: a doctor without a care relationship is offered break-glass with the 403")
        elif denials and denials[0]["data"]["reason"] != "no_relationship":
            problems.append(f"{where}: refused for {denials[0]['data']['reason']}, not for no relationship")
    leaked = tuple(s for s in _not_entitled(world, visitor, want) if s in page)
    if leaked:
        problems.append(f"{where}: the answer ({response.status_code}) carries A's {list(leaked)}")
    if want is HIDDEN:
        missing = _missing_url(rule, args)
        answer = _send(client, method, missing, token)
        missing_denials = _new_denials(app, world)
        if answer.status_code != 404 or _page(answer) != page:
            diff = "\n".join(difflib.unified_diff(page.splitlines(), _page(answer).splitlines(), lineterm="", n=1))
            problems.append(f"{where}: the 404 differs from the one for a missing id ({method} {missing}: "
                            f"{answer.status_code})\n{diff[:1500]}")
        if [d["data"]["reason"] for d in missing_denials] != ["not_found"]:
            problems.append(f"{method} {missing} as {visitor}: expected one access.denied (not_found), "
                            f"found {missing_denials}")
    if visitor == "anonymous" and want is LOGIN and "next=" in response.headers.get("Location", ""):
        htmx = _send(client, method, url, token, htmx=True)
        if htmx.status_code != 401 or not htmx.headers.get("HX-Redirect", "").startswith("/login?next="):
            problems.append(f"{where} (HTMX): expected 401 with HX-Redirect to sign in, got {htmx.status_code}")
    return problems


@pytest.mark.parametrize("endpoint", sorted(MATRIX))
def test_route(app, world: World, endpoint: str):
    """Every rule of `endpoint` (`doctors.act` has six), every method, every visitor."""
    asked = [(rule, method) for rule in app.url_map.iter_rules(endpoint)
             for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    if endpoint in FRESH_SESSION:
        sessions = {visitor: sign_in(app, world, visitor) for visitor in VISITORS}
    else:
        sessions = {visitor: (world.clients[visitor], world.tokens[visitor]) for visitor in VISITORS}
    world.seen = _last_seq(app)
    posts = any(method == "POST" for _, method in asked)
    before = _checksums(app) if posts else None
    problems = []
    for rule, method in asked:
        outcomes = expected(endpoint, method)
        assert outcomes is not None, f"MATRIX has no {method} for {endpoint}"
        for visitor in VISITORS:
            if outcomes[visitor] is not OWNER:
                client, token = sessions[visitor]
                problems += check(app, world, client, token, visitor, rule, method, outcomes[visitor])
    if before is not None:
        changed = [name for name, checksum in _checksums(app).items() if before[name] != checksum]
        problems += [f"{endpoint}: the requests changed the tables {changed}"] if changed else []
    assert not problems, "\n".join(problems)


# Drafts: A's too, and hidden even from A (a draft encounter from everyone but its author, a draft bill from the
# patient), with the same 404 as for a missing id. Doctor B, outside the care relationship, is refused the draft
# as any part of the record (the break-glass offer: nothing tells a draft apart); a colleague in the care
# relationship gets 404 (tests/records/test_doctor_access.py).
DRAFTS = {
    "doctors.encounter": ("encounter_id", RECORD_READ),
    "patients.record_visit": ("encounter_id", {**PATIENT_AREA, "patient_a": HIDDEN, "patient_b": HIDDEN}),
    "patients.bill": ("invoice_id", {**PATIENT_AREA, "patient_a": HIDDEN, "patient_b": HIDDEN}),
    "billing.invoice": ("invoice_id", BILLING_AREA),
}


@pytest.mark.parametrize("endpoint", sorted(DRAFTS))
def test_draft(app, world: World, endpoint: str):
    name, outcomes = DRAFTS[endpoint]
    draft = world.draft_encounter_id if name == "encounter_id" else world.draft_invoice_id
    [rule] = app.url_map.iter_rules(endpoint)
    world.seen = _last_seq(app)
    problems = []
    for visitor in VISITORS:
        problems += check(app, world, world.clients[visitor], world.tokens[visitor], visitor, rule, "GET",
                          outcomes[visitor], args={name: draft})
    assert not problems, "\n".join(problems)


# --- FHIR, asked as programs ask it --------------------------------------------------------------------------

# Each visitor's bearer token (every read scope of their context: patient/*.rs, user/*.rs), anonymous with none.
# A's record: A and A's doctor; another patient 404 (as for an id that names nothing); doctor B, outside the care
# relationship, 403 (break-glass is opened on the pages); billing staff 403, never clinical content.
FHIR_RECORD = {"anonymous": plain(401), "patient_a": OK, "patient_b": HIDDEN, "doctor_a": OK, "doctor_b": FORBIDDEN,
               "clerk": FORBIDDEN, "admin": FORBIDDEN}
# A's appointment with doctor A: also the front desk's; another doctor's or the admin's: 404.
FHIR_APPOINTMENT = {**FHIR_RECORD, "doctor_b": HIDDEN, "clerk": OK, "admin": HIDDEN}
# path (with A's ids as `{name}`) -> outcomes
FHIR_BY_TOKEN = {
    "Patient/{patient_id}": FHIR_RECORD,
    "Patient/{patient_id}/$everything": FHIR_RECORD,
    "Encounter/{encounter_id}": FHIR_RECORD,
    "Condition/{diagnosis_id}": FHIR_RECORD,
    "MedicationRequest/{prescription_id}": FHIR_RECORD,
    "AllergyIntolerance/{allergy_id}": FHIR_RECORD,
    "Condition?patient={patient_id}": FHIR_RECORD,
    "Observation?patient={patient_id}&category=vital-signs": FHIR_RECORD,
    "Appointment/{appointment_id}": FHIR_APPOINTMENT,
}


@pytest.fixture(scope="module")
def bearer_tokens(app, world: World) -> dict[str, str]:
    from tests.api.tokens import token_for

    return {visitor: token_for(app, user, "patient/*.rs" if user.role is Role.PATIENT else "user/*.rs")
            for visitor, user in world.users.items()}


@pytest.mark.parametrize("path", sorted(FHIR_BY_TOKEN))
def test_fhir_by_token(app, world: World, bearer_tokens, path: str):
    """Every visitor's token asks for A's resource: the policy's answer as an OperationOutcome, each refusal
    audited once, nothing of A's in a refusal, and another patient's 404 the same as a missing id's."""
    client = app.test_client()
    world.seen = _last_seq(app)
    problems = []
    for visitor, want in FHIR_BY_TOKEN[path].items():
        url = "/fhir/R4/" + path.format(**world.args)
        headers = {"Authorization": f"Bearer {bearer_tokens[visitor]}"} if visitor != "anonymous" else {}
        response = client.get(url, headers=headers)
        body = response.get_data(as_text=True)
        denials = _new_denials(app, world)
        where = f"GET {url} as {visitor}"
        if response.mimetype != "application/fhir+json":
            problems.append(f"{where}: answered {response.mimetype}, not FHIR JSON")
        if not (_matches(OK, want) and response.status_code == 200 or response.status_code == want.status):
            problems.append(f"{where}: expected {want!r}, got {response.status_code} {body[:300]}")
            continue
        if want.refused:
            if len(denials) != 1 or denials[0]["actor"]["id"] != world.users[visitor].id:
                problems.append(f"{where}: expected one access.denied event, found {denials}")
            leaked = [s for s in (*world.personal, *world.clinical, *world.billing) if s in body]
            if leaked:
                problems.append(f"{where}: the refusal carries A's {leaked}")
        if want is HIDDEN:
            missing = "/fhir/R4/" + path.format(**{n: MISSING if n.endswith("_id") else v
                                                     for n, v in world.args.items()})
            other = client.get(missing, headers=headers)
            _new_denials(app, world)
            if other.status_code != 404 or other.get_json()["issue"] != response.get_json()["issue"]:
                problems.append(f"{where}: the 404 differs from the one for a missing id: {other.get_data()[:300]}")
    assert not problems, "\n".join(problems)
