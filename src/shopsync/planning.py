"""``shopsync.plan(store, ...)``: read the shop, bring the loyalty ledger up to date, then
call the pure planner (:func:`shopsync.core.planner.plan_frames`).

The core takes frames, a policy and ``as_of`` and never touches the store (issue 18, item 2);
everything that does lives here: the one read of each shop (:func:`shopsync.frames.load`),
the shop-level models, stored with the shop and rebuilt only when stale
(:mod:`shopsync.stored_models`; the plan records the version in :attr:`Plan.models`), and
the loyalty ledger, which a plan brings up to date as of ``as_of`` (the ledger is derived
data, and a stale one would write wrong balances back to the shop) and from which the
loyalty notices come. Those two are the writes a plan makes; ``update_ledger=False`` makes
neither.

``plan_customer`` re-plans one customer (after a webhook) from that customer's rows and the
same stored models, and returns exactly what ``plan`` would return for that customer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import OrderedDict
from typing import Any

import polars as pl

from shopsync import loyalty, stored_models
from shopsync._beside import beside
from shopsync._collector import collector_eased
from shopsync.core._data import Frames, to_us
from shopsync.core.actions import Action
from shopsync.core.loyalty_shop import amount_columns
from shopsync.core.planner import Plan, draft, merge_plans, plan_frames
from shopsync.core.policy import Policy
from shopsync.core.shipping import shipments_since
from shopsync.core.shop_models import ModelsUsed, ShopModels
from shopsync.core.shop_stats import ShopStats, day_start, shop_stats, with_catalogue
from shopsync.errors import ConfigurationError
from shopsync.frames import load
from shopsync.store import Store, ledger_mark
from shopsync.store import shop_models as model_rows
from shopsync.store.read import products
from shopsync.store.shop_figures import catalogue_version

__all__ = ["plan", "plan_customer"]


def plan(
    store: Store,
    policy: Policy | None = None,
    as_of: dt.datetime | None = None,
    *,
    platform: str | None = None,
    shop: str | None = None,
    update_ledger: bool = True,
    only_changed: bool = False,
) -> Plan:
    """Plan every shop in the store (or the one named) as of ``as_of`` (aware).

    ``only_changed`` plans only the customers that can have something new: those changed
    since their last settled plan and those whose time-based rules fire by ``as_of``; the
    result (an :class:`~shopsync.incremental.IncrementalPlan`) is the full plan restricted to
    them, and applying it clears the change notes it read (:mod:`shopsync.incremental`).

    With the loyalty program on, each shop's loyalty ledger is brought up to date as of
    ``as_of`` first if it is not current (the one write a plan makes: the ledger is derived
    data, and a stale one would write wrong balances back to the shop). ``update_ledger``
    False (a backtest) keeps the store untouched; a plan whose ledger stays stale says so
    in :attr:`Plan.notes`.
    """
    policy, at = _check(policy, as_of)
    if (platform is None) != (shop is None):
        raise ValueError("pass both platform and shop, or neither")
    shops = [(platform, shop)] if platform and shop else store.shops()
    # the collector eased: a shop's read, loyalty derivation and actions keep some 100k
    # objects alive while making millions of short-lived ones, and at Python's threshold it
    # walked the whole heap five times a 1M-order plan (0.6 CPU-s of 12.5) for no cycle
    with collector_eased():
        if only_changed:
            return _plan_changed(store, policy, at, shops)
        parts = [
            _plan_shop(store, policy, at, p, s, None, update_ledger, update_ledger)
            for p, s in shops
        ]
    if not parts:
        return Plan(as_of=at, actions=(), notes=("the store holds no shop: nothing to plan",))
    return merge_plans(at, parts, tuple(shops))


def _plan_changed(
    store: Store, policy: Policy, at: dt.datetime, shops: list[tuple[str, str]]
) -> Plan:
    from shopsync.incremental import IncrementalPlan, plan_changed
    from shopsync.store.incremental import orphan_notes

    done = [
        plan_changed(
            store,
            policy,
            at,
            p,
            s,
            lambda f, seq, p=p, s=s: _shop_stats(
                store, policy, p, s, to_us(at), f, persist=True, seq=seq
            ),
        )
        for p, s in shops
    ]
    orphans = orphan_notes(store)
    merged = merge_plans(at, [d.plan for d in done], tuple(shops)) if done else None
    notes = () if merged is None else merged.notes
    if orphans:
        notes += (f"{orphans} change note(s) of shops since removed skipped",)
    return IncrementalPlan(
        as_of=at,
        actions=() if merged is None else merged.actions,
        held=() if merged is None else merged.held,
        notes=notes,
        shops=tuple(shops),
        models=() if merged is None else merged.models,
        customers=tuple(sorted({c for d in done for c in d.customers})),
        skipped=sum(d.skipped for d in done) + orphans,
        increments=tuple(d.increment for d in done if d.increment is not None),
    )


def plan_customer(
    store: Store,
    policy: Policy | None,
    as_of: dt.datetime | None,
    platform: str,
    shop: str,
    customer_id: str,
) -> Plan:
    """Re-plan one customer: the same actions ``plan`` gives that customer, computed fast."""
    policy, at = _check(policy, as_of)
    return _plan_shop(store, policy, at, platform, shop, str(customer_id), persist_models=True)


def _check(policy: Policy | None, as_of: dt.datetime | None) -> tuple[Policy, dt.datetime]:
    if as_of is None:
        raise ValueError("as_of is required: pass datetime.now(timezone.utc) for 'now'")
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError("as_of must be timezone-aware")
    if policy is not None and not isinstance(policy, Policy):
        raise ConfigurationError(f"policy must be a shopsync.Policy, got {type(policy).__name__}")
    return policy or Policy(), as_of.astimezone(dt.timezone.utc)


_EMPTY_PRODUCTS = pl.DataFrame(
    schema={
        "id": pl.String,
        "product_type": pl.String,
        "tags": pl.List(pl.String),
        "status": pl.String,
    }
)
"""A one-customer read skips the catalogue: the day's statistics already hold it."""


