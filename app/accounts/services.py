"""Account operations shared by every role: registration, sign-in, profile changes.

Functions here only add and flush; the caller (a request or a CLI command) commits once.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from app.accounts.models import LoginFailure, PatientProfile, Role, Sex, User
from app.accounts.passwords import hash_password, needs_rehash, verify_password
from app.events.outbox import emit
from app.timeutil import utcnow
from app.extensions import db


class AccountError(Exception):
    """A request that the account rules refuse; `field` names the form field to blame."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class LoginThrottled(Exception):
    def __init__(self, retry_after_minutes: int):
        super().__init__(f"Too many failed sign-in attempts. Try again in {retry_after_minutes} minutes.")
        self.retry_after_minutes = retry_after_minutes


def normalize_email(email: str) -> str:
    return email.strip().lower()


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(sa.select(User).where(User.email == normalize_email(email)))


def email_taken(email: str, *, excluding: User | None = None) -> bool:
    query = sa.select(User.id).where(User.email == normalize_email(email))
    if excluding is not None:
        query = query.where(User.id != excluding.id)
    return db.session.scalar(query) is not None


def create_user(*, role: Role, email: str, full_name: str, password: str | None,
                phone: str | None = None, password_hash: str | None = None) -> User:
    if email_taken(email):
        raise AccountError("An account with this email already exists.", field="email")
    user = User(
        role=role,
        email=normalize_email(email),
        full_name=full_name.strip(),
        phone=phone,
        password_hash=password_hash or (hash_password(password) if password else None),
    )
    try:
        with db.session.begin_nested():  # a concurrent signup with the same email loses here
            db.session.add(user)
    except IntegrityError:
        raise AccountError("An account with this email already exists.", field="email") from None
    if role is not Role.PATIENT:
        emit("user.created", "user", user.id, {"role": role.value, "email": user.email})
    return user


@dataclass
class PatientRegistration:
    full_name: str
    email: str
    password: str
    date_of_birth: date
    sex: Sex
    phone: str
    address: str
    emergency_contact_name: str
    emergency_contact_phone: str
    insurance_provider: str | None = None
    insurance_policy_number: str | None = None


def register_patient(reg: PatientRegistration, *, password_hash: str | None = None) -> User:
    user = create_user(role=Role.PATIENT, email=reg.email, full_name=reg.full_name,
                       password=reg.password, phone=reg.phone, password_hash=password_hash)
    user.patient = PatientProfile(
        date_of_birth=reg.date_of_birth,
        sex=reg.sex,
        address=reg.address.strip(),
        emergency_contact_name=reg.emergency_contact_name.strip(),
        emergency_contact_phone=reg.emergency_contact_phone,
        insurance_provider=(reg.insurance_provider or "").strip() or None,
        insurance_policy_number=(reg.insurance_policy_number or "").strip() or None,
    )
    db.session.flush()
    emit("patient.registered", "patient", user.id, {"email": user.email}, patient_id=user.id, actor=actor_of(user))
    return user


def actor_of(user: User) -> dict:
    return {"id": user.id, "role": user.role.value}


def _patient_id(user: User) -> int | None:
    return user.id if user.role is Role.PATIENT else None


def _failures_since(column, value: str, since) -> int:
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(LoginFailure).where(column == value, LoginFailure.at >= since)
    )


