"""The resource server's side of a token: who a bearer access token speaks for, checked on every request.

A token is accepted only when its signature, type, issuer, audience and lifetime are right
(`app.oauth.keys.verify_access_token`) and, at the moment of the request:
- its user is active and their `session_version` is still the token's `sv` (a password change or a
  deactivation bumps it: every token issued before stops at once);
- its client is registered and active (disabling a client stops its tokens);
- its grant (`gid`, the person's consent that issued it) is not revoked: revoking a connected app, or a reused
  refresh token, stops the grant's access tokens;
- its `jti` was not revoked (RFC 7009 revocation of an access token).
Expiry alone (at most `HMS_ACCESS_TOKEN_SECONDS`) is never what ends a revoked access.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property

import sqlalchemy as sa

from app.accounts.models import User
from app.extensions import db
from app.oauth import keys, scopes
from app.oauth.models import OAuthClient, OAuthGrant, RevokedAccessToken
from app.policy import Actor

MAX_TOKEN_LENGTH = 4096


class BearerError(Exception):
    """The request's token is missing or not acceptable. `reason` is for the audit and logs, not the client."""

    def __init__(self, reason: str, *, description: str = "The access token is missing, invalid or revoked."):
        super().__init__(reason)
        self.reason = reason
        self.description = description


@dataclass(frozen=True)
class ClientRef:
    """What a request needs of its token's client (not the whole row: the check runs on every request)."""
    id: int
    client_id: str
    active: bool
    service_user_id: int | None


@dataclass(frozen=True)
class Bearer:
    user: User
    client: ClientRef
    scope: str  # as granted, space-separated
    grant_id: int | None
    jti: str
    claims: dict

    patient_id: int | None = None  # SMART launch/patient: the one patient this token reaches

    @cached_property
    def actor(self) -> Actor:  # asked several times a request: the scopes are parsed once
        return Actor(self.user, scopes=scopes.permissions(self.scope), client_id=self.client.client_id,
                     patient_context=self.patient_id)


def token_from_header(header: str | None) -> str:
    """The token of an `Authorization: Bearer …` header (RFC 6750 section 2.1)."""
    if not header:
        raise BearerError("missing")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_LENGTH:
        raise BearerError("malformed")
    return token


def authenticate(header: str | None, *, audience: str | tuple[str, ...]) -> Bearer:
    """The bearer of this `Authorization` header (a token for `audience`, or for one of several), or
    BearerError."""
    token = token_from_header(header)
    try:
        claims = keys.verify_access_token(token, audience=audience)
    except keys.InvalidToken as error:
        raise BearerError(error.reason) from None
    sub, version, client_id, jti = claims.get("sub"), claims.get("sv"), claims.get("client_id"), claims.get("jti")
    grant_id, patient = claims.get("gid"), claims.get("patient")
    if (not _is_id(sub) or not (patient is None or _is_id(patient))
            or not isinstance(version, int)
            or not isinstance(client_id, str) or not isinstance(jti, str)
            or not (grant_id is None or isinstance(grant_id, int))
            or not isinstance(claims.get("scope", ""), str)):
        raise BearerError("claims")
    row = db.session.execute(_check_query(), {"sub": int(sub), "client_id": client_id, "jti": jti,
                                               "gid": grant_id or 0}).first()
    if row is None:
        raise BearerError("unknown_subject")
    user, is_revoked, grant_ok = row[0], row[5], row[6]
    client = ClientRef(*row[1:5])
    if not user.active:
        raise BearerError("user_inactive")
    if user.session_version != version:
        raise BearerError("session_version")
    if not client.active:
        raise BearerError("client_inactive")
    if is_revoked:
        raise BearerError("revoked")
    if grant_id is not None:
        if not grant_ok:
            raise BearerError("grant_revoked")
    elif client.service_user_id != user.id:
        raise BearerError("claims")  # only a client's own service account acts without a person's grant
    return Bearer(user, client, claims.get("scope", ""), grant_id, jti, claims,
                  int(patient) if patient is not None else None)


def _is_id(value: object) -> bool:
    return isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18


@cache
def _check_query() -> sa.Select:
    """One query for a request's token: the user, the client, whether the jti was revoked and whether the grant
    still stands. Built once, with bound parameters, so no request pays for building and keying it."""
    revoked = sa.select(RevokedAccessToken.jti).where(RevokedAccessToken.jti == sa.bindparam("jti")).exists()
    grant_stands = sa.select(OAuthGrant.id).where(
        OAuthGrant.id == sa.bindparam("gid"), OAuthGrant.revoked_at.is_(None), OAuthGrant.user_id == User.id,
        OAuthGrant.client_pk == OAuthClient.id).exists()
    return (sa.select(User, OAuthClient.id, OAuthClient.client_id, OAuthClient.active, OAuthClient.service_user_id,
                      revoked.label("revoked"), grant_stands.label("grant_stands"))
            .join(OAuthClient, OAuthClient.client_id == sa.bindparam("client_id"))
            .where(User.id == sa.bindparam("sub")))


def api_audience() -> str:
    """The audience (`aud`) of tokens for the public API."""
    return keys.issuer() + "/api/v1"


def fhir_audience() -> str:
    """The audience (`aud`) of tokens for the FHIR endpoint: its base URL. The FHIR door also accepts tokens for
    the public API (`api_audience`): the same resource server, the same scopes."""
    return keys.issuer() + "/fhir/R4"


def audiences() -> tuple[str, ...]:
    """Every audience of this resource server's tokens (for revocation and introspection)."""
    return api_audience(), fhir_audience()
