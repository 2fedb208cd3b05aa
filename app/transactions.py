"""Committing a unit of work, retrying it when InnoDB picks it as a deadlock victim."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import OperationalError

from app.extensions import db

T = TypeVar("T")
logger = logging.getLogger("hms.db")
RETRYABLE = {1213, 1205}  # deadlock, lock wait timeout


def _retryable_code(error: BaseException) -> int | None:
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


def commit_with_retry(work: Callable[[], T], attempts: int = 3) -> T:
    """Run `work` and commit; on a deadlock roll back and run it again, at most `attempts` times."""
    for attempt in range(1, attempts + 1):
        try:
            result = work()
            db.session.commit()
            return result
        except OperationalError as error:
            db.session.rollback()
            code = _retryable_code(error)
            if code is None or attempt == attempts:
                raise
            logger.warning("retrying after MySQL error %s (attempt %d)", code, attempt)
    raise AssertionError("unreachable")
