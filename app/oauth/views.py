"""Discovery documents of the authorization server: the JWK Set (RFC 7517) and the metadata (RFC 8414).

The metadata lists only what exists. The token and authorization endpoints come next (issue 13); until then
they are not advertised, nor the response types and grants they will bring.
"""
from __future__ import annotations

from flask import Blueprint, jsonify, url_for

from app.extensions import csrf
from app.oauth import keys

bp = Blueprint("oauth", __name__)
csrf.exempt(bp)


@bp.get("/.well-known/jwks.json")
def jwks():
    return jsonify(keys.jwks())


@bp.get("/.well-known/oauth-authorization-server")
def metadata():
    issuer = keys.issuer()
    return jsonify({
        "issuer": issuer,
        "jwks_uri": issuer + url_for("oauth.jwks"),
    })
