from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db_types import UTCDateTime, enum_column
from app.timeutil import utcnow
from app.extensions import db


class Role(enum.StrEnum):
    PATIENT = "patient"
    DOCTOR = "doctor"
    CLERK = "clerk"
    ADMIN = "admin"

    @property
    def label(self) -> str:
        return {"clerk": "Billing clerk"}.get(self.value, self.value.capitalize())


STAFF_ROLES = (Role.DOCTOR, Role.CLERK, Role.ADMIN)


class Sex(enum.StrEnum):
    """Administrative sex, as in HL7 FHIR AdministrativeGender."""

    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"

    @property
    def label(self) -> str:
        return {"unknown": "Prefer not to say"}.get(self.value, self.value.capitalize())


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    role: Mapped[Role] = mapped_column(enum_column(Role, "role"), index=True)
    full_name: Mapped[str] = mapped_column(sa.String(120))
    phone: Mapped[str | None] = mapped_column(sa.String(20))
    active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    # A program's identity (an OAuth client's service account): no password, never signs in to the pages.
    service_account: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # Bumped to revoke every session of the user (password or email change, deactivation).
    session_version: Mapped[int] = mapped_column(default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    patient: Mapped[PatientProfile | None] = relationship(back_populates="user", uselist=False)

    @property
    def is_active(self) -> bool:  # read by Flask-Login
        return self.active

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    def __repr__(self) -> str:
        return f"<User {self.id} {self.role.value}>"


class PatientProfile(db.Model):
    __tablename__ = "patient_profiles"

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    date_of_birth: Mapped[date]
    sex: Mapped[Sex] = mapped_column(enum_column(Sex, "sex"))
    address: Mapped[str] = mapped_column(sa.String(500))
    emergency_contact_name: Mapped[str] = mapped_column(sa.String(120))
    emergency_contact_phone: Mapped[str] = mapped_column(sa.String(20))
    insurance_provider: Mapped[str | None] = mapped_column(sa.String(120))
    insurance_policy_number: Mapped[str | None] = mapped_column(sa.String(64))
    notify_email: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    notify_sms: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    user: Mapped[User] = relationship(back_populates="patient")


class LoginFailure(db.Model):
    """One failed sign-in; counted per account and per address to throttle guessing."""

    __tablename__ = "login_failures"
    __table_args__ = (
        sa.Index("ix_login_failures_email_at", "email", "at"),
        sa.Index("ix_login_failures_ip_at", "ip", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254))
    ip: Mapped[str] = mapped_column(sa.String(45))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PasswordToken(db.Model):
    """A single-use link to set a password (new staff account or "forgot password").

    Only the SHA-256 of the token is stored, so a database reader cannot use a pending link.
    """

    __tablename__ = "password_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    purpose: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class UserSession(db.Model):
    """One signed-in browser session, kept on the server so that signing out ends it there: the cookie carries a
    random token, the table only its SHA-256. A session is valid while it is not ended and the user's
    `session_version` is the one it was issued with."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Written at most once a minute (app/accounts/sessions.py); the idle timeout counts from it.
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ip: Mapped[str] = mapped_column(sa.String(45), default="", server_default="")
    browser: Mapped[str] = mapped_column(sa.String(80), default="", server_default="")  # "Chrome on Linux"
    # The user's session_version when it began: a later bump (password change, deactivation) ends it.
    session_version: Mapped[int] = mapped_column(default=1, server_default="1")


class KnownBrowser(db.Model):
    """A browser a person has signed in from: the SHA-256 of the user's id with the browser's long-lived random
    cookie, so that a sign-in from any other browser can be told to them by email."""

    __tablename__ = "known_browsers"
    __table_args__ = (sa.UniqueConstraint("user_id", "browser_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    browser_hash: Mapped[str] = mapped_column(sa.String(64))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# --- second factors (app/accounts/second_factor.py) ---------------------------------------------------------------

class TotpFactor(db.Model):
    """A person's authenticator app: the shared secret and the last time step a code was accepted for, so that
    a code seen once (over a shoulder, in a proxy's log) is refused the second time (RFC 6238 section 5.2)."""

    __tablename__ = "totp_factors"

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    secret: Mapped[str] = mapped_column(sa.String(64))
    last_step: Mapped[int | None] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RecoveryCode(db.Model):
    """A single-use code for when the authenticator is lost. Only the SHA-256 of the code is stored: each code
    has 128 random bits, so a fast hash leaves nothing to guess (no dictionary, no salt needed), and a check
    costs a microsecond instead of an Argon2 run per attempt."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    code_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
