"""The planner: every enabled program, then the rules that keep messages welcome.

:func:`plan_frames` is pure: it takes one shop's frames (read once by
:func:`shopsync.frames.load`), a policy, ``as_of`` and the loyalty notices already derived, and
runs review requests, win-back, replenishment and warranty notices, attaches "also bought"
recommendations, and then applies, in this order:

1. **classification** — each kind is marketing or transactional (the action's default, or
   ``messaging.marketing``); transactional actions pass every rule below;
2. **consent** — marketing needs email consent ``subscribed`` as of ``as_of`` (or, with
   ``consent.allow_soft_opt_in``, a customer who bought and never said no), and no
   unsubscription recorded in the outbox's ``suppressions`` table;
3. **holdout** — a stable hash of (salt, platform, shop, customer) puts ``holdout.share`` of
   customers in a control group that gets no marketing;
4. **quiet periods** — nothing marketing goes out inside ``quiet.hours`` or ``quiet.periods``;
5. **frequency cap** — per customer, at most one marketing email per ``email_hours`` and
   ``max_emails`` per ``window_days``. Deliveries the outbox has marked done count
   (:attr:`Frames.sent`); without an outbox only this plan's own messages count, and the plan
   says so in :attr:`Plan.notes`. When programs collide, ``messaging.priority`` decides who
   goes first; the others are held, not dropped for good: they come back in a later plan
   while their own window is open.

Held actions are kept in :attr:`Plan.held` with the rule that held them, so nothing vanishes
silently. ``shopsync.plan(store, ...)`` and ``shopsync.plan_customer`` (:mod:`shopsync.planning`)
read the store, bring the loyalty ledger up to date, keep the day's shop-wide statistics
(:mod:`shopsync.core.shop_stats`) and call :func:`plan_frames`; nothing here reads or writes."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from shopsync.core import review_requests as review_rules
from shopsync.core._candidates import COMMON, Candidates, of_actions
from shopsync.core._data import FEW_ROWS, Frames, column_rows, consent_lazy, paid_orders
from shopsync.core._guard_rows import (
    SUPPRESSED,
    consent_detail,
    decide_rows,
    holdout_detail,
    open_rows,
    ranks,
    with_verdicts,
)
from shopsync.core._replenish_rows import Bought
from shopsync.core.abandoned import abandoned_candidates
from shopsync.core.actions import Action
from shopsync.core.browse import browse_candidates
from shopsync.core.education import education_candidates
from shopsync.core.held import RULES, Held, HeldRows, owned
from shopsync.core.policy import Policy
from shopsync.core.recommend import with_recommendations
from shopsync.core.replenish import replenishment_candidates, warranty_candidates
from shopsync.core.shipping import shipping_candidates
from shopsync.core.shop_models import ModelsUsed
from shopsync.core.shop_stats import ShopStats, purchases, shop_stats
from shopsync.core.surveys import survey_candidates
from shopsync.core.winback import rhythm, winback_candidates

__all__ = [
    "RULES",
    "Draft",
    "Held",
    "HeldRows",
    "Plan",
    "draft",
    "in_holdout",
    "merge_plans",
    "plan_frames",
    "plan_notes",
    "quiet_reason",
]

HOUR_US = 3_600_000_000
PAID_COLUMNS = ("id", "customer_id", "created_at", "net")
"""What the programs and the rules read of :func:`paid_orders` (:func:`program_candidates`
takes no more than these)."""
_COPY_ABOVE = 10_000
"""Candidates above which a plan's held rows are copied out of them (:func:`_held`); below,
copying costs more queries (~0.3 ms each) than the frames it frees."""


@dataclass(frozen=True)
class Plan(Sequence[Action]):
    """The actions to deliver, in a stable order; iterate it like a list."""

    as_of: dt.datetime
    actions: tuple[Action, ...]
    held: Sequence[Held] = ()
    """Held actions with their rule (a tuple, or :class:`HeldRows` built on first look)."""
    notes: tuple[str, ...] = ()
    """What a reader of the plan should know (empty shop, future orders, no outbox...)."""
    shops: tuple[tuple[str, str], ...] = ()
    models: tuple[ModelsUsed, ...] = field(default=(), compare=False)
    """Which shop-level models each shop's plan used (:mod:`shopsync.stored_models`); not
    part of a plan's equality: the same actions from a reused or a rebuilt model are one plan."""

    def __iter__(self) -> Iterator[Action]:
        return iter(self.actions)

    def __len__(self) -> int:
        return len(self.actions)

    def __getitem__(self, index: Any) -> Any:
        return self.actions[index]

    @property
    def counts(self) -> dict[str, int]:
        """Planned actions by kind."""
        return dict(sorted(Counter(a.kind for a in self.actions).items()))

    @property
    def held_counts(self) -> dict[str, int]:
        """Held actions by rule."""
        if isinstance(self.held, HeldRows):
            return self.held.counts()
        return dict(sorted(Counter(h.rule for h in self.held).items()))

    @property
    def keys(self) -> list[str]:
        return [a.idempotency_key for a in self.actions]

    def summary(self) -> str:
        planned = ", ".join(f"{k} {v}" for k, v in self.counts.items()) or "nothing"
        held = ", ".join(f"{k} {v}" for k, v in self.held_counts.items()) or "nothing"
        return f"planned: {planned}; held: {held}"


