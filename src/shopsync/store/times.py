"""How the store keeps instants: integer microseconds since the Unix epoch, UTC.

Integers compare, sort and subtract exactly in every engine (SQLite has no timestamp type,
and a float would lose the microseconds); callers outside the store convert with these
functions rather than reaching into the row mappers. They live in :mod:`shopsync._instants`,
shared with the pure core, which may not import the store.
"""

from __future__ import annotations

from shopsync._instants import EPOCH, from_micros, opt_micros, to_micros

__all__ = ["EPOCH", "from_micros", "opt_micros", "to_micros"]
