"""Account operations shared by every role: registration, sign-in, profile changes.

Functions here only add and flush; the caller (a request or a CLI command) commits once.
"""
from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from functools import cache

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from app.accounts.models import LoginFailure, PatientProfile, Role, Sex, User
from app.accounts.passwords import hash_password, needs_rehash, password_problem, verify_password
from app.accounts.phones import normalize_phone
from app.events.outbox import emit
from app.timeutil import clinic_today, utcnow
from app.extensions import db


class AccountError(Exception):
    """A request that the account rules refuse; `field` names the form field to blame."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class LoginThrottled(Exception):
    """A sign-in attempt refused before the password is even looked at: too soon after failures from this address
    (`retry_after_seconds`)."""

    def __init__(self, message: str, retry_after_seconds: int):
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class ProofOfControlNeeded(Exception):
    """The right password for an account that many addresses have been guessing at: the person proves they control
    the account by the link just emailed to them (setting a password through it clears the failures)."""


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


# --- the rules of a patient's details: every door (the signup and profile pages, the API) checks them here ------

PROFILE_LIMITS = {"full_name": 120, "email": 254, "phone": 32, "address": 500, "emergency_contact_name": 120,
                  "emergency_contact_phone": 32, "insurance_provider": 120, "insurance_policy_number": 64}
REQUIRED_TEXT = {"full_name": "your full name", "phone": "your phone number", "address": "your address",
                 "emergency_contact_name": "an emergency contact's name",
                 "emergency_contact_phone": "an emergency contact's phone"}
PHONE_FIELDS = ("phone", "emergency_contact_phone")


def date_of_birth_problem(day: date) -> str | None:
    if day > clinic_today():
        return "The date of birth cannot be in the future."
    if day.year < 1900:
        return "Enter a date of birth after 1900."
    return None


def insurance_problem(provider: str | None, policy_number: str | None) -> str | None:
    """A policy number needs its insurer (blamed on insurance_policy_number)."""
    if (policy_number or "").strip() and not (provider or "").strip():
        return "Enter the insurance provider for this policy number."
    return None


def email_problem(email: str) -> str | None:
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(email, check_deliverability=False, allow_smtputf8=True, allow_empty_local=False)
    except EmailNotValidError:
        return "Enter a valid email address, like name@example.com."
    return None


def profile_problems(values: dict) -> dict[str, str]:
    """What is wrong with these values of a patient's details (field -> message), the same for every door.
    Phone numbers are rewritten to E.164 in `values` when valid."""
    problems: dict[str, str] = {}
    for name, value in values.items():
        if isinstance(value, str):
            if name in REQUIRED_TEXT and not value.strip():
                problems[name] = f"Enter {REQUIRED_TEXT[name]}."
            elif name in PROFILE_LIMITS and len(value) > PROFILE_LIMITS[name]:
                problems[name] = f"Use at most {PROFILE_LIMITS[name]:,} characters."
            elif name in PHONE_FIELDS:
                try:
                    values[name] = normalize_phone(value)
                except ValueError:
                    problems[name] = "Enter a valid phone number, e.g. +1 202 555 0143."
            elif name == "email" and (problem := email_problem(value)):
                problems[name] = problem
    if isinstance(values.get("date_of_birth"), date) and (problem := date_of_birth_problem(values["date_of_birth"])):
        problems["date_of_birth"] = problem
    if "insurance_policy_number" not in problems and (problem := insurance_problem(
            values.get("insurance_provider"), values.get("insurance_policy_number"))):
        problems["insurance_policy_number"] = problem
    return problems


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

    def problems(self, *, taken: bool = True) -> dict[str, str]:
        """Every rule of a signup (field -> message): the page's form and the API show them all at once. `taken`:
        whether an email that has an account is a problem (not for `sign_up`, which never says so)."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "password"}
        problems = profile_problems(values)
        for name in PHONE_FIELDS:
            setattr(self, name, values[name])
        if taken and "email" not in problems and email_taken(self.email):
            problems["email"] = "An account with this email already exists."
        if problem := password_problem(self.password or ""):
            problems["password"] = problem
        return problems


def register_patient(reg: PatientRegistration, *, password_hash: str | None = None) -> User:
    """A patient's account and profile; the rules of `PatientRegistration.problems` first (AccountError).
    `password_hash` (tests, demo data) stands for a password already checked."""
    problems = reg.problems()
    if password_hash is not None:
        problems.pop("password", None)
    if problems:
        field, message = next(iter(problems.items()))
        raise AccountError(message, field=field)
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


