"""Billing forms, and the reports' date range. Amounts are text fields checked against a money pattern here and
again by the services, whose refusals (`BillingError.field`) land beside the same fields (see `show_error`)."""
from __future__ import annotations

from datetime import date

from wtforms import (BooleanField, DateField, HiddenField, IntegerField, SelectChoice, SelectField, StringField,
                     TextAreaField)
from wtforms.validators import InputRequired, Length, NumberRange, Optional, Regexp, ValidationError

from app.accounts.forms import at_most, required
from app.billing.common import BillingError
from app.billing.models import ClaimStatus, InvoiceStatus, PaymentMethod
from app.billing.reports import MAX_DAYS, Period
from app.web.forms import Form

MONEY = Regexp(r"^\s*\d{1,10}(\.\d{1,2})?\s*$",
               message="Enter an amount such as 120.50 (digits, at most two decimals).")
MONEY_KW = {"inputmode": "decimal", "autocomplete": "off", "placeholder": "0.00"}


def money_field(label: str, *, optional: bool = False, description: str | None = None) -> StringField:
    validators = [Optional()] if optional else [required("an amount")]
    return StringField(label, validators=[*validators, at_most(20), MONEY], render_kw=MONEY_KW,
                       description=description)


def show_error(form: Form, error: BillingError) -> None:
    """Put a service's refusal beside its field, or at the top of the form."""
    if error.field and error.field in form:
        form[error.field].errors = [*form[error.field].errors, str(error)]
    else:
        form.form_errors.append(str(error))


class _GetForm(Form):
    """Filters travel in the query string; a GET changes nothing, so no CSRF token."""

    class Meta:
        csrf = False


