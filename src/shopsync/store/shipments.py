"""Recent shipments with their tracking, for the shipping notice.

The order facts' snapshot (:mod:`.facts`) keeps each fulfilment's dates and status but not its
tracking: URLs for every shipment of a 10M-order shop would cost hundreds of megabytes in
every whole-shop read, and only the shipments of the last few days are ever announced. So the
plan finds those in the snapshot and reads their tracking here, by primary key
(``shop_id, order_id``), in chunks of bound parameters.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from shopsync.store.schema import fulfillments

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = ["shipments"]

_CHUNK = 500


def _strings(value: Any) -> list[str]:
    """A JSON list of strings as stored; anything else (a bad row) reads as no value."""
    if not isinstance(value, list):
        return []
    return [str(v) for v in value if isinstance(v, (str, int)) and str(v).strip()]


def shipments(store: Store, shop_id: int, order_ids: Iterable[str]) -> list[tuple[Any, ...]]:
    """Every fulfilment of these orders, with its tracking: rows of (order_id, id,
    created_at, status, delivered_at, tracking_company, tracking_numbers, tracking_urls),
    the columns of ``shopsync.core._data.SHIPMENT_SCHEMA``."""
    ids = sorted(set(order_ids))
    rows: list[tuple[Any, ...]] = []
    c = fulfillments.c
    with store.engine.connect() as conn:
        for start in range(0, len(ids), _CHUNK):
            query = select(
                c.order_id,
                c.id,
                c.created_at,
                c.status,
                c.delivered_at,
                c.tracking_company,
                c.tracking_numbers,
                c.tracking_urls,
            ).where(c.shop_id == shop_id, c.order_id.in_(ids[start : start + _CHUNK]))
            for r in conn.execute(query):
                rows.append(
                    (
                        r.order_id,
                        r.id,
                        r.created_at,
                        r.status,
                        r.delivered_at,
                        r.tracking_company,
                        _strings(r.tracking_numbers),
                        _strings(r.tracking_urls),
                    )
                )
    return rows
