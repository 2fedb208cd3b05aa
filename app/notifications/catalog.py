"""The events that notify people: their variables, sample data and shipped default templates.

The admin edits the templates in the database; these defaults fill it (`flask notifications
install-templates`, run by `make run`) and never overwrite an edited template.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from app.notifications.models import Channel

COMMON_VARIABLES = {
    "clinic_name": "The clinic's name",
    "recipient_name": "Full name of the person receiving the message",
    "site_url": "Address of the HMS website",
}


@dataclass(frozen=True)
class Default:
    body_text: str
    subject: str | None = None
    body_html: str | None = None


@dataclass(frozen=True)
class NotifyingEvent:
    type: str
    title: str
    variables: dict[str, str]
    sample: dict
    defaults: dict[Channel, Default] = field(default_factory=dict)
    # Account-security messages (password links) go by email whatever the patient chose.
    essential: bool = False
    # Who receives it: "patient" = the envelope's patient_id (or the patient/user the event is about),
    # "doctor" = data["doctor_id"]. Staff receive email only.
    audience: Literal["patient", "doctor"] = "patient"

    @property
    def all_variables(self) -> dict[str, str]:
        return {**COMMON_VARIABLES, **self.variables}

    def sample_context(self) -> dict:
        return {"clinic_name": "HMS Clinic", "recipient_name": "Maria Garcia",
                "site_url": "https://clinic.example.com", **self.sample}


EVENTS: dict[str, NotifyingEvent] = {e.type: e for e in (
    NotifyingEvent(
        type="patient.registered",
        title="Patient signed up (welcome)",
        variables={"email": "The email address the patient signs in with"},
        sample={"email": "maria.garcia@example.com"},
        defaults={
            Channel.EMAIL: Default(
                subject="Welcome to {{ clinic_name }}",
                body_text=("Dear {{ recipient_name }},\n\nWelcome to {{ clinic_name }}. Your patient account is ready;"
                           " you sign in with {{ email }} at {{ site_url }}.\n\nFrom your account you can keep your"
                           " details up to date and choose how we contact you.\n\n{{ clinic_name }}"),
                body_html=("<p>Dear {{ recipient_name }},</p><p>Welcome to <strong>{{ clinic_name }}</strong>."
                           " Your patient account is ready; you sign in with {{ email }} at"
                           " <a href=\"{{ site_url }}\">{{ site_url }}</a>.</p><p>From your account you can keep your"
                           " details up to date and choose how we contact you.</p><p>{{ clinic_name }}</p>"),
            ),
            Channel.SMS: Default(body_text="Welcome to {{ clinic_name }}, {{ recipient_name }}. Your account is ready:"
                                           " {{ site_url }}"),
        },
    ),
    NotifyingEvent(
        type="patient.profile_changed",
        title="Patient profile changed (security notice)",
        variables={"changed": "What was changed, e.g. “Contact”", "changed_at": "When, in the clinic's time zone"},
        sample={"changed": "Contact", "changed_at": "24 Nov 2026, 09:30 EST"},
        defaults={
            Channel.EMAIL: Default(
                subject="Your {{ clinic_name }} profile was updated",
                body_text=("Dear {{ recipient_name }},\n\nYour profile ({{ changed }}) was changed on {{ changed_at }}."
                           "\n\nIf this was not you, call the clinic and sign in at {{ site_url }} to check your"
                           " details.\n\n{{ clinic_name }}"),
                body_html=("<p>Dear {{ recipient_name }},</p><p>Your profile ({{ changed }}) was changed on"
                           " {{ changed_at }}.</p><p>If this was not you, call the clinic and sign in at"
                           " <a href=\"{{ site_url }}\">{{ site_url }}</a> to check your details.</p>"
                           "<p>{{ clinic_name }}</p>"),
            ),
            Channel.SMS: Default(body_text="{{ clinic_name }}: your profile ({{ changed }}) was changed on"
                                           " {{ changed_at }}. Not you? Call the clinic."),
        },
    ),
    NotifyingEvent(
        type="user.new_browser_sign_in",
        title="Sign-in from a new browser (security notice)",
        variables={"browser": "The browser, e.g. “Chrome on Windows”", "ip": "The address it signed in from",
                   "signed_in_at": "When, in the clinic's time zone",
                   "end_link": "A link that ends that session (it works once)"},
        sample={"browser": "Chrome on Windows", "ip": "203.0.113.7", "signed_in_at": "24 Nov 2026, 09:30 EST",
                "end_link": "https://clinic.example.com/account/sessions/end/sample-link"},
        essential=True,
        defaults={
            Channel.EMAIL: Default(
                subject="New sign-in to your {{ clinic_name }} account",
                body_text=("Dear {{ recipient_name }},\n\nYour account was signed in to from a browser you have not"
                           " used before: {{ browser }}, from {{ ip }}, on {{ signed_in_at }}.\n\nIf this was you,"
                           " there is nothing to do. If it was not, end that session with this link and change your"
                           " password:\n\n{{ end_link }}\n\n{{ clinic_name }}"),
                body_html=("<p>Dear {{ recipient_name }},</p><p>Your account was signed in to from a browser you"
                           " have not used before: <strong>{{ browser }}</strong>, from {{ ip }}, on"
                           " {{ signed_in_at }}.</p><p>If this was you, there is nothing to do. If it was not, end"
                           " that session and change your password:</p><p><a href=\"{{ end_link }}\">End that"
                           " session</a></p><p>{{ clinic_name }}</p>"),
            ),
        },
    ),
    NotifyingEvent(
        type="user.signup_attempted",
        title="Someone signed up with an address that has an account (security notice)",
        variables={},
        sample={},
        essential=True,
        defaults={
            Channel.EMAIL: Default(
                subject="Someone tried to create a {{ clinic_name }} account with your email",
                body_text=("Dear {{ recipient_name }},\n\nSomeone, perhaps you, just tried to create an account at"
                           " {{ clinic_name }} with this email address, which already has one. Nothing was"
                           " changed.\n\nIf it was you, sign in at {{ site_url }}; if you have forgotten your"
                           " password, choose \"Forgot your password?\" there. If it was not you, you can ignore"
                           " this message.\n\n{{ clinic_name }}"),
                body_html=("<p>Dear {{ recipient_name }},</p><p>Someone, perhaps you, just tried to create an account"
                           " at {{ clinic_name }} with this email address, which already has one. Nothing was"
                           " changed.</p><p>If it was you, sign in at <a href=\"{{ site_url }}\">{{ site_url }}</a>;"
                           " if you have forgotten your password, choose “Forgot your password?” there. If it was"
                           " not you, you can ignore this message.</p><p>{{ clinic_name }}</p>"),
            ),
        },
    ),
    NotifyingEvent(
        type="user.password_link_issued",
        title="Password link (new account or reset)",
        variables={"link": "The single-use link to choose a password",
                   "expires_at": "When the link stops working, in the clinic's time zone",
                   "purpose_text": "What the link is for: “set up your account” or “reset your password”"},
        sample={"link": "https://clinic.example.com/password/sample-link", "expires_at": "26 Nov 2026, 09:30 EST",
                "purpose_text": "reset your password"},
        essential=True,
        defaults={
            Channel.EMAIL: Default(
                subject="Your {{ clinic_name }} password link",
                body_text=("Dear {{ recipient_name }},\n\nUse this link to {{ purpose_text }} at {{ clinic_name }}:"
                           "\n\n{{ link }}\n\nThe link works once and until {{ expires_at }}. If you were not"
                           " expecting this message, ignore it: nothing changes until the link is used.\n\n"
                           "{{ clinic_name }}"),
                body_html=("<p>Dear {{ recipient_name }},</p><p>Use this link to {{ purpose_text }} at"
                           " {{ clinic_name }}:</p><p><a href=\"{{ link }}\">{{ link }}</a></p><p>The link works"
                           " once and until {{ expires_at }}. If you were not expecting this message, ignore it:"
                           " nothing changes until the link is used.</p><p>{{ clinic_name }}</p>"),
            ),
        },
    ),
    NotifyingEvent(
        type="user.second_factor_reset",
        title="Second factor reset by an admin (security notice)",
        variables={},
        sample={},
        essential=True,
        defaults={
            Channel.EMAIL: Default(
                subject="Your {{ clinic_name }} two-factor sign-in was reset",
                body_text=("Dear {{ recipient_name }},\n\nAn administrator reset your two-factor sign-in: your"
                           " authenticator app and recovery codes no longer work, and you were signed out. At your"
                           " next sign-in at {{ site_url }} you set up an authenticator app again.\n\nIf you did"
                           " not ask for this, call the clinic.\n\n{{ clinic_name }}"),
                body_html=("<p>Dear {{ recipient_name }},</p><p>An administrator reset your two-factor sign-in:"
                           " your authenticator app and recovery codes no longer work, and you were signed out."
                           " At your next sign-in at <a href=\"{{ site_url }}\">{{ site_url }}</a> you set up an"
                           " authenticator app again.</p><p>If you did not ask for this, call the clinic.</p>"
                           "<p>{{ clinic_name }}</p>"),
            ),
        },
    ),
)}


# --- appointments ---------------------------------------------------------------------------------

APPOINTMENT_VARIABLES = {
    "doctor_name": "The doctor's full name",
    "patient_name": "The patient's full name",
    "department": "The department of the visit",
    "appointment_time": "When the visit starts, in the clinic's time zone, e.g. “Wed 25 Nov 2026, 09:30 EST”",
    "appointment_url": "Address of the appointment on the HMS website",
}
APPOINTMENT_SAMPLE = {
    "doctor_name": "Dr. Amara Okafor", "patient_name": "Maria Garcia", "department": "Cardiology",
    "appointment_time": "Wed 25 Nov 2026, 09:30 EST",
    "appointment_url": "https://clinic.example.com/patient/appointments/42",
}


def _appointment_event(type: str, title: str, defaults: dict[Channel, Default], *, variables: dict | None = None,
                       sample: dict | None = None,
                       audience: Literal["patient", "doctor"] = "patient") -> NotifyingEvent:
    return NotifyingEvent(type=type, title=title, variables={**APPOINTMENT_VARIABLES, **(variables or {})},
                          sample={**APPOINTMENT_SAMPLE, **(sample or {})}, defaults=defaults, audience=audience)


_SIGNATURE_TEXT = "\n\n{{ clinic_name }}"
_SIGNATURE_HTML = "<p>{{ clinic_name }}</p>"
_LINK_HTML = "<a href=\"{{ appointment_url }}\">{{ appointment_url }}</a>"

APPOINTMENT_EVENTS = (
    _appointment_event(
        "appointment.requested", "Appointment requested (to the doctor)",
        variables={"reason": "The reason for the visit, as the patient gave it"},
        sample={"reason": "Follow-up on my blood pressure", "recipient_name": "Dr. Amara Okafor",
                "appointment_url": "https://clinic.example.com/doctor/appointments"},
        audience="doctor",
        defaults={
            # Staff receive email only, so this event has no SMS template.
            Channel.EMAIL: Default(
                subject="Appointment request: {{ patient_name }}, {{ appointment_time }}",
                body_text=("Dear {{ recipient_name }},\n\n{{ patient_name }} asks for an appointment with you on"
                           " {{ appointment_time }} ({{ department }}).\n\nReason for the visit: {{ reason }}\n\n"
                           "Please confirm or decline the request: {{ appointment_url }}" + _SIGNATURE_TEXT),
                body_html=("<p>Dear {{ recipient_name }},</p><p>{{ patient_name }} asks for an appointment with you on"
                           " <strong>{{ appointment_time }}</strong> ({{ department }}).</p><p>Reason for the visit:"
                           " {{ reason }}</p><p>Please confirm or decline the request: " + _LINK_HTML + "</p>"
                           + _SIGNATURE_HTML),
            ),
        },
    ),
    _appointment_event(
        "appointment.confirmed", "Appointment confirmed",
        defaults={
            Channel.EMAIL: Default(
                subject="Your appointment on {{ appointment_time }} is confirmed",
                body_text=("Dear {{ recipient_name }},\n\n{{ doctor_name }} confirmed your appointment on"
                           " {{ appointment_time }} ({{ department }}).\n\nIf you cannot come, please cancel or"
                           " reschedule so another patient can have the time: {{ appointment_url }}" + _SIGNATURE_TEXT),
                body_html=("<p>Dear {{ recipient_name }},</p><p>{{ doctor_name }} confirmed your appointment on"
                           " <strong>{{ appointment_time }}</strong> ({{ department }}).</p><p>If you cannot come,"
                           " please cancel or reschedule so another patient can have the time: " + _LINK_HTML
                           + "</p>" + _SIGNATURE_HTML),
            ),
            Channel.SMS: Default(body_text="{{ clinic_name }}: your visit with {{ doctor_name }} on"
                                           " {{ appointment_time }} is confirmed. {{ appointment_url }}"),
        },
    ),
    _appointment_event(
        "appointment.declined", "Appointment request declined",
        variables={"reason": "Why the clinic declined the request"},
        sample={"reason": "Dr. Okafor is away that week; please choose another time."},
        defaults={
            Channel.EMAIL: Default(
                subject="Your appointment request for {{ appointment_time }} was declined",
                body_text=("Dear {{ recipient_name }},\n\n{{ doctor_name }} cannot accept your request for"
                           " {{ appointment_time }} ({{ department }}).\n\nReason: {{ reason }}\n\nYou can book"
                           " another time at {{ site_url }}." + _SIGNATURE_TEXT),
                body_html=("<p>Dear {{ recipient_name }},</p><p>{{ doctor_name }} cannot accept your request for"
                           " <strong>{{ appointment_time }}</strong> ({{ department }}).</p><p>Reason: {{ reason }}</p>"
                           "<p>You can book another time at <a href=\"{{ site_url }}\">{{ site_url }}</a>.</p>"
                           + _SIGNATURE_HTML),
            ),
            Channel.SMS: Default(body_text="{{ clinic_name }}: your request for {{ appointment_time }} was declined."
                                           " Reason: {{ reason }} Book another time: {{ site_url }}"),
        },
    ),
    _appointment_event(
        "appointment.rescheduled", "Appointment moved to another time",
        variables={"previous_time": "When the visit was before, in the clinic's time zone"},
        sample={"previous_time": "Tue 24 Nov 2026, 14:00 EST"},
        defaults={
            Channel.EMAIL: Default(
                subject="Your appointment moved to {{ appointment_time }}",
                body_text=("Dear {{ recipient_name }},\n\nYour appointment with {{ doctor_name }} ({{ department }})"
                           " moved from {{ previous_time }} to {{ appointment_time }}. The doctor confirms the new"
                           " time; we will let you know.\n\nYour appointment: {{ appointment_url }}" + _SIGNATURE_TEXT),
                body_html=("<p>Dear {{ recipient_name }},</p><p>Your appointment with {{ doctor_name }}"
                           " ({{ department }}) moved from {{ previous_time }} to <strong>{{ appointment_time }}"
                           "</strong>. The doctor confirms the new time; we will let you know.</p><p>Your appointment: "
                           + _LINK_HTML + "</p>" + _SIGNATURE_HTML),
            ),
            Channel.SMS: Default(body_text="{{ clinic_name }}: your visit with {{ doctor_name }} moved from"
                                           " {{ previous_time }} to {{ appointment_time }}, to be confirmed."),
        },
    ),
    _appointment_event(
        "appointment.cancelled", "Appointment cancelled",
        variables={"reason": "Why the clinic cancelled (empty when the patient cancelled)",
                   "cancelled_by": "Who cancelled: “you” or “the clinic”"},
        sample={"reason": "Dr. Okafor is unwell.", "cancelled_by": "the clinic"},
        defaults={
            Channel.EMAIL: Default(
                subject="Your appointment on {{ appointment_time }} is cancelled",
                body_text=("Dear {{ recipient_name }},\n\nYour appointment with {{ doctor_name }} on"
                           " {{ appointment_time }} ({{ department }}) was cancelled by {{ cancelled_by }}."
                           "{% if reason %}\n\nReason: {{ reason }}{% endif %}\n\nYou can book another time at"
                           " {{ site_url }}." + _SIGNATURE_TEXT),
                body_html=("<p>Dear {{ recipient_name }},</p><p>Your appointment with {{ doctor_name }} on"
                           " <strong>{{ appointment_time }}</strong> ({{ department }}) was cancelled by"
                           " {{ cancelled_by }}.</p>{% if reason %}<p>Reason: {{ reason }}</p>{% endif %}<p>You can"
                           " book another time at <a href=\"{{ site_url }}\">{{ site_url }}</a>.</p>"
                           + _SIGNATURE_HTML),
            ),
            Channel.SMS: Default(body_text="{{ clinic_name }}: your visit with {{ doctor_name }} on"
                                           " {{ appointment_time }} is cancelled."
                                           "{% if reason %} {{ reason }}{% endif %}"),
        },
    ),
    _appointment_event(
        "appointment.completed", "Visit completed (thank you)",
        defaults={
            Channel.EMAIL: Default(
                subject="Thank you for your visit to {{ clinic_name }}",
                body_text=("Dear {{ recipient_name }},\n\nThank you for your visit to {{ doctor_name }}"
                           " ({{ department }}) on {{ appointment_time }}.\n\nYour appointment: {{ appointment_url }}"
                           + _SIGNATURE_TEXT),
                body_html=("<p>Dear {{ recipient_name }},</p><p>Thank you for your visit to {{ doctor_name }}"
                           " ({{ department }}) on {{ appointment_time }}.</p><p>Your appointment: " + _LINK_HTML
                           + "</p>" + _SIGNATURE_HTML),
            ),
            Channel.SMS: Default(body_text="{{ clinic_name }}: thank you for your visit to {{ doctor_name }}"
                                           " today."),
        },
    ),
    _appointment_event(
        "appointment.reminder", "Appointment reminder",
        variables={"time_until": "How soon the visit is, e.g. “in 2 hours” or “in 24 hours”"},
        sample={"time_until": "in 2 hours"},
        defaults={
            Channel.EMAIL: Default(
                subject="Reminder: your appointment on {{ appointment_time }}",
                body_text=("Dear {{ recipient_name }},\n\nThis is a reminder of your appointment with"
                           " {{ doctor_name }} ({{ department }}) {{ time_until }}, on {{ appointment_time }}.\n\n"
                           "If you cannot come, please let us know: {{ appointment_url }}" + _SIGNATURE_TEXT),
                body_html=("<p>Dear {{ recipient_name }},</p><p>This is a reminder of your appointment with"
                           " {{ doctor_name }} ({{ department }}) {{ time_until }}, on <strong>{{ appointment_time }}"
                           "</strong>.</p><p>If you cannot come, please let us know: " + _LINK_HTML + "</p>"
                           + _SIGNATURE_HTML),
            ),
            Channel.SMS: Default(body_text="{{ clinic_name }}: reminder, your visit with {{ doctor_name }} is"
                                           " {{ time_until }} ({{ appointment_time }})."),
        },
    ),
)
EVENTS.update({e.type: e for e in APPOINTMENT_EVENTS})


# --- billing ----------------------------------------------------------------------------------------

BILLING_VARIABLES = {
    "invoice_number": "The invoice number, e.g. “INV-2026-000123”",
    "total_text": "The invoice total with its currency",
    "balance_text": "What is still owed on the invoice, with its currency",
    "invoice_url": "Address of the invoice in “My bills” on the HMS website",
}
BILLING_SAMPLE = {
    "invoice_number": "INV-2026-000123", "total_text": "USD 180.00", "balance_text": "USD 80.00",
    "invoice_url": "https://clinic.example.com/patient/bills/42",
}
_BILL_LINK_HTML = "<a href=\"{{ invoice_url }}\">{{ invoice_url }}</a>"


def _billing_event(type: str, title: str, defaults: dict[Channel, Default], *, variables: dict | None = None,
                   sample: dict | None = None) -> NotifyingEvent:
    return NotifyingEvent(type=type, title=title, variables={**BILLING_VARIABLES, **(variables or {})},
                          sample={**BILLING_SAMPLE, **(sample or {})}, defaults=defaults)


BILLING_EVENTS = (
    _billing_event(
        "invoice.issued", "Invoice issued",
        variables={"due_text": "The date the invoice is due, e.g. “24 Dec 2026”"},
        sample={"due_text": "24 Dec 2026", "balance_text": "USD 180.00"},
        defaults={
            Channel.EMAIL: Default(
                subject="Your invoice {{ invoice_number }} from {{ clinic_name }}",
                body_text=("Dear {{ recipient_name }},\n\nYour invoice {{ invoice_number }} for {{ total_text }} is"
                           " ready. It is due on {{ due_text }}.\n\nSee it and download a PDF: {{ invoice_url }}"
                           + _SIGNATURE_TEXT),
                body_html=("<p>Dear {{ recipient_name }},</p><p>Your invoice <strong>{{ invoice_number }}</strong>"
                           " for <strong>{{ total_text }}</strong> is ready. It is due on {{ due_text }}.</p>"
                           "<p>See it and download a PDF: " + _BILL_LINK_HTML + "</p>" + _SIGNATURE_HTML),
            ),
            Channel.SMS: Default(body_text="{{ clinic_name }}: invoice {{ invoice_number }} for {{ total_text }},"
                                           " due {{ due_text }}. {{ invoice_url }}"),
        },
    ),
    _billing_event(
        "payment.received", "Payment received (receipt)",
        variables={"amount_text": "The amount paid, with its currency",
                   "method_text": "How it was paid: Cash, Card or Bank transfer"},
        sample={"amount_text": "USD 100.00", "method_text": "Card"},
        defaults={
            Channel.EMAIL: Default(
                subject="Payment received for {{ invoice_number }}",
                body_text=("Dear {{ recipient_name }},\n\nWe received {{ amount_text }} ({{ method_text }}) for"
                           " invoice {{ invoice_number }}. The balance is now {{ balance_text }}.\n\nYour invoice:"
                           " {{ invoice_url }}" + _SIGNATURE_TEXT),
                body_html=("<p>Dear {{ recipient_name }},</p><p>We received <strong>{{ amount_text }}</strong>"
                           " ({{ method_text }}) for invoice {{ invoice_number }}. The balance is now"
                           " <strong>{{ balance_text }}</strong>.</p><p>Your invoice: " + _BILL_LINK_HTML + "</p>"
                           + _SIGNATURE_HTML),
            ),
            Channel.SMS: Default(body_text="{{ clinic_name }}: we received {{ amount_text }} for {{ invoice_number }}."
                                           " Balance: {{ balance_text }}."),
        },
    ),
    _billing_event(
        "claim.decided", "Insurance claim decided",
        variables={"payer": "The insurer's name",
                   "decision_text": "The insurer's decision: approved, partially approved or denied",
                   "claimed_text": "The amount claimed, with its currency",
                   "approved_text": "The amount the insurer approved, with its currency",
                   "reason_code": "The insurer's reason code (empty when approved in full)",
                   "patient_due_text": "What the patient is expected to pay now, with its currency"},
        sample={"payer": "Acme Health", "decision_text": "partially approved", "claimed_text": "USD 180.00",
                "approved_text": "USD 120.00", "reason_code": "CO-45", "patient_due_text": "USD 60.00"},
        defaults={
            Channel.EMAIL: Default(
                subject="{{ payer }} decided the claim for {{ invoice_number }}",
                body_text=("Dear {{ recipient_name }},\n\n{{ payer }} {{ decision_text }} the claim of {{ claimed_text }}"
                           " for invoice {{ invoice_number }}: {{ approved_text }} approved."
                           "{% if reason_code %} Reason code: {{ reason_code }}.{% endif %}\n\nYour share to pay now:"
                           " {{ patient_due_text }}.\n\nYour invoice: {{ invoice_url }}" + _SIGNATURE_TEXT),
                body_html=("<p>Dear {{ recipient_name }},</p><p>{{ payer }} {{ decision_text }} the claim of"
                           " {{ claimed_text }} for invoice {{ invoice_number }}: <strong>{{ approved_text }}"
                           "</strong> approved.{% if reason_code %} Reason code: {{ reason_code }}.{% endif %}</p>"
                           "<p>Your share to pay now: <strong>{{ patient_due_text }}</strong>.</p><p>Your invoice: "
                           + _BILL_LINK_HTML + "</p>" + _SIGNATURE_HTML),
            ),
            Channel.SMS: Default(body_text="{{ clinic_name }}: {{ payer }} {{ decision_text }} the claim for"
                                           " {{ invoice_number }}. Your share now: {{ patient_due_text }}."),
        },
    ),
)
EVENTS.update({e.type: e for e in BILLING_EVENTS})
