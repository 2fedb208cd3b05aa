"""schemathesis against the live API: every operation, with a token of each role, gets generated requests;
no answer may be a server error, and every answer must match the OpenAPI document (status, content type,
headers, body schema), and a request the schema forbids must be refused with a 4xx. One check is left out:
`positive_data_acceptance` expects every schema-valid request to succeed, but a valid shape can still break a
rule (a slot in the past, another patient's id), which is a 4xx by design."""
from __future__ import annotations

import pytest
import schemathesis
from schemathesis import GenerationMode
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import ignored_auth, positive_data_acceptance

from app.accounts.models import Role
from tests.api.tokens import auth, system_token, token_for

# Per operation: schema-valid requests with every role's token, and requests the schema forbids (each must be a
# 4xx) with the first role's: a body or query is refused before the view asks the policy, whoever sends it. Kept
# small for the suite's time budget.
EXAMPLES = {GenerationMode.POSITIVE: 1, GenerationMode.NEGATIVE: 2}
NEGATIVE_ROLE = "patient"


def _token(app, role: str, create_patient, create_doctor) -> str:
    if role == "patient":
        return token_for(app, create_patient(), "patient/*.cruds")
    if role == "doctor":
        return token_for(app, create_doctor())
    return system_token(app, Role(role))


@pytest.mark.parametrize("role", ["patient", "doctor", "clerk", "admin"])  # one test each: spread over processes
def test_every_operation_answers_by_its_schema(app, role, create_patient, create_doctor):
    token = _token(app, role, create_patient, create_doctor)
    # `ignored_auth` sends each request again without the token (it must be a 401): once, with the first role.
    excluded = [positive_data_acceptance] + ([] if role == NEGATIVE_ROLE else [ignored_auth])
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    failures, operations = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        for mode, examples in EXAMPLES.items():
            if mode is GenerationMode.NEGATIVE and role != NEGATIVE_ROLE:
                continue
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def exercise(case):
                case.call_and_validate(headers=auth(token), excluded_checks=excluded)

            try:
                exercise()
            except Unsatisfiable:  # nothing to send wrong: an operation without parameters or body
                assert mode is GenerationMode.NEGATIVE and not operation.body and not operation.query
            except Exception as error:  # collect every operation's failure, not only the first
                failures.append(f"{operation.label} ({mode.value}): {error}"[:3000])
    assert operations >= 10
    assert not failures, "\n\n".join(failures)
