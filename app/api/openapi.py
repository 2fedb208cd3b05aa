"""The OpenAPI 3.1 document of the API, generated from the declared operations (`app.api.framework`) and
their pydantic models, and its documentation page. Nothing here is written by hand per operation, so the
document cannot drift from the code."""
from __future__ import annotations

import re

from flask import current_app, jsonify, render_template, url_for
from pydantic.json_schema import models_json_schema

from app.api import bp
from app.api.framework import REGISTRY, Operation, operation
from app.api.problems import PROBLEM_BASE
from app.oauth import scopes

TITLE = "HMS API"
VERSION = "1.0.0"
_PATH_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")
_ERROR_TEXT = {400: "Malformed request (bad JSON, a bad header)", 401: "No valid access token",
               403: "Role or token scope does not allow it", 404: "No such resource (or not yours)",
               409: "Conflicts with the resource's state (or the same Idempotency-Key is still running)",
               412: "If-Match does not match the current ETag", 413: "Body over the size limit",
               415: "The body is not application/json", 422: "Invalid fields or parameters",
               428: "If-Match is required", 429: "Rate limit reached"}

PROBLEM_SCHEMA = {
    "type": "object", "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri", "description": f"{PROBLEM_BASE}<slug>: stable, switch on it"},
        "title": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"},
        "errors": {"type": "array", "items": {
            "type": "object", "required": ["detail"],
            "properties": {"pointer": {"type": "string", "description": "JSON Pointer into the body"},
                           "parameter": {"type": "string", "description": "a query parameter"},
                           "detail": {"type": "string"}}}},
    },
    "additionalProperties": True,
}


def _path(rule: str) -> str:
    return _PATH_PARAM.sub(lambda m: "{" + m.group(2) + "}", rule)


def _responses(op: Operation, ref) -> dict:
    ok: dict = {"description": "OK" if op.status == 200 else ("Created" if op.status == 201 else "Done")}
    if op.response is not None:
        ok["content"] = {"application/json": {"schema": ref(op.response, "serialization")}}
    headers = {}
    if op.method == "GET" or op.if_match or op.status == 201:
        headers["ETag"] = {"schema": {"type": "string"}, "description": "Send it back in If-Match to change it"}
    if op.status == 201:
        headers["Location"] = {"schema": {"type": "string"}}
    if headers:
        ok["headers"] = headers
    codes = set(op.errors) | {429}
    if not op.public:
        codes |= {401, 403, 404}  # the policy answers 404 for what is not the caller's
    if op.body is not None:
        codes |= {400, 413, 415, 422}
    if op.query is not None:
        codes.add(422)
    if op.if_match:
        codes |= {412, 428}
    if op.idempotent:
        codes |= {400, 409, 422}
    responses = {str(op.status): ok}
    for code in sorted(codes):
        responses[str(code)] = {"description": _ERROR_TEXT.get(code, "Error"),
                                "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    return responses


def _parameters(op: Operation, schemas: dict, ref) -> list[dict]:
    params = [{"name": name, "in": "path", "required": True,
               "schema": {"type": "integer", "minimum": 1, "maximum": 10**18 - 1} if kind == "id" else {"type": "string"}}
              for kind, name in _PATH_PARAM.findall(op.rule)]
    if op.query is not None:
        query_schema = op.query.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(query_schema.pop("$defs", {}))
        required = set(query_schema.get("required", []))
        for name, schema in query_schema["properties"].items():
            param = {"name": name, "in": "query", "required": name in required, "schema": schema}
            if schema.get("type") == "array":
                param.update(style="form", explode=True)
            if "description" in schema:
                param["description"] = schema["description"]
            params.append(param)
    if op.if_match:
        params.append({"name": "If-Match", "in": "header", "required": True, "schema": {"type": "string"},
                       "description": "The ETag of the resource as you last read it"})
    if op.idempotent:
        params.append({"name": "Idempotency-Key", "in": "header", "required": op.idempotency_required,
                       "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
                       "description": "A unique value per intended operation: a retry returns the first answer"})
    return params


def _without_impossible_defaults(node):
    """Drop `"default": null` where the schema does not admit null: a PATCH model's field that may be left out
    but not sent as null (pydantic writes its Python default; OpenAPI 3.1 requires a default to be valid)."""
    if isinstance(node, dict):
        node = {key: _without_impossible_defaults(value) for key, value in node.items()}
        if "default" in node and node["default"] is None and not _admits_null(node):
            del node["default"]
        return node
    if isinstance(node, list):
        return [_without_impossible_defaults(item) for item in node]
    return node


def _admits_null(schema: dict) -> bool:
    if "type" in schema:
        return "null" in (schema["type"] if isinstance(schema["type"], list) else [schema["type"]])
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches is not None:
        return any(_admits_null(branch) for branch in branches)
    return True  # no type constraint (or a $ref): leave it as it is


def document() -> dict:
    models = {(m, mode) for op in REGISTRY for m, mode in ((op.body, "validation"), (op.response, "serialization"))
              if m is not None}
    keys, top = models_json_schema(sorted(models, key=lambda pair: (pair[0].__name__, pair[1])),
                                   ref_template="#/components/schemas/{model}")
    schemas = _without_impossible_defaults(dict(top.get("$defs", {})))
    schemas["Problem"] = PROBLEM_SCHEMA

    def ref(model, mode):
        return keys[(model, mode)]

    paths: dict = {}
    for op in REGISTRY:
        item = {"operationId": op.endpoint.split(".", 1)[1], "summary": op.summary, "tags": [op.tag],
                "responses": _responses(op, ref)}
        if op.description:
            item["description"] = op.description
        params = _parameters(op, schemas, ref)
        if params:
            item["parameters"] = params
        if op.body is not None:
            item["requestBody"] = {"required": any(f.is_required() for f in op.body.model_fields.values()),
                                   "content": {"application/json": {"schema": ref(op.body, "validation")}}}
        if op.public:
            item["security"] = []
        elif op.scope:
            item["security"] = [{"oauth2": [f"{context}/{op.scope}"]} for context in scopes.CONTEXTS]
        paths.setdefault(_path(bp.url_prefix + op.rule), {})[op.method.lower()] = item
    base = current_app.config["HMS_PUBLIC_URL"].rstrip("/")
    all_scopes = {f"{c}/{r}.cruds": f"Everything on {r} ({c} context)" for c in scopes.CONTEXTS
                  for r in [*scopes.RESOURCES, "*"]}
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION,
                 "description": "The hospital's operations for programs. Conventions (errors, pagination, "
                                "ETag/If-Match, Idempotency-Key, rate limits): docs/api.md."},
        "servers": [{"url": base}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"oauth2": {"type": "oauth2", "flows": {
                "authorizationCode": {"authorizationUrl": base + "/oauth/authorize", "tokenUrl": base + "/oauth/token",
                                      "refreshUrl": base + "/oauth/token", "scopes": all_scopes},
                "clientCredentials": {"tokenUrl": base + "/oauth/token", "scopes": all_scopes}}}},
        },
        "security": [{"oauth2": []}],
    }


@operation(bp, "GET", "/openapi.json", tag="Documentation", summary="This API's OpenAPI 3.1 document",
           public=True)
def openapi_document():
    """The document every operation is generated into."""
    return jsonify(document())


@bp.get("/docs")
def documentation():
    """The human-readable reference, rendered on the server from the same document (no script: CSP-clean)."""
    return render_template("api/docs.html", spec=document(), spec_url=url_for("api.openapi_document"))
