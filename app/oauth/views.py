"""The authorization server's endpoints for programs: token (RFC 6749), revocation (RFC 7009), introspection
(RFC 7662), and the discovery documents: the JWK Set (RFC 7517), the metadata (RFC 8414) and OpenID Connect's
(`app.oauth.discovery`).

The endpoints answer RFC 6749's JSON errors themselves (`{"error", "error_description"}`, section 5.2), never the
problem+json of `app/api/problems.py`, and every answer is `Cache-Control: no-store`. The consent page
(`/oauth/authorize`) is a page of the site: `app/oauth/pages.py`.
"""
from __future__ import annotations

from flask import Blueprint, jsonify, request
from werkzeug.wrappers import Response

from app.extensions import csrf
from app.oauth import bearer, discovery, keys, services
from app.oauth.services import OAuthError

bp = Blueprint("oauth", __name__)
csrf.exempt(bp)

FORM = "application/x-www-form-urlencoded"
RATE_LIMITED = {"oauth.token", "oauth.revoke", "oauth.introspect"}


@bp.before_request
def limit_rate() -> None:
    """Per address (`HMS_OAUTH_RATE_LIMIT`): guessing client secrets, codes or refresh tokens is slowed down; a
    429 carries `Retry-After` and the `RateLimit` headers, as the API's."""
    from app.api import ratelimit

    if request.endpoint in RATE_LIMITED:
        ratelimit.count(("token", request.remote_addr or "unknown", "HMS_OAUTH_RATE_LIMIT"))


@bp.after_request
def rate_limit_headers(response: Response) -> Response:
    from app.api import ratelimit

    return ratelimit.add_headers(response)


def _json(body: dict, status: int = 200, headers: dict | None = None) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _error(error: OAuthError) -> Response:
    headers = {"WWW-Authenticate": 'Basic realm="hms", charset="UTF-8"'} if error.status == 401 else None
    return _json(error.as_json(), error.status, headers)


def _client():
    if request.mimetype != FORM:
        raise OAuthError("invalid_request", f"Send the parameters as {FORM}.")
    if request.args:
        raise OAuthError("invalid_request", "Send the parameters in the request body, not the query string.")
    return services.authenticate_client(request.headers.get("Authorization"), request.form)


@bp.post("/oauth/token")
def token():
    try:
        return _json(services.issue_token(_client(), request.form))
    except OAuthError as error:
        return _error(error)


@bp.post("/oauth/revoke")
def revoke():
    try:
        client = _client()
        value = services.parameter(request.form, "token", limit=bearer.MAX_TOKEN_LENGTH)
        services.revoke_token(client, value, services.parameter(request.form, "token_type_hint", required=False))
    except OAuthError as error:
        return _error(error)
    return _json({})


@bp.post("/oauth/introspect")
def introspect():
    try:
        client = _client()
        token = services.parameter(request.form, "token", limit=bearer.MAX_TOKEN_LENGTH)
        return _json(services.introspect(client, token))
    except OAuthError as error:
        return _error(error)


@bp.get("/.well-known/jwks.json")
def jwks():
    return jsonify(keys.jwks())


@bp.get("/.well-known/oauth-authorization-server")
def metadata():
    return jsonify(discovery.server_metadata())


@bp.get("/.well-known/openid-configuration")
def openid_configuration():
    return jsonify(discovery.openid_configuration())
