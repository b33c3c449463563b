"""A whole-shop plan in customer partitions, memory bounded (issue 18, item 4.2).

A large shop is planned in parts of its customers, each read alone
(:func:`shopsync.store.read_set.read_customers`, from the columnar snapshot), its loyalty
notices derived (beside its programs' candidates, as the whole plan does) and its programs
planned with the shop's day statistics, as the incremental plan plans a set
(:mod:`shopsync.incremental`, which a property test holds equal to the full plan restricted
to the set). What crosses customers is taken once for the whole shop: the stored models and
the catalogue (:func:`shopsync.planning._shop_stats`), the main currencies and the later
orders the planner's notes count (:func:`shopsync.store.shop_parts.order_figures`); every
referral party (a friend's order moves the advocate's points; the referral caps count every
referral, which each part's derivation reads) is planned in one part together. The rest is
per customer: consent, the holdout, the frequency cap and recommendations (the shop's
also-bought table is in the statistics). Parts are ranges of the sorted customer ids and the
planner orders by customer first, so the parts' actions, merged by customer (a stable sort),
are the whole plan's, in its order.

Only a plan that writes nothing is split: stale models (rebuilt from a whole read) or a
stale ledger the plan would bring up to date take the whole-shop path.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl

from shopsync import loyalty, stored_models
from shopsync._beside import beside
from shopsync.core._data import Frames, to_us
from shopsync.core.actions import Action
from shopsync.core.held import rows_of
from shopsync.core.planner import Held, HeldRows, Plan, draft, plan_notes
from shopsync.core.policy import Policy
from shopsync.incremental import read_plan_frames
from shopsync.store import Store, ledger_mark
from shopsync.store import incremental as marks
from shopsync.store.facts_set import snapshot_orders
from shopsync.store.read import products
from shopsync.store.shop_parts import customer_universe, order_figures

__all__ = ["PART_ORDERS", "plan_in_parts"]

PART_ORDERS = 1_000_000
"""A shop whose snapshot holds more orders than this is planned in parts of about this
many orders each."""


def plan_in_parts(
    store: Store,
    policy: Policy,
    as_of: dt.datetime,
    platform: str,
    shop: str,
    update_ledger: bool,
) -> Plan | None:
    """The whole shop's plan, made in parts; None when the shop is small or the plan would
    write (the caller plans it whole)."""
    from shopsync.planning import _shop_stats

    shop_id = store.shop_id(platform, shop, create=False)
    held_orders = snapshot_orders(store, shop_id)
    if held_orders is None or held_orders <= PART_ORDERS:
        return None
    at = to_us(as_of)
    if not stored_models.serve(store, policy, shop_id, at):
        return None  # stale models: rebuilt from the whole read
    stale = None
    if policy.loyalty.enabled:
        version = ledger_mark.data_version(store, shop_id) if update_ledger else None
        stale = loyalty.ledger_status(
            store, platform, shop, as_of, policy=policy, data_version=version
        )
        if stale is not None and update_ledger:
            return None  # the whole path brings the ledger up to date from its read
    stats, used = _shop_stats(store, policy, platform, shop, at, None, persist=True)
    figures, buyers = order_figures(store, shop_id, at)
    lpolicy = policy  # the derivation's shop currency: that of every order, as it counts it
    if policy.currency is None and figures.overall is not None:
        lpolicy = policy.model_copy(update={"currency": figures.overall})
    parts = _parts(
        customer_universe(store, shop_id, buyers),
        marks.referral_parties(store, shop_id),
        -(-held_orders // PART_ORDERS),
    )
    del buyers
    catalogue = products(store, shop_id)
    actions: list[Action] = []
    held: list[HeldRows | Sequence[Held]] = []
    outbox, placed = True, False
    for ids in parts:
        frames = read_plan_frames(
            store, policy, as_of, platform, shop, ids, figures.currency, catalogue
        )
        notices = None
        if policy.loyalty.enabled:  # beside the candidates, as the whole plan derives them
            notices = beside(_notices, store, platform, shop, as_of, lpolicy, ids, frames)
        drafted = draft(frames, policy, as_of, stats=stats, one_customer=True)
        part = drafted.plan([] if notices is None else notices.result())
        outbox, placed = frames.sent is not None, placed or frames.orders.height > 0
        actions.extend(part.actions)
        held.append(part.held)
        del frames, drafted, part, notices
    notes = plan_notes(policy, as_of, stats, not placed, figures.future, outbox)
    if used.why and not used.rebuilt:
        which = "built before, kept" if used.version is None else f"version {used.version}"
        notes.append(
            f"{shop}: shop models {which} used as stored though stale"
            f" ({used.why}); a whole-shop plan rebuilds them"
        )
    if stale is not None:
        notes.append(f"{stale}: points balances are not written back to the shop until it is")
    actions.sort(key=lambda a: a.customer_id)  # stable: each customer's order is kept
    return Plan(as_of, tuple(actions), _merged(held), tuple(notes), ((platform, shop),), (used,))


def _notices(
    store: Store,
    platform: str,
    shop: str,
    as_of: dt.datetime,
    policy: Policy,
    ids: set[str],
    frames: Frames,
) -> list[Action]:
    """The part's loyalty notices: a dry run of its customers (all of them: an advocate
    created after as_of has no row read, yet the whole derivation gives its referral award)."""
    derived = loyalty.update_ledger(
        store,
        platform,
        shop,
        as_of=as_of,
        policy=policy,
        customer_ids=sorted(ids),
        dry_run=True,
        frames=frames,
        actions_only=True,
    )
    return list(derived.actions)


def _parts(universe: list[str], parties: set[str], k: int) -> list[set[str]]:
    """``k`` ranges of the sorted ids, every referral party in the first part."""
    rest = [c for c in universe if c not in parties]
    size = -(-len(rest) // max(k, 1)) or 1
    parts = [set(rest[i : i + size]) for i in range(0, len(rest), size)]
    if parties:
        parts.insert(0, set(parties))
    return parts


def _merged(held: list[HeldRows | Sequence[Held]]) -> HeldRows:
    """The parts' held actions in the whole plan's order (by customer, stable), built when
    first read, as the planner's are; until then a few columns (:class:`HeldRows`)."""
    if not held:  # no parts: a shop whose orders name no customer
        return HeldRows()
    tables = []
    for part, h in enumerate(held):
        tables.append(
            rows_of(h).with_columns(
                pl.lit(part, dtype=pl.Int64).alias("part"),
                pl.int_range(pl.len(), dtype=pl.Int64).alias("at"),
            )
        )
    table = pl.concat(tables, how="vertical").sort("customer_id", maintain_order=True)
    where = table.select("part", "at")

    def make() -> list[Held]:
        built = [list(h) for h in held]
        parts, ats = where["part"].to_list(), where["at"].to_list()
        return [built[p][a] for p, a in zip(parts, ats, strict=True)]

    return HeldRows(table.select("rule", "customer_id"), make)
