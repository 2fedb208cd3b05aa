"""What every FHIR write shares: the body (a resource as FHIR JSON, or a JSON Patch), the resource's version
(`meta.versionId`, `ETag: W/"<versionId>"`, `If-Match`) and the `If-None-Exist` of a conditional create.

- A resource's `versionId` is a digest of its representation (every element but `meta`), like the API's ETag
  (`app.api.framework`): any change a client could see changes it, and no version column is needed.
- `If-Match` is optional (FHIR R4 3.1.0.5.1): without it an update proceeds; with it, a stale version is 412.
- Bodies: `application/fhir+json` (or `application/json`) for a resource, `application/json-patch+json` for a
  JSON Patch (RFC 6902); anything else 415, JSON that does not parse 400, never a 500.
"""
from __future__ import annotations

import copy
import hashlib
import json
from typing import Any
from urllib.parse import parse_qsl

from flask import request

from app.fhir.outcomes import FhirError

RESOURCE_MEDIA_TYPES = ("application/fhir+json", "application/json")
PATCH_MEDIA_TYPE = "application/json-patch+json"
MAX_PATCH_OPERATIONS = 50


def version_id(resource: dict) -> str:
    """The digest of the resource's representation without `meta`: a valid FHIR id."""
    body = {name: value for name, value in resource.items() if name != "meta"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:32]


def versioned(resource: dict) -> dict:
    """`resource` with `meta.versionId` (placed before `lastUpdated`)."""
    resource["meta"] = {"versionId": version_id(resource), **resource.get("meta", {})}
    return resource


def etag(resource: dict) -> str:
    return f'W/"{resource["meta"]["versionId"]}"'


def check_if_match(current: dict) -> None:
    """`If-Match: W/"<versionId>"` against the resource as it is now (the caller holds its row lock)."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return
    wanted = {tag.strip().removeprefix("W/").strip('"') for tag in header.split(",")}
    if current["meta"]["versionId"] not in wanted:
        raise FhirError(412, f"{current['resourceType']}/{current['id']} changed since you read it (now version "
                             f"{current['meta']['versionId']}). Read it again and repeat the change if it still "
                             "applies.", code="conflict")


def _json_body(media_types: tuple[str, ...]) -> Any:
    if request.mimetype not in media_types:
        raise FhirError(415, f"Send the body as {' or '.join(media_types)}.", code="not-supported")
    try:
        return json.loads(request.get_data(cache=True) or b"")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise FhirError(400, "The body is not valid JSON.", code="structure") from None


def resource_body(resource_type: str) -> dict:
    """The request's resource, which must be a `resource_type`."""
    body = _json_body(RESOURCE_MEDIA_TYPES)
    if not isinstance(body, dict) or body.get("resourceType") != resource_type:
        found = body.get("resourceType") if isinstance(body, dict) else type(body).__name__
        raise FhirError(400, f"The body must be a {resource_type} resource, not {str(found)[:40]!r}.",
                        expression="resourceType")
    return body


def patch_body() -> list[dict]:
    """The request's JSON Patch: a list of operations."""
    body = _json_body((PATCH_MEDIA_TYPE,))
    if not isinstance(body, list) or not all(isinstance(op, dict) for op in body):
        raise FhirError(400, "A JSON Patch is a list of operations (RFC 6902).", code="structure")
    if len(body) > MAX_PATCH_OPERATIONS:
        raise FhirError(400, f"At most {MAX_PATCH_OPERATIONS} operations in one patch.", code="too-costly")
    return body


# --- JSON Patch (RFC 6902) ---------------------------------------------------------------------------------

def _tokens(pointer: object, name: str) -> list[str]:
    if not isinstance(pointer, str) or (pointer and not pointer.startswith("/")):
        raise FhirError(400, f"The patch's {name} is not a JSON Pointer.", code="invalid")
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer.split("/")[1:]]


