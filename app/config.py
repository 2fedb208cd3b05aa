"""Settings, all from the environment, with defaults that work on a developer's machine."""
from __future__ import annotations

import os
import secrets
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

DEV_DATABASE_URL = "mysql+pymysql://hms:hms@127.0.0.1:3306/hms?charset=utf8mb4"
DEFAULT_TIMEZONE = "America/New_York"


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


class ConfigError(RuntimeError):
    """Raised when the environment cannot make a safe configuration."""


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def _positive(name: str, default: int) -> int:
    text = os.environ.get(name, str(default))
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"{name} must be a whole number of at least 1, not {text!r}")
    return int(text)


def _events_config(env: str) -> dict:
    audit_key = os.environ.get("AUDIT_HMAC_KEY")
    if not audit_key:
        if env == "production":
            raise ConfigError("AUDIT_HMAC_KEY must be set when HMS_ENV=production")
        audit_key = "dev-only-audit-key"
    return {
        # Kafka. The defaults are the low-latency values for the local broker (see docs/architecture.md).
        "KAFKA_BOOTSTRAP_SERVERS": os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        "KAFKA_CLIENT_ID": os.environ.get("KAFKA_CLIENT_ID", "hms"),
        "KAFKA_SECURITY_PROTOCOL": os.environ.get("KAFKA_SECURITY_PROTOCOL"),
        "KAFKA_SASL_MECHANISM": os.environ.get("KAFKA_SASL_MECHANISM"),
        "KAFKA_SASL_USERNAME": os.environ.get("KAFKA_SASL_USERNAME"),
        "KAFKA_SASL_PASSWORD": os.environ.get("KAFKA_SASL_PASSWORD"),
        "KAFKA_SESSION_TIMEOUT_MS": _int("KAFKA_SESSION_TIMEOUT_MS", 6000),
        "KAFKA_FETCH_WAIT_MAX_MS": _int("KAFKA_FETCH_WAIT_MAX_MS", 10),
        "KAFKA_METADATA_REFRESH_MS": _int("KAFKA_METADATA_REFRESH_MS", 1000),
        "KAFKA_LINGER_MS": _int("KAFKA_LINGER_MS", 0),
        "KAFKA_MESSAGE_TIMEOUT_MS": _int("KAFKA_MESSAGE_TIMEOUT_MS", 5000),
        "HMS_CONSUMER_GROUP_PREFIX": os.environ.get("HMS_CONSUMER_GROUP_PREFIX", "hms"),
        "KAFKA_AUTO_OFFSET_RESET": os.environ.get("KAFKA_AUTO_OFFSET_RESET", "earliest"),
        "HMS_EVENTS_TOPIC": os.environ.get("HMS_EVENTS_TOPIC", "hms.events"),
        "HMS_DLQ_TOPIC": os.environ.get("HMS_DLQ_TOPIC", "hms.events.dlq"),
        "HMS_EVENTS_PARTITIONS": _int("HMS_EVENTS_PARTITIONS", 6),
        "KAFKA_REPLICATION_FACTOR": _int("KAFKA_REPLICATION_FACTOR", 1),
        "HMS_RELAY_IN_PROCESS": _bool("HMS_RELAY_IN_PROCESS", True),
        "HMS_RELAY_POLL_SECONDS": float(os.environ.get("HMS_RELAY_POLL_SECONDS", "1.0")),
        "HMS_RELAY_BATCH": _int("HMS_RELAY_BATCH", 500),
        # Worker
        "HMS_WORKER_MAX_ATTEMPTS": _int("HMS_WORKER_MAX_ATTEMPTS", 5),
        "HMS_WORKER_BATCH_SIZE": _int("HMS_WORKER_BATCH_SIZE", 200),
        "HMS_WORKER_BACKOFF_SECONDS": float(os.environ.get("HMS_WORKER_BACKOFF_SECONDS", "0.5")),
        "HMS_NOTIFY_MAX_ATTEMPTS": _int("HMS_NOTIFY_MAX_ATTEMPTS", 8),
        "HMS_NOTIFY_BACKOFF_SECONDS": float(os.environ.get("HMS_NOTIFY_BACKOFF_SECONDS", "2.0")),
        "HMS_NOTIFY_SENDING_TIMEOUT": float(os.environ.get("HMS_NOTIFY_SENDING_TIMEOUT", "60")),
        "HMS_HEARTBEAT_SECONDS": float(os.environ.get("HMS_HEARTBEAT_SECONDS", "5")),
        # Email (Flask-Mail); locally the mailbox started by `make run` listens on 1025.
        "MAIL_SERVER": os.environ.get("MAIL_SERVER", "127.0.0.1"),
        "MAIL_PORT": _int("MAIL_PORT", 1025),
        "MAIL_USE_TLS": _bool("MAIL_USE_TLS", False),
        "MAIL_USE_SSL": _bool("MAIL_USE_SSL", False),
        "MAIL_USERNAME": os.environ.get("MAIL_USERNAME"),
        "MAIL_PASSWORD": os.environ.get("MAIL_PASSWORD"),
        "MAIL_DEFAULT_SENDER": os.environ.get("MAIL_DEFAULT_SENDER", "HMS Clinic <no-reply@hms.example.com>"),
        "MAIL_TIMEOUT_SECONDS": float(os.environ.get("MAIL_TIMEOUT_SECONDS", "10")),
        "HMS_MAILBOX_DIR": os.environ.get("HMS_MAILBOX_DIR", "var/mailbox"),
        # SMS gateway (Twilio-compatible). Empty URL: SMS are logged as "not sent: no gateway".
        "SMS_GATEWAY_URL": os.environ.get("SMS_GATEWAY_URL", ""),
        "SMS_ACCOUNT_SID": os.environ.get("SMS_ACCOUNT_SID", ""),
        "SMS_AUTH_TOKEN": os.environ.get("SMS_AUTH_TOKEN", ""),
        "SMS_FROM_NUMBER": os.environ.get("SMS_FROM_NUMBER", ""),
        "SMS_TIMEOUT_SECONDS": float(os.environ.get("SMS_TIMEOUT_SECONDS", "10")),
        # Audit trail
        "AUDIT_HMAC_KEY": audit_key,
        "HMS_PUBLIC_URL": os.environ.get("HMS_PUBLIC_URL", "http://127.0.0.1:5000"),
    }


