"""`Idempotency-Key` on creating requests: a retry gets the first answer, never a second effect.

The key is claimed, on a connection of its own, before the operation runs, so a concurrent request with the
same key sees the claim at once and is answered 409 (try again later). When the operation succeeds, its answer
is stored in the request's own transaction: the effect and the stored answer commit together. A failed
operation (any error answer) releases the claim, so the client may retry. Afterwards:
- the same key and the same request (method, path, body): the stored answer, with `Idempotent-Replayed: true`;
- the same key with another request: 422 (`idempotency-key-reused`).
Keys belong to a client and user (two clients may use the same key; a public operation's belong to the
address), are 1-255 visible ASCII characters, and are kept for 24 hours. A claim whose request never finished
(a crashed process) is taken over after a minute.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import timedelta

import sqlalchemy as sa
from flask import g, request
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from app.api.models import IdempotencyKey
from app.api.problems import Problem
from app.extensions import db
from app.timeutil import utcnow

HEADER = "Idempotency-Key"
KEEP = timedelta(hours=24)
ABANDONED = timedelta(minutes=1)
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_TABLE = IdempotencyKey.__table__
_REPLAYED_HEADERS = ("Location", "ETag", "Content-Type")
_FORGET = sa.text("DELETE FROM api_idempotency_keys WHERE created_at < :cutoff LIMIT 100")


def run(operation, produce: Callable[[], Response]) -> Response:
    key = request.headers.get(HEADER)
    if key is None:
        if operation.idempotency_required:
            raise Problem(400, f"This operation needs an {HEADER} header (a unique value per intended "
                               "operation, e.g. a UUID), so that a retry cannot repeat it.",
                          slug="idempotency-key-required", title="Idempotency key required")
        return produce()
    if not _KEY.match(key):
        raise Problem(400, f"{HEADER} must be 1 to 255 visible ASCII characters.", slug="bad-idempotency-key",
                      title="Invalid idempotency key")
    principal = _principal()
    fingerprint = hashlib.sha256(b"\n".join([request.method.encode(), request.path.encode(),
                                             request.get_data(cache=True)])).hexdigest()
    claim_id = _claim(principal, key, fingerprint)
    if isinstance(claim_id, Response):
        return claim_id
    try:
        response = produce()
    except BaseException:
        _release(claim_id)
        raise
    if response.status_code >= 400:
        _release(claim_id)
        return response
    db.session.execute(sa.update(_TABLE).where(_TABLE.c.id == claim_id).values(
        completed_at=utcnow(), status_code=response.status_code, body=response.get_data(as_text=True),
        headers={name: response.headers[name] for name in _REPLAYED_HEADERS if name in response.headers}))
    return response


def _principal() -> str:
    """Whose key it is: the client and user of the token, or for a public operation (sign-up) the address."""
    if g.get("api_client_id") is None:
        return f"public:{request.remote_addr or 'unknown'}"[:100]
    return f"{g.api_client_id}:{g.api_user_id}"[:100]


def _claim(principal: str, key: str, fingerprint: str) -> int | Response:
    """Claim the key (its row's id), or the answer it already stands for."""
    now = utcnow()
    for _ in range(2):
        try:
            with db.engine.begin() as conn:
                conn.execute(_FORGET, {"cutoff": (now - KEEP).replace(tzinfo=None)})
                result = conn.execute(sa.insert(_TABLE).values(principal=principal, idem_key=key,
                                                               fingerprint=fingerprint, created_at=now))
                return result.inserted_primary_key[0]
        except IntegrityError:
            pass
        with db.engine.begin() as conn:
            row = conn.execute(sa.select(_TABLE).where(_TABLE.c.principal == principal,
                                                       _TABLE.c.idem_key == key)).first()
            if row is None:
                continue  # released meanwhile: claim it
            if row.fingerprint != fingerprint:
                raise Problem(422, f"This {HEADER} was used for another request. Use a new key for a new "
                                   "operation.", slug="idempotency-key-reused", title="Idempotency key reused")
            if row.completed_at is not None:
                return _replay(row)
            if row.created_at > now - ABANDONED:
                raise _in_use()
            conn.execute(sa.delete(_TABLE).where(_TABLE.c.id == row.id))  # abandoned by a crashed process
    raise _in_use()


def _in_use() -> Problem:
    return Problem(409, f"A request with this {HEADER} is still being processed. Retry in a moment.",
                   slug="idempotency-key-in-use", title="Request in progress", headers={"Retry-After": "1"})


def _release(claim_id: int) -> None:
    with db.engine.begin() as conn:
        conn.execute(sa.delete(_TABLE).where(_TABLE.c.id == claim_id, _TABLE.c.completed_at.is_(None)))


def _replay(row) -> Response:
    response = Response(row.body or None, status=row.status_code)
    for name, value in (row.headers or {}).items():
        response.headers[name] = value
    response.headers["Idempotent-Replayed"] = "true"
    return response
