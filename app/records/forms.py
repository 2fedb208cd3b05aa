"""Forms of the doctor's records pages. Vitals are plain text fields: the ranges live in
`services.VITAL_RANGES`, which refuses a value with the range in the message."""
from __future__ import annotations

from wtforms import BooleanField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from app.accounts.forms import at_most, choices, required, text_column
from app.records.models import Severity
from app.records.services import FORMS, FREQUENCIES, ROUTES, VITAL_RANGES
from app.web.forms import Form

def _choices(values, prompt: str):
    return choices([("", prompt), *((v, v.capitalize()) for v in values)])


class NotesForm(Form):
    chief_complaint = StringField("Chief complaint", validators=[at_most(500)])
    subjective = TextAreaField("Subjective", validators=[text_column()],
                               description="What the patient reports: history, symptoms.", render_kw={"rows": 3})
    objective = TextAreaField("Objective", validators=[text_column()], description="Examination findings and results.",
                              render_kw={"rows": 3})
    assessment = TextAreaField("Assessment", validators=[text_column()], description="Your clinical impression.",
                               render_kw={"rows": 3})
    plan = TextAreaField("Plan", validators=[text_column()], description="Treatment, follow-up, referrals.",
                         render_kw={"rows": 3})


def _vital(label: str, name: str, step: str = "1", unit: str | None = None) -> StringField:
    limits = VITAL_RANGES[name]
    return StringField(f"{label} ({unit or limits.unit})", validators=[Optional(), at_most(20)],
                       description=f"{limits.low:g}–{limits.high:g}",
                       render_kw={"inputmode": "decimal" if step != "1" else "numeric", "autocomplete": "off"})


class VitalsForm(Form):
    systolic = _vital("Systolic", "systolic")
    diastolic = _vital("Diastolic", "diastolic")
    heart_rate = _vital("Heart rate", "heart_rate", unit="/min")
    respiratory_rate = _vital("Resp. rate", "respiratory_rate", unit="/min")
    temperature_c = _vital("Temperature", "temperature_c", "0.1")
    spo2 = _vital("SpO2", "spo2")
    weight_kg = _vital("Weight", "weight_kg", "0.1")
    height_cm = _vital("Height", "height_cm", "0.1")


class DiagnosisForm(Form):
    code = StringField("ICD-10 code", validators=[required("an ICD-10 code"), at_most(10)])
    primary = BooleanField("Primary diagnosis")


class PrescriptionForm(Form):
    drug_name = StringField("Drug", validators=[required("the drug name"), at_most(120)],
                            render_kw={"autocomplete": "off"})
    strength = StringField("Strength", validators=[required("the strength, like 500 mg"), at_most(60)])
    form = SelectField("Form", validators=[InputRequired(message="Choose the form.")])
    dose = StringField("Dose", validators=[required("the dose, like 1 tablet"), at_most(60)])
    route = SelectField("Route", validators=[InputRequired(message="Choose the route.")])
    frequency = SelectField("Frequency", validators=[InputRequired(message="Choose how often.")])
    duration_days = IntegerField("Duration (days)", validators=[
        InputRequired(message="Enter the duration in days."),
        NumberRange(1, 365, message="Enter a duration between 1 and 365 days.")])
    quantity = IntegerField("Quantity", validators=[
        InputRequired(message="Enter the quantity to dispense."),
        NumberRange(1, 1000, message="Enter a quantity between 1 and 1000.")])
    refills = IntegerField("Refills", default=0, validators=[
        InputRequired(message="Enter the number of refills (0 for none)."),
        NumberRange(0, 12, message="Enter between 0 and 12 refills.")])
    instructions = TextAreaField("Instructions", validators=[at_most(500)], render_kw={"rows": 2},
                                 description="For the patient, e.g. take with food.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.form.choices = _choices(FORMS, "Choose…")
        self.route.choices = _choices(ROUTES, "Choose…")
        self.frequency.choices = _choices(FREQUENCIES, "Choose…")

    def validate_form(self, field):
        self._in(field, FORMS)

    def validate_route(self, field):
        self._in(field, ROUTES)

    def validate_frequency(self, field):
        self._in(field, FREQUENCIES)

    @staticmethod
    def _in(field, values):
        from wtforms.validators import ValidationError

        if field.data not in values:
            raise ValidationError(f"Choose the {field.label.text.lower()} from the list.")


class AllergyForm(Form):
    substance = StringField("Substance", validators=[required("the substance, like penicillin"), at_most(120)])
    reaction = StringField("Reaction", validators=[required("the reaction, like hives"), at_most(255)])
    severity = SelectField("Severity", validators=[InputRequired(message="Choose the severity.")],
                           choices=choices([("", "Choose…"), *((s.value, s.label) for s in Severity)]))

    def validate_severity(self, field):
        from wtforms.validators import ValidationError

        if field.data not in {s.value for s in Severity}:
            raise ValidationError("Choose mild, moderate or severe.")


class AmendForm(Form):
    reason = TextAreaField("Reason for the amendment", validators=[required("the reason for the amendment"),
                                                                   at_most(500)], render_kw={"rows": 2})


class BreakGlassForm(Form):
    reason = TextAreaField("Why do you need this record now?", validators=[
        required("the reason"), Length(min=10, max=500, message="Give the reason in 10 to 500 characters.")],
        render_kw={"rows": 3}, description="Recorded in the audit trail and reviewed by the administrator.")
