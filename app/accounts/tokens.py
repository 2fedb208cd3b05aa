"""Single-use links to set a password: a new staff account's first password, or "forgot password".

Only the SHA-256 of a token is stored. The raw token leaves this module twice: returned to the
caller, and inside the `user.password_link_issued` event, because the notifications worker builds
the email from it (the audit consumer drops it, see app/audit/chain.py).

Functions here only add and flush; the caller commits once.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from app.accounts.models import PasswordToken, Role, User
from app.accounts.passwords import password_problem
from app.accounts.services import AccountError, actor_of, clear_login_failures, find_user_by_email, set_password
from app.events.outbox import emit
from app.extensions import db
from app.timeutil import utcnow

PURPOSES = {"set_password": "set up your account", "reset": "reset your password"}
RESET_LINKS_PER_HOUR = 3


class TokenProblem(Exception):
    """A link that cannot be used. `reason` is "expired", "used" or "unknown"; `email` is the
    account's address when the link was genuine (expired or used), so a new one can be offered."""

    def __init__(self, reason: str, email: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.email = email


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def link_lifetime() -> timedelta:
    return timedelta(hours=current_app.config.get("HMS_PASSWORD_LINK_HOURS", 48))


def password_link(raw: str) -> str:
    return f"{current_app.config['HMS_PUBLIC_URL'].rstrip('/')}/password/{raw}"


def _expire_unused(user_id: int, now: datetime, *, except_id: int | None = None) -> None:
    query = sa.update(PasswordToken).where(PasswordToken.user_id == user_id, PasswordToken.used_at.is_(None),
                                           PasswordToken.expires_at > now)
    if except_id is not None:
        query = query.where(PasswordToken.id != except_id)
    db.session.execute(query.values(expires_at=now), execution_options={"synchronize_session": False})


def issue_password_token(user: User, purpose: str) -> str:
    """A new link for `user` (earlier unused links stop working); returns the raw token.

    Emits `user.password_link_issued`, from which the notifications worker emails the link.
    """
    if purpose not in PURPOSES:
        raise ValueError(f"unknown password link purpose: {purpose!r}")
    now = utcnow()
    _expire_unused(user.id, now)
    raw = secrets.token_urlsafe(32)
    token = PasswordToken(user_id=user.id, token_hash=_digest(raw), purpose=purpose, created_at=now,
                          expires_at=now + link_lifetime())
    db.session.add(token)
    db.session.flush()
    emit("user.password_link_issued", "user", user.id,
         {"purpose": purpose, "link": password_link(raw), "expires_at": token.expires_at.isoformat()},
         patient_id=user.id if user.role is Role.PATIENT else None)
    return raw


def _find(raw: str, *, lock: bool = False) -> PasswordToken:
    query = sa.select(PasswordToken).where(PasswordToken.token_hash == _digest(raw))
    if lock:  # read the row as committed now, not as this session may have loaded it before
        query = query.with_for_update().execution_options(populate_existing=True)
    token = db.session.scalar(query)
    user = db.session.get(User, token.user_id) if token is not None else None
    if token is None or user is None or not user.active:
        raise TokenProblem("unknown")
    if token.used_at is not None:
        raise TokenProblem("used", user.email)
    if token.expires_at <= utcnow():
        raise TokenProblem("expired", user.email)
    return token


def check_password_token(raw: str) -> PasswordToken:
    """The token behind a link, if it can still be used; raises TokenProblem otherwise."""
    return _find(raw)


def use_password_token(raw: str, new_password: str) -> User:
    """Set the password through a link, once: the link and every other pending link of the user
    stop working, and the user's sessions are revoked."""
    token = _find(raw, lock=True)  # a second submission of the same link waits here, then sees "used"
    problem = password_problem(new_password)
    if problem:
        raise AccountError(problem, field="password")
    user = db.session.get(User, token.user_id)
    now = utcnow()
    token.used_at = now
    _expire_unused(user.id, now, except_id=token.id)
    set_password(user, new_password)
    clear_login_failures(user.email)  # the link proves control of the account: guesses from elsewhere are forgotten
    emit("user.password_set", "user", user.id, {"purpose": token.purpose}, actor=actor_of(user),
         patient_id=user.id if user.role is Role.PATIENT else None)
    return user


def request_password_reset(email: str) -> None:
    """Email a reset link to the active account with this address, if there is one and it has not
    had RESET_LINKS_PER_HOUR links in the last hour. Says nothing either way, so that the answer
    cannot tell whether an address has an account."""
    user = find_user_by_email(email)
    if user is None or not user.active:
        return
    # Concurrent requests for one account count one after the other: the user row is locked, and the
    # count is a locking read, which sees links committed after this transaction's snapshot.
    db.session.refresh(user, with_for_update=True)
    recent = db.session.scalar(
        sa.select(sa.func.count()).select_from(PasswordToken)
        .where(PasswordToken.user_id == user.id, PasswordToken.purpose == "reset",
               PasswordToken.created_at > utcnow() - timedelta(hours=1)).with_for_update())
    if recent >= RESET_LINKS_PER_HOUR:
        return
    issue_password_token(user, "reset")
