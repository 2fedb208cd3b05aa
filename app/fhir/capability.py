"""`GET /fhir/R4/metadata`: the CapabilityStatement, made from the registry of resource types
(`app.fhir.resources.TYPES`), so it lists exactly what is implemented: read and search-type of each type, the
writes of those that have them (Appointment: create, conditional on an identifier, update and patch; versioned),
its search parameters and includes, and `Patient/$everything`."""
from __future__ import annotations

from flask import current_app

from app.fhir.resources import TYPES
from app.fhir.search import COMMON, DEFAULT_COUNT, MAX_COUNT, base_url
from app.oauth import discovery

FHIR_VERSION = "4.0.1"
STATEMENT_DATE = "2026-12-04"  # when what the statement lists last changed (SMART, the Appointment writes)
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
SECURITY_SERVICE = "http://terminology.hl7.org/CodeSystem/restful-security-service"
EVERYTHING = "http://hl7.org/fhir/OperationDefinition/Patient-everything"
SEARCH_PARAMETER_BASE = "http://hl7.org/fhir/SearchParameter/"
# the standard definitions of the parameters that have one under this name
_STANDARD = {"_id": "Resource-id", "_lastUpdated": "Resource-lastUpdated"}


def security() -> dict:
    """SMART on FHIR: the service code and the authorization server's endpoints as the `oauth-uris` extension
    (what SMART clients such as `fhirclient` read); `.well-known/smart-configuration` says the same and more."""
    found = discovery.endpoints()
    uris = [{"url": name, "valueUri": found[key]} for name, key in (
        ("authorize", "authorization_endpoint"), ("token", "token_endpoint"), ("revoke", "revocation_endpoint"),
        ("introspect", "introspection_endpoint"))]
    return {
        "extension": [{"url": OAUTH_URIS, "extension": uris}],
        "cors": False,
        "service": [{"coding": [{"system": SECURITY_SERVICE, "code": "SMART-on-FHIR"}], "text": "SMART on FHIR"}],
        "description": "OAuth 2.0 bearer access tokens (RFC 6750) of the HMS authorization server: SMART App Launch "
                       "2 (standalone launch, PKCE S256, launch/patient, openid fhirUser) with SMART v1 and v2 "
                       "scopes; see .well-known/smart-configuration.",
    }


def capability_statement() -> dict:
    resources = []
    for resource_type in TYPES.values():
        params = [{"name": name, "type": kind, **({"definition": SEARCH_PARAMETER_BASE + _STANDARD[name]}
                                                   if name in _STANDARD else {})}
                  for name, kind in {**COMMON, **resource_type.params}.items()]
        writes = resource_type.create is not None or resource_type.update is not None
        entry = {"type": resource_type.name, "documentation": resource_type.documentation,
                 "interaction": [{"code": code} for code in resource_type.interactions],
                 "versioning": "versioned" if writes else "no-version", "readHistory": False,
                 "updateCreate": False, "searchParam": params}
        if resource_type.create is not None:
            entry["conditionalCreate"] = True
        if resource_type.includes:
            entry["searchInclude"] = list(resource_type.includes)
        if resource_type.name == "Patient":
            entry["operation"] = [{"name": "everything", "definition": EVERYTHING}]
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement", "status": "active", "date": STATEMENT_DATE,
        "publisher": current_app.config["HMS_CLINIC_NAME"], "kind": "instance",
        "software": {"name": "HMS"},
        "implementation": {"description": "HMS FHIR R4 endpoint (read and search; booking and cancelling "
                                          "appointments)", "url": base_url()},
        "fhirVersion": FHIR_VERSION, "format": ["json"],
        "rest": [{
            "mode": "server",
            "documentation": f"Read and search; Appointment also create (a free Slot), update and patch (a "
                             f"cancellation), with If-Match on meta.versionId and If-None-Exist on identifier. "
                             f"Results are searchset Bundles of _count entries (default {DEFAULT_COUNT}, at most "
                             f"{MAX_COUNT}) with a `next` link (_cursor). Unknown parameters are ignored unless "
                             "`Prefer: handling=strict`.",
            "security": security(),
            "resource": resources,
        }],
    }
