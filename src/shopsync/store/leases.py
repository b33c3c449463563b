"""Leases on the store's database: one holder at a time for a named piece of work.

A shop's sync and a store's apply each hold one (``sync/<platform>/<shop>``, ``apply``), so
two processes never run them at once, and a holder that dies lets its lease lapse after its
ttl, measured on the database's clock. :meth:`Store.lease` is the usual way in; the sync
takes and renews its lease page by page with these functions. The implementation shares the
engine module's clock and transaction helpers; this module is the surface callers use.
"""

from __future__ import annotations

from shopsync.store._engine import (
    Lease,
    LeaseHeld,
    LeaseLost,
    acquire,
    default_holder,
    release,
    renew,
)

__all__ = ["Lease", "LeaseHeld", "LeaseLost", "acquire", "default_holder", "release", "renew"]
