"""WTForms validators used across packages."""
from __future__ import annotations

from wtforms.validators import ValidationError

from app.accounts.passwords import MAX_LENGTH, password_problem
from app.accounts.phones import normalize_phone


class PhoneNumber:
    """Accepts a valid phone number (national form in the clinic's region, or +international)
    and rewrites the field's data to E.164."""

    def __call__(self, form, field):
        if not field.data:
            return
        try:
            field.data = normalize_phone(field.data)
        except ValueError:
            raise ValidationError("Enter a valid phone number, e.g. +1 202 555 0143.") from None


class StrongPassword:
    max = MAX_LENGTH  # password_problem() refuses longer ones, with the same message as Length

    def __call__(self, form, field):
        problem = password_problem(field.data or "")
        if problem:
            raise ValidationError(problem)


class DateOfBirth:
    """The rule of `app.accounts.services.date_of_birth_problem`, which the service checks too."""

    def __call__(self, form, field):
        from app.accounts.services import date_of_birth_problem

        if field.data is not None and (problem := date_of_birth_problem(field.data)):
            raise ValidationError(problem)


class ReportDay:
    """A day a report or filter may name: from FIRST_DAY to LAST_DAY (`app.audit.queries`), so that a range's end
    (the next day's start) is a date the database and Python both hold."""

    def __call__(self, form, field):
        from app.audit.queries import FIRST_DAY, LAST_DAY

        if field.data is not None and not FIRST_DAY <= field.data <= LAST_DAY:
            raise ValidationError(f"Choose a date from {FIRST_DAY.year} to {LAST_DAY.year}.")
