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
(:mod:`shopsync.core.context`) and call :func:`plan_frames`; nothing here reads or writes."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

import polars as pl

from shopsync.core import reviews as review_rules
from shopsync.core._data import Frames, consent_at, paid_orders
from shopsync.core.actions import Action
from shopsync.core.context import ShopContext, purchases, shop_context
from shopsync.core.policy import Policy
from shopsync.core.recommend import recommend
from shopsync.core.replenish import replenishment, warranty
from shopsync.core.winback import winback

__all__ = ["Held", "Plan", "in_holdout", "merge_plans", "plan_frames", "quiet_reason"]

HOUR_US = 3_600_000_000
Rule = Literal["consent", "suppressed", "holdout", "quiet", "frequency_cap"]


@dataclass(frozen=True)
class Held:
    """An action a safety rule held back, and why."""

    action: Action
    rule: Rule
    detail: str


@dataclass(frozen=True)
class Plan(Sequence[Action]):
    """The actions to deliver, in a stable order; iterate it like a list."""

    as_of: dt.datetime
    actions: tuple[Action, ...]
    held: tuple[Held, ...] = ()
    notes: tuple[str, ...] = ()
    """What a reader of the plan should know (empty shop, future orders, no outbox...)."""
    shops: tuple[tuple[str, str], ...] = ()

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
    context: ShopContext | None = None,
    loyalty: Sequence[Action] = (),
    notes: Sequence[str] = (),
    one_customer: bool = False,
) -> Plan:
    """The plan of one shop (or of one customer, ``one_customer``) from its frames.

    ``context`` is the shop's statistics as of the start of the day (:func:`shop_context` of
    the whole shop; computed from ``frames`` when not given, which only whole-shop frames
    allow); ``loyalty`` the loyalty notices derived from the ledger (used when the program is
    on); ``notes`` what the caller learnt while reading (a stale ledger), kept after the
    planner's own.
    """
    ctx = shop_context(frames, policy) if context is None else context
    said: list[str] = []
    if frames.orders.height == 0 and not one_customer:
        said.append(
            f"the shop has no customer orders placed by {as_of.isoformat()}: only loyalty "
            "notices can be planned"
        )
    if frames.future_orders:
        said.append(
            f"{frames.future_orders} order(s) placed after as_of ({as_of.isoformat()}) were "
            "left out: a plan only sees what had happened by then"
        )
    if frames.sent is None:
        said.append(
            "no outbox table in the store: the frequency cap counts only this plan's own "
            "messages, not ones delivered before"
        )
    if ctx.mbg is None and policy.winback.enabled and policy.winback.alive_threshold > 0:
        said.append(f"win-back P(alive) trigger off: {ctx.model_note}")
    paid = paid_orders(frames)
    found: list[Action] = []
    found += review_rules.review_requests(frames, policy)
    found += winback(frames, paid, ctx, policy)
    found += replenishment(frames, paid, ctx, policy)
    found += warranty(frames, paid, ctx, policy)
    if policy.loyalty.enabled:
        found += loyalty
    kept, held = _guard(found, frames, policy, as_of)
    # only what will be sent needs recommendations (held actions come back in a later plan)
    kept = _with_recommendations(kept, frames, paid, ctx, policy)
    return Plan(as_of, tuple(kept), tuple(held), (*said, *notes), ((frames.platform, frames.shop),))


def merge_plans(at: dt.datetime, parts: Sequence[Plan], shops: tuple[tuple[str, str], ...]) -> Plan:
    """One plan of several shops (notes prefixed with their shop)."""
    if len(parts) == 1:
        only = parts[0]
        return Plan(at, only.actions, only.held, only.notes, shops)
    return Plan(
        at,
        tuple(a for p in parts for a in p.actions),
        tuple(h for p in parts for h in p.held),
        tuple(f"{s[1]}: {n}" for s, p in zip(shops, parts, strict=True) for n in p.notes),
        shops,
    )