def _plan_shop(
    store: Store,
    policy: Policy,
    as_of: dt.datetime,
    platform: str,
    shop: str,
    customer_id: str | None,
    update_ledger: bool = False,
    persist_models: bool = True,
) -> Plan:
    if customer_id is None:  # a large shop: in parts of its customers, when nothing is written
        from shopsync.planning_parts import plan_in_parts

        parted = plan_in_parts(store, policy, as_of, platform, shop, update_ledger)
        if parted is not None:
            return parted
    version = None  # read before the frames: the ledger derived from them is marked with it
    shop_id = store.shop_id(platform, shop, create=False)
    if policy.loyalty.enabled and customer_id is None and update_ledger:
        version = ledger_mark.data_version(store, shop_id)
    # likewise for the models built from them (a one-customer plan builds none from its read)
    seq = stored_models.mark(store, shop_id) if customer_id is None else None
    # one customer: the shop's currency, kept (loyalty's; the frames' one is for reports alone)
    kept = _loyalty_currency(store, platform, shop, policy) if customer_id is not None else ""
    frames = load(
        store,
        platform,
        shop,
        as_of,
        currency=kept or policy.currency,
        customer_id=customer_id,
        window_days=policy.frequency_cap.window_days,
        products=_EMPTY_PRODUCTS if customer_id is not None else None,
        advocates=False,
        shipments_since=shipments_since(policy, platform, as_of),
        columns=_loyalty_columns(policy) if customer_id is None else None,
    )
    whole = frames if customer_id is None else None
    stats, used = _shop_stats(
        store, policy, platform, shop, to_us(as_of), whole, persist=persist_models, seq=seq
    )
    notes: list[str] = []
    if used.why and not used.rebuilt:
        which = "built before, kept" if used.version is None else f"version {used.version}"
        notes.append(
            f"{shop}: shop models {which} used as stored though stale"
            f" ({used.why}); a whole-shop plan rebuilds them"
        )
    loyal = (store, policy, as_of, frames, version, (customer_id, kept), update_ledger, notes)
    one = customer_id is not None
    if one or not policy.loyalty.enabled:
        found = _loyalty(*loyal) if policy.loyalty.enabled else []
        planned = plan_frames(
            frames, policy, as_of, stats=stats, loyalty=found, notes=notes, one_customer=one
        )
        return dataclasses.replace(planned, models=(used,))
    # The loyalty derivation (Python and SQLite: one core, mostly) runs beside the programs'
    # candidates (Polars' threads), which read nothing it derives: at 10M orders each takes
    # some 40 CPU-s, and the second core sat idle through the first.
    derived = beside(_loyalty, *loyal)
    drafted = draft(frames, policy, as_of, stats=stats)
    return dataclasses.replace(drafted.plan(derived.result(), notes), models=(used,))


# -- the shop-wide statistics: the stored models beside the catalogue -------------------------


class _ShopStatsCache(OrderedDict[tuple[Any, ...], tuple[ShopModels, ShopStats]]):
    """The statistics of one-customer plans (their read skips the catalogue), the most
    recently used last (at most ``SIZE``), each beside the models it was made from.

    Owned by the store object (:attr:`Store.memo`), never by a module: a cache keyed by
    ``id(store)`` handed a new store the statistics of a closed one that had lived at the
    same address, and kept every store's frames alive after the store was gone.
    """

    SIZE = 8

    @classmethod
    def of(cls, store: Store) -> _ShopStatsCache:
        found = store.memo.setdefault("planner.shop_stats", cls())
        assert isinstance(found, cls)
        return found


