"""Time: stored in UTC, shown in the clinic's zone (HMS_TIMEZONE); and the test suite's pinned clock."""
from __future__ import annotations

import os
import time
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


# --- the pinned clock (tests only) ------------------------------------------------------------------------------
# HMS_TEST_NOW=2027-03-14T03:00 (the clinic's zone unless an offset is given) makes every process of a test run,
# the tests, the live server, the worker and the CLI children, read a clock that showed that instant at the real
# Unix time HMS_TEST_NOW_ANCHOR and ticks on from there; MariaDB's NOW() is set to the same clock on each checkout.
_traveller = None


def pinned_instant(value: str, zone: str) -> datetime:
    instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return instant if instant.tzinfo else instant.replace(tzinfo=ZoneInfo(zone))


def pin_clock_from_environment() -> datetime | None:
    """Start the pinned clock if HMS_TEST_NOW asks for one (once per process); the instant it showed, else None."""
    global _traveller
    value = os.environ.get("HMS_TEST_NOW")
    if not value:
        return None
    if _traveller is None and os.environ.get("HMS_ENV") != "test":
        raise RuntimeError("HMS_TEST_NOW pins the clock for the test suite only (HMS_ENV=test)")
    instant = pinned_instant(value, os.environ.get("HMS_TIMEZONE", "America/New_York"))
    if _traveller is None:
        import sqlalchemy as sa
        import time_machine

        anchor = float(os.environ.setdefault("HMS_TEST_NOW_ANCHOR", repr(time.time())))
        _traveller = time_machine.travel(instant.timestamp() + (time.time() - anchor), tick=True)
        _traveller.start()
        sa.event.listen(sa.pool.Pool, "checkout", _database_clock)
    return instant


def _database_clock(dbapi_connection, connection_record, connection_proxy) -> None:
    with dbapi_connection.cursor() as cursor:
        cursor.execute(f"SET timestamp = {time.time():.6f}")
