"""The base of every form on the site: its fields take the text of a posted form, nothing else.

No form accepts files, so a file part sent in place of a field is never handed to the field (WTForms'
text fields cannot take one): the field answers "not a file" instead, and the page shows it as 422.
A JSON body is not a form either (Flask-WTF would pass its numbers and lists to text fields).
"""
from __future__ import annotations

from flask import has_request_context, request
from flask_wtf import FlaskForm

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
        for name in self._file_parts:
            self[name].errors = [FILE_PART_MESSAGE]
        return valid and not self._file_parts
