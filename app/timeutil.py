"""Time: stored in UTC, shown in the clinic's zone (HMS_TIMEZONE)."""
from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from flask import current_app


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def clinic_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["HMS_TIMEZONE"])


def clinic_today() -> date:
    return datetime.now(clinic_zone()).date()


def to_clinic_time(value: datetime) -> datetime:
    return value.astimezone(clinic_zone())


def format_datetime(value: datetime | None, fmt: str = "%d %b %Y, %H:%M") -> str:
    """Jinja filter `localtime`: an aware UTC datetime shown in the clinic's zone."""
    if value is None:
        return ""
    local = to_clinic_time(value)
    return f"{local.strftime(fmt)} {local.tzname()}"
