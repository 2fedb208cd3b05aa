"""Password hashing (Argon2id) and the password policy (NIST SP 800-63B style)."""
from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 8
MAX_LENGTH = 128

# RFC 9106's second recommended option: Argon2id, t=3, m=64 MiB, p=4. The test suite lowers them through the
# environment (HMS_ARGON2_*) so that thousands of sign-ins stay cheap; production refuses anything weaker.
RFC_9106 = {"time_cost": 3, "memory_cost": 64 * 1024, "parallelism": 4}


def argon2_parameters() -> dict[str, int]:
    names = {"time_cost": "HMS_ARGON2_TIME_COST", "memory_cost": "HMS_ARGON2_MEMORY_KIB",
             "parallelism": "HMS_ARGON2_PARALLELISM"}
    parameters = {key: int(os.environ.get(name, RFC_9106[key])) for key, name in names.items()}
    if os.environ.get("HMS_ENV") == "production" and any(parameters[k] < RFC_9106[k] for k in RFC_9106):
        raise RuntimeError("HMS_ARGON2_* may not be weaker than RFC 9106 (t=3, m=65536 KiB, p=4) in production")
    return parameters


_hasher = PasswordHasher(**argon2_parameters())


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


@cache
def _common_passwords() -> frozenset[str]:
    path = Path(__file__).with_name("common_passwords.txt")
    return frozenset(line.strip().lower() for line in path.read_text().splitlines() if line.strip())


def password_problem(password: str) -> str | None:
    """The reason a password is refused, or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    if password.lower() in _common_passwords():
        return "This password is one of the most common ones; choose another."
    return None