def _oauth_config(env: str) -> dict:
    keys = os.environ.get("HMS_JWT_PRIVATE_KEYS", "").strip()
    if not keys and env == "production":
        raise ConfigError("HMS_JWT_PRIVATE_KEYS must be set when HMS_ENV=production")
    return {
        # Access token signing keys (app/oauth/keys.py): PEM text or PEM file paths; empty: the development key.
        "HMS_JWT_PRIVATE_KEYS": keys or None,
        "HMS_ACCESS_TOKEN_SECONDS": min(_int("HMS_ACCESS_TOKEN_SECONDS", 600), 600),  # RFC 9068 tokens: ≤ 10 min
        # API rate limits (app/api/ratelimit.py), "<requests>/<seconds>": per client, per address, and sign-up
        # per address (no token).
        "HMS_API_RATE_LIMIT_CLIENT": _rate("HMS_API_RATE_LIMIT_CLIENT", "600/60"),
        "HMS_API_RATE_LIMIT_ADDRESS": _rate("HMS_API_RATE_LIMIT_ADDRESS", "1200/60"),
        "HMS_API_RATE_LIMIT_SIGNUP": _rate("HMS_API_RATE_LIMIT_SIGNUP", "10/3600"),
        # the sign-up and "forgot password" forms (each sends an email), per address and form
        "HMS_EMAIL_FORM_RATE_LIMIT": _rate("HMS_EMAIL_FORM_RATE_LIMIT", "10/3600"),
        "HMS_EMAIL_FORM_RATE_LIMIT_EMAIL": _rate("HMS_EMAIL_FORM_RATE_LIMIT_EMAIL", "3/3600"),  # sign-ups per email
        # The token, revocation and introspection endpoints, per address.
        "HMS_OAUTH_RATE_LIMIT": _rate("HMS_OAUTH_RATE_LIMIT", "120/60"),
        # A refresh token's life from its issue; every use issues a new one (rotation).
        "HMS_REFRESH_TOKEN_DAYS": _int("HMS_REFRESH_TOKEN_DAYS", 30),
    }


