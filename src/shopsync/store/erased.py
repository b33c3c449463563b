"""The customers an erasure (GDPR ``customers/redact``) tombstoned: their orders stay in the
store for the shop's figures, with their customer id, but no program may plan for them
(:attr:`shopsync.core._data.Frames.erased`). A customer deleted on the platform has a
``deleted`` tombstone instead, and is planned from the orders that remain."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl
from sqlalchemy import select

from shopsync.store.schema import tombstones

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = ["erased_frame"]


def erased_frame(store: Store, shop_id: int, customer_id: str | None = None) -> pl.DataFrame:
    """``customer_id`` of every erased customer of the shop (or of that one, if erased)."""
    t = tombstones
    query = select(t.c.id).where(
        t.c.shop_id == shop_id, t.c.resource == "customers", t.c.reason == "redacted"
    )
    if customer_id is not None:
        query = query.where(t.c.id == customer_id)
    with store.engine.connect() as conn:
        ids = list(conn.execute(query).scalars())
    return pl.DataFrame({"customer_id": ids}, schema={"customer_id": pl.String})
