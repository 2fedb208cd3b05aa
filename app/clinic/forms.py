from __future__ import annotations

from decimal import Decimal

from wtforms import DecimalField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import InputRequired, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from app.accounts.forms import ContactFields, at_most, choices, email_field, required
from app.web.forms import Form
from app.web.validators import PhoneNumber


class DepartmentForm(Form):
    name = StringField("Name", validators=[required("a name"), at_most(80)])
    description = TextAreaField("Description", validators=[Optional(), at_most(500)], render_kw={"rows": 2},
                                description="Optional.")


class CheckboxList(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()



class AmountField(DecimalField):
    """A decimal amount: "NaN", "sNaN" and "Infinity" parse as decimals but are no amount (and a signalling NaN
    would break the range check), so they are refused beside the field like any other bad number."""

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        if self.data is not None and not self.data.is_finite():
            self.data = None
            raise ValueError(self.gettext("Not a valid decimal value."))

class DoctorForm(Form):
    full_name = StringField("Full name", validators=[required("the doctor's name"), at_most(120)])
    email = email_field(whose="their")
    phone = StringField("Phone", validators=[required("a phone number"), at_most(32), PhoneNumber()],
                        render_kw={"inputmode": "tel"})
    department_ids = CheckboxList("Departments", coerce=int,
                                  validators=[InputRequired(message="Choose at least one department.")])
    specialty = StringField("Specialty", validators=[required("the specialty"), at_most(80)])
    licence_number = StringField("Licence number", validators=[required("the licence number"), at_most(40)])
    consultation_fee = AmountField("Consultation fee", places=2,
                                    validators=[InputRequired(message="Enter the fee."),
                                                NumberRange(min=Decimal("0"), max=Decimal("100000"),
                                                            message="Enter an amount from 0 to 100,000.")])
    bio = TextAreaField("Short bio", validators=[Optional(), at_most(2000)], render_kw={"rows": 3},
                        description="Optional. Shown to patients in the directory.")


class DoctorSelfForm(Form):
    phone = ContactFields.phone
    bio = TextAreaField("Short bio", validators=[Optional(), at_most(2000)], render_kw={"rows": 5},
                        description="Shown to patients in the directory.")


class DoctorSearchForm(Form):
    class Meta:
        csrf = False

    q = StringField("Search", validators=[Optional(), at_most(80)],
                    render_kw={"placeholder": "Name, specialty or licence", "type": "search"})
    department = SelectField("Department", coerce=str, validators=[Optional()], choices=[])
    state = SelectField("State", validators=[Optional()],
                        choices=choices([("active", "Active"), ("inactive", "Deactivated"), ("", "All")]), default="active")