def _roles(name: str, default: str) -> tuple:
    from app.accounts.models import Role

    names = [part.strip().lower() for part in os.environ.get(name, default).split(",") if part.strip()]
    unknown = sorted(set(names) - {role.value for role in Role})
    if unknown:
        raise ConfigError(f"{name} names roles that do not exist: {', '.join(unknown)} (use patient, doctor, clerk,"
                          f" admin)")
    return tuple(Role(n) for n in names)


def _rate(name: str, default: str) -> tuple[int, int]:
    text = os.environ.get(name, default)
    count, _, seconds = text.partition("/")
    if not count.isdigit() or not seconds.isdigit() or int(count) < 1 or int(seconds) < 1:
        raise ConfigError(f"{name} must look like 600/60 (requests per seconds), not {text!r}")
    return int(count), int(seconds)


def _web_security_config(env: str) -> dict:
    """Cookies, HSTS and the Origin check (app/web/security.py): strict in production, plain HTTP elsewhere."""
    production = env == "production"
    secure = _bool("SESSION_COOKIE_SECURE", production)
    if production and not secure:
        raise ConfigError("SESSION_COOKIE_SECURE cannot be off when HMS_ENV=production: the session cookie is "
                          "__Host-hms_session, which browsers keep only over HTTPS with Secure")
    return {
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": secure,
        # `__Host-`: the browser keeps it only if Secure, Path=/ and without Domain, so no subdomain can set or
        # overwrite it.
        "SESSION_COOKIE_NAME": "__Host-hms_session" if production else "hms_session",
        "SESSION_COOKIE_PATH": "/",
        "SESSION_COOKIE_DOMAIN": None,
        "REMEMBER_COOKIE_SECURE": secure,  # Flask-Login's (the site offers no "remember me"; kept Secure anyway)
        "REMEMBER_COOKIE_HTTPONLY": True,
        # Strict-Transport-Security max-age (0: no header); a year in production, with includeSubDomains.
        "HMS_HSTS_SECONDS": _int("HMS_HSTS_SECONDS", 31_536_000 if production else 0),
        # Refuse a cookie-authenticated POST/PUT/PATCH/DELETE whose Origin (or Referer) is another site.
        "HMS_CHECK_ORIGIN": _bool("HMS_CHECK_ORIGIN", production),
    }


