"""Settings, all from the environment, with defaults that work on a developer's machine."""
from __future__ import annotations

import os
import secrets
from zoneinfo import ZoneInfo

DEV_DATABASE_URL = "mysql+pymysql://hms:hms@127.0.0.1:3306/hms?charset=utf8mb4"


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


class ConfigError(RuntimeError):
    """Raised when the environment cannot make a safe configuration."""


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
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "pool_recycle": 3600},
        "HMS_TIMEZONE": os.environ.get("HMS_TIMEZONE", "America/New_York"),
        "HMS_PHONE_REGION": os.environ.get("HMS_PHONE_REGION", "US"),
        "HMS_CLINIC_NAME": os.environ.get("HMS_CLINIC_NAME", "HMS Clinic"),
        "HMS_LOGIN_MAX_FAILURES": int(os.environ.get("HMS_LOGIN_MAX_FAILURES", "10")),
        "HMS_LOGIN_WINDOW_MINUTES": int(os.environ.get("HMS_LOGIN_WINDOW_MINUTES", "15")),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _bool("SESSION_COOKIE_SECURE", env == "production"),
        "SESSION_COOKIE_NAME": "hms_session",
        "PERMANENT_SESSION_LIFETIME": int(os.environ.get("HMS_SESSION_MINUTES", "480")) * 60,
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        "MAX_CONTENT_LENGTH": 2 * 1024 * 1024,
    }
    if overrides:
        config.update(overrides)
    ZoneInfo(config["HMS_TIMEZONE"])  # fail at start, not on the first page, if the zone is wrong
    return config
