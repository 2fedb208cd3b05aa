"""schemathesis against the live API: every operation, with a token of each role, gets generated requests;
no answer may be a server error, and every answer must match the OpenAPI document (status, content type,
headers, body schema), and a request the schema forbids must be refused with a 4xx. One check is left out:
`positive_data_acceptance` expects every schema-valid request to succeed, but a valid shape can still break a
rule (a slot in the past, another patient's id), which is a 4xx by design."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from app.accounts.models import Role
from tests.api.tokens import auth, system_token, token_for

EXAMPLES = 8  # per operation and role: enough to reach every validation branch, within the suite's budget


def _token(app, role: str, create_patient, create_doctor) -> str:
    if role == "patient":
        return token_for(app, create_patient(), "patient/*.cruds")
    if role == "doctor":
        return token_for(app, create_doctor())
    return system_token(app, Role(role))


@pytest.mark.parametrize("role", ["patient", "doctor", "clerk", "admin"])  # one test each: spread over processes
def test_every_operation_answers_by_its_schema(app, role, create_patient, create_doctor):
    token = _token(app, role, create_patient, create_doctor)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    failures, operations = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def exercise(case):
            case.call_and_validate(headers=auth(token), excluded_checks=[positive_data_acceptance])

        try:
            exercise()
        except Exception as error:  # collect every operation's failure, not only the first
            failures.append(f"{operation.label}: {error}"[:3000])
    assert operations >= 10
    assert not failures, "\n\n".join(failures)
