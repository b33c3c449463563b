"""Deriving the points ledger: :func:`update_ledger` runs the pure rules over the shop and appends
what is new.

The ledger (table ``loyalty_ledger``) is append-only and derived: every entry has a unique
source key, so running the derivation again, or after a crash, adds nothing twice. Points an
order earned are a fact: the derivation reads the points the ledger's earn entries hold
(:func:`shopsync.store.ledger.earned_points`) and keeps them, so an earn rule changed since
applies to the orders not earned yet. Bad input (an order in another currency, a negative
order, a refund beyond the order) goes to the store's quarantine (resource ``"loyalty"``)
with the reason; the derivation goes on.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import attrgetter
from types import SimpleNamespace
from typing import Any

import polars as pl

from shopsync._collector import collector_paused
from shopsync.adapter import Rejected
from shopsync.core import loyalty as rules
from shopsync.core import loyalty_shop
from shopsync.core._data import Frames
from shopsync.core.actions import Action
from shopsync.core.loyalty import Entry, LoyaltyError, ReferralOutcome
from shopsync.core.loyalty_blocks import notes_of
from shopsync.core.loyalty_shop import (
    LoyaltyTables,
    amount_columns,
    derive_shop,
    referral_parties,
    tables_of,
)
from shopsync.core.policy import Policy
from shopsync.loyalty._histories import new_birthdays, people, shop_currency
from shopsync.loyalty._refs import now_micros, utc_micros
from shopsync.store import Store, ledger, ledger_bulk, ledger_mark, redemptions
from shopsync.store import incremental as store_incremental
from shopsync.store.errors import IntegrityError
from shopsync.store.ledger import Connection
from shopsync.store.loyalty_read import loyalty_extras
from shopsync.store.read import loyalty_tables

__all__ = ["LedgerUpdate", "update_ledger"]

_FLUSH = 50_000
_CLOCK_SLACK = 5 * 60 * 1_000_000  # micros: a clock a few minutes off is not "the future"


@dataclass
class LedgerUpdate:
    added: int = 0
    """Entries appended to the ledger by this run."""
    derived: int = 0
    """Entries the rules produced (added + already there)."""
    customers: int = 0
    quarantined: int = 0
    referrals: list[ReferralOutcome] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    tiers: dict[str, str | None] = field(default_factory=dict)
    """Tier each derived customer holds at ``as_of`` (None: no tier)."""
    due: dict[str, int | None] = field(default_factory=dict)
    """Per derived customer, when time alone next changes their loyalty notices (micros;
    None: never): what an incremental plan records (:func:`~shopsync.core.loyalty_blocks.
    loyalty_due`)."""
    rules_because: str | None = None
    """Why the per-customer rules derived the whole shop (a policy option the columnar
    derivation does not cover, :func:`shopsync.core.loyalty_columns.uncovered`); None: it
    was derived in columns."""
    by_rules: int = 0
    """Customers the columnar derivation left to the rules (a redemption, a negative refund)."""


def update_ledger(
    store: Store,
    platform: str,
    shop: str,
    *,
    as_of: dt.datetime,
    policy: Policy | None = None,
    customer_ids: Iterable[str] | None = None,
    lookback: dt.timedelta = dt.timedelta(days=7),
    dry_run: bool = False,
    frames: Frames | None = None,
    frames_version: list[Any] | None = None,
    actions_only: bool = False,
) -> LedgerUpdate:
    """Append every ledger entry due by ``as_of`` and return the loyalty actions due.

    Actions are those whose moment falls in ``(as_of - lookback, as_of]`` (awards, tier
    promotions), and expiry warnings whose warning date has passed while the expiry has not.
    Their idempotency keys let a planner run every day without sending anything twice.
    ``dry_run`` derives everything and writes nothing (no entries, no quarantine).
    A redemption or another input recorded while it derives makes it derive again.

    ``frames`` (the whole shop as of ``as_of``, as :func:`shopsync.frames.load` read it)
    saves reading the orders again; ``frames_version`` is the store's data version
    (:func:`shopsync.store.ledger_mark.data_version`) read *before* those frames: without it
    the ledger is written but not marked current, since a change between the frames' read
    and this call would go unnoticed.

    ``actions_only`` (a dry run's, a plan's) derives the actions alone: the customers with
    none are not built, so :attr:`LedgerUpdate.tiers`, ``due``, ``customers`` and ``derived``
    stay empty.
    """
    if actions_only and not dry_run:
        raise ValueError("actions_only is a dry run: pass dry_run=True")
    ids = None if customer_ids is None else list(customer_ids)
    if frames is not None and (
        frames.as_of != utc_micros(as_of) or frames.platform != platform or frames.shop != shop
    ):
        raise ValueError("frames must be the whole shop read as of the same as_of")
    for _ in range(4):
        try:
            return _sync(
                store,
                platform,
                shop,
                as_of,
                policy,
                ids,
                lookback,
                dry_run,
                frames,
                frames_version,
                actions_only,
            )
        except _InputsMoved:
            continue
    raise LoyaltyError("loyalty inputs kept changing while the ledger was derived; run it again")


class _InputsMoved(Exception):
    """The loyalty inputs changed between their read and the write of the entries."""


def _scope(
    store: Store, shop_id: int, frames: Frames | None, customer_ids: list[str] | None
) -> set[str] | None:
    """Deriving ``customer_ids`` only from frames of theirs (an incremental plan's, a part of
    a whole-shop plan's): those and every referral party, the customers whose rows (later
    orders, contact columns, inputs) :func:`derive_shop` reads. A referral names its advocate
    as the input's customer, so every referral is read and judged as the whole shop's are;
    nothing else of one customer's moves another's points. None: the whole shop."""
    if frames is None or customer_ids is None:
        return None
    return set(customer_ids) | store_incremental.referral_parties(store, shop_id)


def _tables(
    store: Store,
    shop_id: int,
    at: int,
    policy: Policy,
    frames: Frames | None,
    scope: set[str] | None,
) -> LoyaltyTables:
    """The shop's loyalty tables: from the plan's frames plus what they lack, or read whole.
    ``scope`` (:func:`_scope`): the later orders and the customers read are theirs alone."""
    if frames is not None:
        extra = loyalty_extras(
            store,
            shop_id,
            at,
            amounts=amount_columns(policy),
            order_columns=frames.orders.columns,
            refund_columns=frames.refunds.columns,
            later_of=scope,
            customers_of=scope,
        )
        return tables_of(frames, extra, policy)
    read = loyalty_tables(store, shop_id, with_lines=bool(policy.loyalty.category_bonus.points))
    return LoyaltyTables(
        orders=read["orders"],
        refunds=read["refunds"],
        customers=read["customers"],
        lines=read.get("line_items"),
    )


def _sync(
    store: Store,
    platform: str,
    shop: str,
    as_of: dt.datetime,
    policy: Policy | None,
    customer_ids: list[str] | None,
    lookback: dt.timedelta,
    dry_run: bool,
    frames: Frames | None,
    frames_version: list[Any] | None,
    actions_only: bool = False,
) -> LedgerUpdate:
    policy = policy or Policy()
    result = LedgerUpdate()
    if not policy.loyalty.enabled:
        return result
    at = utc_micros(as_of)
    if not dry_run and at > now_micros() + _CLOCK_SLACK:
        # Entries dated ahead would approve, expire and spend points before their time.
        raise LoyaltyError(
            f"as_of {as_of.isoformat()} is in the future; only a dry_run may look ahead"
        )
    shop_id = store.shop_id(platform, shop)
    # read before the inputs: a change while deriving leaves the mark behind (stale)
    marking = not dry_run and customer_ids is None and (frames is None or bool(frames_version))
    version = None
    if marking:
        version = frames_version if frames is not None else ledger_mark.data_version(store, shop_id)
    currency = shop_currency(store, platform, shop, policy) or ""  # no orders: nothing earns
    # what a writer checks before writing (a dry run writes nothing: it reads neither)
    seen = 0 if dry_run else ledger.newest_entry(store)  # first: an earn or reversal since is news
    scope = _scope(store, shop_id, frames, customer_ids)
    tables = _tables(store, shop_id, at, policy, frames, scope)
    inputs_version = None if dry_run else ledger_mark.inputs_version(store, shop_id)
    inputs = ledger.input_rows(store, shop_id, scope)
    birthdays = new_birthdays(shop_id, tables.customers, inputs, at)
    if birthdays and not dry_run:
        with store.transaction() as conn:
            ledger.add_inputs(conn, birthdays)
        inputs_version = ledger_mark.inputs_version(store, shop_id)
        inputs = ledger.input_rows(store, shop_id, scope)
    elif birthdays:  # a dry run derives what a real run would, birthdays seen now included
        with collector_paused():  # records without cycles, one per birthday
            inputs = sorted(
                inputs + [SimpleNamespace(**row) for row in birthdays],
                key=attrgetter("occurred_at", "key"),
            )
    # points an order earned are a fact: the earn rule applies to orders not earned yet (of
    # the customers whose actions can read them, for actions alone: a fifth of a large shop)
    needed, acting = customer_ids, None
    if actions_only:
        acting = loyalty_shop.earns_needed(
            tables,
            inputs,
            policy,
            at,
            customer_ids=customer_ids,
            lookback=lookback,
            currency=currency,
        )
        needed = customer_ids if acting is None else acting.to_list()
    earned = ledger.earned_points(store, shop_id, needed)
    tables = dataclasses.replace(tables, earned=earned)
    involved = referral_parties(inputs, tables.customers)
    handed: list[pl.DataFrame] = []  # the columns' entries, a block at a time (as frames)
    shop_ledger = derive_shop(
        tables,
        inputs,
        people(store, shop_id, involved),
        policy,
        at,
        currency=currency,
        platform=platform,
        shop=shop,
        customer_ids=customer_ids,
        lookback=lookback,
        all_entries=not dry_run,  # a dry run writes no entries: its actions read a few
        actions_only=actions_only,
        on_entries=None if dry_run else handed.append,
        acting=acting,
        by_block=not actions_only,
    )
    del tables
    result.referrals = shop_ledger.referrals
    result.rules_because = shop_ledger.rules_because
    result.by_rules = len(shop_ledger.by_rules or ())
    entry_rows: list[dict[str, Any]] = []
    notes: list[rules.Note] = []
    recorded = now_micros()
    valid_until: int | None = None
    # a dry run writes nothing: no write transaction (SQLite's one writer) held through its
    # derivation, which an incremental plan's other dry run, beside it, would wait for
    with store.engine.connect() if dry_run else store.transaction() as conn:
        if not dry_run and not redemptions.lock_points(conn, shop_id, inputs_version):
            raise _InputsMoved  # a redemption landed since the read: derive again
        if not dry_run and ledger.earned_since(conn, shop_id, seen):
            raise _InputsMoved  # another sync earned or reversed (another rule?): derive again
        gone = redemptions.removed_customers(conn, shop_id) if not dry_run else set()
        generations = redemptions.moved_generations(conn, shop_id) if not dry_run else {}
        if actions_only:
            for one in shop_ledger.customers:
                result.actions += one.actions
            return result
        per_unit = policy.loyalty.earn.points_per_unit
        moved = _moved_frame(generations)

        def write_handed() -> int:
            """Write the entry frames handed so far, ``_FLUSH`` rows at a time."""
            added = 0
            while handed:
                frame = handed.pop(0)
                for start in range(0, frame.height, _FLUSH):  # (the columns of a part alone)
                    part = frame.slice(start, _FLUSH)
                    entries = _frame_entries(shop_id, part, recorded, moved, gone, per_unit)
                    added += ledger_bulk.add_entry_frame(conn, entries)
            return added

        for block in shop_ledger.blocks:
            result.added += write_handed()  # a block's entries come before its customers
            summary, block_notes = block.summary, block.notes
            if gone:
                left = pl.Series(sorted(gone), dtype=pl.String).implode()
                mine = ~pl.col("customer_id").is_in(left)
                summary, block_notes = summary.filter(mine), block_notes.filter(mine)
            ids = summary["customer_id"].to_list()
            result.tiers.update(zip(ids, summary["tier"].to_list(), strict=True))
            result.due.update(zip(ids, summary["due"].to_list(), strict=True))
            result.customers += len(ids)
            result.derived += int(summary["entries"].sum())
            soonest: int | None = summary["next_change"].min()  # type: ignore[assignment]
            if soonest is not None:
                valid_until = soonest if valid_until is None else min(valid_until, soonest)
            if not dry_run:
                notes += notes_of(block_notes)
            for one in block.ledgers:
                if one.customer_id in gone:
                    continue
                result.actions += one.actions
                if not dry_run and not one.entries_handed:
                    entry_rows += [
                        _entry_row(shop_id, e, recorded, generations)
                        for e in one.derivation.entries
                    ]
                if len(entry_rows) >= _FLUSH:
                    result.added += ledger.add_entries(conn, entry_rows)
                    entry_rows = []
        if not dry_run:
            result.added += write_handed() + ledger.add_entries(conn, entry_rows)
            result.added += _reverse_moved_orders(conn, shop_id, at, recorded)
    if dry_run:
        return result
    if marking and at <= recorded:  # a ledger written ahead of the clock is a guess
        state = {
            "data": version,
            "inputs": inputs_version,
            "valid_until": valid_until,
            "loyalty": policy.loyalty.model_dump(mode="json"),
            "currency": policy.currency,
        }
        for attempt in (1, 2):  # two first marks at once: one insert loses, then updates
            try:
                store.set_cursor(
                    platform, shop, ledger_mark.RESOURCE, cursor=None, high_water=as_of, state=state
                )
                break
            except IntegrityError:
                if attempt == 2:
                    raise
    if notes:
        result.quarantined = store.quarantine(
            platform,
            shop,
            [
                Rejected(
                    "loyalty",
                    n.key,
                    json.dumps({"customer_id": n.customer_id, "order_id": n.order_id}),
                    n.reason,
                )
                for n in notes
            ],
        )
    return result


def _entry_row(
    shop_id: int, entry: Entry, recorded: int, generations: dict[tuple[str, str], int]
) -> dict[str, Any]:
    key = entry.key
    generation = generations.get((entry.customer_id, entry.order_id or ""), 0)
    if entry.order_id and generation:
        key = rules.source_key(key, f"g{generation}")  # the order came back: it earns again
    return {
        "shop_id": shop_id,
        "customer_id": entry.customer_id,
        "source_key": key,
        "kind": entry.kind,
        "pending": entry.pending,
        "approved": entry.approved,
        "effective_at": entry.at,
        "recorded_at": recorded,
        "order_id": entry.order_id,
        "reason": entry.reason,
        "detail": dict(entry.detail),
    }


def _moved_frame(generations: dict[tuple[str, str], int]) -> pl.DataFrame | None:
    """The orders that came back (``generations``' pairs of an order and a generation) as
    :func:`_frame_entries` joins them; None: none did."""
    pairs = [(c, o, g) for (c, o), g in generations.items() if o and g]
    if not pairs:
        return None
    schema = {"customer_id": pl.String, "order_id": pl.String, "_g": pl.Int64}
    return pl.DataFrame(pairs, schema=schema, orient="row")


def _frame_entries(
    shop_id: int,
    frame: pl.DataFrame,
    recorded: int,
    moved: pl.DataFrame | None,
    gone: set[str],
    per_unit: int,
) -> pl.DataFrame:
    """The ledger's columns (:data:`~shopsync.store.ledger_bulk.ENTRY_COLUMNS`) of an entry
    frame (:data:`~shopsync.core.loyalty_derivations.ROW_COLUMNS`): what :func:`_entry_row`
    makes of each row, the orders that came back under their generation's key
    (:func:`_moved_frame`), the customers in ``gone`` left out."""
    if gone:
        frame = frame.filter(
            ~pl.col("customer_id").is_in(pl.Series(list(gone), dtype=pl.String).implode())
        )
    key = pl.col("key")
    if moved is not None:  # an order that came back earns again, under a new key
        frame = frame.join(moved, on=["customer_id", "order_id"], how="left", maintain_order="left")
        keys = frame.select(key, pl.format("{}:g{}", key, "_g").alias("_moved"))
        long = keys["_moved"].str.len_chars() > 255
        if long.any():  # hashed down as rules.source_key does, past the store's 255
            at = long.arg_true()
            hashed = [
                rules.source_key(k, f"g{g}")
                for k, g in zip(
                    keys["key"].gather(at).to_list(), frame["_g"].gather(at).to_list(), strict=True
                )
            ]
            frame = frame.with_columns(keys["_moved"].scatter(at, hashed))
        else:
            frame = frame.with_columns(keys["_moved"])
        key = pl.coalesce("_moved", key)
    earn = pl.struct(
        value_units=pl.col("value"),
        per_unit=pl.lit(per_unit, pl.Int64),
        multiplier=pl.col("multiplier"),
    )
    entries = frame.select(
        pl.lit(shop_id, pl.Int64).alias("shop_id"),
        "customer_id",
        key.alias("source_key"),
        "kind",
        "pending",
        "approved",
        pl.col("at").alias("effective_at"),
        pl.lit(recorded, pl.Int64).alias("recorded_at"),
        "order_id",
        "reason",
        pl.when(pl.col("kind") == "earn").then(earn).alias("detail"),
    )
    return entries


def _reverse_moved_orders(conn: Connection, shop_id: int, at: int, recorded: int) -> int:
    """Reverse points of orders that now belong to another customer or no longer exist."""
    moved = ledger.moved_order_points(conn, shop_id)
    rows = []
    for row in moved:
        if not row.pending and not row.approved:
            continue
        where = f"customer {row.owner}" if row.owner else "no customer (deleted or guest)"
        rows.append(
            {
                "shop_id": shop_id,
                "customer_id": row.customer_id,
                # hashed when too long, the key keeps the prefix the moved generations and
                # the moved points are found by ("adjust:sha256:..." was counted by neither)
                "source_key": rules.source_key("adjust:moved", row.customer_id, row.order_id, at),
                "kind": "adjust",
                "pending": -int(row.pending),
                "approved": -int(row.approved),
                "effective_at": at,
                "recorded_at": recorded,
                "order_id": row.order_id,
                "reason": f"order {row.order_id} now belongs to {where}: its points move with it",
                "detail": {"owner": row.owner},
            }
        )
    return ledger.add_entries(conn, rows)
