"""Sign-in sessions kept on the server: started at sign-in, ended at sign-out, so a copy of the cookie saved
before "Sign out" answers as signed out. The cookie carries a random token; the table keeps its SHA-256.

A session ends on its own after a while without a request (`HMS_IDLE_MINUTES_STAFF` / `_PATIENT`) and in any
case `HMS_SESSION_MAX_HOURS` after sign-in. Its last-seen time is written at most once a minute (not on every
request), so the idle timeout counts from a time up to a minute old: it may end up to a minute early, never late.
GET requests that say `HMS-Background: 1` (the doctor's dashboard polling for changes) are not activity: a page left open does not keep its session alive.

Each browser carries a long-lived random cookie (`hms_browser`); the server keeps the SHA-256 of it with the
user's id (`known_browsers`). A sign-in from a browser the person has not used before is announced
(`user.new_browser_sign_in`, emailed with a link that ends that session), unless it is their first sign-in.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import after_this_request, current_app, g, request
from itsdangerous import BadSignature, URLSafeSerializer

from app.accounts.models import KnownBrowser, Role, User, UserSession
from app.events.outbox import emit
from app.extensions import db
from app.timeutil import utcnow

LAST_SEEN_EVERY = timedelta(minutes=1)
BROWSER_COOKIE = "hms_browser"
BROWSER_COOKIE_DAYS = 400  # the longest a browser keeps a cookie (RFC 6265bis)
BACKGROUND_HEADER = "HMS-Background"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- limits -------------------------------------------------------------------------------------------------------

def idle_limit(user: User) -> timedelta:
    key = "HMS_IDLE_MINUTES_PATIENT" if user.role is Role.PATIENT else "HMS_IDLE_MINUTES_STAFF"
    return timedelta(minutes=current_app.config[key])


def max_lifetime() -> timedelta:
    return timedelta(hours=current_app.config["HMS_SESSION_MAX_HOURS"])


def deadline(user: User, live: UserSession) -> datetime:
    """When the session ends unless a request comes first."""
    return min(live.last_seen_at + idle_limit(user), live.created_at + max_lifetime())


def _ended_by_time(user: User, live: UserSession, now: datetime) -> str | None:
    """Why a session that nobody ended is over ("idle", "lifetime"), or None while it lasts."""
    if now >= live.created_at + max_lifetime():
        return "lifetime"
    if now >= live.last_seen_at + idle_limit(user):
        return "idle"
    return None


def expiry_message(user: User, reason: str) -> str:
    if reason == "lifetime":
        return (f"You were signed out: a session lasts at most {current_app.config['HMS_SESSION_MAX_HOURS']} hours."
                " Sign in again to continue.")
    minutes = int(idle_limit(user).total_seconds() // 60)
    return f"You were signed out after {minutes} minutes without activity. Sign in again to continue."


# --- browsers -----------------------------------------------------------------------------------------------------

_BROWSERS = (("Edge", re.compile(r"Edg(e|A|iOS)?/")), ("Opera", re.compile(r"OPR/|Opera")),
             ("Samsung Internet", re.compile(r"SamsungBrowser/")), ("Firefox", re.compile(r"Firefox/|FxiOS/")),
             ("Chrome", re.compile(r"Chrome/|CriOS/|Chromium/")), ("Safari", re.compile(r"Safari/")))
_SYSTEMS = (("iOS", re.compile(r"iPhone|iPad|iPod")), ("Android", re.compile(r"Android")),
            ("ChromeOS", re.compile(r"CrOS")), ("Windows", re.compile(r"Windows")),
            ("macOS", re.compile(r"Mac OS X|Macintosh")), ("Linux", re.compile(r"Linux|X11")))


def describe_browser(user_agent: str | None) -> str:
    """A person's summary of a User-Agent, e.g. "Chrome on Linux"; "Unknown browser" when it names none."""
    agent = (user_agent or "")[:1000]
    browser = next((name for name, pattern in _BROWSERS if pattern.search(agent)), None)
    system = next((name for name, pattern in _SYSTEMS if pattern.search(agent)), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or (f"A browser on {system}" if system else "Unknown browser")


def _browser_hash(user: User, browser_token: str) -> str:
    return _digest(f"{user.id}:{browser_token}")


def _recognise_browser(user: User, live: UserSession) -> None:
    """Remember this browser for `user`; announce a sign-in from a new one (not the person's first)."""
    # In production the session cookie is __Host- prefixed (Secure, Path=/, no Domain); this one follows it.
    host_only = current_app.config["SESSION_COOKIE_NAME"].startswith("__Host-")
    name = f"__Host-{BROWSER_COOKIE}" if host_only else BROWSER_COOKIE
    token = request.cookies.get(name, "")
    if not (20 <= len(token) <= 100 and token.isascii()):
        token = secrets.token_urlsafe(32)
        secure = current_app.config["SESSION_COOKIE_SECURE"]

        @after_this_request
        def set_browser_cookie(response):
            response.set_cookie(name, token, max_age=BROWSER_COOKIE_DAYS * 86400, path="/", httponly=True,
                                samesite="Lax", secure=secure)
            return response

    browser_hash = _browser_hash(user, token)
    known = db.session.scalars(sa.select(KnownBrowser.browser_hash).where(KnownBrowser.user_id == user.id)).all()
    if browser_hash in known:
        return
    db.session.add(KnownBrowser(user_id=user.id, browser_hash=browser_hash))
    if known:
        emit("user.new_browser_sign_in", "user", user.id,
             {"session_id": live.id, "browser": live.browser, "ip": live.ip},
             actor={"id": user.id, "role": user.role.value},
             patient_id=user.id if user.role is Role.PATIENT else None)


# --- starting, finding and ending ---------------------------------------------------------------------------------

def start_session(user: User) -> str:
    """A new session of `user`, from this request's browser; the token goes into the (signed) session cookie.
    The caller commits."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    live = UserSession(token_hash=_digest(token), user_id=user.id, created_at=now, last_seen_at=now,
                       ip=(request.remote_addr or "")[:45], browser=describe_browser(request.user_agent.string),
                       session_version=user.session_version)
    db.session.add(live)
    db.session.flush()
    _recognise_browser(user, live)
    return token


def end_session(token: object) -> None:
    """End the session of `token` (a missing or unknown one: nothing to end). The caller commits."""
    if isinstance(token, str) and token:
        db.session.execute(sa.update(UserSession).where(UserSession.token_hash == _digest(token),
                                                        UserSession.ended_at.is_(None)).values(ended_at=utcnow()))


def session_user(user_id: int, session_version: int, token: object) -> User | None:
    """The active user of a live session: not ended, not idle or past its lifetime, issued to this user at their
    current session version. Notes the session for the page (`current_session`), or why it is over
    (`g.session_expired`, for the sign-in page); records that it was seen (at most once a minute)."""
    if not isinstance(token, str) or not token:
        return None
    found = db.session.execute(sa.select(User, UserSession).join(UserSession, UserSession.user_id == User.id).where(
        User.id == user_id, User.session_version == session_version, User.active.is_(True),
        UserSession.token_hash == _digest(token), UserSession.ended_at.is_(None))).first()
    if found is None:
        return None
    user, live = found
    now = utcnow()
    reason = _ended_by_time(user, live, now)
    if reason is not None:
        g.session_expired = expiry_message(user, reason)
        return None
    if now - live.last_seen_at >= LAST_SEEN_EVERY and not _background():
        _touch(live, now)
    g.current_session = live
    return user


def _background() -> bool:
    """A page's own polling (a GET marked `HMS-Background: 1`), not the person's activity. Marked elements' POSTs
    (a button inside the polled dashboard) are activity."""
    return request.method == "GET" and request.headers.get(BACKGROUND_HEADER) == "1"


def _touch(live: UserSession, now: datetime) -> None:
    """Record activity now; kept even if the request's answer is an error (a form sent back with messages is
    activity too)."""
    from app.web.unit_of_work import after_rollback

    live.last_seen_at = now
    session_id = live.id
    after_rollback(lambda: db.session.execute(
        sa.update(UserSession).where(UserSession.id == session_id).values(last_seen_at=now)))


def keep_alive(live: UserSession) -> None:
    """The warning dialog's "Stay signed in": activity now, whatever the minute's throttle."""
    _touch(live, utcnow())


def current_session() -> UserSession | None:
    """The signed-in request's session row (after the user was loaded)."""
    return g.get("current_session")


