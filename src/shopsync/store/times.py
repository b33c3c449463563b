"""How the store keeps instants: integer microseconds since the Unix epoch, UTC.

Integers compare, sort and subtract exactly in every engine (SQLite has no timestamp type,
and a float would lose the microseconds); callers outside the store convert with these
functions rather than reaching into the row mappers.
"""

from __future__ import annotations

import datetime as dt

__all__ = ["EPOCH", "from_micros", "opt_micros", "to_micros"]

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def to_micros(value: dt.datetime) -> int:
    """Microseconds since the epoch, exact (no float)."""
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def opt_micros(value: dt.datetime | None) -> int | None:
    return None if value is None else to_micros(value)


def from_micros(value: int | None) -> dt.datetime | None:
    return None if value is None else EPOCH + dt.timedelta(microseconds=value)
