"""Run the clock-sensitive tests (marker `clock`) with the clock pinned at each instant that can change an outcome.

    make test-clock                                  # every instant below, in the clinic's zone (HMS_TIMEZONE)
    make test-clock INSTANTS="2027-01-04T00:10 2027-06-30T23:59+14:00"

The default instants lie ahead of the real clock (the browser keeps its own clock for cookies): 03:00 on a
Monday, 09:00 on a Wednesday, 13:30 on a Friday and 23:45 on a Sunday (the week's ends), half an hour before the
zone's next spring-forward and fall-back (when it has them), 31 December 23:50 and 29 February 2028 23:50.
Each instant is a separate pytest run with HMS_TEST_NOW set; the app, the worker and MariaDB's NOW() follow it.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _next_weekday(after: date, weekday: int) -> date:
    return after + timedelta(days=(weekday - after.weekday()) % 7 or 7)


def _transitions(zone: ZoneInfo, start: date, days: int = 800):
    """The next day the offset goes up (spring forward) and the next it goes down (fall back), or None."""
    spring = fall = None
    for n in range(days):
        day = start + timedelta(days=n)
        before = datetime.combine(day, datetime.min.time(), zone).utcoffset()
        after = datetime.combine(day + timedelta(days=1), datetime.min.time(), zone).utcoffset()
        if after > before and spring is None:
            spring = day
        if after < before and fall is None:
            fall = day
    return spring, fall


def _transition_instant(zone: ZoneInfo, day: date) -> datetime:
    """Half an hour before the clocks change on `day` (wall time of that zone)."""
    for minutes in range(0, 24 * 60, 15):
        here = datetime.combine(day, datetime.min.time(), zone) + timedelta(minutes=minutes)
        later = (here.astimezone(ZoneInfo("UTC")) + timedelta(minutes=15)).astimezone(zone)
        if later.utcoffset() != here.utcoffset():
            return (here.astimezone(ZoneInfo("UTC")) - timedelta(minutes=15)).astimezone(zone)
    raise ValueError(f"no transition on {day}")


def default_instants(zone: ZoneInfo, today: date) -> list[tuple[str, datetime]]:
    start = today + timedelta(days=2)
    instants = [
        ("03:00 on a Monday", datetime.combine(_next_weekday(start, 0), datetime.min.time(), zone).replace(hour=3)),
        ("09:00 on a Wednesday", datetime.combine(_next_weekday(start, 2), datetime.min.time(), zone).replace(hour=9)),
        ("13:30 on a Friday",
         datetime.combine(_next_weekday(start, 4), datetime.min.time(), zone).replace(hour=13, minute=30)),
        ("23:45 on a Sunday",
         datetime.combine(_next_weekday(start, 6), datetime.min.time(), zone).replace(hour=23, minute=45)),
    ]
    spring, fall = _transitions(zone, start)
    if spring:
        instants.append(("before the spring-forward", _transition_instant(zone, spring)))
    if fall:
        instants.append(("before the fall-back", _transition_instant(zone, fall)))
    year_end = today.year if (today.month, today.day) < (12, 30) else today.year + 1
    instants.append(("31 December 23:50", datetime(year_end, 12, 31, 23, 50, tzinfo=zone)))
    instants.append(("29 February 2028 23:50", datetime(2028, 2, 29, 23, 50, tzinfo=zone)))
    return instants


def main(argv: list[str]) -> int:
    zone = ZoneInfo(os.environ.get("HMS_TIMEZONE", "America/New_York"))
    given = os.environ.get("INSTANTS", "").split()
    instants = ([(value, datetime.fromisoformat(value)) for value in given] if given
                else default_instants(zone, datetime.now(zone).date()))
    if not given and not _transitions(zone, datetime.now(zone).date())[0]:
        print(f"[test-clock] {zone.key} has no daylight saving time: no spring-forward or fall-back instant")
    failed = []
    for label, instant in instants:
        value = instant.isoformat()
        print(f"\n[test-clock] {label}: HMS_TEST_NOW={value} ({zone.key})", flush=True)
        env = {**os.environ, "HMS_TEST_NOW": value, "HMS_TEST_NOW_ANCHOR": repr(time.time())}
        code = subprocess.call([sys.executable, "-m", "pytest", "-m", "clock", *argv], cwd=ROOT, env=env)
        if code != 0:
            failed.append(f"{label} ({value})")
    print(f"\n[test-clock] {len(instants) - len(failed)} of {len(instants)} instants passed")
    for line in failed:
        print(f"[test-clock] FAILED at {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
