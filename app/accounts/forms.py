"""Field groups of a person's account and patient profile.

Signup combines them all; the profile page edits one group at a time, so a field is
validated the same way wherever it is entered.
"""
from __future__ import annotations

from wtforms import SelectChoice
from wtforms import BooleanField, DateField, EmailField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import Email, EqualTo, InputRequired, Length, Optional, ValidationError

from app.accounts.models import Sex
from app.accounts.passwords import MAX_LENGTH
from app.db_types import TEXT_MAX_CHARS
from app.web.forms import Form
from app.web.validators import DateOfBirth, PhoneNumber, StrongPassword


def required(what: str) -> InputRequired:
    return InputRequired(message=f"Enter {what}.")


def at_most(n: int) -> Length:
    return Length(max=n, message=f"Use at most {n:,} characters.")


def text_column() -> Length:
    """The limit of a field stored in a TEXT column."""
    return at_most(TEXT_MAX_CHARS)


def choices(pairs) -> list[SelectChoice]:
    """(value, label) pairs as WTForms choices."""
    return [SelectChoice(value, label) for value, label in pairs]


def email_field(label: str = "Email", *, whose: str = "your") -> EmailField:
    """An email address; `whose` words the missing-value message ("their" on forms about someone else)."""
    return EmailField(label, validators=[required(f"{whose} email address"), at_most(254),
                                         Email(message="Enter a valid email address, like name@example.com.")],
                      render_kw={"autocomplete": "email" if whose == "your" else "off"})  # not the admin's own


class PersonalFields(Form):
    full_name = StringField("Full name", validators=[required("your full name"), at_most(120)],
                            render_kw={"autocomplete": "name"})
    date_of_birth = DateField("Date of birth", validators=[required("your date of birth"), DateOfBirth()])
    sex = SelectField("Sex", choices=[SelectChoice("", "Choose…")] + [SelectChoice(s.value, s.label) for s in Sex],
                      validators=[required("your sex (or choose “Prefer not to say”)")])

    def validate_sex(self, field):
        if field.data and field.data not in {s.value for s in Sex}:
            raise ValidationError("Choose one of the options.")


class ContactFields(Form):
    phone = StringField("Phone", validators=[required("your phone number"), at_most(32), PhoneNumber()],
                        description="With the country code if it is not a local number.",
                        render_kw={"autocomplete": "tel", "inputmode": "tel"})
    address = TextAreaField("Address", validators=[required("your address"), at_most(500)],
                            render_kw={"autocomplete": "street-address", "rows": 3})


class EmergencyFields(Form):
    emergency_contact_name = StringField("Emergency contact name",
                                         validators=[required("an emergency contact's name"), at_most(120)])
    emergency_contact_phone = StringField("Emergency contact phone",
                                          validators=[required("an emergency contact's phone"), at_most(32),
                                                      PhoneNumber()],
                                          render_kw={"inputmode": "tel"})


class InsuranceFields(Form):
    insurance_provider = StringField("Insurance provider", validators=[Optional(), at_most(120)],
                                     description="Optional.")
    insurance_policy_number = StringField("Policy number", validators=[Optional(), at_most(64)],
                                          description="Optional.")

    def validate_insurance_policy_number(self, field):
        from app.accounts.services import insurance_problem

        if problem := insurance_problem(self.insurance_provider.data, field.data):
            raise ValidationError(problem)


class NotificationFields(Form):
    notify_email = BooleanField("Email messages", description="Appointment updates, bills and account notices.")
    notify_sms = BooleanField("Text messages (SMS)", description="Sent to your phone number.")


class NewPasswordFields(Form):
    password = PasswordField("Password", validators=[required("a password"), StrongPassword()],
                             description="At least 8 characters. A phrase of a few words is easy to remember.",
                             render_kw={"autocomplete": "new-password", "maxlength": MAX_LENGTH})
    password_confirm = PasswordField("Password again",
                                     validators=[required("the password again"), at_most(MAX_LENGTH),
                                                 EqualTo("password", message="The two passwords do not match.")],
                                     render_kw={"autocomplete": "new-password", "maxlength": MAX_LENGTH})


class ChangeEmailForm(Form):
    email = email_field("New email")
    current_password = PasswordField("Current password", validators=[required("your current password"),
                                                                       at_most(MAX_LENGTH)],
                                     description="Needed to change the email you sign in with.",
                                     render_kw={"autocomplete": "current-password"})
