"""Time-based one-time passwords, RFC 6238 (HMAC-SHA1, 30-second steps, 6 digits: what every authenticator
app speaks). Thirty lines of the standard library; tests/test_second_factor.py checks them against the RFC's
test vectors."""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime
from urllib.parse import quote, urlencode

STEP_SECONDS = 30
DIGITS = 6


def new_secret() -> str:
    """160 random bits (RFC 4226's recommended length), base32 without padding: what the apps accept."""
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


def _key(secret: str) -> bytes:
    secret = secret.replace(" ", "").upper()
    return base64.b32decode(secret + "=" * (-len(secret) % 8))


def hotp(key: bytes, counter: int, digits: int = DIGITS, digest=hashlib.sha1) -> str:
    """RFC 4226 section 5.3: dynamic truncation of HMAC(key, counter)."""
    mac = hmac.new(key, counter.to_bytes(8, "big"), digest).digest()
    offset = mac[-1] & 0x0F
    number = int.from_bytes(mac[offset:offset + 4], "big") & 0x7FFFFFFF
    return str(number % 10 ** digits).zfill(digits)


def step_at(moment: datetime) -> int:
    return int(moment.timestamp()) // STEP_SECONDS


def code_at(secret: str, step: int) -> str:
    return hotp(_key(secret), step)


def matching_step(secret: str, code: str, moment: datetime, *, window: int = 1) -> int | None:
    """The time step within `window` steps of `moment` whose code is `code`, or None. One step either side
    allows for a phone's clock drift and the seconds it takes to type."""
    if len(code) != DIGITS or not code.isdigit():
        return None
    now = step_at(moment)
    key = _key(secret)
    for step in range(now - window, now + window + 1):
        if hmac.compare_digest(hotp(key, step), code):
            return step
    return None


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code (Google Authenticator's key URI format)."""
    label = quote(f"{issuer}:{account}", safe="@:")
    return f"otpauth://totp/{label}?" + urlencode({"secret": secret, "issuer": issuer, "algorithm": "SHA1",
                                                     "digits": DIGITS, "period": STEP_SECONDS})
