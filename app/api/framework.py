"""How an API operation is declared, and what every operation gets for it.

    @operation(bp, "POST", "/appointments/<id:appointment_id>/accept", tag="Appointments",
               summary="Accept a requested appointment", response=AppointmentOut, if_match=True,
               scope="Appointment.u")
    def accept_appointment(appointment_id: int): ...

The declaration is the single source of the route, the request and response models and the OpenAPI document
(`app.api.openapi`), so the document cannot drift from the code. The wrapper:
- parses the query string into the `query` model and a JSON body into the `body` model (pydantic v2, unknown
  fields refused): malformed JSON is 400, a wrong or unknown field 422 with a JSON Pointer per error, another
  media type 415;
- requires `If-Match` on `if_match` operations (428 without); the view compares it with the resource's current
  representation under a row lock (`check_if_match`, 412 when stale), and the wrapper makes sure it did;
- runs creating operations (`idempotent`) under their `Idempotency-Key` (`app.api.idempotency`);
- answers the view's model as JSON with its `ETag`, or a `Reply` with a status and headers.
Authentication, scopes and rate limits come before (`app.api.auth`, `app.api.ratelimit`).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from flask import Blueprint, g, request, url_for
from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from werkzeug.wrappers import Response

from app.api.problems import FieldError, Problem

_IF_MATCH_CHECKED = "hms_api_if_match_checked"


class ApiModel(BaseModel):
    """Every request and response model: unknown fields are refused (422), never silently dropped."""
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


@dataclass
class Operation:
    method: str
    rule: str
    endpoint: str
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    scope: str | None = None  # the SMART resource and permissions it needs, for the document: "Appointment.u"
    public: bool = False
    idempotent: bool = False  # a creating POST: honours Idempotency-Key
    idempotency_required: bool = False
    if_match: bool = False
    errors: tuple[int, ...] = ()
    description: str = ""
    rate_limit: str | None = None  # an extra per-address limit: "signup" is HMS_API_RATE_LIMIT_SIGNUP


REGISTRY: list[Operation] = []


@dataclass
class Reply:
    """A view's answer when it is not a plain 200 with the model: a status, headers (Location), no body."""
    model: BaseModel | None = None
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


def operation(bp: Blueprint, method: str, rule: str, *, summary: str, tag: str,
              body: type[BaseModel] | None = None, query: type[BaseModel] | None = None,
              response: type[BaseModel] | None = None, status: int = 200, scope: str | None = None,
              public: bool = False, idempotent: bool = False, idempotency_required: bool = False,
              if_match: bool = False, errors: tuple[int, ...] = (), description: str = "",
              rate_limit: str | None = None):
    def decorator(view: Callable[..., Any]):
        op = Operation(method, rule, f"{bp.name}.{view.__name__}", summary, tag, body, query, response, status,
                       scope, public, idempotent or idempotency_required, idempotency_required, if_match, errors,
                       description or (view.__doc__ or "").strip(), rate_limit)
        REGISTRY.append(op)

        @wraps(view)
        def wrapped(**path):
            from app.api import idempotency

            kwargs = dict(path)
            if query is not None:
                kwargs["query"] = parse_query(query)
            if body is not None:
                kwargs["body"] = parse_body(body)
            if if_match and not request.headers.get("If-Match"):
                raise Problem(428, "This change needs an If-Match header with the resource's current ETag.")
            if op.idempotent:
                return idempotency.run(op, lambda: _answer(op, view(**kwargs)))
            return _answer(op, view(**kwargs))

        wrapped.operation = op
        bp.add_url_rule(rule, endpoint=view.__name__, view_func=wrapped, methods=[method])
        return wrapped

    return decorator


def _answer(op: Operation, result: BaseModel | Reply | Response | None) -> Response:
    if isinstance(result, Response):
        return result
    if op.if_match and not g.pop(_IF_MATCH_CHECKED, False):
        raise RuntimeError(f"{op.endpoint} changed a resource without checking If-Match")
    reply = result if isinstance(result, Reply) else Reply(result)
    status = reply.status or op.status
    if reply.model is None:
        response = Response(status=status)
    else:
        text = reply.model.model_dump_json()
        response = Response(text, status=status, mimetype="application/json")
        if op.method == "GET" or op.if_match or status == 201:
            response.headers["ETag"] = _etag_of_json(text)
    for name, value in reply.headers.items():
        response.headers[name] = value
    return response


