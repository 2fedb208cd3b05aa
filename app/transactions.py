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


def commit_with_retry(work: Callable[[], T], attempts: int = 3) -> T:
    """Run `work` and commit; on a deadlock roll back and run it again, at most `attempts` times."""
    for attempt in range(1, attempts + 1):
        try:
            result = work()
            db.session.commit()
            return result
        except OperationalError as error:
            db.session.rollback()
            code = error.orig.args[0] if error.orig is not None and error.orig.args else None
            if code not in RETRYABLE or attempt == attempts:
                raise
            logger.warning("retrying after MySQL error %s (attempt %d)", code, attempt)
    raise AssertionError("unreachable")
