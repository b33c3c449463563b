"""Checkouts read at delivery time (issue 22): whether a reminder is still wanted, and the
link that takes the checkout up again (it carries the checkout's token, so it lives in the
store only). The writes and the program's frame are :mod:`shopsync.store.checkout_rows`'."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import and_, not_, or_, select

from shopsync.store.checkout_rows import PAID_STATUSES
from shopsync.store.schema import checkouts, orders

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = ["recovered", "recovery_url"]


def recovery_url(store: Store, platform: str, shop: str, checkout_id: str) -> str | None:
    """The link that takes the checkout up again, read when the email is built (it carries
    the checkout's token, so it lives in the store only, never in a plan or the outbox)."""
    shop_id = store.shop_id(platform, shop, create=False)
    with store.engine.connect() as conn:
        found = conn.execute(
            select(checkouts.c.recovery_url).where(
                checkouts.c.shop_id == shop_id, checkouts.c.id == checkout_id
            )
        ).scalar()
    return str(found) if found else None


def recovered(
    store: Store, platform: str, shop: str, customer_id: str, checkout_id: str
) -> str | None:
    """Why reminding of this checkout is no longer wanted now (None: it still is), checked
    just before delivery: the checkout was erased or completed, the customer placed an order
    since it started (its own unpaid WooCommerce order aside), or started a newer one."""
    shop_id = store.shop_id(platform, shop, create=False)
    t, o = checkouts, orders
    with store.engine.connect() as conn:
        row = conn.execute(
            select(t.c.created_at, t.c.completed_at).where(
                t.c.shop_id == shop_id, t.c.id == checkout_id
            )
        ).first()
        if row is None:
            return f"checkout {checkout_id} is no longer in the store"
        if row.completed_at is not None:
            return f"checkout {checkout_id} was completed"
        paid = or_(o.c.paid_at.is_not(None), o.c.financial_status.in_(PAID_STATUSES))
        bought = conn.execute(
            select(o.c.id)
            .where(
                o.c.shop_id == shop_id,
                o.c.customer_id == customer_id,
                o.c.created_at >= row.created_at,
                not_(o.c.test),
                or_(o.c.id != checkout_id, and_(o.c.id == checkout_id, paid)),
            )
            .order_by(o.c.created_at, o.c.id)
            .limit(1)
        ).scalar()
        if bought is not None:
            return f"the customer placed order {bought} since checkout {checkout_id} started"
        newer = conn.execute(
            select(t.c.id)
            .where(
                t.c.shop_id == shop_id,
                t.c.customer_id == customer_id,
                or_(
                    t.c.created_at > row.created_at,
                    and_(t.c.created_at == row.created_at, t.c.id > checkout_id),
                ),
            )
            .limit(1)
        ).scalar()
        if newer is not None:
            return f"the customer started a newer checkout ({newer})"
    return None