class PriceItemForm(Form):
    code = StringField("Code", validators=[required("a short code"), at_most(20)],
                       description="Short and unique, e.g. XRAY-CHEST.", render_kw={"autocapitalize": "characters"})
    name = StringField("Service", validators=[required("the service's name"), at_most(120)])
    price = money_field("Price")
    department_id = SelectField("Department", coerce=str, validators=[Optional()])
    active = BooleanField("Offered (can be put on new invoices)", default=True)

    def __init__(self, *args, departments=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.department_id.choices = [SelectChoice("", "Any department")] + [
            SelectChoice(str(d.id), d.name) for d in departments]


class InvoiceFilterForm(_GetForm):
    status = SelectField("Status", validators=[Optional()], choices=[SelectChoice("", "Any")] + [
        SelectChoice(s.value, s.label) for s in InvoiceStatus] + [SelectChoice("overdue", "Overdue")])
    q = StringField("Patient or number", validators=[Optional(), at_most(120)],
                    render_kw={"placeholder": "Name, email or INV-…", "type": "search"})
    date_from = DateField("Issued from", validators=[Optional()])
    date_to = DateField("Issued to", validators=[Optional()])

    def validate_date_to(self, field):
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError("The end date is before the start date.")


class PatientSearchForm(_GetForm):
    q = StringField("Find the patient", validators=[Optional(), at_most(120)],
                    render_kw={"placeholder": "Name or email (2 letters or more)", "type": "search",
                               "autocomplete": "off"})


class NewInvoiceForm(Form):
    patient_id = IntegerField(validators=[InputRequired("Choose a patient.")])
    appointment_id = IntegerField(validators=[Optional()])


class LineForm(Form):
    price_item_id = SelectField("Service", coerce=str, validators=[Optional()])
    description = StringField("Description", validators=[Optional(), at_most(200)],
                              description="Leave empty to use the service's name.")
    quantity = IntegerField("Quantity", default=1, validators=[
        InputRequired("Enter a quantity."), NumberRange(min=1, max=10_000, message="Between 1 and 10000.")],
        render_kw={"inputmode": "numeric", "min": 1})
    unit_price = money_field("Unit price", optional=True, description="Leave empty for the list price.")

    def __init__(self, *args, items=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.price_item_id.choices = [SelectChoice("", "Other (describe it)")] + [
            SelectChoice(str(i.id), f"{i.code} · {i.name} · {i.price:,.2f}") for i in items]

    def validate_description(self, field):
        if not self.price_item_id.data and not (field.data or "").strip():
            raise ValidationError("Describe the service, or choose one from the price list.")


class DiscountForm(Form):
    discount = money_field("Discount", optional=True)
    discount_reason = StringField("Reason for the discount", validators=[Optional(), at_most(200)])


class IssueForm(Form):
    due_on = DateField("Due date", validators=[Optional()], description="Empty: the usual payment terms.")


class VoidForm(Form):
    reason = TextAreaField("Why void this invoice?", validators=[required("the reason"), at_most(500)],
                           render_kw={"rows": 2})


class PaymentForm(Form):
    amount = money_field("Amount")
    method = SelectField("Method", choices=[SelectChoice(m.value, m.label) for m in PaymentMethod],
                         validators=[required("how the patient paid")])
    paid_on = DateField("Date received", validators=[required("the date")])
    reference = StringField("Reference", validators=[Optional(), at_most(100)],
                            description="Card slip, transfer reference… (optional)")
    idempotency_key = HiddenField(validators=[InputRequired("This form has expired. Reload the page."),
                                              Length(max=64, message="This form has expired. Reload the page.")])


class RefundRequestForm(Form):
    amount = money_field("Amount to refund")
    reason = TextAreaField("Reason", validators=[required("the reason"), at_most(500)], render_kw={"rows": 2})


class RefundDecisionForm(Form):
    note = TextAreaField("Note", validators=[Optional(), at_most(500)], render_kw={"rows": 2},
                         description="Required when rejecting.")


class RecordRefundForm(Form):
    reference = StringField("Reference of the money paid back", validators=[Optional(), at_most(100)])


class ClaimForm(Form):
    payer = StringField("Insurer", validators=[required("the insurer"), at_most(120)])
    policy_number = StringField("Policy number", validators=[required("the policy number"), at_most(64)])
    claimed_amount = money_field("Amount claimed")


DECISIONS = (ClaimStatus.APPROVED, ClaimStatus.PARTIALLY_APPROVED, ClaimStatus.DENIED)


class ClaimDecisionForm(Form):
    status = SelectField("Insurer's decision", choices=[SelectChoice(s.value, s.label) for s in DECISIONS],
                         validators=[required("the decision")])
    approved_amount = money_field("Approved amount", optional=True,
                                  description="Only for a partial approval.")
    payer_reference = StringField("Insurer's reference", validators=[Optional(), at_most(100)])
    reason_code = StringField("Reason code", validators=[Optional(), at_most(40)],
                              description="Required for a partial approval or a denial, e.g. CO-45.")


class ClaimPaidForm(Form):
    amount = money_field("Amount the insurer paid")
    paid_on = DateField("Date received", validators=[required("the date")])
    payer_reference = StringField("Insurer's payment reference", validators=[Optional(), at_most(100)])


class ClaimWithdrawalForm(Form):
    reason = TextAreaField("Why withdraw this claim?", validators=[required("the reason"), at_most(500)],
                           render_kw={"rows": 2}, description="E.g. filed in error, wrong policy or wrong insurer.")


class PeriodForm(_GetForm):
    """The date range of a report."""

    start = DateField("From", validators=[Optional()])
    end = DateField("To", validators=[Optional()])

    def period(self, default: Period) -> Period | None:
        """The chosen range (the defaults for an empty field), or None with messages beside the fields."""
        if not self.validate():
            for name in ("start", "end"):
                if self[name].errors:
                    self[name].errors[:] = ["Enter a date as YYYY-MM-DD."]
            return None
        start, end = self.start.data or default.start, self.end.data or default.end
        if end < start:
            self.end.errors.append("The end must not be before the start.")
            return None
        if (end - start).days >= MAX_DAYS:
            self.end.errors.append(f"Choose at most {MAX_DAYS} days.")
            return None
        if start < date(2000, 1, 1):
            self.start.errors.append("Choose a date from the year 2000 on.")
            return None
        self.start.data, self.end.data = start, end  # shown in the fields, also when they were left empty
        return Period(start, end)
