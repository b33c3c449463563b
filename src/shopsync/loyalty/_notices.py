"""The loyalty actions due for one customer, read for that customer alone where possible.

A re-plan after a webhook must not read the whole shop: a customer in no referral is derived
from their own rows by the pure core (:mod:`shopsync.core._loyalty_one`); one named in a
referral goes through the full derivation, in a dry run (nothing written).
"""

from __future__ import annotations

import datetime as dt

from shopsync.core._loyalty_one import actions_for, in_a_referral
from shopsync.core.actions import Action
from shopsync.core.policy import Policy
from shopsync.loyalty._derivation import update_ledger
from shopsync.loyalty._refs import utc_micros
from shopsync.store import Store
from shopsync.store.ledger import customer_history, referral_check

__all__ = ["customer_actions"]


def customer_actions(
    store: Store,
    platform: str,
    shop: str,
    customer_id: str,
    *,
    as_of: dt.datetime,
    policy: Policy,
    currency: str,
    lookback: dt.timedelta = dt.timedelta(days=7),
) -> list[Action]:
    """What :func:`~shopsync.loyalty.update_ledger` in a dry run plans for this one customer."""
    shop_id = store.shop_id(platform, shop, create=False)
    held, email, referrals = referral_check(store, shop_id, customer_id)
    if not held:
        return []  # not (or no longer) a customer: sync would not derive anything
    if in_a_referral(customer_id, email, referrals):
        result = update_ledger(
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
    at = utc_micros(as_of)
    return actions_for(
        frames,
        inputs,
        policy,
        at,
        platform,
        shop,
        customer_id,
        currency=currency,
        lookback=lookback,
    )
