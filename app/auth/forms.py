from __future__ import annotations

from wtforms import PasswordField

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
