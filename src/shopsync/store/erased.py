"""The customers an erasure (GDPR ``customers/redact``) tombstoned: their orders stay in the
store for the shop's figures, with their customer id, but no program may plan for them
(:attr:`shopsync.core._data.Frames.erased`). A customer deleted on the platform has a
``deleted`` tombstone instead, and is planned from the orders that remain."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl
from sqlalchemy import bindparam, select

from shopsync.store.schema import tombstones

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = ["erased_frame"]

_ERASED = select(tombstones.c.id).where(
    tombstones.c.shop_id == bindparam("sid"),
    tombstones.c.resource == "customers",
    tombstones.c.reason == "redacted",
)
_ERASED_ONE = _ERASED.where(tombstones.c.id == bindparam("cid"))


def erased_frame(store: Store, shop_id: int, customer_id: str | None = None) -> pl.DataFrame:
    """``customer_id`` of every erased customer of the shop (or of that one, if erased)."""
    query, params = _ERASED, dict[str, Any](sid=shop_id)
    if customer_id is not None:  # a webhook's re-plan: the statement built once
        query, params = _ERASED_ONE, {"sid": shop_id, "cid": customer_id}
    with store.engine.connect() as conn:
        ids = list(conn.execute(query, params).scalars())
    return pl.DataFrame({"customer_id": ids}, schema={"customer_id": pl.String})
