"""Running a unit of work again when InnoDB picks it as a deadlock victim. The web's commit point
(`app.web.unit_of_work`) runs every view through `retrying`."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import OperationalError

from app.extensions import db

T = TypeVar("T")
logger = logging.getLogger("hms.db")
RETRYABLE = {1213, 1205}  # deadlock, lock wait timeout
ATTEMPTS = 3


def retryable_code(error: BaseException) -> int | None:
    """The deadlock or lock-timeout code behind `error`. After a deadlock InnoDB has already rolled the
    whole transaction back, so releasing a savepoint then fails with another error ("SAVEPOINT does not
    exist"); the deadlock is found in the exception's context."""
    seen: BaseException | None = error
    while seen is not None:
        orig = getattr(seen, "orig", None)
        if orig is not None and orig.args and orig.args[0] in RETRYABLE:
            return orig.args[0]
        seen = seen.__cause__ or seen.__context__
    return None


def retrying(work: Callable[[], T], *, before_retry: Callable[[], None] | None = None) -> T:
    """Run `work` and flush what it wrote; on a deadlock or lock timeout roll back, call `before_retry` and run it
    again, at most ATTEMPTS times. The caller commits."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            result = work()
            db.session.flush()
            return result
        except OperationalError as error:
            code = retryable_code(error)
            if code is None or attempt == ATTEMPTS:
                raise
            db.session.rollback()
            if before_retry is not None:
                before_retry()
            logger.warning("running the unit of work again after MySQL error %s (attempt %d)", code, attempt)
    raise AssertionError("unreachable")
