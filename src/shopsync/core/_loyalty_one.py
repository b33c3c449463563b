"""The loyalty notices of one customer, without reading the whole shop.

:func:`shopsync.loyalty.sync` reads every order of the shop, because referrals tie customers
together. For a customer who takes part in no referral, their own orders, refunds and
loyalty inputs decide everything, so this reads only those and runs the same rules
(:func:`shopsync.core.loyalty.derive`) and the same action builder, in ``dry_run`` spirit:
nothing is written. A customer named in a referral goes through the full sync instead.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import literal_column, select

from shopsync.core._columnar import Column
from shopsync.core._data import I64, TEXT, _frame
from shopsync.core.actions import Action
from shopsync.core.features import LINE_PRODUCT_TYPE
from shopsync.core.loyalty import Adjustment, BirthdayInput, History, Redemption
from shopsync.core.policy import Policy
from shopsync.store.schema import customers, line_items, loyalty_inputs, orders, refunds

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = ["actions_for"]

_ORDERS = [
    Column("id", TEXT),
    Column("customer_id", TEXT),
    Column("created_at", I64),
    Column("paid_at", I64),
    Column("processed_at", I64),
    Column("cancelled_at", I64),
    Column("financial_status", TEXT),
    Column("currency", TEXT),
    Column("subtotal", I64),
    Column("total_shipping", I64),
    Column("total_tax", I64),
    Column("total", I64),
]


def actions_for(
    store: Store,
    policy: Policy,
    as_of: dt.datetime,
    platform: str,
    shop: str,
    customer_id: str,
    lookback: dt.timedelta = dt.timedelta(days=7),
    *,
    currency: str,
) -> list[Action]:
    from shopsync import loyalty as L

    at = L._utc(as_of)
    shop_id = store.shop_id(platform, shop, create=False)
    with store.engine.connect() as conn:
        email = conn.execute(
            select(customers.c.email).where(
                customers.c.shop_id == shop_id, customers.c.id == customer_id
            )
        ).scalar()
        if (
            email is None
            and conn.execute(
                select(customers.c.id).where(
                    customers.c.shop_id == shop_id, customers.c.id == customer_id
                )
            ).first()
            is None
        ):
            return []  # not (or no longer) a customer: sync would not derive anything
        referrals = conn.execute(
            select(loyalty_inputs.c.customer_id, loyalty_inputs.c.data).where(
                loyalty_inputs.c.shop_id == shop_id, loyalty_inputs.c.kind == "referral"
            )
        ).all()
        involved = any(
            r.customer_id == customer_id
            or (r.data or {}).get("friend_id") == customer_id
            or (email is not None and (r.data or {}).get("friend_email") == email)
            for r in referrals
        )
        if involved:
            result = L.sync(
                store,
                platform,
                shop,
                as_of=as_of,
                policy=policy,
                customer_ids=[customer_id],
                dry_run=True,
                lookback=lookback,
            )
            return list(result.actions)
        own = [c.sql for c in _ORDERS]
        order_rows = conn.execute(
            select(*[orders.c[name] for name in own]).where(
                orders.c.shop_id == shop_id,
                orders.c.customer_id == customer_id,
                ~orders.c.test,  # the one purchase rule: features.REAL_ORDERS_SQL
            )
        ).all()
        ids = [r.id for r in order_rows]
        refund_rows = (
            conn.execute(
                select(
                    refunds.c.order_id, refunds.c.id, refunds.c.created_at, refunds.c.amount
                ).where(refunds.c.shop_id == shop_id, refunds.c.order_id.in_(ids))
            ).all()
            if ids
            else []
        )
        frames: dict[str, Any] = {
            "orders": _frame(list(order_rows), _ORDERS),
            "refunds": _frame(
                list(refund_rows),
                [
                    Column("order_id", TEXT),
                    Column("id", TEXT),
                    Column("created_at", I64),
                    Column("amount", I64),
                ],
            ),
        }
        if policy.loyalty.category_bonus.points:
            line_rows = (
                conn.execute(
                    select(
                        line_items.c.order_id,
                        literal_column(LINE_PRODUCT_TYPE).label("product_type"),
                    ).where(line_items.c.shop_id == shop_id, line_items.c.order_id.in_(ids))
                ).all()
                if ids
                else []
            )
            frames["line_items"] = _frame(
                list(line_rows), [Column("order_id", TEXT), Column("product_type", TEXT)]
            )
        inputs = conn.execute(
            select(loyalty_inputs)
            .where(loyalty_inputs.c.shop_id == shop_id, loyalty_inputs.c.customer_id == customer_id)
            .order_by(loyalty_inputs.c.occurred_at, loyalty_inputs.c.key)
        ).all()
    facts = L._facts_by_customer(frames, policy)
    mine: dict[str, list[Any]] = {}
    for r in inputs:
        mine.setdefault(r.kind, []).append(r)
    history = History(
        customer_id,
        tuple(facts.get(customer_id, ())),
        tuple(
            BirthdayInput(r.occurred_at, *L._month_day(r.data["birthday"]))
            for r in mine.get("birthday", ())
        ),
        tuple(Redemption(r.key, r.occurred_at, r.data["points"]) for r in mine.get("redeem", ())),
        tuple(
            Adjustment(r.key, r.occurred_at, r.data["points"], r.data["reason"])
            for r in mine.get("adjust", ())
        ),
        (),
    )
    from shopsync.core import loyalty as rules

    derivation = rules.derive(history, policy.loyalty, at, currency=currency)
    since = at - int(lookback.total_seconds() * 1_000_000)
    return L._actions(platform, shop, derivation, customer_id, policy, at, since)
