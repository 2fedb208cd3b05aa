"""Rate limits counted in MariaDB so every web process shares them: the API's and FHIR's per client and per
address, the authorization server's, and the sign-up and password-link forms' per address and per email.

Fixed windows: a bucket (`client:<id>`, `addr:<ip>`, `signup:<ip>`) may make `q` requests in each window of `w`
seconds (`HMS_API_RATE_LIMIT_*`). Every answer carries the tightest bucket's state in the IETF httpapi headers
(`RateLimit-Policy: "client";q=600;w=60` and `RateLimit: "client";r=599;t=42`); a refused request is a 429
problem with `Retry-After`. The counters are written on a connection of their own, so a rolled-back request
still counts: an autocommit connection of a small pool of its own (`_engine`), so a count is one round trip
per bucket, with no ping, BEGIN, COMMIT or reset around it. Why not Flask-Limiter: its shared storages are Redis, Memcached or MongoDB, one more server for a
clinic to run; MariaDB is already there and an upsert per bucket is cheap (see docs/benchmarks.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app, g
from werkzeug.wrappers import Response

from app.api.problems import Problem
from app.extensions import db
from app.timeutil import utcnow

_STATE = "hms_api_rate_limit"
_ENGINE = "hms_rate_limit_engine"
# One round trip: LAST_INSERT_ID(expr) hands the new count back in the statement's OK packet (`lastrowid`).
_UPSERT = sa.text("INSERT INTO api_rate_limits (bucket, window_start, hits) VALUES (:bucket, :start, LAST_INSERT_ID(1)) "
                  "ON DUPLICATE KEY UPDATE hits = LAST_INSERT_ID(hits + 1)")
_FORGET = sa.text("DELETE FROM api_rate_limits WHERE bucket = :bucket AND window_start < :start")


@dataclass(frozen=True)
class Usage:
    name: str
    quota: int
    window: int
    remaining: int
    reset: int  # seconds until the window ends


def _engine() -> sa.Engine:
    engine = current_app.extensions.get(_ENGINE)
    if engine is None:
        engine = sa.create_engine(db.engine.url, isolation_level="AUTOCOMMIT", pool_pre_ping=False,
                                  pool_reset_on_return=None, pool_recycle=600, pool_size=2, max_overflow=8)
        current_app.extensions[_ENGINE] = engine
    return engine


def count(*buckets: tuple[str, str, str]) -> None:
    """Count this request in each bucket (`(name, key, setting)`); 429 when a bucket is spent."""
    usage = spend(*buckets)
    if usage is not None:
        raise Problem(429, f"Too many requests: {usage.quota} in {usage.window} seconds. Retry after "
                           f"{usage.reset} seconds.", headers={"Retry-After": str(usage.reset), **headers_of(usage)})


def spend(*buckets: tuple[str, str, str]) -> Usage | None:
    """Count this request in each bucket; the first bucket it overspent, if any (for a page, which answers with
    its form and a message rather than a problem)."""
    for attempt in range(2):
        try:
            counted = _count(buckets)
            break
        except sa.exc.DBAPIError as error:  # a connection the server closed (a restart): once more, afresh
            if attempt or not error.connection_invalidated:
                raise
    for usage, spent in counted:
        current = g.get(_STATE)
        if current is None or usage.remaining < current.remaining:
            setattr(g, _STATE, usage)
    return next((usage for usage, spent in counted if spent), None)


def _count(buckets) -> list[tuple[Usage, bool]]:
    now = int(utcnow().timestamp())
    counted = []
    with _engine().connect() as conn:
        for name, key, setting in buckets:
            quota, window = current_app.config[setting]
            start = now - now % window
            bucket = f"{name}:{key}"[:120]
            result = conn.execute(_UPSERT, {"bucket": bucket, "start": start})
            if result.rowcount == 1:  # a new window: the bucket's old ones are no longer needed
                conn.execute(_FORGET, {"bucket": bucket, "start": start})
            counted.append((Usage(name, quota, window, max(quota - result.lastrowid, 0), start + window - now),
                            result.lastrowid > quota))
    return counted


def headers_of(usage: Usage) -> dict[str, str]:
    return {"RateLimit-Policy": f'"{usage.name}";q={usage.quota};w={usage.window}',
            "RateLimit": f'"{usage.name}";r={usage.remaining};t={usage.reset}'}


def add_headers(response: Response) -> Response:
    usage = g.get(_STATE)
    if usage is not None:
        for name, value in headers_of(usage).items():
            response.headers.setdefault(name, value)
    return response