# -- one shop ---------------------------------------------------------------------------------


def plan_frames(
    frames: Frames,
    policy: Policy,
    as_of: dt.datetime,
    *,
    stats: ShopStats | None = None,
    loyalty: Sequence[Action] = (),
    notes: Sequence[str] = (),
    one_customer: bool = False,
) -> Plan:
    """The plan of one shop (or of one customer, ``one_customer``) from its frames.

    ``stats`` is the shop's statistics as of the start of the day (:func:`shop_stats` of
    the whole shop; computed from ``frames`` when not given, which only whole-shop frames
    allow); ``loyalty`` the loyalty notices derived from the ledger (used when the program is
    on); ``notes`` what the caller learnt while reading (a stale ledger), kept after the
    planner's own.
    """
    drafted = draft(frames, policy, as_of, stats=stats, one_customer=one_customer)
    return drafted.plan(loyalty, notes)


@dataclass(frozen=True)
class Draft:
    """One shop's program candidates before loyalty's notices join them and the rules run
    (:func:`draft`); :meth:`plan` finishes it."""

    frames: Frames
    policy: Policy
    as_of: dt.datetime
    stats: ShopStats
    said: tuple[str, ...]
    paid: pl.DataFrame
    found: tuple[Candidates, ...]
    bought: Bought | None
    recommending: bool
    pace: pl.DataFrame | None = None
    """Win-back's rhythm of ``paid``, shared by its candidates and next-due moments."""

    def plan(self, loyalty: Sequence[Action] = (), notes: Sequence[str] = ()) -> Plan:
        """The plan: the candidates and ``loyalty``'s notices through the rules;
        ``notes`` kept after the planner's own (see :func:`plan_frames`)."""
        found = list(self.found)
        if self.policy.loyalty.enabled and loyalty:
            found.append(of_actions(loyalty))
        kept, held = _guard(found, self.frames, self.policy, self.as_of, self.paid)
        # only what will be sent needs recommendations (held actions come back in a later plan)
        if self.recommending and self.bought is not None:
            stats, per_action = self.stats, self.policy.recommendations.per_action
            kept = with_recommendations(
                kept, self.bought.frame, stats.also_bought, stats.available, per_action
            )
        shop = ((self.frames.platform, self.frames.shop),)
        return Plan(self.as_of, tuple(kept), held, (*self.said, *notes), shop)


def draft(
    frames: Frames,
    policy: Policy,
    as_of: dt.datetime,
    *,
    stats: ShopStats | None = None,
    one_customer: bool = False,
) -> Draft:
    """Every program's candidates but loyalty's, which read nothing loyalty derives: a
    whole-shop plan derives the loyalty notices meanwhile (:mod:`shopsync.planning`)."""
    stats = shop_stats(frames, policy) if stats is None else stats
    none = frames.orders.height == 0 and not one_customer
    said = plan_notes(policy, as_of, stats, none, frames.future_orders, frames.sent is not None)
    paid = paid_orders(frames, columns=PAID_COLUMNS)
    recommending, bought = _bought(frames, policy, stats, paid)
    wb = policy.winback.enabled and paid.height > 0  # its rhythm: see Draft.pace
    pace = rhythm(paid, stats, policy, frames.as_of) if wb else None
    found = program_candidates(frames, policy, stats, paid, bought, pace)
    return Draft(
        frames, policy, as_of, stats, tuple(said), paid, tuple(found), bought, recommending, pace
    )