def authenticate(email: str, password: str, ip: str) -> User | None:
    """The user these credentials belong to, or None. Raises LoginThrottled while locked out."""
    email = normalize_email(email)
    window = timedelta(minutes=current_app.config["HMS_LOGIN_WINDOW_MINUTES"])
    limit = current_app.config["HMS_LOGIN_MAX_FAILURES"]
    since = utcnow() - window
    user = find_user_by_email(email)
    aggregate = user.id if user else f"email:{email}"[:64]
    if _failures_since(LoginFailure.email, email, since) >= limit or _failures_since(LoginFailure.ip, ip, since) >= limit:
        emit("user.login_throttled", "user", aggregate, {"email": email}, outcome="denied",
             patient_id=_patient_id(user) if user else None)
        raise LoginThrottled(int(window.total_seconds() // 60))
    if (user is None or not user.active or user.service_account
            or not verify_password(user.password_hash, password)):
        db.session.add(LoginFailure(email=email[:254], ip=ip))
        db.session.execute(sa.delete(LoginFailure).where(LoginFailure.at < since))
        reason = ("unknown email" if user is None else "inactive account" if not user.active
                  else "service account" if user.service_account else "wrong password")
        emit("user.login_failed", "user", aggregate, {"email": email, "reason": reason}, outcome="failure",
             patient_id=_patient_id(user) if user else None)
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    db.session.execute(sa.delete(LoginFailure).where(LoginFailure.email == email))
    user.last_login_at = utcnow()
    emit("user.login_succeeded", "user", user.id, {}, actor=actor_of(user), patient_id=_patient_id(user))
    return user


def record_sign_out(user: User) -> None:
    emit("user.logged_out", "user", user.id, {}, actor=actor_of(user), patient_id=_patient_id(user))


def change_email(user: User, new_email: str, current_password: str) -> None:
    if not verify_password(user.password_hash, current_password):
        raise AccountError("The current password is not correct.", field="current_password")
    if email_taken(new_email, excluding=user):
        raise AccountError("An account with this email already exists.", field="email")
    user.email = normalize_email(new_email)
    db.session.flush()


def record_profile_change(user: User, section: str, fields: list[str]) -> None:
    """Announce a change to a patient's profile (audit, and a security notice to the patient)."""
    emit("patient.profile_changed", "patient", user.id, {"sections": [section], "fields": fields},
         patient_id=user.id)


def set_password(user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    user.session_version += 1
    db.session.flush()


# --- staff accounts the admin manages (doctors have their own page, app/clinic) ---------------------

ADMIN_MANAGED_ROLES = (Role.CLERK, Role.ADMIN)


def staff_query() -> sa.Select:
    """Billing clerks and admins, admins first, then by name."""
    return (sa.select(User).where(User.role.in_(ADMIN_MANAGED_ROLES), User.service_account.is_(False))
            .order_by(User.role.desc(), User.full_name, User.id))


def get_staff(user_id: int) -> User | None:
    return db.session.scalar(sa.select(User).where(User.id == user_id, User.role.in_(ADMIN_MANAGED_ROLES),
                                                   User.service_account.is_(False)))


def create_staff(*, role: Role, email: str, full_name: str, phone: str | None) -> User:
    """A clerk or admin login without a password; the caller issues the set-password link."""
    if role not in ADMIN_MANAGED_ROLES:
        raise AccountError("Choose billing clerk or admin.", field="role")
    user = create_user(role=role, email=email, full_name=full_name, password=None, phone=phone or None)
    db.session.flush()
    return user


def set_staff_active(user: User, active: bool, *, by: User) -> None:
    """Deactivate (signed out everywhere, cannot sign in, nothing deleted) or reactivate a clerk or admin.

    Every admin row is locked first, in id order, so two admins deactivating each other at the same
    time are serialised and the second sees the first's change: there is always an active admin.
    """
    if not active and user.id == by.id:
        raise AccountError("You cannot deactivate your own account.")
    admins = {a.id: a for a in db.session.scalars(
        sa.select(User).where(User.role == Role.ADMIN, User.service_account.is_(False)).order_by(User.id)
        .with_for_update()
        .execution_options(populate_existing=True))}
    if user.id not in admins:
        db.session.refresh(user, with_for_update=True)
    if user.active is active:
        return
    if not active and user.role is Role.ADMIN and sum(a.active for a in admins.values()) <= 1:
        raise AccountError(f"{user.full_name} is the last active admin; make another admin first.")
    user.active = active
    if not active:
        user.session_version += 1  # ends their open sessions
    db.session.flush()
    emit("user.activated" if active else "user.deactivated", "user", user.id, {"role": user.role.value})


def accounts_by_role() -> dict[Role, int]:
    rows = db.session.execute(sa.select(User.role, sa.func.count()).group_by(User.role)).all()
    counts = dict.fromkeys(Role, 0)
    counts.update({role: n for role, n in rows})
    return counts


def recent_accounts(limit: int) -> list[User]:
    return list(db.session.scalars(sa.select(User).order_by(User.created_at.desc(), User.id.desc()).limit(limit)))
