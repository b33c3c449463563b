"""Whether the stored ledger is current, and bringing it up to date before it is trusted.

A full :func:`~shopsync.loyalty.update_ledger` leaves a mark (a sync cursor, resource
``loyalty_ledger``): the moment it derived as of, the versions of the data and inputs it
read, the settings it used and the next moment time alone changes a balance. A balance is
written back to a platform only from a ledger this mark says is current.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from shopsync.core._data import Frames
from shopsync.core.loyalty import LoyaltyError, from_micros
from shopsync.core.policy import Policy
from shopsync.loyalty._balances import Balance, balance
from shopsync.loyalty._derivation import LedgerUpdate, update_ledger
from shopsync.loyalty._refs import CustomerRef, now_micros, ref, utc_micros
from shopsync.store import Store, ledger_mark

__all__ = ["bring_up_to_date", "ledger_status", "write_back_balance"]


def ledger_status(
    store: Store,
    platform: str,
    shop: str,
    at: dt.datetime,
    *,
    policy: Policy | None = None,
    data_version: list[Any] | None = None,
) -> str | None:
    """Why the shop's ledger cannot be trusted at ``at`` (None: it is current).

    Current means: a full :func:`update_ledger` (not ``dry_run``, every customer) derived it as of a
    moment no later than the clock, no time-driven change (approval, expiry, tier review,
    birthday) fell due between that moment and ``at``, and the store took in nothing the
    derivation reads since. With ``policy``, it must also have been derived with that
    policy's loyalty settings. ``data_version`` is the store's, when the caller has just read
    it (:func:`shopsync.store.ledger_mark.data_version`: a plan reads it before its frames);
    the ledger is then current as of that read, the one its frames saw or a slightly older one.
    """
    mark = store.get_cursor(platform, shop, ledger_mark.RESOURCE)
    name = f"the loyalty ledger of {platform} shop {shop}"
    if mark is None or mark.high_water is None:
        return f"{name} was never brought up to date"
    state = mark.state
    derived = mark.high_water.isoformat()
    if policy is not None and (
        state.get("loyalty") != policy.loyalty.model_dump(mode="json")
        or state.get("currency") != policy.currency
    ):
        return f"{name} was derived as of {derived} with other loyalty settings"
    until = state.get("valid_until")
    if (
        utc_micros(at) > utc_micros(mark.high_water)
        and until is not None
        and utc_micros(at) >= until
    ):
        return (
            f"{name} was derived as of {derived}; points changed by time since "
            f"(an approval, expiry or tier review on {from_micros(until).isoformat()})"
        )
    shop_id = store.shop_id(platform, shop, create=False)
    if data_version is None:
        data_version = ledger_mark.data_version(store, shop_id)
    if state.get("data") != data_version or state.get("inputs") != ledger_mark.inputs_version(
        store, shop_id
    ):
        return f"{name} was derived as of {derived}; the shop's data changed since"
    return None


def bring_up_to_date(
    store: Store,
    platform: str,
    shop: str,
    *,
    as_of: dt.datetime,
    policy: Policy | None = None,
    frames: Frames | None = None,
    frames_version: list[Any] | None = None,
) -> LedgerUpdate | None:
    """Sync the shop's ledger as of ``as_of`` unless it is current; None if it was.

    ``frames_version`` (the data version read before ``frames``) also says whether the ledger
    is current (:func:`ledger_status`' ``data_version``). Without ``policy`` the settings it
    was last derived with are used again. Raises :class:`LoyaltyError` rather than derive a
    ledger ahead of the clock (an expiry written for a future moment would stand even if the
    customer orders before it) or, without a policy, a ledger never derived (its settings
    are unknown).
    """
    why = ledger_status(store, platform, shop, as_of, policy=policy, data_version=frames_version)
    if why is None:
        return None
    now = now_micros()
    if utc_micros(as_of) > now:
        raise LoyaltyError(
            f"{why}, and it is not brought up to date as of {as_of.isoformat()}: "
            f"that is after the present ({from_micros(now).isoformat()})"
        )
    if policy is None:
        mark = store.get_cursor(platform, shop, ledger_mark.RESOURCE)
        if mark is None:
            raise LoyaltyError(
                f"{why}: run shopsync.plan(store, policy, as_of) or shopsync.loyalty"
                ".update_ledger(store, platform, shop, as_of=..., policy=policy) first"
            )
        policy = Policy.model_validate(
            {"loyalty": mark.state["loyalty"], "currency": mark.state["currency"]}
        )
    return update_ledger(
        store,
        platform,
        shop,
        as_of=as_of,
        policy=policy,
        frames=frames,
        frames_version=frames_version,
    )


def write_back_balance(
    store: Store, customer: CustomerRef, at: dt.datetime, policy: Policy | None = None
) -> Balance:
    """The balance to write back to the platform at ``at``, from a current ledger only.

    The ledger is brought up to date first if it has to be, with the loyalty settings it
    was last derived with, or ``policy``'s when it was never derived (see
    :func:`bring_up_to_date`, whose :class:`LoyaltyError` says why it could not): a balance
    read from a ledger nobody kept current would overwrite the customer's real points on
    the shop. (Callers with other settings would otherwise derive it again in turn.)
    """
    platform, shop, _ = ref(customer)
    if store.get_cursor(platform, shop, ledger_mark.RESOURCE) is not None:
        policy = None
    bring_up_to_date(store, platform, shop, as_of=at, policy=policy)
    return balance(store, customer, at)
