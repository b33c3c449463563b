"""The loyalty notices of one customer, without reading the whole shop.

:func:`shopsync.loyalty.sync` reads every order of the shop, because referrals tie customers
together. For a customer who takes part in no referral, their own orders, refunds and
loyalty inputs decide everything, so this reads only those and runs the same rules
(:func:`shopsync.core.loyalty.derive`) and the same action builder, in ``dry_run`` spirit:
nothing is written. A customer named in a referral goes through the full sync instead.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from shopsync.core import loyalty as rules
from shopsync.core.actions import Action
from shopsync.core.loyalty import to_micros
from shopsync.core.loyalty_actions import loyalty_actions
from shopsync.core.loyalty_history import facts_by_customer, history_of, inputs_by_kind
from shopsync.core.policy import Policy
from shopsync.store.ledger import customer_history, referral_check

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = ["actions_for"]


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

    at = to_micros(as_of.astimezone(dt.timezone.utc))
    shop_id = store.shop_id(platform, shop, create=False)
    held, email, referrals = referral_check(store, shop_id, customer_id)
    if not held:
        return []  # not (or no longer) a customer: sync would not derive anything
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
    with_lines = bool(policy.loyalty.category_bonus.points)
    frames, inputs = customer_history(store, shop_id, customer_id, with_lines)
    facts = facts_by_customer(frames, policy)
    history = history_of(
        customer_id, facts.get(customer_id, ()), inputs_by_kind(inputs).get(customer_id, {})
    )
    derivation = rules.derive(history, policy.loyalty, at, currency=currency)
    since = at - int(lookback.total_seconds() * 1_000_000)
    return loyalty_actions(platform, shop, derivation, customer_id, policy, at, since)
