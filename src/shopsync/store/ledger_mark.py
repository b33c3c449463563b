"""How current a shop's loyalty ledger is: a mark written when it was brought up to date.

The ledger is derived data (orders, refunds, customers, products and loyalty inputs in;
entries out), so it goes stale in two ways: the data changes, or time passes an approval or
expiry. The mark keeps both: the moment it was derived for, the moment it next changes with
no new data (``valid_until``), and a *data version* read just before the derivation read
its inputs. The version changes whenever the store takes in anything the derivation reads:
a row added or removed (counts), a newer record (the largest ``updated_at``), a sync page
or a webhook delivery committed (their store-side times), a loyalty input recorded. It errs
on the side of "changed": a sync that brought nothing new still makes the ledger re-derive.

The mark lives in ``sync_cursors`` under the resource ``loyalty_ledger`` (no schema change).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from shopsync.store.schema import (
    customers,
    line_items,
    loyalty_inputs,
    orders,
    products,
    refunds,
    sync_cursors,
    webhook_deliveries,
)

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = ["RESOURCE", "data_version", "inputs_version"]

RESOURCE = "loyalty_ledger"


def inputs_version(store: Store, shop_id: int) -> list[Any]:
    """Count and newest id of the shop's loyalty inputs (redemptions, adjustments...)."""
    query = select(func.count(), func.max(loyalty_inputs.c.id)).where(
        loyalty_inputs.c.shop_id == shop_id
    )
    with store.engine.connect() as conn:
        return [None if v is None else int(v) for v in conn.execute(query).one()]


def data_version(store: Store, shop_id: int) -> list[Any]:
    """Aggregates of the synced records the loyalty derivation reads, for one shop."""
    queries = [
        select(func.count(), func.max(orders.c.updated_at)).where(orders.c.shop_id == shop_id),
        select(func.count(), func.max(customers.c.updated_at)).where(
            customers.c.shop_id == shop_id
        ),
        select(func.count(), func.max(products.c.updated_at)).where(products.c.shop_id == shop_id),
        select(func.count()).where(refunds.c.shop_id == shop_id),
        select(func.count()).where(line_items.c.shop_id == shop_id),
        select(func.count(), func.max(sync_cursors.c.updated_at)).where(
            sync_cursors.c.shop_id == shop_id, sync_cursors.c.resource != RESOURCE
        ),
        select(func.count(), func.max(webhook_deliveries.c.received_at)).where(
            webhook_deliveries.c.shop_id == shop_id
        ),
    ]
    with store.engine.connect() as conn:
        return [[None if v is None else int(v) for v in conn.execute(q).one()] for q in queries]