def plan_notes(
    policy: Policy, as_of: dt.datetime, stats: ShopStats, no_orders: bool, future: int, outbox: bool
) -> list[str]:
    """The planner's own notes on a shop: no customer orders by ``as_of``, ``future`` orders
    left out, no outbox, the win-back trigger off (a plan in parts says them once)."""
    said: list[str] = []
    if no_orders:
        said.append(
            f"the shop has no customer orders placed by {as_of.isoformat()}: only loyalty "
            "notices can be planned"
        )
    if future:
        said.append(
            f"{future} order(s) placed after as_of ({as_of.isoformat()}) were "
            "left out: a plan only sees what had happened by then"
        )
    if not outbox:
        said.append(
            "no outbox table in the store: the frequency cap counts only this plan's own "
            "messages, not ones delivered before"
        )
    if stats.mbg is None and policy.winback.enabled and policy.winback.alive_threshold > 0:
        said.append(f"win-back P(alive) trigger off: {stats.model_note}")
    return said


def _bought(
    frames: Frames, policy: Policy, stats: ShopStats, paid: pl.DataFrame
) -> tuple[bool, Bought | None]:
    """Whether recommendations are attached, and the one kept-quantity table replenishment,
    warranty and recommendations share (None when none of them needs it)."""
    r = policy.recommendations
    recommending = r.enabled and r.per_action > 0 and bool(stats.also_bought.neighbours)
    wanted = policy.replenishment.enabled or recommending
    return recommending, Bought(purchases(paid, frames.lines, amounts=False)) if wanted else None


def program_candidates(
    frames: Frames,
    policy: Policy,
    stats: ShopStats,
    paid: pl.DataFrame,
    bought: Bought | None,
    pace: pl.DataFrame | None = None,
) -> list[Candidates]:
    """Every program's candidates but loyalty's (its notices come derived from the ledger);
    ``paid`` needs no more than :data:`PAID_COLUMNS`; ``pace``: win-back's rhythm of it."""
    return [
        review_rules.review_candidates(frames, policy),
        winback_candidates(frames, paid, stats, policy, pace),
        replenishment_candidates(frames, paid, stats, policy, bought),
        warranty_candidates(frames, paid, stats, policy, bought),
        shipping_candidates(frames, policy),
        education_candidates(frames, paid, stats, policy),
        survey_candidates(frames, policy),
        abandoned_candidates(frames, paid, policy),  # issue 22
        browse_candidates(frames, paid, policy),
    ]


def merge_plans(at: dt.datetime, parts: Sequence[Plan], shops: tuple[tuple[str, str], ...]) -> Plan:
    """One plan of several shops (notes prefixed with their shop)."""
    if len(parts) == 1:
        only = parts[0]
        return Plan(at, only.actions, only.held, only.notes, shops, only.models)
    return Plan(
        at,
        tuple(a for p in parts for a in p.actions),
        tuple(h for p in parts for h in p.held),
        tuple(f"{s[1]}: {n}" for s, p in zip(shops, parts, strict=True) for n in p.notes),
        shops,
        tuple(m for p in parts for m in p.models),
    )


# -- the safety rules ---------------------------------------------------------------------------


def in_holdout(policy: Policy, platform: str, shop: str, customer_id: str) -> bool:
    """Whether the customer is in the control group (stable: a hash, not a draw)."""
    share = policy.holdout.share
    if share <= 0:
        return False
    digest = hashlib.sha256(
        f"{policy.holdout.salt}\x1f{platform}\x1f{shop}\x1f{customer_id}".encode()
    ).digest()
    return int.from_bytes(digest[:8], "big") < int(share * 2**64)


