"""The FHIR endpoint's routes: parse, dispatch to the resource type (which asks the policy), answer
application/fhir+json. The work is in `app.fhir.resources`. Writes are routed only for the types that have them
(`ResourceType.create`, `.update`, `.patch`): another type's POST, PUT or PATCH is 405."""
from __future__ import annotations

import json

from flask import jsonify
from werkzeug.routing import BaseConverter
from werkzeug.wrappers import Response

from app.fhir import bp
from app.fhir.capability import capability_statement
from app.fhir.outcomes import MEDIA_TYPE
from app.fhir.resources import TYPES
from app.fhir.resources.everything import everything
from app.fhir.search import SearchQuery, base_url, bundle
from app.fhir.writes import etag
from app.oauth import discovery


class TypeConverter(BaseConverter):
    """A resource type this server serves (anything else is a 404 OperationOutcome)."""
    regex = "|".join(sorted(TYPES, key=len, reverse=True))


class IdConverter(BaseConverter):
    """A FHIR logical id: [A-Za-z0-9-.]{1,64}."""
    regex = r"[A-Za-z0-9\-.]{1,64}"


def fhir_json(body: dict, status: int = 200) -> Response:
    """The resource as FHIR JSON, its members in the order they were built (resourceType first); a versioned
    resource with its `ETag`, a created one with its `Location`."""
    response = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=MEDIA_TYPE)
    if "versionId" in body.get("meta", {}):
        response.headers["ETag"] = etag(body)
        if status == 201:
            response.headers["Location"] = (f"{base_url()}/{body['resourceType']}/{body['id']}/_history/"
                                            f"{body['meta']['versionId']}")
    return response


def public(view):
    view.public = True
    return view


@bp.get("/metadata")
@public
def metadata():
    return fhir_json(capability_statement())


@bp.get("/.well-known/smart-configuration")
@public
def smart_configuration():
    """SMART App Launch 2's discovery document: the authorization server's endpoints and what it supports."""
    return jsonify(discovery.smart_configuration())


@bp.get("/<fhir_type:resource_type>/<fhir_id:resource_id>")
def read(resource_type: str, resource_id: str):
    return fhir_json(TYPES[resource_type].read(resource_id))


@bp.get("/<fhir_type:resource_type>")
def search(resource_type: str):
    kind = TYPES[resource_type]
    query = SearchQuery.parse(resource_type, kind.params, kind.includes)
    return fhir_json(bundle(query, kind.search(query)))


@bp.get("/Patient/<fhir_id:resource_id>/$everything")
def patient_everything(resource_id: str):
    query = SearchQuery.parse("Patient", {}, path=f"Patient/{resource_id}/$everything")
    return fhir_json(bundle(query, everything(resource_id, query)))


def create(resource_type: str):
    resource, status = TYPES[resource_type].create()
    return fhir_json(resource, status)


def update(resource_type: str, resource_id: str):
    return fhir_json(TYPES[resource_type].update(resource_id))


def patch(resource_type: str, resource_id: str):
    return fhir_json(TYPES[resource_type].patch(resource_id))


for _type in TYPES.values():
    if _type.create:
        bp.add_url_rule(f"/{_type.name}", "create", create, methods=["POST"], defaults={"resource_type": _type.name})
    if _type.update:
        bp.add_url_rule(f"/{_type.name}/<fhir_id:resource_id>", "update", update, methods=["PUT"],
                        defaults={"resource_type": _type.name})
    if _type.patch:
        bp.add_url_rule(f"/{_type.name}/<fhir_id:resource_id>", "patch", patch, methods=["PATCH"],
                        defaults={"resource_type": _type.name})
