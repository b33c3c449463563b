"""Instants as integer microseconds since the Unix epoch, UTC: the one set of time helpers.

Integers compare, sort and subtract exactly in every engine and in Polars (SQLite has no
timestamp type, and a float would lose the microseconds). The store keeps instants this way
(:mod:`shopsync.store.times` re-exports these) and the pure core computes with them, so both
sides share one conversion instead of each keeping its own.
"""

from __future__ import annotations

import datetime as dt

__all__ = ["EPOCH", "from_micros", "instant", "opt_micros", "to_micros"]

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def to_micros(value: dt.datetime) -> int:
    """Microseconds since the epoch, exact (no float); ``value`` must be aware."""
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def opt_micros(value: dt.datetime | None) -> int | None:
    return None if value is None else to_micros(value)


def instant(value: int) -> dt.datetime:
    """The aware UTC instant of ``value`` microseconds since the epoch."""
    return EPOCH + dt.timedelta(microseconds=value)


def from_micros(value: int | None) -> dt.datetime | None:
    """:func:`instant`, None staying None (a nullable column)."""
    return None if value is None else instant(value)
