from __future__ import annotations

from wtforms import DateField, IntegerField, SelectField, StringField, TimeField
from wtforms.validators import InputRequired, NumberRange, Optional

from app.accounts.forms import at_most, choices, required
from app.scheduling.models import WEEKDAYS, UnavailabilityKind
from app.web.forms import Form


class WindowForm(Form):
    weekday = SelectField("Day", coerce=int, choices=choices(enumerate(WEEKDAYS)))
    start_time = TimeField("From", validators=[InputRequired(message="Enter the start time.")])
    end_time = TimeField("To", validators=[InputRequired(message="Enter the end time.")])
    slot_minutes = IntegerField("Slot (minutes)", default=30,
                                validators=[InputRequired(message="Enter the slot length."),
                                            NumberRange(min=10, max=120, message="A slot lasts 10 to 120 minutes.")])
    department_id = SelectField("Department", coerce=int, choices=[])


class UnavailabilityForm(Form):
    kind = SelectField("Kind", choices=choices((k.value, k.value.capitalize()) for k in UnavailabilityKind))
    start_day = DateField("From day", validators=[InputRequired(message="Enter the first day.")])
    start_time = TimeField("From time", validators=[Optional()], description="Empty: from the start of the day.")
    end_day = DateField("To day", validators=[InputRequired(message="Enter the last day.")])
    end_time = TimeField("To time", validators=[Optional()], description="Empty: to the end of the day.")
    reason = StringField("Reason", validators=[required("a reason"), at_most(200)])