@dataclass(frozen=True)
class SessionRow:
    session: UserSession
    current: bool


def live_sessions_query(user: User) -> sa.Select:
    now = utcnow()
    return (sa.select(UserSession).where(
        UserSession.user_id == user.id, UserSession.ended_at.is_(None),
        UserSession.session_version == user.session_version,
        UserSession.last_seen_at > now - idle_limit(user), UserSession.created_at > now - max_lifetime())
        .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc()))


def live_sessions(user: User, current: UserSession | None) -> list[SessionRow]:
    """`user`'s open sessions, most recently seen first, this browser's marked."""
    current_id = current.id if current is not None else None
    return [SessionRow(s, s.id == current_id) for s in db.session.scalars(live_sessions_query(user).limit(100))]


def _actor(user: User) -> dict:
    return {"id": user.id, "role": user.role.value}


def _patient_id(user: User) -> int | None:
    return user.id if user.role is Role.PATIENT else None


def end_one_session(user: User, session_id: int, current: UserSession | None) -> UserSession | None:
    """End one of `user`'s open sessions other than this one; None if they have no such session."""
    live = db.session.scalar(live_sessions_query(user).where(UserSession.id == session_id))
    if live is None or (current is not None and live.id == current.id):
        return None
    live.ended_at = utcnow()
    emit("user.session_ended", "user", user.id, {"session_id": live.id, "browser": live.browser, "ip": live.ip,
                                                 "by": "owner"}, actor=_actor(user), patient_id=_patient_id(user))
    return live


