"""Column types shared by every model."""
from __future__ import annotations

import enum
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator

# A MySQL TEXT column holds 65,535 bytes; utf8mb4 takes up to 4 bytes a character, so a form field bound for one
# accepts at most this many characters (a String(n) column counts characters: its field takes at most n).
TEXT_MAX_CHARS = 16_000


class UTCDateTime(TypeDecorator):
    """Stores naive UTC in MySQL DATETIME(6) and hands back aware UTC datetimes.

    Refuses naive datetimes on the way in, so local time can never be stored by accident.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name in {"mysql", "mariadb"}:
            from sqlalchemy.dialects.mysql import DATETIME

            return dialect.type_descriptor(DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc)


def enum_column(cls: type[enum.Enum], name: str) -> sa.Enum:
    """A MySQL ENUM of the members' values (what the migrations create), not of their names."""
    return sa.Enum(cls, name=name, values_callable=lambda members: [m.value for m in members])
