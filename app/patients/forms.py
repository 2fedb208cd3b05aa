"""Forms of the patient's appointment pages: booking, rescheduling."""
from __future__ import annotations

from datetime import datetime, timezone

from wtforms import Field, IntegerField, TextAreaField
from wtforms.validators import DataRequired, InputRequired
from wtforms.widgets import HiddenInput

from app.accounts.forms import at_most
from app.web.forms import Form


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