# --- request parsing --------------------------------------------------------------------------------------

def _pointer(location: tuple) -> str:
    return "/" + "/".join(str(part).replace("~", "~0").replace("/", "~1") for part in location) if location else ""


def _message(error: dict) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "Unknown field."
    if kind == "missing":
        return "Required."
    return error.get("msg", "Invalid value.").removeprefix("Value error, ")


def parse_body(model: type[BaseModel]) -> BaseModel:
    raw = request.get_data(cache=True)
    if not raw and not any(f.is_required() for f in model.model_fields.values()):
        return model()  # every field optional: the body may be left out (a state change without a reason)
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise Problem(415, "Send the body as application/json.")
    try:
        json.loads(raw or b"")
    except (ValueError, UnicodeDecodeError):
        raise Problem(400, "The body is not valid JSON.", slug="malformed-json", title="Malformed JSON") from None
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        raise Problem(422, "Some fields could not be accepted.", errors=[
            FieldError(_pointer(e["loc"]) or "/", _message(e)) for e in error.errors(include_url=False)
        ][:50]) from None


def parse_query(model: type[BaseModel]) -> BaseModel:
    known = set(model.model_fields)
    values: dict[str, Any] = {}
    errors = [FieldError(name[:100], "Unknown parameter.", in_query=True) for name in request.args if name not in known]
    for name in known:
        items = request.args.getlist(name)
        if items:
            values[name] = items if _is_list(model, name) else items[-1]
    try:
        parsed = model.model_validate(values)
    except ValidationError as error:
        errors += [FieldError(str(e["loc"][0]) if e["loc"] else "query", _message(e), in_query=True)
                   for e in error.errors(include_url=False)]
        parsed = None
    if errors:
        raise Problem(422, "Some query parameters could not be accepted.", errors=errors[:50])
    return parsed


def _is_list(model: type[BaseModel], name: str) -> bool:
    annotation = model.model_fields[name].annotation
    return getattr(annotation, "__origin__", None) is list


# --- ETag and If-Match -------------------------------------------------------------------------------------
# A resource's ETag is a digest of its representation (every field), so any change to what a client sees
# changes it; no version column is needed.

def _etag_of_json(text: str) -> str:
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'


def etag_of(model: BaseModel) -> str:
    return _etag_of_json(model.model_dump_json())


def check_if_match(current: BaseModel) -> None:
    """Compare the request's If-Match with the resource as it is now (the caller holds its row lock): 412 when
    the client's copy is stale, so no update is lost."""
    g.setdefault(_IF_MATCH_CHECKED, True)
    header = request.headers.get("If-Match", "")
    if header.strip() == "*":
        return
    wanted = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    if etag_of(current) not in wanted:
        raise Problem(412, "The resource changed since you read it. Read it again and repeat the change "
                           "if it still applies.")


# --- cursor pagination -------------------------------------------------------------------------------------

MAX_LIMIT = 100


def page_model(item: type[BaseModel]) -> type[BaseModel]:
    """`{"items": [...], "next_cursor": "..."}`: a page of `item`s."""
    return create_model(f"{item.__name__}Page", __base__=ApiModel, items=(list[item], ...),
                        next_cursor=(str | None, None))


def encode_cursor(values: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, types: tuple[type, ...]) -> list | None:
    """The position a cursor names; a cursor that was not made here is a 422 on `cursor`."""
    if cursor is None:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        values = None
    if (not isinstance(values, list) or len(values) != len(types)
            or not all(isinstance(v, t) and not isinstance(v, bool) for v, t in zip(values, types))):
        raise Problem(422, "The cursor is not one this API gave.",
                      errors=[FieldError("cursor", "Not a cursor of this list.", in_query=True)])
    return values


def paged(items: list, limit: int, key: Callable[[Any], list], endpoint: str, **values) -> tuple[list, str | None,
                                                                                                 dict[str, str]]:
    """The first `limit` items, the next page's cursor and the `Link` header; `items` holds up to limit + 1."""
    if len(items) <= limit:
        return items, None, {}
    items = items[:limit]
    cursor = encode_cursor(key(items[-1]))
    args = {name: value for name, value in request.args.lists() if name != "cursor"}
    url = url_for(endpoint, _external=False, **values, **args, cursor=cursor)
    return items, cursor, {"Link": f'<{url}>; rel="next"'}