def end_other_sessions(user: User, current: UserSession | None) -> int:
    """End all of `user`'s open sessions but this one; how many."""
    ids = [s.id for s in db.session.scalars(live_sessions_query(user)) if current is None or s.id != current.id]
    if ids:
        db.session.execute(sa.update(UserSession).where(UserSession.id.in_(ids)).values(ended_at=utcnow()))
        emit("user.other_sessions_ended", "user", user.id, {"session_ids": ids}, actor=_actor(user),
             patient_id=_patient_id(user))
    return len(ids)


def sign_out_everywhere(user: User, *, by: User) -> int:
    """The admin's "End all sessions": every session of `user` ends (their session version moves on, as for a
    password change); how many were open."""
    count = len(db.session.scalars(live_sessions_query(user)).all())
    db.session.execute(sa.update(UserSession).where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))
                       .values(ended_at=utcnow()))
    user.session_version += 1
    db.session.flush()
    emit("user.signed_out_everywhere", "user", user.id, {"sessions": count}, actor=_actor(by),
         patient_id=_patient_id(user))
    return count


# --- the emailed link that ends a session started from a new browser ---------------------------------------------

def _link_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="end-session")


def end_link(live: UserSession) -> str:
    """The address of the page that ends `live` (emailed: the notification builds it, never the audit trail)."""
    token = _link_serializer().dumps([live.id, live.token_hash[:16]])
    return f"{current_app.config['HMS_PUBLIC_URL'].rstrip('/')}/account/sessions/end/{token}"


def session_of_link(token: str) -> UserSession | None:
    """The session an emailed link names (it ended or not), or None for a link that is not ours."""
    try:
        session_id, hash_prefix = _link_serializer().loads(token[:500])
    except (BadSignature, ValueError, TypeError):
        return None
    live = db.session.get(UserSession, session_id) if isinstance(session_id, int) else None
    if live is None or not isinstance(hash_prefix, str) or live.token_hash[:16] != hash_prefix:
        return None
    return live


def is_open(live: UserSession) -> bool:
    user = db.session.get(User, live.user_id)
    return (live.ended_at is None and user is not None and live.session_version == user.session_version
            and _ended_by_time(user, live, utcnow()) is None)


def end_by_link(live: UserSession) -> bool:
    """End the session an emailed link names; False if it was over already (the link works once)."""
    if not is_open(live):
        return False
    live.ended_at = utcnow()
    user = db.session.get(User, live.user_id)
    emit("user.session_ended", "user", user.id, {"session_id": live.id, "browser": live.browser, "ip": live.ip,
                                                 "by": "email link"}, patient_id=_patient_id(user))
    return True


def sign_in_again() -> str:
    """The sign-in page's address for a request without a live session, back to the page afterwards (for HTMX the
    page it came from, not the fragment). A session that ran out says why on the sign-in page, once."""
    from flask import flash, session, url_for

    from app.web.rendering import is_htmx, safe_next

    here = request.full_path.rstrip("?")
    if is_htmx():
        page = urlsplit(request.headers.get("HX-Current-URL", ""))
        if page.netloc == request.host:
            here = safe_next(page.path + (f"?{page.query}" if page.query else ""), here)
    message = g.pop("session_expired", None)
    if message and session.pop("sid", None):
        session.pop("_user_id", None)
        flash(message, "warning")
    return url_for("auth.login", next=here)
