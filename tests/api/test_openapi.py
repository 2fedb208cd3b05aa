"""The OpenAPI 3.1 document is generated from the operations' declarations: valid, complete, and served with
its documentation page."""
from __future__ import annotations

from openapi_spec_validator import validate

from app.api.framework import REGISTRY


def test_the_document_is_valid_openapi_3_1_and_lists_every_operation(app):
    answer = app.test_client().get("/api/v1/openapi.json")
    assert answer.status_code == 200
    document = answer.get_json()
    assert document["openapi"] == "3.1.0"
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema
    declared = {(op.method.lower(), op.endpoint.split(".", 1)[1]) for op in REGISTRY}
    documented = {(method, item["operationId"]) for path in document["paths"].values()
                  for method, item in path.items()}
    assert documented == declared
    routes = {rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint.startswith("api.")}
    assert routes - {"api." + op for _, op in documented} == {"api.documentation"}


def test_changes_document_if_match_and_creations_idempotency_key(app):
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    accept = document["paths"]["/api/v1/appointments/{appointment_id}/accept"]["post"]
    assert {"name": "If-Match", "in": "header", "required": True}.items() <= \
        next(p for p in accept["parameters"] if p["name"] == "If-Match").items()
    assert {"412", "428"} <= accept["responses"].keys()
    create = document["paths"]["/api/v1/appointments"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])
    assert create["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AppointmentOut"}
    assert create["security"] == [{"oauth2": [f"{c}/Appointment.c"]} for c in ("patient", "user", "system")]


def test_the_documentation_page_renders_every_operation_without_scripts(app):
    answer = app.test_client().get("/api/v1/docs")
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    for op in REGISTRY:
        assert f'id="{op.endpoint.split(".", 1)[1]}"' in page
    assert "<script" not in page.split("<main", 1)[-1].split("</main>", 1)[0]


def test_every_creation_honours_idempotency_keys_and_every_change_needs_if_match(app):
    """The conventions are declared per operation; a new operation cannot forget them."""
    for op in REGISTRY:
        if op.public:
            continue
        if op.status == 201:
            assert op.idempotent, f"{op.endpoint} creates: it must honour Idempotency-Key"
        elif op.method != "GET":
            assert op.if_match, f"{op.endpoint} changes a resource: it must require If-Match"


def test_a_refused_token_is_audited_and_a_missing_one_is_not(app):
    import sqlalchemy as sa

    from app.events.models import OutboxEvent
    from app.extensions import db

    client = app.test_client()
    assert client.get("/api/v1/appointments/1").status_code == 401
    assert client.get("/api/v1/appointments/1", headers={"Authorization": "Bearer a.b.c"}).status_code == 401
    with app.app_context():
        denials = [e.envelope["data"] for e in db.session.scalars(
            sa.select(OutboxEvent).where(OutboxEvent.type == "access.denied"))]
    assert [(d["reason"], d["status"], d["path"]) for d in denials] == [("token_malformed", 401,
                                                                        "/api/v1/appointments/1")]
