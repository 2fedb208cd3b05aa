from __future__ import annotations

from wtforms import PasswordField, StringField

from app.accounts.forms import (ContactFields, EmergencyFields, InsuranceFields, NewPasswordFields,
                                PersonalFields, at_most, email_field, required)
from app.accounts.passwords import MAX_LENGTH
from app.web.forms import Form


class LoginForm(Form):
    email = email_field()
    password = PasswordField("Password", validators=[required("your password"), at_most(MAX_LENGTH)],
                             render_kw={"autocomplete": "current-password"})


class SignupForm(PersonalFields, ContactFields, EmergencyFields, InsuranceFields, NewPasswordFields):
    email = email_field()

    FIELD_ORDER = ("full_name", "email", "password", "password_confirm", "date_of_birth", "sex", "phone",
                   "address", "emergency_contact_name", "emergency_contact_phone", "insurance_provider",
                   "insurance_policy_number")


class ForgotPasswordForm(Form):
    email = email_field()


class SetPasswordForm(NewPasswordFields):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.password.label.text = "New password"
        self.password_confirm.label.text = "New password again"


class SecondFactorCodeForm(Form):
    """A code of the second factor: the authenticator's six digits, or a recovery code."""

    code = StringField("Code", validators=[required("the code"), at_most(64)],
                       description="The 6-digit code your authenticator app shows, or one of your recovery codes.",
                       render_kw={"autocomplete": "one-time-code", "autocapitalize": "off", "spellcheck": "false"})


class AuthenticatorCodeForm(Form):
    """The first code of a new authenticator, which proves it was set up."""

    code = StringField("Code from the app", validators=[required("the 6-digit code"), at_most(64)],
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"})


class NewPhoneForm(AuthenticatorCodeForm):
    """Moving to a new authenticator: the old one (or a recovery code) proves it is the owner who moves."""

    current_code = StringField("Code from your current app, or a recovery code",
                               validators=[required("a code of your current app"), at_most(64)],
                               render_kw={"autocomplete": "one-time-code", "autocapitalize": "off"})