def sign_up(reg: PatientRegistration) -> User | None:
    """A sign-up that answers the same whether or not the email has an account, so that it cannot tell anyone
    which addresses do: the rules of `problems` but the taken email (AccountError), then the new account, or for
    an address that has one, nothing but an email to its owner (`user.signup_attempted`) and None, after the
    same password hash a new account costs."""
    problems = reg.problems(taken=False)
    if problems:
        field, message = next(iter(problems.items()))
        raise AccountError(message, field=field)
    if not email_taken(reg.email):
        try:
            with db.session.begin_nested():
                return register_patient(reg)
        except AccountError as error:  # the same email signed up meanwhile
            if error.field != "email":
                raise
    hash_password(reg.password)  # the work a new account does, so the answer's time tells nothing either
    owner = find_user_by_email(reg.email)
    emit("user.signup_attempted", "user", owner.id, {}, patient_id=_patient_id(owner))
    return None


# The sections of a patient's profile and their fields (the profile page edits one section at a time).
PROFILE_SECTIONS: dict[str, tuple[str, ...]] = {
    "personal": ("full_name", "date_of_birth", "sex"),
    "contact": ("phone", "address"),
    "emergency": ("emergency_contact_name", "emergency_contact_phone"),
    "insurance": ("insurance_provider", "insurance_policy_number"),
    "notifications": ("notify_email", "notify_sms"),
}


def update_patient_profile(user: User, changes: dict) -> list[str]:
    """Apply `changes` (field -> value, any fields of PROFILE_SECTIONS) to a patient's details after the rules
    of `profile_problems` (AccountError on the first); announce the changed sections and fields (never their
    values). Returns the changed fields. The sign-in email is `change_email`'s (it needs the password)."""
    unknown = set(changes) - {name for names in PROFILE_SECTIONS.values() for name in names}
    if unknown:
        raise AccountError("Not a field of the profile.", field=sorted(unknown)[0])
    values = dict(changes)
    profile = user.patient
    current = {name: getattr(profile, name) for name in ("insurance_provider", "insurance_policy_number")}
    values = {**{k: v for k, v in current.items() if k not in values}, **values}
    problems = profile_problems(values)
    if problems:
        field, message = next(iter(problems.items()))
        raise AccountError(message, field=field)
    changed = []
    for name in changes:
        value = values[name]
        if name == "sex":
            value = Sex(value)
        elif isinstance(value, str):
            value = value.strip() or None
        owner = user if hasattr(User, name) else profile
        if getattr(owner, name) != value:
            setattr(owner, name, value)
            changed.append(name)
    if changed:
        sections = [key for key, names in PROFILE_SECTIONS.items() if set(names) & set(changed)]
        record_profile_change(user, sections, changed)
    return changed


def actor_of(user: User) -> dict:
    return {"id": user.id, "role": user.role.value}


def _patient_id(user: User) -> int | None:
    return user.id if user.role is Role.PATIENT else None


def _failures(since, *conditions) -> tuple[int, datetime | None]:
    """How many failed sign-ins match since `since`, and the latest one's time."""
    count, latest = db.session.execute(sa.select(sa.func.count(), sa.func.max(LoginFailure.at))
                                       .where(LoginFailure.at >= since, *conditions)).one()
    return count, latest


@cache
def _dummy_hash() -> str:
    """A hash of no one's password (made by the same hasher, so checking it costs what a real check does), checked
    for an unknown or unusable account: a failed sign-in takes the same time whether or not the account exists."""
    return hash_password(secrets.token_urlsafe(16))


def _since() -> datetime:
    return utcnow() - timedelta(minutes=current_app.config["HMS_LOGIN_WINDOW_MINUTES"])


def check_login_throttle(email: str, ip: str, user: User | None) -> None:
    """Refuse an attempt (a password, or a second-factor code) that comes too soon (LoginThrottled, audited),
    before the password or code is looked at:
    - from an address that failed `HMS_LOGIN_ADDRESS_MAX_FAILURES` times in the window, on any accounts;
    - for an (account, address) pair past `HMS_LOGIN_FREE_FAILURES` failures: each further attempt waits twice as
      long as the one before (1 s, 2 s, 4 s, … up to `HMS_LOGIN_MAX_DELAY_SECONDS`) after the last failure.
    Nothing locks an account: guesses from other addresses never keep its owner out (see `authenticate`)."""
    email, now, since = normalize_email(email), utcnow(), _since()
    config = current_app.config
    window_minutes = config["HMS_LOGIN_WINDOW_MINUTES"]
    refused = None
    from_address, _ = _failures(since, LoginFailure.ip == ip)
    if from_address >= config["HMS_LOGIN_ADDRESS_MAX_FAILURES"]:
        refused = LoginThrottled(f"Too many failed sign-ins from your network. Try again in {window_minutes} "
                                 "minutes.", window_minutes * 60)
    else:
        pair, last = _failures(since, LoginFailure.email == email, LoginFailure.ip == ip)
        extra = pair - config["HMS_LOGIN_FREE_FAILURES"]
        if extra >= 0 and last is not None:
            delay = min(2 ** min(extra, 20), config["HMS_LOGIN_MAX_DELAY_SECONDS"])
            wait = math.ceil((last + timedelta(seconds=delay) - now).total_seconds())
            if wait > 0:
                refused = LoginThrottled(f"Too many failed attempts. Wait {_duration(wait)} before trying again.",
                                         wait)
    if refused is not None:
        emit("user.login_throttled", "user", user.id if user else f"email:{email}"[:64], {"email": email},
             outcome="denied", patient_id=_patient_id(user) if user else None)
        raise refused


