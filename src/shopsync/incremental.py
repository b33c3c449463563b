"""Incremental plans: ``shopsync.plan(store, policy, as_of, only_changed=True)`` (issue 19).

Which customers it plans, and why that is enough, is the pure core's
(:mod:`shopsync.core.incremental`): the customers whose rows changed since their last settled
plan (the store's change notes, written by every write in its own transaction), those whose
next program moment (recorded when they were last settled, table ``program_due``) has come,
and those whose loyalty notices time alone changes by ``as_of``. They are chosen from the
store first (ids only: :func:`shopsync.store.incremental.candidates`), then only their rows
are read (:func:`shopsync.store.read_set.read_customers`) and planned with the same day
statistics as a full plan (the stored models beside the catalogue), so the result is the full
plan restricted to them (a property test checks it on both engines);
:attr:`IncrementalPlan.customers` names them.

When the notes are cleared: after a successful :func:`shopsync.apply` of the plan, never
before. ``apply`` records the actions in the outbox and delivers them, then calls
:meth:`IncrementalPlan.settle`, which in one transaction removes the notes the plan read
(each only if no change landed since: its ``seq`` is unchanged) and records each planned
customer's next loyalty and program moments (:func:`shopsync.core.incremental.program_due`,
tagged by :func:`program_tag`). A crash or an error anywhere before leaves every note in
place: the next plan plans those customers again and the outbox sends nothing twice. A plan
that is never applied settles nothing. A customer with a candidate held by a rule time lifts
is recorded as due when it lifts: quiet hours at their end
(:func:`shopsync.core.incremental.quiet_ends`), the frequency cap when a counted delivery
leaves its window or gap (:func:`~shopsync.core.incremental.cap_lifts`). When the cap holds
it for another message kept in the same plan, the settle decides, per such message: one
delivered by then to a sink the cap counts (``apply`` delivers first), when it leaves the
gap or window; one the cap never counts (for sinks that do not contact the customer:
every plan keeps it again while it is a candidate), when it stops being a candidate
(:func:`~shopsync.core.incremental.candidate_ends`); else at once. A
delivery starting a clock of its own (a review request's reminder, a browse cooldown) notes
its customer as changed when the outbox records it delivered, so that customer is planned
again then, not before; a delivery that never happens starts nothing, in either plan.

What it does not do: bring the loyalty ledger up to date (its notices come from a dry-run
derivation of the planned customers; the full ``plan`` or :func:`shopsync.loyalty.
update_ledger` writes the ledger, and a balance is written back only from a current one).
Notes for customers since erased or deleted, or for shops since removed, are skipped and
counted (:attr:`IncrementalPlan.skipped`), then cleared with the rest.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from shopsync import loyalty, stored_models
from shopsync._beside import beside
from shopsync.core._data import Frames, to_us
from shopsync.core.actions import Action
from shopsync.core.held import rows_of
from shopsync.core.incremental import (
    candidate_ends,
    cap_lifts,
    program_due,
    quiet_ends,
    restrict,
    time_fired,
)
from shopsync.core.loyalty_shop import amount_columns
from shopsync.core.planner import Draft, Plan, draft
from shopsync.core.policy import Policy
from shopsync.core.shipping import shipments_since
from shopsync.core.shop_stats import ShopStats
from shopsync.frames import load
from shopsync.store import NO_SHOP, Store
from shopsync.store import incremental as marks
from shopsync.store.changes import Change
from shopsync.store.shop_figures import main_currencies

__all__ = ["Increment", "IncrementalPlan", "plan_changed"]

_TIME_LIFTED = ("quiet", "frequency_cap")
_HOUR_US = 3_600_000_000
_WHOLE_SHARE = 16
"""Above one customer in this many of the shop, the plan reads the whole shop (its columnar
snapshot) and restricts it: per order, the indexed read of a set costs about fifteen times
the columnar one (measured at 100k customers / 1M orders, SQLite)."""
_EVER = 2**62
"""Micros past any row's moment: what :func:`marks.plannable_among` finds at any time."""


