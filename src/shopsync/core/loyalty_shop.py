"""The loyalty ledger of a whole shop, derived from frames: pure, no store, no clock.

:func:`derive_shop` takes the shop's loyalty tables (:class:`LoyaltyTables`, assembled by
:func:`tables_of` from the frames a plan has already read plus the few columns those lack),
the loyalty inputs (rows with ``kind``, ``key``, ``customer_id``, ``occurred_at``, ``data``,
oldest first), the contact details of the customers in a referral, a policy and ``as_of``,
and returns every customer's derivation and loyalty actions. :mod:`shopsync.loyalty` reads
the store, calls this and appends the entries; a plan calls it on the frames it planned from,
so the shop is read once.

The facts are built with Polars (one pass over the orders); the rules then run per customer
(:func:`shopsync.core.loyalty.derive`), not as column expressions, because they are
path-dependent: an order earns at the multiplier of the tier held at payment, and that tier
depends on promotions, holds and re-evaluations earlier in the customer's history; claw-backs
after approval and redemptions draw on lots oldest first, and expiry depends on the last
activity. No step rescans the customer's orders (tier qualification uses prefix sums), so
the cost grows with the shop's events, not with their square per customer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl

from shopsync._collector import collector_paused
from shopsync.core import loyalty as rules
from shopsync.core._data import Frames
from shopsync.core.actions import Action
from shopsync.core.features import PURCHASE_COLUMNS
from shopsync.core.loyalty import (
    Bonus,
    Derivation,
    Entry,
    OrderFacts,
    Person,
    Referral,
    ReferralOutcome,
)
from shopsync.core.loyalty_actions import loyalty_actions
from shopsync.core.loyalty_blocks import (
    LedgerBlock,
    block_notes,
    block_summary,
    split_blocks,
    with_records,
)
from shopsync.core.loyalty_columns import (
    ColumnInputs,
    base_tier,
    column_frames,
    derive_columns,
    fallback_customers,
    uncovered,
)
from shopsync.core.loyalty_derivations import (
    column_inputs,
    derivations,
    entry_rows,
    with_actions,
)
from shopsync.core.loyalty_history import (
    earned_by_customer,
    facts_by_customer,
    facts_table,
    history_of,
    inputs_by_kind,
    pending_by_customer,
)
from shopsync.core.loyalty_window import may_act
from shopsync.core.policy import LoyaltySettings, Policy

__all__ = [
    "CustomerLedger",
    "LoyaltyTables",
    "ShopLedger",
    "derive_shop",
    "earns_needed",
    "referral_parties",
    "referrals_of",
    "tables_of",
]

ORDER_COLUMNS = PURCHASE_COLUMNS
"""The order columns every earn rule reads; the amounts it counts come on top
(:func:`amount_columns`)."""
CUSTOMER_COLUMNS = ("id", "birthday", "updated_at", "email")
REFUND_COLUMNS = ("order_id", "id", "created_at", "amount")
BLOCK_ORDERS = 100_000
"""Orders per block of customers the columns derive at once (:func:`derive_shop`). Measured
at 2M orders (benchmarks/loyalty.py, CPU time within noise of each other): the derivation's
peak above its input was 1.96 GB in one block, 780 MB in blocks of 500k orders, 380 MB in
blocks of 250k, 170 MB in blocks of 100k; blocks of 50k were no slower."""


def amount_columns(policy: Policy) -> tuple[str, ...]:
    """The order amounts the earn rule counts: the subtotal, plus shipping and tax if set."""
    earn = policy.loyalty.earn
    return (
        ("subtotal",)
        + (("total_shipping",) if earn.include_shipping else ())
        + (("total_tax",) if earn.include_tax else ())
    )


@dataclass(frozen=True)
class LoyaltyTables:
    """What the loyalty rules read of a shop, in store units (micros, ten-thousandths)."""

    orders: pl.DataFrame
    """Real orders with a customer, whenever placed: :data:`ORDER_COLUMNS` + amounts."""
    refunds: pl.DataFrame
    """:data:`REFUND_COLUMNS` (the refund id names a claw-back)."""
    customers: pl.DataFrame
    """Every customer of the shop: :data:`CUSTOMER_COLUMNS`."""
    lines: pl.DataFrame | None = None
    """``order_id``, ``product_type``: only when categories earn a bonus."""
    earned: pl.DataFrame | None = None
    """``customer_id``, ``order_id``, ``points``, ``pending``: what the ledger's earn entries hold
    (:func:`shopsync.store.ledger.earned_points`). Those orders keep those points, whatever
    the earn rule says now; None (a ledger never written): every order earns by the rule."""


def tables_of(frames: Frames, extra: Mapping[str, pl.DataFrame], policy: Policy) -> LoyaltyTables:
    """The loyalty tables from a plan's frames and ``extra``, the store's read of what the
    frames lack (:func:`shopsync.store.loyalty_read.loyalty_extras`): ``amounts`` (order id and
    amount columns, when the frames' orders lack them), ``later_orders`` (placed after the
    frames' ``as_of``: they still decide when the ledger next changes), ``refunds`` (with
    ids, when the frames' lack them) and ``customers`` (every one, with contact columns)."""
    amounts = amount_columns(policy)
    orders = frames.orders
    if "amounts" in extra:  # the ones the frames lack (frames read for another earn rule)
        lacking = [name for name in amounts if name not in orders.columns]
        orders = orders.join(extra["amounts"].select("id", *lacking), on="id", how="left")
    wanted = [*ORDER_COLUMNS, *amounts]
    parts = [orders.select(wanted)]
    if "later_orders" in extra:
        parts.append(extra["later_orders"].select(wanted))
    refunds = extra.get("refunds", frames.refunds)
    customers = extra.get("customers", frames.customers)
    lines = (
        frames.lines.select("order_id", "product_type")
        if policy.loyalty.category_bonus.points
        else None
    )
    return LoyaltyTables(
        orders=pl.concat(parts, how="vertical_relaxed"),
        refunds=refunds.select(REFUND_COLUMNS),
        customers=customers.select(CUSTOMER_COLUMNS),
        lines=lines,
    )


@dataclass
class CustomerLedger:
    """One customer's derivation and the loyalty actions due from it."""

    customer_id: str
    derivation: Derivation
    actions: list[Action]
    entry_count: int
    """The customer's entries, all of them even where :attr:`derivation` holds only the
    entries its actions read (:func:`derive_shop`'s ``all_entries=False``)."""
    entries_handed: bool = False
    """The customer's entries went to :func:`derive_shop`'s ``on_entries`` (as frame rows);
    :attr:`derivation` holds only those its actions read."""


@dataclass
class ShopLedger:
    """What :func:`derive_shop` returns: the referrals judged, and each customer's ledger in
    the customers' order, derived as it is iterated (once): a shop's entries are not all held
    in memory at once, the caller writes them as they come."""

    customers: Iterator[CustomerLedger]
    referrals: list[ReferralOutcome] = field(default_factory=list)
    rules_because: str | None = None
    """Why the rules derived the whole shop (a policy option the columns do not cover, or
    the rules were asked for); None: the columns derived it."""
    by_rules: list[str] | None = None
    """With the columns: the customers the rules derived instead (see
    :mod:`shopsync.core.loyalty_columns`)."""
    blocks: Iterator[LedgerBlock] = field(default_factory=lambda: iter(()))
    """With :func:`derive_shop`'s ``by_block`` (then :attr:`customers` is empty): the
    customers a block at a time, derived as it is iterated (once)."""


def referrals_of(inputs: Iterable[Any]) -> list[Referral]:
    return [
        Referral(
            r.key,
            r.customer_id,
            r.occurred_at,
            r.data.get("friend_id"),
            r.data.get("friend_email"),
            r.data.get("ip"),
        )
        for r in inputs
        if r.kind == "referral"
    ]


def _emails(customers: pl.DataFrame) -> dict[str, str]:
    """Each e-mail's customer: of several holding one, the most recently updated (ties: the
    greatest id). Not the last row read: the rows' order is the read's (a whole read and a
    read of some customers differ, and an update moves a row on PostgreSQL)."""
    return {
        e: cid
        for cid, e in customers.select("id", "email", "updated_at")
        .filter(pl.col("email").is_not_null())
        .sort("updated_at", "id", nulls_last=False)
        .select("id", "email")
        .iter_rows()
    }


def referral_parties(inputs: Iterable[Any], customers: pl.DataFrame) -> set[str]:
    """The customers a referral involves (advocates and friends, by id or email): the ones
    whose contact details :func:`derive_shop` needs to judge referrals."""
    referrals = referrals_of(inputs)
    if not referrals:
        return set()
    emails = _emails(customers)
    found = {r.advocate_id for r in referrals} | {r.friend_id for r in referrals if r.friend_id}
    return found | {emails[r.friend_email] for r in referrals if r.friend_email in emails}


def earns_needed(
    tables: LoyaltyTables,
    inputs: Sequence[Any],
    policy: Policy,
    as_of: int,
    *,
    customer_ids: Iterable[str] | None = None,
    lookback: dt.timedelta = dt.timedelta(days=7),
    currency: str | None = None,
) -> pl.Series | None:
    """The customers whose earns (:attr:`LoyaltyTables.earned`) a :func:`derive_shop` with
    ``actions_only`` reads, found from ``tables`` without them: a superset of those
    :func:`~shopsync.core.loyalty_window.may_act` keeps, those in a referral (their bonuses
    are judged later) and those the rules derive (a redemption, a negative refund); of
    ``customer_ids`` alone when given (derive_shop derives no one else); ``currency``: the
    shop's, as derive_shop is given it (see may_act). None:
    every customer's (the rules derive the shop). A plan reads only these of the ledger's
    millions of earns (at 1M customers some one in five)."""
    settings = policy.loyalty
    if uncovered(settings) is not None:
        return None
    orders = tables.orders
    wanted = None
    if customer_ids is not None:
        wanted = pl.Series(list(customer_ids), dtype=pl.String).implode()
        orders = orders.filter(pl.col("customer_id").is_in(wanted))
    given = column_inputs(inputs, {})
    since = as_of - int(lookback.total_seconds() * 1_000_000)
    negative = tables.refunds.filter(pl.col("amount") < 0)["order_id"].implode()
    parts = [
        may_act(orders, given, settings, since, as_of, currency=currency),
        pl.Series(sorted(referral_parties(inputs, tables.customers)), dtype=pl.String),
        given.redemptions.filter(pl.col("at") <= as_of)["customer_id"].cast(pl.String),
        orders.filter(pl.col("id").is_in(negative))["customer_id"].cast(pl.String),
    ]
    found: pl.Series = pl.concat(parts).unique(maintain_order=True)
    if wanted is not None:  # derive_shop derives (and reads the earns of) no one else
        found = found.filter(found.is_in(wanted))
    return found


def derive_shop(
    tables: LoyaltyTables,
    inputs: Sequence[Any],
    people: Mapping[str, Person],
    policy: Policy,
    as_of: int,
    *,
    currency: str,
    platform: str,
    shop: str,
    customer_ids: Iterable[str] | None = None,
    lookback: dt.timedelta = dt.timedelta(days=7),
    engine: Literal["columns", "rules"] = "columns",
    block_orders: int = BLOCK_ORDERS,
    all_entries: bool = True,
    actions_only: bool = False,
    on_entries: Callable[[pl.DataFrame], None] | None = None,
    acting: pl.Series | None = None,
    by_block: bool = False,
) -> ShopLedger:
    """Every customer's ledger entries due by ``as_of`` (micros) and loyalty actions.

    Each customer once, in the order of ``tables.customers`` (an id listed twice counts once);
    ``customer_ids`` limits the customers derived (referrals are still judged shop-wide).
    Actions are those whose moment falls in ``(as_of - lookback, as_of]``. ``engine``
    ``"columns"`` derives in columns (:mod:`shopsync.core.loyalty_columns`) what they cover
    and hands the rest to the rules, per policy option or per customer (:attr:`ShopLedger.
    by_rules` says which); ``"rules"`` runs the rules for everyone (the columns' oracle).
    The columns derive the customers in blocks of about ``block_orders`` orders, one block's
    frames held at a time (memory); the block size does not change the result.
    ``all_entries=False`` keeps in each derivation only the entries its actions read (earns
    and bonuses dated in the action window; a dry run needs no more, and a shop's entries are
    millions of records): :attr:`CustomerLedger.entry_count` still counts them all.
    ``actions_only`` (implies ``all_entries=False``) yields only the customers that can have
    an action (:func:`~shopsync.core.loyalty_derivations.with_actions`, and those the rules
    derive): a plan's dry run reads nothing else, and builds no record for the others. With
    the columns it derives only the customers with a moment a notice can hang on
    (:func:`~shopsync.core.loyalty_window.may_act`; at 1M orders one in five): the same
    actions, each customer's derivation being their own.
    ``acting`` (with ``actions_only``): the customers :func:`earns_needed` found for the same
    arguments, derived instead of those :func:`~shopsync.core.loyalty_window.may_act` keeps
    (a superset of them: the same actions, without finding them twice).
    ``on_entries`` (a ledger writer's): the entries of the customers the columns derive go
    to it as frames, one per block (:data:`~shopsync.core.loyalty_derivations.ROW_COLUMNS`,
    in the customers' and the event order), each before that block's customers are yielded;
    their derivations then hold only the entries their actions read
    (:attr:`CustomerLedger.entries_handed`): a ledger's millions of entries are written from
    columns, never built as records. The customers the rules derive keep all theirs.
    ``by_block`` (a whole-shop update's): :attr:`ShopLedger.blocks` instead of
    :attr:`ShopLedger.customers`, each block's tiers, due moments and counts as columns and
    records only for the customers with a possible action or derived by the rules (the
    same values, without a record per customer).
    """
    if on_entries is not None and actions_only:
        raise ValueError("actions_only derives no entries to hand to on_entries")
    if by_block and actions_only:
        raise ValueError("actions_only yields customers, not blocks")
    settings = policy.loyalty
    frames: dict[str, pl.DataFrame] = {"orders": tables.orders, "refunds": tables.refunds}
    if tables.lines is not None:
        frames["line_items"] = tables.lines
    wanted = None if customer_ids is None else set(customer_ids)

    def facts_of(orders: pl.DataFrame) -> pl.DataFrame:
        """:func:`facts_table` of some orders: never of the whole shop at once (memory)."""
        return facts_table({"orders": orders}, policy)

    def of(column: str, ids: Iterable[Any]) -> pl.Expr:
        return pl.col(column).is_in(pl.Series(list(ids), dtype=pl.String).implode())

    outcomes: list[ReferralOutcome] = []
    bonuses: dict[str, list[Bonus]] = {}
    referrals = referrals_of(inputs)
    if referrals:
        emails = _emails(tables.customers)
        parties = referral_parties(inputs, tables.customers)
        outcomes, bonuses = rules.judge_referrals(
            referrals,
            dict(people),
            _facts(frames, policy, facts_of(tables.orders.filter(of("customer_id", parties)))),
            emails,
            settings,
            as_of,
            currency=currency,
        )
    known = tables.customers["id"].unique(maintain_order=True)  # each customer once
    orders = tables.orders
    if wanted is not None:
        known = known.filter(known.is_in(pl.Series(list(wanted), dtype=pl.String).implode()))
        orders = orders.filter(of("customer_id", wanted))
    since = as_of - int(lookback.total_seconds() * 1_000_000)
    reason = "the rules were asked for" if engine == "rules" else uncovered(settings)
    given = None
    fallback: frozenset[Any] = frozenset()
    if reason is None:
        given = column_inputs(inputs, bonuses, tables.earned)
        negative = tables.refunds.filter(pl.col("amount") < 0)["order_id"]  # few, if any
        suspects = facts_of(orders.filter(of("id", negative)))
        fallback = fallback_customers(suspects, tables.refunds, given, as_of, currency)
        if actions_only:  # the others have no notice: derive none of them (most, at scale)
            keep = (
                pl.concat(
                    [
                        may_act(orders, given, settings, since, as_of, currency=currency),
                        _ruled(fallback),
                    ]
                )
                if acting is None
                else acting
            )
            known = known.filter(known.is_in(keep.implode()))
            orders = orders.filter(pl.col("customer_id").is_in(keep.implode()))
    ruled = orders if given is None else orders.filter(of("customer_id", fallback))
    facts = _facts(frames, policy, facts_of(ruled))
    theirs: Sequence[Any] = inputs
    if given is not None:  # the rules derive the fallback customers alone: a few, or none
        theirs = [r for r in inputs if r.customer_id in fallback] if fallback else []
    by_customer = inputs_by_kind(theirs)
    held = tables.earned
    if held is not None:  # the earns of the customers the rules derive, as records
        held = held.join(ruled.select("customer_id").unique(), on="customer_id", how="semi")
    earned, pending = earned_by_customer(held), pending_by_customer(held)

    def by_rules(customer_id: str) -> Derivation:
        history = history_of(
            customer_id,
            facts.pop(customer_id, ()),
            by_customer.get(customer_id, {}),
            bonuses.get(customer_id, ()),
            earned.pop(customer_id, None),
            None if pending is None else pending.get(customer_id, frozenset()),
        )
        return rules.derive(history, settings, as_of, currency=currency)

    window = None if all_entries and not actions_only else (since, as_of)
    handed = None if on_entries is None else (since, as_of)  # the columns' entries: as frames
    ruled_ids = _ruled(fallback)

    def block(
        ids: pl.Series, mine: list[pl.DataFrame]
    ) -> tuple[pl.Series, Iterator[tuple[str, Derivation, int]], set[str]]:
        """The columns' derivations of ``ids`` (one block), ``mine`` their orders and inputs,
        and the customers they derive who can have an action (the others have none); with
        ``actions_only``, ``ids`` cut to those and those of the rules."""
        part, some = facts_of(mine[0]), ColumnInputs(*mine[1:])
        if part.is_empty() and all(f.is_empty() for f in column_frames(some)):
            # nobody here has an order or an input: the base tier, nothing else
            return (
                (ids.filter(ids.is_in(ruled_ids.implode())) if actions_only else ids),
                iter(()),
                set(),
            )
        refunds = tables.refunds.filter(pl.col("order_id").is_in(part["id"].implode()))
        columns = derive_columns(part, refunds, some, settings, as_of, currency=currency)
        active = with_actions(columns, settings, since, as_of)
        if actions_only:
            ids = ids.filter(ids.is_in(pl.concat([active, ruled_ids]).implode()))
        derived = derivations(columns, settings, ids, window or handed, on_entries)
        return ids, derived, set(active.to_list())

    def ledger(
        customer_id: str, found: tuple[str, Derivation, int] | None, quiet: bool = False
    ) -> CustomerLedger:
        """A block's record of one customer: the columns' ``found``, else the rules';
        ``quiet``: no action can come of it."""
        if found is not None:
            _, derivation, count = found
            handing = on_entries is not None
        else:
            derivation, handing = by_rules(customer_id), False
            count = len(derivation.entries)
            if window is not None:
                kept = [e for e in derivation.entries if _for_actions(e, *window)]
                derivation = dataclasses.replace(derivation, entries=kept)
        actions = (
            []
            if quiet
            else loyalty_actions(platform, shop, derivation, customer_id, policy, as_of, since)
        )
        return CustomerLedger(customer_id, derivation, actions, count, handing)

    def summed(ids: pl.Series, mine: list[pl.DataFrame]) -> LedgerBlock:
        """A block of ``by_block``: the columns' summary, the records of the customers with
        a possible action (the columns') or of the rules; every customer's record when the
        entries are read from the records (all of them, and no ``on_entries``)."""
        columns, acting, active = None, ids.clear(), ids.clear()
        part = facts_of(mine[0]) if given is not None else None
        if part is not None and not (
            part.is_empty() and all(f.is_empty() for f in column_frames(ColumnInputs(*mine[1:])))
        ):
            refunds = tables.refunds.filter(pl.col("order_id").is_in(part["id"].implode()))
            columns = derive_columns(
                part, refunds, ColumnInputs(*mine[1:]), settings, as_of, currency=currency
            )
            if on_entries is not None:
                on_entries(entry_rows(columns, ids))
            active = with_actions(columns, settings, since, as_of)
            reading = window is None and on_entries is None  # every entry read from records
            recorded = columns.summary["customer_id"] if reading else active
            acting = ids.filter(ids.is_in(recorded.implode()))
        ruled = ids if given is None else ids.filter(ids.is_in(ruled_ids.implode()))
        derived: Iterator[tuple[str, Derivation, int]] = iter(())
        if columns is not None and acting.len():
            derived = derivations(columns, settings, acting, window or handed)
        ahead, loud = next(derived, None), set(active.to_list())
        ledgers = []
        with collector_paused():  # records and actions without cycles, a block's
            for customer_id in ids.filter(ids.is_in(pl.concat([acting, ruled]).implode())):
                if ahead is not None and ahead[0] == customer_id:
                    ledgers.append(ledger(customer_id, ahead, customer_id not in loud))
                    ahead = next(derived, None)
                else:
                    ledgers.append(ledger(customer_id, None))
        summary, notes = with_records(
            block_summary(columns, settings, ids, as_of),
            block_notes(columns, ids),
            ledgers,
            ruled.to_list(),
            policy,
            as_of,
        )
        return LedgerBlock(summary, notes, ledgers)

    def each_block() -> Iterator[LedgerBlock]:
        pieces = [orders] if given is None else [orders, *column_frames(given)]
        for ids, mine in split_blocks(known, pieces, None if given is None else block_orders):
            yield summed(ids, mine)

    def each() -> Iterator[CustomerLedger]:
        pieces = [orders] if given is None else [orders, *column_frames(given)]
        for ids, mine in split_blocks(known, pieces, None if given is None else block_orders):
            derived: Iterator[tuple[str, Derivation, int]] = iter(())
            active: set[str] = set()
            if given is not None:
                ids, derived, active = block(ids, mine)
            ahead = next(derived, None)
            for customer_id in ids:
                if ahead is not None and ahead[0] == customer_id:
                    yield ledger(customer_id, ahead, customer_id not in active)
                    ahead = next(derived, None)
                elif given is not None and customer_id not in fallback:  # nothing to derive
                    yield CustomerLedger(customer_id, _empty(settings), [], 0, False)
                else:
                    yield ledger(customer_id, None)

    return ShopLedger(
        iter(()) if by_block else each(),
        outcomes,
        reason,
        None if given is None else sorted(fallback),
        each_block() if by_block else iter(()),
    )


def _ruled(fallback: Iterable[Any]) -> pl.Series:
    """The customers the rules derive, as a sorted series."""
    return pl.Series(sorted(fallback), dtype=pl.String)


def _for_actions(entry: Entry, since: int, until: int) -> bool:
    """:func:`~shopsync.core.loyalty_derivations.action_entries` of one entry."""
    return entry.kind in ("earn", "bonus") and since < entry.at <= until


def _empty(settings: LoyaltySettings) -> Derivation:
    """The derivation of a customer with no orders and no inputs: the base tier, nothing else."""
    base = base_tier(settings)
    tier = None if base is None else settings.tiers.tiers[base].name
    return Derivation([], [], [], tier, None, None, None, 0, 0, None, [])


def _facts(
    frames: dict[str, pl.DataFrame], policy: Policy, table: pl.DataFrame
) -> dict[str, list[OrderFacts]]:
    """:class:`OrderFacts` of the orders in ``table`` (:func:`facts_table`'s), their refunds
    and lines alone read into Python objects."""
    ids = table["id"].implode()
    some = {
        name: frame.filter(pl.col("order_id").is_in(ids))
        for name, frame in frames.items()
        if name != "orders"
    }
    return facts_by_customer(some, policy, table)