def _parent(document: Any, tokens: list[str], *, adding: bool) -> tuple[Any, str | int]:
    target = document
    for token in tokens[:-1]:
        target = _child(target, token)
    last = tokens[-1]
    if isinstance(target, list):
        if adding and last == "-":
            return target, len(target)
        if not last.isdigit() or (last != "0" and last.startswith("0")):
            raise FhirError(422, f"{last[:20]!r} is not an index of the array.", code="invalid")
        index = int(last)
        if index > len(target) - (0 if adding else 1):
            raise FhirError(422, f"Index {index} is beyond the array.", code="invalid")
        return target, index
    if not isinstance(target, dict) or (not adding and last not in target):
        raise FhirError(422, f"The patch names {last[:40]!r}, which the resource does not have.", code="invalid")
    return target, last


def _child(value: Any, token: str) -> Any:
    if isinstance(value, dict) and token in value:
        return value[token]
    if isinstance(value, list) and token.isdigit() and int(token) < len(value):
        return value[int(token)]
    raise FhirError(422, f"The patch names {token[:40]!r}, which the resource does not have.", code="invalid")


def _get(document: Any, tokens: list[str]) -> Any:
    for token in tokens:
        document = _child(document, token)
    return document


def apply_patch(document: dict, operations: list[dict]) -> dict:
    """RFC 6902 on a copy of `document`: add, remove, replace, move, copy, test. The whole resource cannot be
    replaced (a pointer of "" is refused)."""
    result = copy.deepcopy(document)
    for number, operation in enumerate(operations):
        op = operation.get("op")
        tokens = _tokens(operation.get("path"), "path")
        if not tokens:
            raise FhirError(422, "A patch changes elements of the resource, not the whole of it.", code="invalid")
        if op in ("add", "replace", "test") and "value" not in operation:
            raise FhirError(400, f"Operation {number} ({op}) has no value.", code="invalid")
        if op == "test":
            if _get(result, tokens) != operation["value"]:
                raise FhirError(422, f"Operation {number} (test of {operation['path']}) failed.", code="invalid")
            continue
        if op in ("move", "copy"):
            source = _tokens(operation.get("from"), "from")
            value = copy.deepcopy(_get(result, source))
            if op == "move":
                _remove(result, source)
            _add(result, tokens, value)
        elif op == "add":
            _add(result, tokens, copy.deepcopy(operation["value"]))
        elif op == "remove":
            _remove(result, tokens)
        elif op == "replace":
            parent, key = _parent(result, tokens, adding=False)
            parent[key] = copy.deepcopy(operation["value"])
        else:
            raise FhirError(400, f"Operation {number}: op must be add, remove, replace, move, copy or test.",
                            code="invalid")
    return result


def _add(document: Any, tokens: list[str], value: Any) -> None:
    parent, key = _parent(document, tokens, adding=True)
    if isinstance(parent, list):
        parent.insert(key, value)
    else:
        parent[key] = value


def _remove(document: Any, tokens: list[str]) -> None:
    if not tokens:
        raise FhirError(422, "A patch cannot remove the whole resource.", code="invalid")
    parent, key = _parent(document, tokens, adding=False)
    del parent[key]


# --- conditional create ------------------------------------------------------------------------------------

def if_none_exist(supported: tuple[str, ...]) -> dict[str, str] | None:
    """The search parameters of `If-None-Exist` (FHIR R4 3.1.0.8.1), or None without the header."""
    header = request.headers.get("If-None-Exist")
    if header is None:
        return None
    params = parse_qsl(header.strip().lstrip("?"), keep_blank_values=True)
    if not params:
        raise FhirError(400, "If-None-Exist names no search parameter.", code="invalid")
    found: dict[str, str] = {}
    for name, value in params:
        if name not in supported:
            raise FhirError(400, f"If-None-Exist supports {', '.join(supported)}; not {name[:40]!r}.",
                            code="not-supported")
        if name in found or not value:
            raise FhirError(400, f"If-None-Exist: give {name} once, with a value.", code="invalid")
        found[name] = value
    return found
