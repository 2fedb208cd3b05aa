"""Forms of the patient's pages: booking, rescheduling, the access report's filters."""
from __future__ import annotations

from datetime import datetime, timezone

from wtforms import BooleanField, DateField, Field, IntegerField, SelectChoice, SelectField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Optional, ValidationError
from wtforms.widgets import HiddenInput

from app.accounts.forms import at_most
from app.audit.access_report import ROLES
from app.web.forms import Form
from app.web.validators import ReportDay


def parse_start(value: str | None) -> datetime | None:
    """A slot's ISO start (as the pages write it) as an aware UTC datetime; None if it is not one."""
    try:
        parsed = datetime.fromisoformat((value or "").strip())
    except ValueError:
        return None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return None
    return parsed.astimezone(timezone.utc)


class SlotStartField(Field):
    """The start of the chosen slot, sent by the button the patient clicked (one button per time)."""

    widget = HiddenInput()

    def process_formdata(self, valuelist):
        if valuelist:
            self.data = parse_start(valuelist[0])
            if self.data is None:
                raise ValueError("Choose a time from the list.")

    def _value(self) -> str:
        return self.data.isoformat() if self.data else ""


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class BookingForm(Form):
    department = IntegerField(widget=HiddenInput(), validators=[InputRequired(message="Choose a department.")])
    doctor = IntegerField(widget=HiddenInput(), validators=[InputRequired(message="Choose a doctor.")])
    start = SlotStartField(validators=[InputRequired(message="Choose a time.")])
    reason = TextAreaField("Reason for the visit", filters=[_strip],
                           validators=[DataRequired(message="Enter the reason for your visit."), at_most(500)],
                           description="A few words for the doctor, at most 500 characters.",
                           render_kw={"rows": 3, "maxlength": 500})


class RescheduleForm(Form):
    start = SlotStartField(validators=[InputRequired(message="Choose a new time.")])


class AccessReportFilterForm(Form):
    """The filters of "Who has seen my record", in the query string (a GET changes nothing: no CSRF token)."""

    class Meta:
        csrf = False

    date_from = DateField("From", validators=[Optional(), ReportDay()])
    date_to = DateField("To", validators=[Optional(), ReportDay()])
    role = SelectField("Role", validate_choice=False,
                       choices=[SelectChoice("", "Anyone")] + [SelectChoice(r.value, r.label) for r in ROLES])
    break_glass = BooleanField("Emergency access only", description="Break-glass: a doctor outside your care "
                                                                     "opened your record, with a reason.")

    def validate_date_to(self, field):
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError("The end date is before the start date.")

    def validate_role(self, field):
        if field.data and field.data not in {r.value for r in ROLES}:
            raise ValidationError("Choose a role from the list.")
