"""Spending points: :func:`redeem` turns approved points into a single-use discount code.

The check and the record happen in one transaction under the customer's lock, and the
spendable points are read from the ledger and the recorded redemptions in one statement
(:func:`shopsync.store.redemptions.spendable`): two redemptions at once, or a derivation
committing between two reads on PostgreSQL, never spend the same points twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal

from shopsync.core import loyalty as rules
from shopsync.core.actions import RewardCode
from shopsync.core.loyalty import LoyaltyError, from_micros
from shopsync.core.policy import Policy
from shopsync.loyalty._derivation import update_ledger
from shopsync.loyalty._histories import shop_currency
from shopsync.loyalty._refs import CustomerRef, ref, utc_micros
from shopsync.models import Money
from shopsync.store import Store, ledger, redemptions
from shopsync.store.schema import MONEY_SCALE

__all__ = ["redeem"]


def redeem(
    store: Store,
    customer: CustomerRef,
    points: int,
    *,
    as_of: dt.datetime,
    policy: Policy | None = None,
    key: str | None = None,
) -> RewardCode:
    """Spend approved points on a fixed reward; returns the discount-code action to deliver.

    ``points`` must be one of the policy's reward steps and at most the approved balance as of
    ``as_of`` (the ledger is brought up to date first). The same ``key`` (default: derived
    from the customer, the moment and the points) returns the same code without spending
    twice.
    """
    policy = policy or Policy()
    settings = policy.loyalty.redemption
    platform, shop, customer_id = ref(customer)
    if points not in settings.steps:
        raise LoyaltyError(f"{points} points is not a reward step {list(settings.steps)}")
    at = utc_micros(as_of)
    key = key or rules.source_key("reward", customer_id, at, points)
    update_ledger(store, platform, shop, as_of=as_of, policy=policy, customer_ids=[customer_id])
    shop_id = store.shop_id(platform, shop)
    # Check and record in one transaction, under the customer's lock: two redemptions at
    # once (threads, processes) see each other, and the second counts the first.
    with store.transaction() as conn:
        redemptions.lock_customer(conn, shop_id, customer_id)
        done = ledger.input_data(conn, shop_id, key)
        if done is None:
            latest = redemptions.latest_redemption(conn, shop_id, customer_id)
            if latest is not None and at < latest:
                raise LoyaltyError(
                    f"a redemption dated {as_of.isoformat()} is before the customer's latest "
                    f"one ({from_micros(latest).isoformat()}): it could spend points twice"
                )
            available = redemptions.spendable(
                conn, shop_id, customer_id, at, lambda k: rules.source_key("redeem", k)
            )
            if available < points:
                raise LoyaltyError(
                    f"customer {customer_id} has {max(available, 0)} approved points, not {points}"
                )
            row = {
                "shop_id": shop_id,
                "key": key,
                "kind": "redeem",
                "customer_id": customer_id,
                "occurred_at": at,
                "data": {"points": points},
            }
            ledger.add_inputs(conn, [row])
    if done is None:
        update_ledger(store, platform, shop, as_of=as_of, policy=policy, customer_ids=[customer_id])
    elif done.data["points"] != points:
        raise LoyaltyError(f"reward {key!r} was recorded for {done.data['points']} points")
    currency = shop_currency(store, platform, shop, policy)
    if currency is None:
        raise LoyaltyError(f"shop {shop!r} has no orders to tell its currency; set Policy.currency")
    value = Money(
        amount=(Decimal(points) / settings.points_per_unit).quantize(
            Decimal(1).scaleb(-MONEY_SCALE)
        ),
        currency=currency,
    ).rounded()
    digest = hashlib.sha256(f"{platform}:{shop}:{key}".encode()).hexdigest()[:10].upper()
    return RewardCode(
        platform=platform,
        shop=shop,
        customer_id=customer_id,
        due_at=as_of,
        reason=f"redeemed {points} points for {value}",
        facts={"points": points, "value": str(value.amount), "currency": currency},
        idempotency_key=rules.source_key("loyalty_reward_code", shop, key),
        code=f"{settings.code_prefix}-{digest}",
        value=value,
        points=points,
    )
