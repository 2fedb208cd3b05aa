"""One unit of work per request: the only place where a request's changes are committed.

Views, and the services they call, add and flush; none of them commits. When the answer is ready:

- a success (status below 400) is committed, and so is an error answer whose view called `keep_despite_error()`
  (a failed sign-in, which must count towards the throttle);
- any other error is rolled back: nothing the request changed is saved. What the request registered with
  `after_rollback()` (the audit of a refusal) is then written and committed on its own.

The view runs inside the retry: when InnoDB picks it as a deadlock victim (or a lock wait times out), the
transaction is rolled back and the view runs again from the start, at most three times, with the flashed
messages reset to what they were before the attempt. The template is rendered before the commit, so what the
view loaded (eagerly) is what the page shows; nothing is reloaded after an expiring commit.
"""
from __future__ import annotations

from collections.abc import Callable

from flask import Flask, g, session
from werkzeug.wrappers import Response

from app.extensions import db
from app.transactions import retrying

_KEEP = "hms_uow_keep"
_AFTER_ROLLBACK = "hms_uow_after_rollback"


def keep_despite_error() -> None:
    """Commit what this request wrote even though its answer is an error (4xx)."""
    setattr(g, _KEEP, True)


def after_rollback(write: Callable[[], object]) -> None:
    """If this request's answer is an error, run `write` after its changes are rolled back, and commit that alone."""
    g.setdefault(_AFTER_ROLLBACK, []).append(write)


def _reset_request_state(flashes: list | None) -> None:
    g.pop(_KEEP, None)
    g.pop(_AFTER_ROLLBACK, None)
    if flashes is None:
        session.pop("_flashes", None)
    else:
        session["_flashes"] = list(flashes)


def run_view(view: Callable[[], object]) -> object:
    """Run the view and flush what it wrote; on a deadlock roll back and run it again from the start."""
    flashes = list(session["_flashes"]) if "_flashes" in session else None
    return retrying(view, before_retry=lambda: _reset_request_state(flashes))


def finish(response: Response) -> None:
    """The request's commit point: see the module's docstring."""
    if response.status_code < 400 or g.pop(_KEEP, False):
        db.session.commit()
        return
    db.session.rollback()
    writes = g.pop(_AFTER_ROLLBACK, [])
    if writes:
        for write in writes:
            write()
        db.session.commit()


class UnitOfWorkFlask(Flask):
    """Flask with one unit of work per request (see the module's docstring)."""

    def dispatch_request(self):
        return run_view(super().dispatch_request)

    def full_dispatch_request(self) -> Response:
        response = super().full_dispatch_request()
        finish(response)
        return response