def _shop_stats(
    store: Store,
    policy: Policy,
    platform: str,
    shop: str,
    at: int,
    frames: Frames | None,
    *,
    persist: bool,
    seq: int | None = None,
) -> tuple[ShopStats, ModelsUsed]:
    """The shop-level models (stored, or rebuilt when stale: :mod:`shopsync.stored_models`)
    beside the current catalogue; ``frames`` (the whole shop at ``at``) holds the catalogue
    and saves a read when the models are rebuilt (``seq``: :func:`stored_models.mark` read
    before them). ``persist`` False stores no models. Without ``frames`` and with
    ``persist`` (a one-customer plan) stale models are used as stored
    (:func:`stored_models.stored`)."""
    if frames is None and persist:  # a one-customer plan: never a rebuild of stale models
        models, used = stored_models.stored(store, policy, platform, shop, at)
    else:
        models, used = stored_models.current(
            store, policy, platform, shop, at, frames, persist=persist, seq=seq
        )
    if frames is not None:
        return shop_stats(frames, policy, models), used
    shop_id = store.shop_id(platform, shop, create=False)
    key = (platform, shop, day_start(at), catalogue_version(store, shop_id))
    cache = _ShopStatsCache.of(store)
    found = cache.get(key)
    if found is not None and found[0] is models:
        cache.move_to_end(key)
        return found[1], used
    stats = with_catalogue(models, products(store, shop_id), at)
    cache[key] = (models, stats)
    cache.move_to_end(key)
    while len(cache) > _ShopStatsCache.SIZE:
        cache.popitem(last=False)
    return stats, used


# -- loyalty: the ledger is the service layer's ------------------------------------------------


def _loyalty(
    store: Store,
    policy: Policy,
    as_of: dt.datetime,
    frames: Frames,
    version: list[Any] | None,
    customer: tuple[str | None, str],
    update_ledger: bool,
    notes: list[str],
) -> list[Action]:
    """The loyalty notices due at ``as_of``; a stale ledger is brought up to date first (or,
    when that is refused or not wanted, the plan says so in ``notes``).

    A whole-shop plan derives the ledger from ``frames``, the read it plans from, so the shop
    is read once; ``version`` is the store's data version read before those frames.
    ``customer``: the one customer planned (None: the whole shop) and the shop currency."""
    platform, shop = frames.platform, frames.shop
    customer_id, currency = customer
    if customer_id is None:
        stale = loyalty.ledger_status(
            store, platform, shop, as_of, policy=policy, data_version=version
        )
        if stale is not None and update_ledger:
            try:  # the same derivation writes the ledger and gives the notices
                synced = loyalty.bring_up_to_date(
                    store,
                    platform,
                    shop,
                    as_of=as_of,
                    policy=policy,
                    frames=frames,
                    frames_version=version,
                )
                if synced is not None:
                    return list(synced.actions)
                stale = None  # another process brought it up to date meanwhile
            except loyalty.LoyaltyError as refused:
                stale = str(refused)
        if stale is not None:
            notes.append(f"{stale}: points balances are not written back to the shop until it is")
        derived = loyalty.update_ledger(
            store,
            platform,
            shop,
            as_of=as_of,
            policy=policy,
            dry_run=True,
            frames=frames,
            actions_only=True,  # the notices alone: no record of the customers without one
        )
        return list(derived.actions)
    return loyalty.customer_actions(
        store, platform, shop, customer_id, as_of=as_of, policy=policy, currency=currency
    )


def _loyalty_columns(policy: Policy) -> dict[str, tuple[str, ...]] | None:
    """What a whole-shop read carries for the loyalty derivation beside the programs'
    columns: the amounts the earn rule counts and the refunds' ids (one pass over orders)."""
    if not policy.loyalty.enabled:
        return None
    return {"orders": amount_columns(policy), "refunds": ("id",)}


def _loyalty_currency(store: Store, platform: str, shop: str, policy: Policy) -> str:
    """The loyalty program's shop currency (the one most orders use), kept in the store
    object's memo (see :class:`_ShopStatsCache` for why not in a module) with its lead over
    the next currency: it is counted again over every order only once enough orders changed
    since to overturn that lead, not on every webhook (each moves the newest update)."""
    if policy.currency:
        return policy.currency
    shop_id = store.shop_id(platform, shop, create=False)
    known: dict[tuple[Any, ...], tuple[str, int, int]] = store.memo.setdefault(
        "planner.currency", {}
    )
    # before the count: a later write counts as changed; the shop row's creation moment in
    # the key: a shop removed and created again (SQLite reuses its id) starts afresh
    seq, born = model_rows.shop_mark(store, shop_id)
    key = (platform, shop, shop_id, born)
    held = known.get(key)
    # the sequence unmoved since the count: no order changed, nothing to count
    if held and held[2] <= seq and 2 * _changes(store, shop_id, held[2], seq) < held[1]:
        return held[0]
    currency, lead = model_rows.currency_lead(store, shop_id)
    if len(known) > 64:
        known.clear()
    known[key] = (currency or "", lead, seq)
    return currency or ""


def _changes(store: Store, shop_id: int, since: int, now: int) -> int:
    """Orders written or deleted since the sequence value ``since``, the sequence being at
    ``now``: every write moves it, so none when it has not moved."""
    return 0 if since == now else model_rows.changes_since(store, shop_id, since)
