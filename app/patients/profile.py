"""The sections of a patient's profile page: which form edits each, and how it is saved."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from app.accounts.forms import (ChangeEmailForm, ContactFields, EmergencyFields, InsuranceFields, NotificationFields,
                                PersonalFields)
from app.accounts.models import Sex, User
from app.accounts.phones import format_phone
from app.accounts.services import change_email, record_profile_change, update_patient_profile


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    form: type
    fields: tuple[str, ...]

    def values(self, user: User) -> dict:
        """Current values, to fill the form (the email form starts with the current email)."""
        out = {}
        for name in self.fields:
            if name == "current_password":
                continue
            owner = user if hasattr(User, name) else user.patient
            value = getattr(owner, name)
            out[name] = value.value if isinstance(value, Sex) else value
        return out

    def display(self, user: User) -> list[tuple[str, str]]:
        """(label, text) pairs for the read-only view of the section."""
        rows = []
        for name in self.fields:
            if name == "current_password":
                continue
            owner = user if hasattr(User, name) else user.patient
            value = getattr(owner, name)
            if isinstance(value, Sex):
                text = value.label
            elif isinstance(value, bool):
                text = "Yes" if value else "No"
            elif isinstance(value, date):
                text = value.strftime("%d %B %Y")
            elif name.endswith("phone"):
                text = format_phone(value)
            else:
                text = value or ""
            rows.append((LABELS[name], text))
        return rows

    def save(self, user: User, form) -> None:
        """Apply the form; when anything changed, announce which fields (never their values)."""
        if self.key == "account":
            if form.email.data.strip().lower() != user.email:
                change_email(user, form.email.data, form.current_password.data)
                record_profile_change(user, self.key, ["email"])
            return
        update_patient_profile(user, {name: form[name].data for name in self.fields})


LABELS = {
    "full_name": "Full name", "date_of_birth": "Date of birth", "sex": "Sex", "phone": "Phone",
    "address": "Address", "emergency_contact_name": "Name", "emergency_contact_phone": "Phone",
    "insurance_provider": "Provider", "insurance_policy_number": "Policy number", "email": "Email",
    "notify_email": "Email messages", "notify_sms": "Text messages (SMS)",
}

SECTIONS = {s.key: s for s in (
    Section("personal", "Personal details", PersonalFields, ("full_name", "date_of_birth", "sex")),
    Section("contact", "Contact", ContactFields, ("phone", "address")),
    Section("emergency", "Emergency contact", EmergencyFields, ("emergency_contact_name", "emergency_contact_phone")),
    Section("insurance", "Insurance", InsuranceFields, ("insurance_provider", "insurance_policy_number")),
    Section("notifications", "Notifications", NotificationFields, ("notify_email", "notify_sms")),
    Section("account", "Sign-in email", ChangeEmailForm, ("email", "current_password")),
)}