@dataclass(frozen=True)
class Increment:
    """What settling one shop's incremental plan writes."""

    shop_id: int
    as_of: int
    settings: str
    notes: tuple[Change, ...]
    due: dict[str, int | None] = field(default_factory=dict)
    programs: dict[str, int | None] = field(default_factory=dict)
    program_settings: str = ""
    made: int | None = None
    """When the shop was created (:func:`shopsync.store.incremental.shop_made`)."""
    waiting: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Customers the frequency cap holds for messages kept in this plan: those messages'
    keys. Due when the first of them stops holding (see :func:`_after`)."""
    ends: dict[str, int] = field(default_factory=dict)
    """Of those messages, when each stops being a candidate, where its program's window
    says (:func:`shopsync.core.incremental.candidate_ends`)."""
    cap: tuple[int, int] = (0, 0)
    """The cap's gap and window (micros)."""
    cover: marks.Cover | None = None
    """What the plan recorded, for the shop's moment cover (:func:`marks.settle`)."""


@dataclass(frozen=True)
class IncrementalPlan(Plan):
    """A plan of the customers that can have something new (see the module docstring)."""

    customers: tuple[str, ...] = ()
    """The customers planned (sorted), across the plan's shops."""
    skipped: int = 0
    """Change notes skipped: their customer was erased or deleted, or their shop removed."""
    increments: tuple[Increment, ...] = ()

    def settle(self, store: Store) -> int:
        """Clear the change notes this plan consumed and record its loyalty moments (what
        :func:`shopsync.apply` calls after applying it); returns the notes removed."""
        return sum(
            marks.settle(
                store,
                i.shop_id,
                i.notes,
                *_after(store, i),
                i.program_settings,
                i.made,
                i.cover,
            )
            for i in self.increments
        )


def _after(
    store: Store, i: Increment
) -> tuple[dict[str, int | None], int, str, dict[str, int | None]]:
    """The increment's loyalty moments, as_of, settings and program moments, its
    ``waiting`` customers due at the first moment one of the messages they waited on stops
    holding them: a message the cap counts delivered by now (``apply`` delivers, then
    settles) when it leaves the gap or the window; one the cap never counts (every outbox
    row of it is for a sink that does not contact the customer: the plans keep it again
    while it is a candidate) when it stops being a candidate; else (undelivered yet, or
    its end unknown) at once."""
    due, programs = dict(i.due), dict(i.programs)
    if not i.waiting:
        return due, i.as_of, i.settings, programs
    keys_waited = {k for keys in i.waiting.values() for k in keys}
    sent = marks.delivered(store, i.shop_id, keys_waited)
    ends = i.ends
    if ends:  # a candidate's end holds only for a message the cap never counts
        never = marks.uncounted(store, i.shop_id, ends.keys() & keys_waited)
        ends = {k: when for k, when in ends.items() if k in never}
    gap, window = i.cap
    for cid, keys in i.waiting.items():
        lifts = []
        for key in keys:
            if key in sent:
                spans = [sent[key] + span for span in (gap, window)]
                lifts.append(min([t for t in spans if t > i.as_of], default=i.as_of))
            else:
                lifts.append(ends.get(key, i.as_of))
        when = min(lifts)
        for moments in (due, programs):
            if cid in moments or moments is programs:
                previous = moments.get(cid)
                moments[cid] = when if previous is None else min(previous, when)
    return due, i.as_of, i.settings, programs