def load_config(overrides: dict | None = None) -> dict:
    env = os.environ.get("HMS_ENV", "development")
    secret = os.environ.get("SECRET_KEY")
    if not secret:
        if env == "production":
            raise ConfigError("SECRET_KEY must be set when HMS_ENV=production")
        secret = "dev-only-" + secrets.token_hex(16) if env == "test" else "dev-only-insecure-key"
    config = {
        "HMS_ENV": env,
        "SECRET_KEY": secret,
        "SQLALCHEMY_DATABASE_URI": os.environ.get("DATABASE_URL", DEV_DATABASE_URL),
        # READ COMMITTED: locking reads take record locks only, no gap locks, so concurrent bookings of
        # different doctors cannot deadlock on each other's index gaps (correctness comes from row locks
        # and unique keys, see app/appointments/services.py).
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "pool_recycle": 3600,
                                      "isolation_level": "READ COMMITTED"},
        "HMS_TIMEZONE": os.environ.get("HMS_TIMEZONE", DEFAULT_TIMEZONE),
        "HMS_PHONE_REGION": os.environ.get("HMS_PHONE_REGION", "US"),
        "HMS_CLINIC_NAME": os.environ.get("HMS_CLINIC_NAME", "HMS Clinic"),
        "HMS_CURRENCY": os.environ.get("HMS_CURRENCY", "USD"),
        "HMS_TAX_RATE": os.environ.get("HMS_TAX_RATE", "0"),  # percent, applied to new invoices
        "HMS_INVOICE_DUE_DAYS": int(os.environ.get("HMS_INVOICE_DUE_DAYS", "30")),
        "HMS_PASSWORD_LINK_HOURS": int(os.environ.get("HMS_PASSWORD_LINK_HOURS", "48")),
        "HMS_SLOT_PREVIEW_DAYS": int(os.environ.get("HMS_SLOT_PREVIEW_DAYS", "14")),
        "HMS_DASHBOARD_REFRESH_SECONDS": int(os.environ.get("HMS_DASHBOARD_REFRESH_SECONDS", "30")),
        "HMS_BOOKING_HORIZON_DAYS": int(os.environ.get("HMS_BOOKING_HORIZON_DAYS", "90")),
        "HMS_CANCEL_CUTOFF_HOURS": int(os.environ.get("HMS_CANCEL_CUTOFF_HOURS", "24")),
        "HMS_REMINDER_OFFSETS_MINUTES": [int(m) for m in os.environ.get("HMS_REMINDER_OFFSETS_MINUTES", "1440,120").split(",")],
        "HMS_CARE_RELATIONSHIP_MONTHS": int(os.environ.get("HMS_CARE_RELATIONSHIP_MONTHS", "12")),
        "HMS_NO_SHOW_AFTER_MINUTES": int(os.environ.get("HMS_NO_SHOW_AFTER_MINUTES", "30")),
        "HMS_SCHEDULER_INTERVAL_SECONDS": float(os.environ.get("HMS_SCHEDULER_INTERVAL_SECONDS", "30")),
        # sign-in throttling (app.accounts.services.authenticate): slow guessing down, never lock the owner out
        "HMS_LOGIN_WINDOW_MINUTES": int(os.environ.get("HMS_LOGIN_WINDOW_MINUTES", "15")),
        "HMS_LOGIN_FREE_FAILURES": int(os.environ.get("HMS_LOGIN_FREE_FAILURES", "5")),
        "HMS_LOGIN_MAX_DELAY_SECONDS": int(os.environ.get("HMS_LOGIN_MAX_DELAY_SECONDS", "900")),
        "HMS_LOGIN_ADDRESS_MAX_FAILURES": int(os.environ.get("HMS_LOGIN_ADDRESS_MAX_FAILURES", "50")),
        "HMS_LOGIN_ACCOUNT_MAX_FAILURES": int(os.environ.get("HMS_LOGIN_ACCOUNT_MAX_FAILURES", "20")),
        # Roles that must sign in with a second factor (app/accounts/second_factor.py); others may opt in.
        "HMS_2FA_REQUIRED_ROLES": _roles("HMS_2FA_REQUIRED_ROLES", "doctor,clerk,admin"),
        # Sessions (app/accounts/sessions.py): signed out after this long without a request, and in any case
        # this long after signing in (the cookie lives as long).
        "HMS_IDLE_MINUTES_STAFF": _positive("HMS_IDLE_MINUTES_STAFF", 15),
        "HMS_IDLE_MINUTES_PATIENT": _positive("HMS_IDLE_MINUTES_PATIENT", 30),
        "HMS_SESSION_MAX_HOURS": _positive("HMS_SESSION_MAX_HOURS", 12),
        "PERMANENT_SESSION_LIFETIME": _positive("HMS_SESSION_MAX_HOURS", 12) * 3600,
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        "MAX_CONTENT_LENGTH": 2 * 1024 * 1024,
        # The admin's audit exports (CSV, JSON): a filter matching more rows is refused with the count.
        "HMS_AUDIT_EXPORT_MAX_ROWS": _int("HMS_AUDIT_EXPORT_MAX_ROWS", 100_000),
    }
    config.update(_web_security_config(env))
    config.update(_events_config(env))
    config.update(_oauth_config(env))
    if overrides:
        config.update(overrides)
    ZoneInfo(config["HMS_TIMEZONE"])  # fail at start, not on the first page, if the zone is wrong
    _check_tax_rate(str(config["HMS_TAX_RATE"]))
    return config


def _check_tax_rate(value: str) -> None:
    try:
        rate = Decimal(value)
    except InvalidOperation:
        rate = None
    if rate is None or not rate.is_finite() or not 0 <= rate < 100 or rate != rate.quantize(Decimal("0.01")):
        raise ConfigError(f"HMS_TAX_RATE must be a percentage between 0 and 100 with at most two decimals,"
                          f" such as 8.25 (got {value!r})")
