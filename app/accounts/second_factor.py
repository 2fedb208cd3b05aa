"""Second factors: an authenticator app (TOTP, `app/accounts/totp.py`) with ten single-use recovery codes.

Who must have one is a setting (`HMS_2FA_REQUIRED_ROLES`, doctors, clerks and admins by default); anyone else
(patients) may turn one on. Wrong codes count towards the sign-in throttle like wrong passwords
(`record_login_failure`), and a code is never accepted twice: each person's last accepted time step is kept and
only a later one passes (the factor's row is locked while it is checked, so two requests with the same code
cannot both win). Losing the phone is never database surgery: a recovery code signs the person in, and an admin
can reset the factor (`reset_factor`; the person is emailed and enrols again at the next sign-in).

Functions here only add and flush; the caller commits once.
"""
from __future__ import annotations

import base64
import hashlib
import secrets

import sqlalchemy as sa
from flask import current_app

from app.accounts import totp
from app.accounts.models import RecoveryCode, Role, TotpFactor, User
from app.accounts.services import actor_of, record_login_failure
from app.events.outbox import emit
from app.extensions import db
from app.timeutil import utcnow

RECOVERY_CODES = 10
CODE_LIMIT = 64  # the longest code a form accepts (a recovery code is 29 characters with its dashes)


class SecondFactorError(Exception):
    """A code that does not prove the factor; the message is shown beside the field."""


def required_roles() -> frozenset[Role]:
    return frozenset(current_app.config["HMS_2FA_REQUIRED_ROLES"])


def is_required(user: User) -> bool:
    return user.role in required_roles()


def factor_of(user: User, *, lock: bool = False) -> TotpFactor | None:
    query = sa.select(TotpFactor).where(TotpFactor.user_id == user.id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return db.session.scalar(query)


def has_factor(user: User) -> bool:
    return db.session.scalar(sa.select(TotpFactor.user_id).where(TotpFactor.user_id == user.id)) is not None


def recovery_codes_left(user: User) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(RecoveryCode)
                             .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)))


def _patient_id(user: User) -> int | None:
    return user.id if user.role is Role.PATIENT else None


def _normalize_recovery_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def _digest(code: str) -> str:
    return hashlib.sha256(_normalize_recovery_code(code).encode()).hexdigest()


def _new_recovery_code() -> str:
    """128 random bits in base32, in groups of five for reading aloud and typing: XXXXX-XXXXX-XXXXX-XXXXX-XXXXXX."""
    raw = base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=")
    return "-".join([raw[0:5], raw[5:10], raw[10:15], raw[15:20], raw[20:]])


def issue_recovery_codes(user: User) -> list[str]:
    """Ten new recovery codes (the old ones stop working); the only time they are seen in clear."""
    db.session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODES)]
    db.session.add_all(RecoveryCode(user_id=user.id, code_hash=_digest(code)) for code in codes)
    db.session.flush()
    return codes


def provisioning_uri(user: User, secret: str) -> str:
    return totp.provisioning_uri(secret, user.email, current_app.config["HMS_CLINIC_NAME"])


def enrol(user: User, secret: str, code: str) -> list[str]:
    """Turn on the authenticator whose `secret` was shown to the person, once they typed a code it made
    (SecondFactorError otherwise); returns the new recovery codes. Replaces an earlier authenticator."""
    step = totp.matching_step(secret, code.strip().replace(" ", ""), utcnow())
    if step is None:
        raise SecondFactorError("That code does not match. Type the 6-digit code your app shows now.")
    set_authenticator(user, secret, last_step=step)
    codes = issue_recovery_codes(user)
    emit("user.second_factor_enrolled", "user", user.id, {"method": "totp"}, actor=actor_of(user),
         patient_id=_patient_id(user))
    return codes


def set_authenticator(user: User, secret: str, *, last_step: int | None = None) -> TotpFactor:
    """Store the authenticator's secret (demo data and `enrol`); no event, no recovery codes."""
    factor = factor_of(user, lock=True)
    if factor is None:
        factor = TotpFactor(user_id=user.id, secret=secret)
        db.session.add(factor)
    factor.secret, factor.last_step, factor.created_at = secret, last_step, utcnow()
    db.session.flush()
    return factor


def verify(user: User, code: str, ip: str) -> str:
    """Check a code of `user`'s second factor: the authenticator's current code (never one accepted before) or
    an unused recovery code, which is then spent. Returns "totp" or "recovery_code"; a wrong, replayed or
    spent code raises SecondFactorError and counts towards the sign-in throttle."""
    code = code.strip()
    factor = factor_of(user, lock=True)
    if factor is not None and len(code.replace(" ", "")) == totp.DIGITS:
        step = totp.matching_step(factor.secret, code.replace(" ", ""), utcnow())
        if step is not None and (factor.last_step is None or step > factor.last_step):
            factor.last_step = step
            return "totp"
        reason = "replayed code" if step is not None else "wrong code"
    else:
        used = db.session.execute(
            sa.update(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.code_hash == _digest(code),
                                          RecoveryCode.used_at.is_(None)).values(used_at=utcnow()),
            execution_options={"synchronize_session": False}).rowcount
        if used:
            emit("user.recovery_code_used", "user", user.id, {"left": recovery_codes_left(user)},
                 actor=actor_of(user), patient_id=_patient_id(user))
            return "recovery_code"
        reason = "wrong recovery code"
    second_factor_failed(user, ip, reason)
    raise SecondFactorError("That code is not right. Type the code your app shows now, or a recovery code.")


def second_factor_failed(user: User, ip: str, reason: str) -> None:
    """A wrong second-factor code: counted by the sign-in throttle like a wrong password, and audited."""
    record_login_failure(user.email, ip)
    emit("user.second_factor_failed", "user", user.id, {"reason": reason}, outcome="failure",
         patient_id=_patient_id(user))


def remove_factor(user: User, *, by: User) -> bool:
    """Remove `user`'s authenticator and recovery codes: an admin's reset (the person is emailed) or a patient
    turning it off. Their other sessions end. Returns False when there was nothing to remove."""
    removed = db.session.execute(sa.delete(TotpFactor).where(TotpFactor.user_id == user.id)).rowcount
    db.session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    if not removed:
        return False
    if by.id != user.id:
        user.session_version += 1  # whoever holds the lost phone and a session is signed out
    db.session.flush()
    event = "user.second_factor_removed" if by.id == user.id else "user.second_factor_reset"
    emit(event, "user", user.id, {"role": user.role.value, "required": is_required(user)}, actor=actor_of(by),
         patient_id=_patient_id(user))
    return True
