"""The base of every form on the site: its fields take the text of a posted form, nothing else.

No form accepts files, so a file part sent in place of a field is never handed to the field (WTForms'
text fields cannot take one): the field answers "not a file" instead, and the page shows it as 422.
A JSON body is not a form either (Flask-WTF would pass its numbers and lists to text fields).
A choice field never lets through a value outside its choices: WTForms' `Optional` clears the "not a valid
choice" error of a blank-looking value such as a lone "\r", which the views would then take as a choice.
"""
from __future__ import annotations

from flask import has_request_context, request
from flask_wtf import FlaskForm
from wtforms import SelectField
from wtforms.validators import ValidationError

FILE_PART_MESSAGE = "Enter text here; this form does not accept files."


class Form(FlaskForm):
    class Meta:
        def wrap_formdata(self, form, formdata):
            form._file_parts = []
            if formdata is None:
                return None
            submitted = has_request_context() and form.is_submitted()
            if submitted and request.files:
                form._file_parts = [name for name in request.files if name in form._fields]
            if hasattr(formdata, "getlist"):  # given by the view, e.g. request.args or request.form
                return formdata
            return (request.form or None) if submitted else None

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        for field in self:
            if isinstance(field, SelectField) and field.choices is not None and field.data not in (None, ""):
                try:
                    field.pre_validate(self)
                except ValidationError as error:
                    field.errors = [*field.errors, str(error)]
                    valid = False
        for name in self._file_parts:
            self[name].errors = [FILE_PART_MESSAGE]
        return valid and not self._file_parts