def _with_recommendations(
    actions: list[Action], frames: Frames, paid: pl.DataFrame, ctx: ShopContext, policy: Policy
) -> list[Action]:
    r = policy.recommendations
    if not r.enabled or r.per_action == 0 or not ctx.also_bought.neighbours:
        return actions
    wanting = {a.customer_id for a in actions if "recommendations" in type(a).model_fields}
    if not wanting:
        return actions
    bought = purchases(paid.filter(pl.col("customer_id").is_in(list(wanting))), frames.lines)
    owned: dict[str, set[str]] = {}
    for cid, pid in bought.select("customer_id", "product_id").iter_rows():
        owned.setdefault(cid, set()).add(pid)
    out: list[Action] = []
    for action in actions:
        if "recommendations" not in type(action).model_fields:
            out.append(action)
            continue
        mine = owned.get(action.customer_id, set())
        seeds: set[str]
        if hasattr(action, "product_ids"):
            seeds = set(action.product_ids)
        elif hasattr(action, "product_id"):
            seeds = {action.product_id}
        else:
            seeds = mine
        picks = recommend(ctx.also_bought, seeds, mine, r.per_action, ctx.available)
        out.append(action.model_copy(update={"recommendations": picks}) if picks else action)
    return out


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


def _priority(policy: Policy, kind: str) -> tuple[int, str]:
    order = policy.messaging.priority
    return (order.index(kind), kind) if kind in order else (len(order), kind)


def _guard(
    actions: list[Action], frames: Frames, policy: Policy, as_of: dt.datetime
) -> tuple[list[Action], list[Held]]:
    at = frames.as_of
    overrides = policy.messaging.marketing
    classified = [
        a.model_copy(update={"marketing": overrides[a.kind]})
        if a.kind in overrides and overrides[a.kind] != a.marketing
        else a
        for a in actions
    ]
    marketing_customers = {a.customer_id for a in classified if a.marketing}
    consent: dict[str, str] = {}
    buyers: set[str] = set()
    if marketing_customers:
        ids = list(marketing_customers)
        consent = dict(consent_at(frames).filter(pl.col("customer_id").is_in(ids)).iter_rows())
        buyers = set(
            paid_orders(frames).filter(pl.col("customer_id").is_in(ids))["customer_id"].to_list()
        )
    suppressed = set(frames.suppressed["customer_id"].to_list())
    quiet = quiet_reason(policy, as_of)
    cap = policy.frequency_cap
    history: dict[str, list[int]] = {}
    done: set[str] = set()
    if frames.sent is not None and marketing_customers:
        for cid, key, when in frames.sent.filter(
            pl.col("customer_id").is_in(list(marketing_customers))
        ).iter_rows():
            history.setdefault(cid, []).append(when)
            done.add(key)
    soft = policy.consent.allow_soft_opt_in

    def ordering(a: Action) -> tuple[Any, ...]:
        return (a.shop, a.customer_id, _priority(policy, a.kind), a.due_at, a.idempotency_key)

    kept: list[Action] = []
    held: list[Held] = []
    last_sent: dict[str, int] = {}
    count: dict[str, int] = {}
    for cid, times in history.items():
        last_sent[cid] = max(times)
        count[cid] = len(times)
    gap = cap.email_hours * HOUR_US
    for action in sorted(classified, key=ordering):
        if not action.marketing:
            kept.append(action)
            continue
        cid = action.customer_id
        state = consent.get(cid, "unknown")
        if cid in suppressed:
            held.append(Held(action, "suppressed", "unsubscribed through shopsync"))
            continue
        if not (
            state == "subscribed"
            or (soft and cid in buyers and state in ("not_subscribed", "unknown"))
        ):
            held.append(Held(action, "consent", f"email consent is {state!r} at as_of"))
            continue
        if in_holdout(policy, action.platform, action.shop, cid):
            held.append(Held(action, "holdout", f"in the {policy.holdout.share} holdout group"))
            continue
        if quiet is not None:
            held.append(Held(action, "quiet", quiet))
            continue
        if action.idempotency_key in done:
            kept.append(action)  # delivered already: the outbox will not send it twice
            continue
        if count.get(cid, 0) >= cap.max_emails:
            held.append(
                Held(
                    action,
                    "frequency_cap",
                    f"{count[cid]} marketing emails in {cap.window_days} days "
                    f"(at most {cap.max_emails})",
                )
            )
            continue
        previous = last_sent.get(cid)
        if previous is not None and at - previous < gap:
            held.append(
                Held(
                    action,
                    "frequency_cap",
                    f"another marketing email within {cap.email_hours} hours",
                )
            )
            continue
        kept.append(action)
        last_sent[cid] = at
        count[cid] = count.get(cid, 0) + 1
    return kept, held
