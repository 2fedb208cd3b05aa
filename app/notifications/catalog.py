"""The events that notify people: their variables, sample data and shipped default templates.

The admin edits the templates in the database; these defaults fill it (`flask notifications
install-templates`, run by `make run`) and never overwrite an edited template.
"""
from __future__ import annotations

from dataclasses import dataclass, field

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
)}