def settings_tag(policy: Policy) -> str:
    """Names the loyalty settings a due moment was derived with: other settings, other moments."""
    text = policy.loyalty.model_dump_json() + "\x1f" + str(policy.currency)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def program_tag(policy: Policy, stats: ShopStats) -> str:
    """Names what a program moment was derived with: the policy and the values of the shop
    models and catalogue the programs' thresholds read (the one-time buyers' win-back delay,
    the MBG/NBD fit when it triggers win-back, learned usage periods, product types and
    tags). A models refresh that leaves them alone keeps the moments; another tag: due."""
    wb = policy.winback
    mbg = stats.mbg if wb.enabled and wb.alive_threshold > 0 else None
    parts = [
        policy.model_dump_json(),
        repr(stats.one_time_days),
        repr(mbg),
        repr(sorted(stats.usage_days.items())),
        repr(sorted(stats.product_types.items())),
        repr(sorted(stats.product_tags.items())),
    ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


@dataclass
class ShopIncrement:
    plan: Plan
    customers: set[str]
    skipped: int
    increment: Increment | None


def plan_changed(
    store: Store, policy: Policy, as_of: dt.datetime, platform: str, shop: str, stats_of: Any
) -> ShopIncrement:
    """One shop's incremental plan; ``stats_of(frames, seq)`` gives the day statistics and
    the models they rest on (the stored shop-level models, shared with the full plan; ``seq``
    is :func:`shopsync.stored_models.mark`, read before the frames; ``frames`` None: the
    stored models and the catalogue alone).

    The customers are chosen from the store first (ids only: :func:`marks.candidates`), then
    only their rows are read; the whole shop is read when the stored models are stale (they
    are rebuilt from that read) or when the customers chosen are most of the shop."""
    shop_id = store.shop_id(platform, shop, create=False)
    if shop_id == NO_SHOP:
        empty = Plan(as_of, (), (), (f"{platform} shop {shop} is not in the store",))
        return ShopIncrement(empty, set(), 0, None)
    at = to_us(as_of)
    made = marks.shop_made(store, shop_id)  # before the notes: another shop of this id is later
    notes = marks.pending_notes(store, shop_id, platform, shop)
    seq = stored_models.mark(store, shop_id)
    frames: Frames | None = None
    if not _models_fresh(store, policy, shop_id, at):
        frames = read_plan_frames(store, policy, as_of, platform, shop, None)
    stats, used = stats_of(frames, seq)
    ptag, tag = program_tag(policy, stats), settings_tag(policy)
    found_ids = marks.candidates(store, shop_id, at, ptag, tag if policy.loyalty.enabled else None)
    noted = {n.customer_id for n in notes}
    noted_known, noted_plannable = marks.plannable_among(store, shop_id, at, noted)
    # created after as_of (their row, or without one all their orders, checkouts and browse
    # events): planned once as_of reaches them, their notes kept (with the moment cover up,
    # nothing else would find them again)
    held, ever = marks.plannable_among(store, shop_id, _EVER, noted - noted_known)
    later = held | (ever - noted_plannable)
    gone = noted - noted_known - later
    consumed = tuple(n for n in notes if n.customer_id not in later)
    stale, by_time = found_ids.stale, found_ids.program  # the stale are among them
    # customers without their row (deleted on the platform, erased) are chosen like the
    # others: when noted, or when their program moment (recorded from their orders) comes;
    # an erasure leaves no note, but gives them nothing to plan
    base = set(noted_plannable)
    if policy.loyalty.enabled:
        base |= found_ids.loyalty | marks.referral_parties(store, shop_id)
    loyalty_policy = policy  # the loyalty derivation's: its currency counted with the read's
    read_for: set[str] | None = None  # the customers the frames hold, when a set was read
    if frames is None:
        wanted = base | by_time
        whole = len(wanted) * _WHOLE_SHARE > found_ids.customers
        read_for = None if whole else wanted
        currency = policy.currency
        if not whole and currency is None and policy.loyalty.enabled:
            currency, overall = main_currencies(store, shop_id, at)  # one scan, not two
            if overall is not None:
                loyalty_policy = policy.model_copy(update={"currency": overall})
        frames = read_plan_frames(
            store, policy, as_of, platform, shop, None if whole else wanted, currency
        )
    if stale:  # no moment yet, or one of other settings or models: decided from their rows
        fired = time_fired(restrict(frames, stale), policy, stats)
        in_outbox = marks.recorded_keys(store, shop_id, fired["key"].to_list())
        new = set(fired.filter(~pl.col("key").is_in(list(in_outbox)))["customer_id"].to_list())
        by_time = (by_time - stale) | (new & stale)
    # the erased get nothing (a customer deleted on the platform is planned from its orders)
    chosen = (base | by_time) - set(frames.erased["customer_id"].to_list())
    # the loyalty notices, beside the programs' candidates as in a whole plan, of all the
    # chosen (an advocate whose row is created after as_of is awarded by the whole derivation
    # too); those chosen for a program moment alone (no change noted, their loyalty moment
    # current and not due) keep their loyalty moment, which time has not changed: only their
    # notices are derived (at 10M orders: half the customers, 60% of the orders). Two dry
    # runs, each in a thread of its own.
    derived = [
        beside(
            loyalty.update_ledger,
            store,
            platform,
            shop,
            as_of=as_of,
            policy=loyalty_policy,
            customer_ids=sorted(ids),
            dry_run=True,
            frames=frames,
            actions_only=actions_only,
        )
        for ids, actions_only in ((chosen & base, False), (chosen - base, True))
        if ids and policy.loyalty.enabled
    ]
    # the frames of a set read hold those customers alone: most often, the ones chosen
    theirs = frames if chosen == read_for else restrict(frames, chosen)
    drafted = draft(theirs, policy, as_of, stats=stats, one_customer=True)
    size = found_ids.customers
    programs = _program_moments(store, shop_id, theirs, policy, stats, at, size, drafted)
    if stale - chosen:  # nothing new now: their moments under the current tag are recorded
        rest = restrict(frames, stale - chosen)
        programs.update(_program_moments(store, shop_id, rest, policy, stats, at, size))
    found: list[Action] = []
    due: dict[str, int | None] = {}
    for update in (future.result() for future in derived):
        found += update.actions
        due.update(update.due)
    planned = drafted.plan(
        found,
        [
            f"incremental: {len(chosen)} of {found_ids.customers} customers planned "
            f"({len(noted_known)} changed, {len(by_time)} with a program moment due)",
            *(
                [f"{len(gone)} change note(s) of customers since erased or deleted skipped"]
                if gone
                else []
            ),
        ],
    )
    lifts, waiting, ends = _lifts(planned, theirs, policy, as_of)
    for cid, when in lifts.items():  # offered again by the plan at that moment
        for moments in (due, programs):
            if cid in moments or moments is programs:
                previous = moments.get(cid)
                moments[cid] = when if previous is None else min(previous, when)
    cap = policy.frequency_cap
    gaps = (cap.email_hours * _HOUR_US, cap.window_days * 24 * _HOUR_US)
    cover = marks.Cover(scanned=not found_ids.by_index, loyalty=policy.loyalty.enabled)
    increment = Increment(
        shop_id, at, tag, consumed, due, programs, ptag, made, waiting, ends, gaps, cover
    )
    planned = dataclasses.replace(planned, models=(used,))
    return ShopIncrement(planned, chosen, len(gone), increment)


def _lifts(
    planned: Plan, theirs: Frames, policy: Policy, as_of: dt.datetime
) -> tuple[dict[str, int], dict[str, tuple[str, ...]], dict[str, int]]:
    """Per customer with a candidate held by a rule time lifts: when it lifts (see the
    module docstring), as far as this plan knows; the customers the cap holds for messages
    kept in this plan, with those messages' keys (settled by their delivery); and when
    each of those messages stops being a candidate, where known."""
    named = rows_of(planned.held).select(pl.col("rule").cast(pl.String), "customer_id")
    held = list(named.filter(pl.col("rule").is_in(list(_TIME_LIFTED))).iter_rows())
    if not held:
        return {}, {}, {}
    at = to_us(as_of)
    quiet = quiet_ends(policy, as_of) if any(rule == "quiet" for rule, _ in held) else None
    capped = {cid for rule, cid in held if rule == "frequency_cap"}
    kept: dict[str, list[str]] = {}  # capped customer -> their marketing messages kept here
    ends: dict[str, int] = {}
    for a in planned.actions:
        if a.marketing and a.customer_id in capped:
            kept.setdefault(a.customer_id, []).append(a.idempotency_key)
            end = candidate_ends(a, policy)
            if end is not None:
                ends[a.idempotency_key] = end
    sending = set(kept)
    lifted = cap_lifts(theirs, policy, capped) if capped else {}
    out: dict[str, int] = {}
    for rule, cid in held:
        if rule == "quiet":
            when = at if quiet is None else quiet
        elif cid in sending:  # waits on a message kept here too: settled by its delivery
            if cid not in lifted:
                continue
            when = lifted[cid]
        else:
            when = lifted.get(cid, at)
        out[cid] = min(out.get(cid, when), when)
    return out, {cid: tuple(sorted(keys)) for cid, keys in kept.items()}, ends


def _program_moments(
    store: Store,
    shop_id: int,
    theirs: Frames,
    policy: Policy,
    stats: ShopStats,
    at: int,
    size: int,
    drafted: Draft | None = None,
) -> dict[str, int | None]:
    """The planned customers' next program moments (``theirs``: their frames): the programs'
    own, or earlier, the first row ``as_of`` still hides (an order placed later, a consent...).
    ``size``: the shop's customers; ``drafted``: their draft, whose paid orders and purchases
    are reused."""
    mine = sorted(_with_rows(theirs))
    if not mine:
        return {}
    moments: dict[str, int | None] = dict.fromkeys(mine)
    for cid, when in program_due(theirs, policy, stats, drafted).iter_rows():
        moments[cid] = when
    for cid, when in marks.next_rows(store, shop_id, at, mine, size).items():
        if cid in moments:
            previous = moments[cid]
            moments[cid] = when if previous is None else min(previous, when)
    return moments


def _models_fresh(store: Store, policy: Policy, shop_id: int, at: int) -> bool:
    """Whether the stored shop-level models serve a plan at ``at`` (else the plan reads the
    whole shop, which :func:`stored_models.current` rebuilds them from): current, and
    readable (an unreadable body would be rebuilt from a whole read of its own)."""
    return stored_models.serve(store, policy, shop_id, at)


def read_plan_frames(
    store: Store,
    policy: Policy,
    as_of: dt.datetime,
    platform: str,
    shop: str,
    customer_ids: set[str] | None,
    currency: str | None = None,
    catalogue: pl.DataFrame | None = None,
) -> Frames:
    """The plan's read: the whole shop, or the ``customer_ids`` alone (with what the loyalty
    derivation reads of their orders and refunds); ``currency``: the policy's, else the
    shop's main one by ``as_of`` when known (None: the read counts it); ``catalogue``: the
    shop's products when already read (a plan in parts reads them once)."""
    return load(
        store,
        platform,
        shop,
        as_of,
        currency=policy.currency or currency,
        window_days=policy.frequency_cap.window_days,
        products=catalogue,
        advocates=False,
        shipments_since=shipments_since(policy, platform, as_of),
        customer_ids=customer_ids,
        columns=(  # the loyalty derivation's amounts and refund ids, in the same read
            {"orders": amount_columns(policy), "refunds": ("id",)}
            if policy.loyalty.enabled
            else None
        ),
    )


def _with_rows(frames: Frames) -> set[str]:
    """Every customer a program can plan for: the customers, and those whose orders,
    checkouts or browse events remain (a customer deleted on the platform keeps its orders),
    but for the erased, who get nothing."""
    found = set(frames.customers["id"].to_list())
    for frame in (frames.orders, frames.checkouts, frames.browse):
        found.update(frame["customer_id"].drop_nulls().unique().to_list())
    return found - set(frames.erased["customer_id"].to_list())
