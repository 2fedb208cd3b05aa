"""Sign-in sessions kept on the server: started at sign-in, ended at sign-out, so a copy of the cookie saved
before "Sign out" answers as signed out. The cookie carries a random token; the table keeps its SHA-256."""
from __future__ import annotations

import hashlib
import secrets

import sqlalchemy as sa

from app.accounts.models import User, UserSession
from app.extensions import db
from app.timeutil import utcnow


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(user: User) -> str:
    """A new session of `user`; the token goes into the (signed) session cookie. The caller commits."""
    token = secrets.token_urlsafe(32)
    db.session.add(UserSession(token_hash=_digest(token), user_id=user.id))
    return token


def end_session(token: object) -> None:
    """End the session of `token` (a missing or unknown one: nothing to end). The caller commits."""
    if isinstance(token, str) and token:
        db.session.execute(sa.update(UserSession).where(UserSession.token_hash == _digest(token),
                                                        UserSession.ended_at.is_(None)).values(ended_at=utcnow()))


def session_user(user_id: int, session_version: int, token: object) -> User | None:
    """The active user of a live session: not ended, issued to this user at their current session version."""
    if not isinstance(token, str) or not token:
        return None
    return db.session.scalar(sa.select(User).join(UserSession, UserSession.user_id == User.id).where(
        User.id == user_id, User.session_version == session_version, User.active.is_(True),
        UserSession.token_hash == _digest(token), UserSession.ended_at.is_(None)))
