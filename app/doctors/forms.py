"""Forms of the doctor's schedule: the reason given when declining or cancelling, and the list's filters."""
from __future__ import annotations

from wtforms import DateField, SelectField, TextAreaField
from wtforms.validators import DataRequired, Optional, ValidationError

from app.accounts.forms import at_most, choices
from app.appointments.models import Status
from app.timeutil import clinic_today
from app.web.forms import Form

# Status.label speaks to the patient ("Cancelled by you"); the doctor reads the same states differently.
DOCTOR_LABELS = {Status.CANCELLED_BY_PATIENT: "Cancelled by the patient"}


def status_label(status: Status) -> str:
    return DOCTOR_LABELS.get(status, status.label)


class ReasonForm(Form):
    """One per row of the schedule. CSRFProtect already checks every POST, so the form adds no token
    of its own; the field's id is made unique per appointment by `reason_form`."""

    class Meta:
        csrf = False

    reason = TextAreaField("Reason", validators=[DataRequired(message="Enter a reason."), at_most(500)],
                           filters=[lambda value: value.strip() if value else value],
                           description="The patient will see it.", render_kw={"rows": 2})


def reason_form(appointment_id: int, *, formdata=None) -> ReasonForm:
    form = ReasonForm(formdata=formdata)
    form.reason.id = form.reason.label.field_id = f"reason-{appointment_id}"
    return form


class AppointmentFilterForm(Form):
    """Read from the query string. Without a `start` the list begins today; `start=` (empty) means all."""

    class Meta:
        csrf = False

    start = DateField("From", default=clinic_today, validators=[Optional()])
    end = DateField("To", validators=[Optional()])
    status = SelectField("Status", default="", validators=[Optional()],
                         choices=choices([("", "All statuses")] + [(s.value, status_label(s)) for s in Status]))

    def validate_end(self, field):
        if field.data and self.start.data and field.data < self.start.data:
            raise ValidationError("The end date cannot be before the start date.")
