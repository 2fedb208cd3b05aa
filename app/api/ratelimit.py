"""Rate limits of the API, per client and per address, counted in MariaDB so every web process shares them.

Fixed windows: a bucket (`client:<id>`, `addr:<ip>`, `signup:<ip>`) may make `q` requests in each window of `w`
seconds (`HMS_API_RATE_LIMIT_*`). Every answer carries the tightest bucket's state in the IETF httpapi headers
(`RateLimit-Policy: "client";q=600;w=60` and `RateLimit: "client";r=599;t=42`); a refused request is a 429
problem with `Retry-After`. The counters are written on a connection of their own, so a rolled-back request
still counts. Why not Flask-Limiter: its shared storages are Redis, Memcached or MongoDB, one more server for a
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


def count(*buckets: tuple[str, str, str]) -> None:
    """Count this request in each bucket (`(name, key, setting)`), in one transaction of their own; 429 when a
    bucket is spent."""
    now = int(utcnow().timestamp())
    counted = []
    with db.engine.begin() as conn:
        for name, key, setting in buckets:
            quota, window = current_app.config[setting]
            start = now - now % window
            bucket = f"{name}:{key}"[:120]
            result = conn.execute(_UPSERT, {"bucket": bucket, "start": start})
            if result.rowcount == 1:  # a new window: the bucket's old ones are no longer needed
                conn.execute(_FORGET, {"bucket": bucket, "start": start})
            counted.append((Usage(name, quota, window, max(quota - result.lastrowid, 0), start + window - now),
                            result.lastrowid > quota))
    for usage, spent in counted:
        current = g.get(_STATE)
        if current is None or usage.remaining < current.remaining:
            setattr(g, _STATE, usage)
    for usage, spent in counted:
        if spent:
            raise Problem(429, f"Too many requests: {usage.quota} in {usage.window} seconds. Retry after "
                               f"{usage.reset} seconds.", headers={"Retry-After": str(usage.reset),
                                                                   **headers_of(usage)})


def headers_of(usage: Usage) -> dict[str, str]:
    return {"RateLimit-Policy": f'"{usage.name}";q={usage.quota};w={usage.window}',
            "RateLimit": f'"{usage.name}";r={usage.remaining};t={usage.reset}'}


def add_headers(response: Response) -> Response:
    usage = g.get(_STATE)
    if usage is not None:
        for name, value in headers_of(usage).items():
            response.headers.setdefault(name, value)
    return response