def quiet_reason(policy: Policy, as_of: dt.datetime) -> str | None:
    q = policy.quiet
    if q.hours is None and not q.periods:
        return None
    local = as_of.astimezone(ZoneInfo(q.timezone))
    for period in q.periods:
        if period.start <= local.date() <= period.end:
            name = f" ({period.name})" if period.name else ""
            return f"quiet period{name} {period.start} to {period.end}"
    if q.hours is not None:
        start, end = q.hours
        hour = local.hour
        inside = start <= hour < end if start < end else hour >= start or hour < end
        if inside:
            return f"quiet hours {start:02d}:00-{end:02d}:00 {q.timezone}"
    return None


def _guard(
    found: list[Candidates],
    frames: Frames,
    policy: Policy,
    as_of: dt.datetime,
    paid: pl.DataFrame,
) -> tuple[list[Action], HeldRows]:
    """The safety rules over every candidate at once; actions are built for the kept rows
    (and for the held ones when someone looks at them)."""
    found = [c for c in found if c.frame.height]
    if not found:
        return [], HeldRows()
    table = _decide(found, frames, policy, as_of, paid)
    overrides = policy.messaging.marketing
    kept_rows, held_rows = _split(table)
    kept = _build(dict(enumerate(found)), kept_rows, overrides)
    return kept, _held(found, held_rows, overrides)


def _build(
    found: dict[int, Candidates], rows: pl.DataFrame, overrides: dict[str, bool]
) -> list[Action]:
    """The actions of ``rows`` (``src``: which of ``found``, ``row``: where in its frame)."""
    srcs, positions = rows["src"].to_list(), rows["row"].to_list()
    out: list[Action | None] = [None] * len(srcs)
    wanted: dict[int, list[tuple[int, int]]] = {}
    for at, (src, row) in enumerate(zip(srcs, positions, strict=True)):
        wanted.setdefault(src, []).append((at, row))
    for src, items in wanted.items():
        made = found[src].actions([row for _, row in items])
        for (at, _), action in zip(items, made, strict=True):
            if action.kind in overrides and overrides[action.kind] != action.marketing:
                action = action.model_copy(update={"marketing": overrides[action.kind]})
            out[at] = action
    return [a for a in out if a is not None]


def _held(found: list[Candidates], rows: pl.DataFrame, overrides: dict[str, bool]) -> HeldRows:
    """The held rows as columns the plan can keep; of a large plan, only the held candidates
    of each program, their strings copied out (:func:`shopsync.core.held.owned`)."""
    rows = rows[["src", "row", "rule", "detail", "customer_id"]]  # columns, not a query
    theirs = dict(enumerate(found))
    if sum(c.frame.height for c in found) > _COPY_ABOVE:
        was = rows["row"]
        row = pl.int_range(pl.len(), dtype=pl.Int64).over("src").alias("row")  # in their copy
        rows = owned(rows.with_columns(row, pl.col("rule").cast(RULES)))
        srcs = rows["src"]
        theirs = {
            src: Candidates(owned(found[src].frame[was.filter(srcs == src)]), found[src].build)
            for src in srcs.unique().to_list()
        }

    def make() -> list[Held]:
        rules, details = rows["rule"].to_list(), rows["detail"].to_list()
        built = _build(theirs, rows, overrides)
        return [Held(a, r, d) for a, r, d in zip(built, rules, details, strict=True)]

    return HeldRows(rows, make)


