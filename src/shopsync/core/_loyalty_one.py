"""The loyalty notices of one customer, from that customer's own frames.

:func:`shopsync.loyalty.update_ledger` reads every order of the shop, because referrals tie
customers together. For a customer who takes part in no referral (:func:`in_a_referral` tells),
their own orders, refunds and loyalty inputs decide everything, so the caller reads only those
(:func:`shopsync.store.ledger.customer_history`) and this runs the same rules
(:func:`shopsync.core.loyalty.derive`) and the same action builder as the shop-wide derivation.
Pure: frames and rows in, actions out; nothing is read or written here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import polars as pl

from shopsync.core import loyalty as rules
from shopsync.core.actions import Action
from shopsync.core.loyalty_actions import loyalty_actions
from shopsync.core.loyalty_history import (
    earned_by_customer,
    facts_by_customer,
    history_of,
    inputs_by_kind,
    pending_by_customer,
)
from shopsync.core.policy import Policy

__all__ = ["actions_for", "in_a_referral"]


def in_a_referral(customer_id: str, email: str | None, referrals: Iterable[Any]) -> bool:
    """Whether the customer is the advocate or the friend (by id or email) of a referral;
    ``referrals`` are input rows with ``customer_id`` (the advocate) and ``data``."""
    return any(
        r.customer_id == customer_id
        or (r.data or {}).get("friend_id") == customer_id
        or (email is not None and (r.data or {}).get("friend_email") == email)
        for r in referrals
    )


def actions_for(
    frames: dict[str, pl.DataFrame],
    inputs: Iterable[Any],
    policy: Policy,
    at: int,
    platform: str,
    shop: str,
    customer_id: str,
    *,
    currency: str,
    lookback: dt.timedelta = dt.timedelta(days=7),
) -> list[Action]:
    """The loyalty actions due for the customer at ``at`` (micros): ``frames`` holds their
    orders and refunds (and line product types when categories earn bonuses; ``earned``, the
    points their earn entries in the ledger hold, when it has any), ``inputs`` their loyalty
    inputs, oldest first."""
    facts = facts_by_customer(frames, policy)
    pending = pending_by_customer(frames.get("earned"))
    history = history_of(
        customer_id,
        facts.get(customer_id, ()),
        inputs_by_kind(inputs).get(customer_id, {}),
        earned=earned_by_customer(frames.get("earned")).get(customer_id),
        pending_earns=None if pending is None else pending.get(customer_id, frozenset()),
    )
    derivation = rules.derive(history, policy.loyalty, at, currency=currency)
    since = at - int(lookback.total_seconds() * 1_000_000)
    return loyalty_actions(platform, shop, derivation, customer_id, policy, at, since)
