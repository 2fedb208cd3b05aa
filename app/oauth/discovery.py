"""What the authorization server tells programs about itself: its metadata (RFC 8414), OpenID Connect's
discovery document, and SMART App Launch 2's `.well-known/smart-configuration` (served at the FHIR base,
`app.fhir.views`). One place builds the endpoints' addresses, so the three documents always agree."""
from __future__ import annotations

from flask import url_for

from app.oauth import keys, scopes
from app.oauth.models import GrantType

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
# SMART App Launch 2 capabilities (section 2.0.9 of the specification), exactly what HMS implements
SMART_CAPABILITIES = [
    "launch-standalone", "client-public", "client-confidential-symmetric", "sso-openid-connect",
    "context-standalone-patient", "permission-offline", "permission-patient", "permission-user", "permission-v1",
    "permission-v2",
]


def endpoints() -> dict[str, str]:
    issuer = keys.issuer()
    return {
        "issuer": issuer,
        "jwks_uri": issuer + url_for("oauth.jwks"),
        "authorization_endpoint": issuer + url_for("oauth_pages.authorize"),
        "token_endpoint": issuer + url_for("oauth.token"),
        "revocation_endpoint": issuer + url_for("oauth.revoke"),
        "introspection_endpoint": issuer + url_for("oauth.introspect"),
    }


def server_metadata() -> dict:
    """RFC 8414."""
    return {
        **endpoints(),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [g.value for g in GrantType],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS[:2],
        "scopes_supported": scopes.supported(),
    }


def openid_configuration() -> dict:
    """OpenID Connect Discovery 1.0: the id token of the code exchange (`openid`), signed like the access
    tokens; `fhirUser` names the person's FHIR resource."""
    return {
        **server_metadata(),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [keys.ALGORITHM],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "name", "fhirUser"],
    }


def smart_configuration() -> dict:
    """SMART App Launch 2 (`[base]/.well-known/smart-configuration`)."""
    found = endpoints()
    return {
        **found,
        "grant_types_supported": [g.value for g in GrantType],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "scopes_supported": scopes.supported(),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": SMART_CAPABILITIES,
    }