def _duration(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    return f"{math.ceil(seconds / 60)} minutes"


def record_login_failure(email: str, ip: str) -> None:
    """Count a failed attempt (a wrong password or a wrong second-factor code) towards the sign-in throttle."""
    db.session.add(LoginFailure(email=normalize_email(email)[:254], ip=ip, at=utcnow()))
    db.session.execute(sa.delete(LoginFailure).where(LoginFailure.at < _since()))


def authenticate(email: str, password: str, ip: str) -> User | None:
    """The user these credentials belong to, or None (the failure counts). The password is only the first step:
    `sign_in_succeeded` ends the sign-in (after the second factor, when there is one). Raises LoginThrottled for
    an attempt that comes too soon (`check_login_throttle`), and ProofOfControlNeeded for the right password of
    an account without a second factor that failed `HMS_LOGIN_ACCOUNT_MAX_FAILURES` times in the window from
    anywhere: a link to set a password is emailed, and using it clears the failures (with a second factor, the
    code is the proof). A failed attempt costs the same time whether or not the account exists."""
    email = normalize_email(email)
    user = find_user_by_email(email)
    check_login_throttle(email, ip, user)
    usable = user is not None and user.active and not user.service_account and user.password_hash
    checked = verify_password(user.password_hash if usable else _dummy_hash(), password)
    if not (usable and checked):
        record_login_failure(email, ip)
        reason = ("unknown email" if user is None else "inactive account" if not user.active
                  else "service account" if user.service_account else "wrong password")
        emit("user.login_failed", "user", user.id if user else f"email:{email}"[:64], {"email": email, "reason": reason},
             outcome="failure", patient_id=_patient_id(user) if user else None)
        return None
    failed, _ = _failures(_since(), LoginFailure.email == email)
    if failed >= current_app.config["HMS_LOGIN_ACCOUNT_MAX_FAILURES"] and not _has_second_factor(user):
        from app.accounts.tokens import request_password_reset

        request_password_reset(email)
        emit("user.login_challenged", "user", user.id, {"failures": failed}, actor=actor_of(user),
             outcome="denied", patient_id=_patient_id(user))
        raise ProofOfControlNeeded()
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def _has_second_factor(user: User) -> bool:
    from app.accounts.second_factor import has_factor

    return has_factor(user)


def sign_in_succeeded(user: User, *, method: str = "password") -> None:
    """The person proved who they are (the password, and the second factor when they have one): their failures
    are forgotten and the sign-in is recorded. Until then a correct password alone clears nothing, so whoever
    knows a password cannot reset the count of wrong codes."""
    clear_login_failures(user.email)
    user.last_login_at = utcnow()
    emit("user.login_succeeded", "user", user.id, {"method": method}, actor=actor_of(user),
         patient_id=_patient_id(user))


def clear_login_failures(email: str) -> None:
    """The account's failed sign-ins forgotten: its owner signed in, or proved control through an emailed link."""
    db.session.execute(sa.delete(LoginFailure).where(LoginFailure.email == normalize_email(email)))


def record_sign_out(user: User) -> None:
    emit("user.logged_out", "user", user.id, {}, actor=actor_of(user), patient_id=_patient_id(user))


def change_email(user: User, new_email: str, current_password: str) -> None:
    if not verify_password(user.password_hash, current_password):
        raise AccountError("The current password is not correct.", field="current_password")
    if email_taken(new_email, excluding=user):
        raise AccountError("An account with this email already exists.", field="email")
    user.email = normalize_email(new_email)
    db.session.flush()


def record_profile_change(user: User, sections: str | list[str], fields: list[str]) -> None:
    """Announce a change to a patient's profile (audit, and a security notice to the patient)."""
    sections = [sections] if isinstance(sections, str) else sections
    emit("patient.profile_changed", "patient", user.id, {"sections": sections, "fields": fields},
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
