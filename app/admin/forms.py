from __future__ import annotations

from wtforms import BooleanField, DateField, IntegerField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import NumberRange, Optional, ValidationError

from app.accounts.forms import at_most, email_field, required, text_column
from app.accounts.services import ADMIN_MANAGED_ROLES, email_taken
from app.notifications.models import Channel, DeliveryStatus
from app.web.forms import Form
from app.web.validators import PhoneNumber, ReportDay

ANY = SelectChoice("", "Any")


class TemplateForm(Form):
    subject = StringField("Subject", validators=[at_most(200)])
    body_text = TextAreaField("Text", validators=[required("the message text"), at_most(5000)],
                              render_kw={"rows": 8})
    body_html = TextAreaField("HTML", validators=[Optional(), text_column()], render_kw={"rows": 8},
                              description="Optional. Variables are escaped; the text version is always sent too.")
    active = BooleanField("Send this message")

    def __init__(self, *args, channel, **kwargs):
        super().__init__(*args, **kwargs)
        self.channel = channel
        if channel.value == "sms":
            del self.subject
            del self.body_html

    def validate_subject(self, field):
        if not (field.data or "").strip():
            raise ValidationError("Enter a subject.")


class StaffForm(Form):
    """A new billing clerk or admin (doctors have their own form; patients sign up)."""

    full_name = StringField("Full name", validators=[required("the person's full name"), at_most(120)])
    email = email_field(whose="their")
    phone = StringField("Phone", validators=[Optional(), at_most(32), PhoneNumber()],
                        description="Optional. With the country code if it is not a local number.",
                        render_kw={"inputmode": "tel"})
    role = SelectField("Role", validate_choice=False,
                       choices=[SelectChoice("", "Choose…")] + [SelectChoice(r.value, r.label) for r in ADMIN_MANAGED_ROLES],
                       description="An admin manages staff, doctors, templates and reads the audit log.")

    def validate_email(self, field):
        if field.data and email_taken(field.data):  # checked again by the service, which a concurrent insert loses
            raise ValidationError("An account with this email already exists.")

    def validate_role(self, field):
        if field.data not in {r.value for r in ADMIN_MANAGED_ROLES}:
            raise ValidationError("Choose billing clerk or admin.")


class _GetForm(Form):
    """Filters travel in the query string; a GET changes nothing, so no CSRF token."""

    class Meta:
        csrf = False


class AuditFilterForm(_GetForm):
    actor_id = IntegerField("Actor (user id)", validators=[Optional(), NumberRange(min=1, message="A user id is a positive number.")])
    patient_id = IntegerField("Patient (id)", validators=[Optional(), NumberRange(min=1, message="A patient id is a positive number.")])
    action = StringField("Action", validators=[Optional(), at_most(64)], render_kw={"list": "audit-actions"})
    entity_type = StringField("Entity", validators=[Optional(), at_most(32)])
    entity_id = StringField("Entity id", validators=[Optional(), at_most(64)])
    date_from = DateField("From", validators=[Optional(), ReportDay()], description="In the clinic's time zone.")
    date_to = DateField("To", validators=[Optional(), ReportDay()], description="Up to and including this day.")
    break_glass = BooleanField("Break-glass only", description="Emergency access to records and the reads it allowed.")

    def validate_date_to(self, field):
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError("The end date is before the start date.")


class NotificationFilterForm(_GetForm):
    status = SelectField("Status", validators=[Optional()],
                         choices=[ANY] + [SelectChoice(s.value, s.value.capitalize()) for s in DeliveryStatus])
    channel = SelectField("Channel", validators=[Optional()],
                          choices=[ANY] + [SelectChoice(c.value, c.label) for c in Channel])
    recipient = StringField("Recipient", validators=[Optional(), at_most(254)])