def _split(table: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The rows kept (``rule`` null) and the rows held; no query when every row is one or
    the other (a one-customer plan's usual case: each query costs ~0.3 ms)."""
    open_count = table["rule"].null_count()
    if open_count == table.height:
        return table, table.clear()
    if open_count == 0:
        return table.clear(), table
    if table.height <= FEW_ROWS:  # rows picked by position: no query
        rules = table["rule"].to_list()
        kept = [i for i, rule in enumerate(rules) if rule is None]
        return table[kept], table[[i for i, rule in enumerate(rules) if rule is not None]]
    return table.filter(pl.col("rule").is_null()), table.filter(pl.col("rule").is_not_null())


def _decide(
    found: list[Candidates],
    frames: Frames,
    policy: Policy,
    as_of: dt.datetime,
    paid: pl.DataFrame,
) -> pl.DataFrame:
    """Every candidate in delivery order (customer, priority, due, key) with the rule that
    holds it (``rule`` null: kept) and why (``detail``); ``src``/``row`` say where it came
    from. One lazy query: a one-customer re-plan pays for one collect, not twenty; a few
    candidates' table is built in Python (:func:`~shopsync.core._guard_rows.decide_rows`)."""
    at, quiet, share = frames.as_of, quiet_reason(policy, as_of), policy.holdout.share
    control = _control(found, frames, policy)
    few = sum(c.frame.height for c in found) <= FEW_ROWS
    if few and max(frames.consent.height, frames.customers.height) <= FEW_ROWS:
        return _cap(decide_rows(found, frames, policy, paid, control, quiet), frames, policy, at)
    marketing: pl.Expr = pl.col("marketing")
    for kind, value in policy.messaging.marketing.items():
        marketing = pl.when(pl.col("kind") == kind).then(pl.lit(value)).otherwise(marketing)
    order = ranks(policy)
    rank = pl.col("kind").replace_strict(
        list(order),
        list(order.values()),
        default=len(policy.messaging.priority),
        return_dtype=pl.Int64,
    )
    table = (
        pl.concat(
            [
                c.frame.lazy()
                .select(*COMMON)
                .with_columns(
                    pl.lit(i, dtype=pl.Int64).alias("src"),
                    pl.int_range(pl.len(), dtype=pl.Int64).alias("row"),
                )
                for i, c in enumerate(found)
            ],
            how="vertical",
        )
        # an erased customer gets nothing, not even held (their orders remain)
        .filter(~pl.col("customer_id").is_in(_listed(frames.erased["customer_id"])))
        .with_columns(marketing.alias("marketing"), rank.alias("rank"))
        .sort(["customer_id", "rank", "kind", "due", "key"], maintain_order=True)
    )
    if frames.consent.height <= FEW_ROWS:  # a few: joined below, not collected apart
        consent = consent_lazy(frames)
        # every email state observed: a superset of the last ones, giving the same details
        seen = column_rows(frames.consent, "channel", "state")
        states = sorted({"unknown", *(s for c, s in seen if c == "email" and s is not None)})
    else:
        last = consent_lazy(frames).collect(engine="in-memory")
        states = sorted({"unknown", *last["email_consent"].to_list()})
        consent = last.lazy()
    table = table.join(
        consent.unique("customer_id", keep="last", maintain_order=True),
        on="customer_id",
        how="left",
        maintain_order="left",
    ).with_columns(pl.col("email_consent").fill_null("unknown"))
    state = pl.col("email_consent")
    allowed = state == "subscribed"
    if policy.consent.allow_soft_opt_in:
        buyers = _listed(paid["customer_id"])
        allowed = allowed | (
            pl.col("customer_id").is_in(buyers) & state.is_in(["not_subscribed", "unknown"])
        )
    rule: Any = (  # a when-chain, extended below
        pl.when(~pl.col("marketing"))
        .then(pl.lit(None, dtype=pl.String))
        .when(pl.col("customer_id").is_in(_listed(frames.suppressed["customer_id"])))
        .then(pl.lit("suppressed"))
        .when(~allowed)
        .then(pl.lit("consent"))
    )
    if share > 0:
        held_back = _listed(pl.Series(control, dtype=pl.String))
        rule = rule.when(pl.col("customer_id").is_in(held_back)).then(pl.lit("holdout"))
    if quiet is not None:
        rule = rule.when(pl.lit(True)).then(pl.lit("quiet"))
    detail = (
        pl.when(pl.col("rule") == "suppressed")
        .then(pl.lit(SUPPRESSED))
        .when(pl.col("rule") == "consent")
        .then(
            state.replace_strict(
                states,
                [consent_detail(s) for s in states],
                default=None,
                return_dtype=pl.String,
            )
        )
        .when(pl.col("rule") == "holdout")
        .then(pl.lit(holdout_detail(share)))
        .when(pl.col("rule") == "quiet")
        .then(pl.lit(quiet or ""))
    )
    decided = (
        table.with_columns(rule.alias("rule"))
        .with_columns(detail.alias("detail"))
        .collect(engine="in-memory")
    )
    return _cap(decided, frames, policy, at)


def _control(found: list[Candidates], frames: Frames, policy: Policy) -> list[str]:
    """The customers with a candidate in the holdout (the hash once per customer)."""
    if policy.holdout.share <= 0:
        return []
    ids = {cid for c in found for cid in c.frame["customer_id"].to_list()}
    return [c for c in ids if in_holdout(policy, frames.platform, frames.shop, c)]


def _listed(ids: pl.Series) -> pl.Expr:
    """``ids`` as one list for ``is_in``: an expression, where ``Series.implode`` would run
    a query of its own."""
    return pl.lit(ids).implode()


def _cap(table: pl.DataFrame, frames: Frames, policy: Policy, at: int) -> pl.DataFrame:
    """The frequency cap, in delivery order, over the marketing candidates still open: a
    short walk, since consent and the holdout have held most candidates by now."""
    cap = policy.frequency_cap
    few = table.height <= FEW_ROWS
    if few:  # in Python, no query
        opened = open_rows(table)
    else:
        found = table.with_row_index("_at").filter(pl.col("marketing") & pl.col("rule").is_null())
        opened = list(column_rows(found, "_at", "customer_id", "key"))
    if not opened:
        return table
    count: dict[str, int] = {}
    last_sent: dict[str, int] = {}
    done: set[str] = set()
    sent = frames.sent
    if sent is not None and 0 < sent.height <= FEW_ROWS:  # one customer's: in Python, no query
        rows = column_rows(table, "customer_id", "marketing")
        marketers = {cid for cid, marketing in rows if marketing}
        for cid, key, moment in column_rows(sent, "customer_id", "key", "at"):
            if cid is not None and cid in marketers:  # a semi join: null matches nothing
                count[cid] = count.get(cid, 0) + 1
                if moment is not None and (cid not in last_sent or moment > last_sent[cid]):
                    last_sent[cid] = moment
                done.add(key)
    elif sent is not None and sent.height:  # the deliveries to customers with a candidate
        marketed = table.lazy().filter(pl.col("marketing")).select("customer_id")
        mine = (
            sent.lazy()
            .join(marketed, on="customer_id", how="semi")
            .group_by("customer_id")
            .agg(pl.len(), pl.col("at").max(), pl.col("key"))
            .collect(engine="in-memory")
        )
        for cid, n, newest, keys in mine.iter_rows():
            count[cid], last_sent[cid] = n, newest
            done.update(keys)
    gap = cap.email_hours * HOUR_US
    rules: list[str | None] = []
    details: list[str | None] = []
    for _, cid, key in opened:
        if key in done:  # delivered already: the outbox will not send it twice
            rules.append(None)
            details.append(None)
            continue
        n = count.get(cid, 0)
        if n >= cap.max_emails:
            rules.append("frequency_cap")
            details.append(
                f"{n} marketing emails in {cap.window_days} days (at most {cap.max_emails})"
            )
            continue
        previous = last_sent.get(cid)
        if previous is not None and at - previous < gap:
            rules.append("frequency_cap")
            details.append(f"another marketing email within {cap.email_hours} hours")
            continue
        rules.append(None)
        details.append(None)
        last_sent[cid] = at
        count[cid] = n + 1
    if all(r is None for r in rules):  # nothing capped
        return table
    if few:
        return with_verdicts(table, [i for i, _, _ in opened], rules, details)
    decided = pl.DataFrame(
        {
            "_at": pl.Series([i for i, _, _ in opened], dtype=pl.UInt32),
            "_rule": pl.Series(rules, dtype=pl.String),
            "_detail": pl.Series(details, dtype=pl.String),
        }
    )
    return (  # one query
        table.lazy()
        .with_row_index("_at")
        .join(decided.lazy(), on="_at", how="left", maintain_order="left")
        .with_columns(
            pl.coalesce("rule", "_rule").alias("rule"),
            pl.coalesce("detail", "_detail").alias("detail"),
        )
        .drop("_at", "_rule", "_detail")
        .collect(engine="in-memory")
    )
