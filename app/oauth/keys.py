"""The signing keys of the API's access tokens: ES256 (ECDSA P-256) JWTs with the RFC 9068 profile.

The keys come from configuration, never from the database: `HMS_JWT_PRIVATE_KEYS` holds PEM text, or paths
of PEM files separated by commas; a file may hold several keys. The first key signs; the others are only
published and accepted for verification, so a key can be rotated without invalidating the tokens it signed:
add the new key first, keep the old one after it for a token lifetime, then remove it. Each key's `kid` is its
RFC 7638 thumbprint. Without the setting, development and tests use `devtools/dev_jwt_key.pem`; production
refuses to start without the setting, and refuses that key.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, current_app
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from app.config import ConfigError
from app.timeutil import utcnow

ALGORITHM = "ES256"
TOKEN_TYPE = "at+jwt"  # RFC 9068 section 2.1
DEV_KEY_FILE = Path(__file__).resolve().parent.parent.parent / "devtools" / "dev_jwt_key.pem"
_PEM_BLOCK = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.+?-----END [A-Z ]*PRIVATE KEY-----", re.S)
_EXTENSION = "hms_jwt_keys"


class InvalidToken(Exception):
    """An access token that must not be accepted; `reason` says why (for logs and the audit, not the client)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class KeyRing:
    keys: tuple[ECKey, ...]  # the first signs

    @property
    def signing_key(self) -> ECKey:
        return self.keys[0]

    def by_kid(self, kid: object) -> ECKey | None:
        return next((key for key in self.keys if key.kid == kid), None)


def load_keys(setting: str | None, *, env: str) -> KeyRing:
    """The key ring from the setting's value (PEM text or comma-separated PEM file paths)."""
    if not setting or not setting.strip():
        if env == "production":
            raise ConfigError("HMS_JWT_PRIVATE_KEYS must be set when HMS_ENV=production")
        setting = str(DEV_KEY_FILE)
    if "-----BEGIN" in setting:
        pems = _PEM_BLOCK.findall(setting)
    else:
        pems = []
        for path in (part.strip() for part in setting.split(",") if part.strip()):
            try:
                pems += _PEM_BLOCK.findall(Path(path).read_text())
            except OSError as error:
                raise ConfigError(f"HMS_JWT_PRIVATE_KEYS: cannot read {path}: {error.strerror}") from None
    if not pems:
        raise ConfigError("HMS_JWT_PRIVATE_KEYS holds no PEM private key")
    keys = tuple(_ec_key(pem) for pem in pems)
    kids = [key.kid for key in keys]
    if len(set(kids)) != len(kids):
        raise ConfigError("HMS_JWT_PRIVATE_KEYS names the same key twice")
    if env == "production" and _dev_kid() in kids:
        raise ConfigError("HMS_JWT_PRIVATE_KEYS must not use the development key when HMS_ENV=production")
    return KeyRing(keys)


def _ec_key(pem: str) -> ECKey:
    try:
        key = ECKey.import_key(pem)
    except (JoseError, ValueError, TypeError):
        raise ConfigError("HMS_JWT_PRIVATE_KEYS holds a key that is not an EC private key") from None
    if key.as_dict(private=False).get("crv") != "P-256" or not key.is_private:
        raise ConfigError("HMS_JWT_PRIVATE_KEYS: every key must be a P-256 (ES256) private key")
    return ECKey.import_key(pem, {"kid": key.thumbprint(), "use": "sig", "alg": ALGORITHM})


def _dev_kid() -> str:
    return ECKey.import_key(_PEM_BLOCK.findall(DEV_KEY_FILE.read_text())[0]).thumbprint()


def init_app(app: Flask) -> None:
    """Load the keys at start, so a missing or broken key stops the application, not its first token."""
    app.extensions[_EXTENSION] = load_keys(app.config.get("HMS_JWT_PRIVATE_KEYS"), env=app.config["HMS_ENV"])


def key_ring() -> KeyRing:
    return current_app.extensions[_EXTENSION]


def issuer() -> str:
    return current_app.config["HMS_PUBLIC_URL"].rstrip("/")


def sign_access_token(claims: dict) -> str:
    """A signed access token. `sub`, `aud` and `client_id` are the caller's; `iss`, `iat`, `exp` and `jti` are
    filled in unless given (RFC 9068 section 2.2)."""
    missing = {"sub", "aud", "client_id"} - claims.keys()
    if missing:
        raise ValueError(f"an access token needs {sorted(missing)}")
    now = int(utcnow().timestamp())
    payload = {"iss": issuer(), "iat": now, "exp": now + current_app.config["HMS_ACCESS_TOKEN_SECONDS"],
               "jti": secrets.token_urlsafe(16), **claims}
    key = key_ring().signing_key
    return jwt.encode({"alg": ALGORITHM, "typ": TOKEN_TYPE, "kid": key.kid}, payload, key, algorithms=[ALGORITHM])


def sign_id_token(claims: dict) -> str:
    """A signed OpenID Connect id token (Core section 2) for `claims` (`sub`, `aud`: the client, …); `iss`, `iat`
    and `exp` are filled in. Verifiable with the JWK Set, like the access tokens, but typed `JWT`: it is never
    accepted as an access token."""
    now = int(utcnow().timestamp())
    payload = {"iss": issuer(), "iat": now, "exp": now + current_app.config["HMS_ACCESS_TOKEN_SECONDS"], **claims}
    key = key_ring().signing_key
    return jwt.encode({"alg": ALGORITHM, "typ": "JWT", "kid": key.kid}, payload, key, algorithms=[ALGORITHM])


def verify_access_token(token: str, *, audience: str | tuple[str, ...]) -> dict:
    """The claims of a valid access token for `audience` (or for one of several); otherwise InvalidToken with
    the reason."""
    header = _header(token)
    if header.get("alg") != ALGORITHM:
        raise InvalidToken("algorithm")
    if header.get("typ") != TOKEN_TYPE:
        raise InvalidToken("type")
    key = key_ring().by_kid(header.get("kid"))
    if key is None:
        raise InvalidToken("unknown_key")
    try:
        claims = jwt.decode(token, key, algorithms=[ALGORITHM]).claims
    except (JoseError, ValueError, TypeError):
        raise InvalidToken("signature") from None
    _check_claims(claims, audience)
    return claims


def _header(token: str) -> dict:
    if not isinstance(token, str) or token.count(".") != 2:
        raise InvalidToken("malformed")
    encoded = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (binascii.Error, ValueError):
        raise InvalidToken("malformed") from None
    if not isinstance(header, dict):
        raise InvalidToken("malformed")
    return header


def _check_claims(claims: dict, audience: str | tuple[str, ...]) -> None:
    now = int(utcnow().timestamp())
    exp, iat = claims.get("exp"), claims.get("iat")
    if not _is_time(exp) or not _is_time(iat):
        raise InvalidToken("malformed")
    if exp <= now:
        raise InvalidToken("expired")
    if iat > now or ("nbf" in claims and (not _is_time(claims["nbf"]) or claims["nbf"] > now)):
        raise InvalidToken("not_yet_valid")
    if claims.get("iss") != issuer():
        raise InvalidToken("issuer")
    accepted = (audience,) if isinstance(audience, str) else audience
    aud = claims.get("aud")
    if not any(isinstance(given, str) and given in accepted for given in (aud if isinstance(aud, list) else [aud])):
        raise InvalidToken("audience")


def _is_time(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def jwks() -> dict:
    """The public keys (RFC 7517 JWK Set): every configured key, never a private part."""
    return {"keys": [key.as_dict(private=False) for key in key_ring().keys]}
