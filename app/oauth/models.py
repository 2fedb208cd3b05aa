"""The authorization server's tables: registered clients, people's grants to them, and the credentials issued.

- `OAuthClient`: registered by an admin. A confidential client has a secret (only its SHA-256 is kept: the
  secret is 256 random bits, so a fast hash is safe); a client-credentials client is bound to a service account
  (`service_user`), a user without a password whose role decides what the client may do.
- `OAuthGrant`: a person's consent to a client (the "connected app" on their profile) and the family of every
  refresh token issued under it. Revoking it (the person, an admin, or a reused refresh token) stops its
  refresh tokens and, because access tokens name their grant (`gid`), its access tokens at once.
- `OAuthRefreshToken`: rotated on every use; a used one presented again revokes its grant (reuse detection).
- `OAuthAuthorizationCode`: single-use, short-lived, PKCE S256.
- `RevokedAccessToken`: the `jti` of an access token revoked before it expired (RFC 7009), kept until then.
"""
from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.accounts.models import User
from app.db_types import UTCDateTime, enum_column
from app.extensions import db
from app.timeutil import utcnow


class ClientKind(enum.StrEnum):
    PUBLIC = "public"  # a mobile or browser app: no secret, PKCE only
    CONFIDENTIAL = "confidential"  # a server: authenticates with its secret


class GrantType(enum.StrEnum):
    AUTHORIZATION_CODE = "authorization_code"
    CLIENT_CREDENTIALS = "client_credentials"
    REFRESH_TOKEN = "refresh_token"


class OAuthClient(db.Model):
    __tablename__ = "oauth_clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    kind: Mapped[ClientKind] = mapped_column(enum_column(ClientKind, "client_kind"))
    secret_hash: Mapped[str | None] = mapped_column(sa.String(64))
    redirect_uris: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    grant_types: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    allowed_scopes: Mapped[str] = mapped_column(sa.String(2000), default="")
    service_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    secret_rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    service_user: Mapped[User | None] = relationship(foreign_keys=[service_user_id])

    def __repr__(self) -> str:
        return f"<OAuthClient {self.client_id}>"


class OAuthGrant(db.Model):
    __tablename__ = "oauth_grants"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_pk: Mapped[int] = mapped_column(sa.ForeignKey("oauth_clients.id"), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    scope: Mapped[str] = mapped_column(sa.String(2000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_reason: Mapped[str | None] = mapped_column(sa.String(40))

    client: Mapped[OAuthClient] = relationship()
    user: Mapped[User] = relationship()


class OAuthRefreshToken(db.Model):
    __tablename__ = "oauth_refresh_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    grant_id: Mapped[int] = mapped_column(sa.ForeignKey("oauth_grants.id"), index=True)
    scope: Mapped[str] = mapped_column(sa.String(2000))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # the launch it continues (see OAuthAuthorizationCode): the tokens' audience and the patient in context
    audience: Mapped[str | None] = mapped_column(sa.String(255))
    launch_patient_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    grant: Mapped[OAuthGrant] = relationship()


class OAuthAuthorizationCode(db.Model):
    __tablename__ = "oauth_authorization_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    client_pk: Mapped[int] = mapped_column(sa.ForeignKey("oauth_clients.id"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    redirect_uri: Mapped[str] = mapped_column(sa.String(2000))
    scope: Mapped[str] = mapped_column(sa.String(2000))
    code_challenge: Mapped[str] = mapped_column(sa.String(128))
    code_challenge_method: Mapped[str] = mapped_column(sa.String(10))
    nonce: Mapped[str | None] = mapped_column(sa.String(255))
    # the `aud` of the tokens it issues (None: the API's) and the patient in context of a SMART launch/patient
    audience: Mapped[str | None] = mapped_column(sa.String(255))
    launch_patient_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RevokedAccessToken(db.Model):
    __tablename__ = "oauth_revoked_access_tokens"

    jti: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
