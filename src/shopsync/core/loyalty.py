"""The loyalty rules: a customer's points ledger derived from their history.

Everything here is pure. :func:`derive` takes one customer's :class:`History` (their orders
as facts, plus the loyalty inputs: redemptions, adjustments, birthdays, referral bonuses),
the loyalty settings and ``as_of``, and returns every ledger entry that should exist by then.
Each entry has a *source key* naming what caused it (``earn:{customer}:{order}``), so the
store can append a derivation any number of times and keep each entry once.

An entry is dated when its cause happened and depends only on what was known then, so the
ledger derived in one go equals the ledger built event by event with one derivation after
each event (a property test checks exactly that). The rules, with their defaults:

- **earn**: a paid order earns ``points_per_unit`` per currency unit of its merchandise
  value after discounts (shipping and tax excluded unless configured), rounded half-up, times
  the multiplier of the tier held at payment (the order itself counts towards tiers only
  after it has earned). Orders in another currency than the shop's earn nothing and are
  reported as notes (the store quarantines them); so are negative values. Zero-value orders
  earn nothing.
- **pending / approve**: earned points are pending for ``pending_days`` from payment, then
  approved (spendable).
- **claw-back**: a refund takes back points in proportion to the refunded share of the order
  total (cumulative, rounded half-up, never more than was earned; refunds beyond the total
  count as the total). A cancellation after payment takes back whatever is left. Points
  already approved are taken from the approved balance, which may then go negative.
- **expiry**: when a customer neither earns (orders, bonuses) nor spends for
  ``inactivity_months``, the approved balance expires. Warnings are actions, not entries.
- **spending** takes the oldest approved points first; a redemption's entry lists the lots
  it drew from.
- **tiers**: qualification by net spend (or points earned) over a rolling 12 months,
  calendar year or lifetime. Promotions happen at once and make an action; a tier is kept
  ``hold_months`` from entry, then re-evaluated and lowered silently if need be.
- **birthday**: a bonus on the day (00:00 UTC), at most once per ``cooldown_days``; a
  birthday entered fewer than ``min_days_after_entry`` days before the date waits a year.
- **category bonus** (off by default): paid at approval when an order holds a category the
  customer had not bought before (the store reads a line's category from its product).
- **referrals** are judged for the whole shop by :func:`judge_referrals`, which turns the
  approved ones into bonuses in the advocate's and the friend's histories.

Times are integers (microseconds since the epoch, UTC) and money integers (ten-thousandths
of the unit), as in the store.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from shopsync._instants import instant as from_micros
from shopsync._instants import to_micros
from shopsync.core import milestones
from shopsync.core.policy import LoyaltySettings, Tier
from shopsync.errors import ShopSyncError
from shopsync.models import MONEY_DECIMALS as MONEY_SCALE

__all__ = [
    "Adjustment",
    "Bonus",
    "Derivation",
    "Entry",
    "History",
    "LoyaltyError",
    "Note",
    "OrderFacts",
    "Redemption",
    "Referral",
    "ReferralOutcome",
    "TierChange",
    "add_months",
    "derive",
    "from_micros",
    "judge_referrals",
    "round_half_up",
    "to_micros",
]

DAY = 86_400_000_000
"""One day in microseconds."""
UNIT = 10**MONEY_SCALE
KIND_ORDER = {"earn": 0, "clawback": 1, "approve": 2, "bonus": 3, "adjust": 4, "redeem": 5}


class LoyaltyError(ShopSyncError):
    """A loyalty operation that cannot be done (too few points, not a reward step...)."""


# -- inputs ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What the rules need of one order, in store units."""

    order_id: str
    created_at: int
    paid_at: int | None
    """When it was paid (None: not paid)."""
    cancelled_at: int | None
    currency: str
    value: int
    """Earning value: merchandise after discounts (plus shipping/tax if configured)."""
    total: int
    """Order total, the base of proportional refunds."""
    refunds: tuple[tuple[str, int, int], ...] = ()
    """(refund id, when, amount), oldest first."""
    categories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Redemption:
    key: str
    at: int
    points: int


@dataclass(frozen=True, slots=True)
class Adjustment:
    key: str
    at: int
    points: int
    reason: str


@dataclass(frozen=True, slots=True)
class Bonus:
    """Points granted from outside the customer's own orders (a referral reward)."""

    key: str
    at: int
    points: int
    reason: str
    order_id: str | None = None


@dataclass(frozen=True, slots=True)
class BirthdayInput:
    entered_at: int
    """When this value was first seen (the customer's ``updated_at`` then)."""
    month: int
    day: int


@dataclass(frozen=True, slots=True)
class History:
    customer_id: str
    orders: tuple[OrderFacts, ...] = ()
    birthdays: tuple[BirthdayInput, ...] = ()
    redemptions: tuple[Redemption, ...] = ()
    adjustments: tuple[Adjustment, ...] = ()
    bonuses: tuple[Bonus, ...] = ()


# -- outputs -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    """One ledger entry: signed deltas of the pending and approved balances."""

    key: str
    customer_id: str
    kind: str
    at: int
    pending: int
    approved: int
    reason: str
    order_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Note:
    """An input the rules refused, with the reason (the store quarantines these)."""

    key: str
    customer_id: str
    reason: str
    order_id: str | None = None


@dataclass(frozen=True, slots=True)
class TierChange:
    at: int
    from_tier: str | None
    to_tier: str | None
    promoted: bool


@dataclass
class Derivation:
    entries: list[Entry]
    notes: list[Note]
    tier_changes: list[TierChange]
    tier: str | None
    """Tier held at ``as_of``."""
    tier_until: int | None
    """When the held tier is next re-evaluated."""
    last_activity: int | None
    """Last earning or spending, the start of the inactivity clock."""
    expires_at: int | None
    """When the approved balance expires unless there is activity first."""
    pending: int = 0
    """Pending balance at ``as_of``."""
    approved: int = 0
    """Approved (spendable) balance at ``as_of``."""
    next_change: int | None = None
    """The first moment after ``as_of`` at which the ledger changes with no new input
    (an approval, an expiry, a tier review, a birthday, an order paid later); None: never.
    A ledger derived at ``as_of`` stays current until then unless the data changes."""
    progress: list[Any] = field(default_factory=list)
    """Moments an order left the customer close to the next tier
    (:class:`shopsync.core.milestones.Progress`)."""


# -- small helpers -----------------------------------------------------------------------


def round_half_up(value: Fraction) -> int:
    """Nearest integer, halves away from zero."""
    if value < 0:
        return -round_half_up(-value)
    return int((value.numerator * 2 + value.denominator) // (value.denominator * 2))


def add_months(micros: int, months: int) -> int:
    """The same instant ``months`` calendar months later (day clamped to the month's end)."""
    moment = from_micros(micros)
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return to_micros(moment.replace(year=year, month=month, day=day))


def source_key(*parts: object) -> str:
    """``a:b:c``, hashed down if it would not fit the store's 255 characters."""
    key = ":".join(str(p) for p in parts)
    if len(key) <= 255:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{parts[0]}:sha256:{digest}"


def _birthday_at(year: int, month: int, day: int) -> int:
    if month == 2 and day == 29 and not calendar.isleap(year):
        day = 28  # a leap-day birthday is celebrated on 28 February in common years
    return to_micros(dt.datetime(year, month, day, tzinfo=dt.timezone.utc))


# -- tiers -------------------------------------------------------------------------------


class _Tiers:
    """Qualification for tiers, evaluated on the customer's history as of a moment."""

    def __init__(self, settings: LoyaltySettings, orders: Sequence[_Order]) -> None:
        self.settings = settings.tiers
        self.tiers: tuple[Tier, ...] = settings.tiers.tiers
        self.orders = orders

    def metric(self, at: int, entries: Sequence[Entry]) -> Fraction:
        window = self.settings.window
        if window == "rolling_12_months":
            start = at - 365 * DAY
        elif window == "calendar_year":
            start = to_micros(dt.datetime(from_micros(at).year, 1, 1, tzinfo=dt.timezone.utc)) - 1
        else:
            start = None
        if self.settings.metric == "points":
            return Fraction(
                sum(
                    e.pending + e.approved
                    for e in entries
                    if e.kind in ("earn", "bonus", "clawback")
                    and e.at <= at
                    and (start is None or e.at > start)
                )
            )
        spend = 0
        for order in self.orders:
            paid = order.facts.paid_at
            if paid is None or paid > at or (start is not None and paid <= start):
                continue
            if order.cancel_at is not None and order.cancel_at <= at:
                continue
            refunded = sum(amount for _, when, amount in order.refunds if when <= at)
            spend += order.facts.total - min(refunded, order.facts.total)
        return Fraction(spend, UNIT)

    def qualified(self, value: Fraction) -> int | None:
        best = None
        for index, tier in enumerate(self.tiers):
            if value >= Fraction(tier.threshold):
                best = index
        return best


# -- the derivation ----------------------------------------------------------------------


@dataclass(slots=True)
class _Order:
    facts: OrderFacts
    refunds: list[tuple[str, int, int]]
    cancel_at: int | None
    earned: int = 0
    clawed: int = 0
    approved: bool = False
    bucket_pending: bool = True


@dataclass(slots=True)
class _State:
    customer: str
    settings: LoyaltySettings
    as_of: int
    entries: list[Entry] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    changes: list[TierChange] = field(default_factory=list)
    pending: int = 0
    approved: int = 0
    lots: list[list[Any]] = field(default_factory=list)
    """Approved points by origin, oldest first: [source key, points left]."""
    last_activity: int | None = None
    expires_at: int | None = None
    tier: int | None = None
    tier_until: int | None = None
    last_birthday: int | None = None
    categories: set[str] = field(default_factory=set)
    kept_orders: int = 0
    progress: list[Any] = field(default_factory=list)
    progress_last: dict[str, int] = field(default_factory=dict)

    def add(
        self,
        key: str,
        kind: str,
        at: int,
        pending: int,
        approved: int,
        reason: str,
        order_id: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        self.entries.append(
            Entry(key, self.customer, kind, at, pending, approved, reason, order_id, detail or {})
        )
        self.pending += pending
        self.approved += approved

    def credit_lot(self, key: str, points: int) -> None:
        if points > 0:
            self.lots.append([key, points])

    def take(self, points: int, prefer: str | None = None) -> list[list[Any]]:
        """Remove ``points`` from the lots, ``prefer``'s lot first then oldest first."""
        taken: list[list[Any]] = []
        order = sorted(self.lots, key=lambda lot: lot[0] != prefer) if prefer else self.lots
        for lot in order:
            if points <= 0:
                break
            used = min(lot[1], points)
            if used > 0:
                lot[1] -= used
                points -= used
                taken.append([lot[0], used])
        self.lots = [lot for lot in self.lots if lot[1] > 0]
        return taken

    def activity(self, at: int) -> None:
        self.last_activity = at
        months = self.settings.expiry.inactivity_months
        self.expires_at = None if months is None else add_months(at, months)


def _order_events(
    state: _State, history: History, currency: str, orders: list[_Order]
) -> list[tuple[int, int, str, Any]]:
    settings = state.settings
    events: list[tuple[int, int, str, Any]] = []
    for facts in history.orders:
        paid = facts.paid_at
        if paid is None or paid > state.as_of:
            continue
        if facts.cancelled_at is not None and facts.cancelled_at <= paid:
            continue  # cancelled before payment: never earned
        if facts.currency != currency:
            state.notes.append(
                Note(
                    source_key("currency", state.customer, facts.order_id),
                    state.customer,
                    f"order in {facts.currency}, not the shop currency {currency}: "
                    "no loyalty points",
                    facts.order_id,
                )
            )
            continue
        if facts.value < 0 or facts.total < 0:
            state.notes.append(
                Note(
                    source_key("negative", state.customer, facts.order_id),
                    state.customer,
                    "order with a negative value: no loyalty points",
                    facts.order_id,
                )
            )
            continue
        if facts.value == 0:
            continue  # a free order earns nothing (documented, not an error)
        refunds = sorted(facts.refunds, key=lambda r: (max(r[1], paid), r[0]))
        cancel = facts.cancelled_at
        if sum(r[2] for r in refunds if r[1] <= state.as_of) > facts.total:
            state.notes.append(
                Note(
                    source_key("overrefund", state.customer, facts.order_id),
                    state.customer,
                    "refunds exceed the order total: counted as a full refund",
                    facts.order_id,
                )
            )
        order = _Order(facts, [(i, max(w, paid), a) for i, w, a in refunds], cancel)
        orders.append(order)
        events.append((paid, 0, facts.order_id, ("earn", order)))
        for refund in order.refunds:
            events.append((refund[1], 1, facts.order_id, ("refund", (order, refund))))
        if cancel is not None:
            events.append((cancel, 2, facts.order_id, ("cancel", order)))
        if settings.earn.pending_days:
            approve_at = paid + settings.earn.pending_days * DAY
            events.append((approve_at, 3, facts.order_id, ("approve", order)))
    return events


def derive(history: History, settings: LoyaltySettings, as_of: int, *, currency: str) -> Derivation:
    """Every ledger entry of one customer up to ``as_of`` (micros), oldest first."""
    state = _State(history.customer_id, settings, as_of)
    orders: list[_Order] = []
    events = _order_events(state, history, currency, orders)
    for bonus in history.bonuses:
        events.append((bonus.at, 4, bonus.key, ("bonus", bonus)))
    for adjustment in history.adjustments:
        events.append((adjustment.at, 5, adjustment.key, ("adjust", adjustment)))
    for redemption in history.redemptions:
        events.append((redemption.at, 6, redemption.key, ("redeem", redemption)))
    for at, bday in _birthday_occurrences(history.birthdays, as_of):
        events.append((at, 7, str(at), ("birthday", bday)))
    first_paid = min((o.facts.paid_at or 0 for o in orders), default=None)
    events += milestones.anniversary_events(state, first_paid, as_of + 367 * DAY)
    later = [e[0] for e in events if e[0] > as_of]
    later += [o.paid_at for o in history.orders if o.paid_at is not None and o.paid_at > as_of]
    if history.birthdays:  # the next occurrence (a year and a day covers 29 February)
        ahead = _birthday_occurrences(history.birthdays, as_of + 367 * DAY)
        later += [at for at, _ in ahead if at > as_of][:1]
    events = sorted((e for e in events if e[0] <= as_of), key=lambda e: e[:3])

    tiers = _Tiers(settings, orders)
    if tiers.tiers and tiers.tiers[0].threshold == 0:
        state.tier = 0
    for at, _, _, (kind, payload) in events:
        _dynamic(state, tiers, upto=at)
        _HANDLERS[kind](state, tiers, at, payload)
    _dynamic(state, tiers, upto=as_of)
    tier = None if state.tier is None or not tiers.tiers else tiers.tiers[state.tier].name
    later += [t for t in (state.expires_at, state.tier_until) if t is not None and t > as_of]
    return Derivation(
        state.entries,
        state.notes,
        state.changes,
        tier,
        state.tier_until,
        state.last_activity,
        state.expires_at,
        state.pending,
        state.approved,
        min(later, default=None),
        state.progress,
    )


def _dynamic(state: _State, tiers: _Tiers, *, upto: int) -> None:
    """Expiries and tier re-evaluations due by ``upto``; at a tie they come before the event
    (an expiry is due once the full period has passed)."""
    while True:
        expiry = state.expires_at
        hold = state.tier_until
        due = [t for t in (expiry, hold) if t is not None and t <= upto]
        if not due:
            return
        at = min(due)
        if expiry == at:
            state.expires_at = None
            if state.approved > 0:
                points = state.approved
                state.take(points)
                state.lots = []
                state.add(
                    source_key("expire", state.customer, at),
                    "expire",
                    at,
                    0,
                    -points,
                    f"{points} points expired after "
                    f"{state.settings.expiry.inactivity_months} months without activity",
                )
        if hold == at:
            _reevaluate_tier(state, tiers, at)


def _reevaluate_tier(state: _State, tiers: _Tiers, at: int) -> None:
    qualified = tiers.qualified(tiers.metric(at, state.entries))
    current = state.tier
    if qualified is not None and (current is None or qualified > current):
        _promote(state, tiers, at, qualified)
        return
    base = 0 if tiers.tiers and tiers.tiers[0].threshold == 0 else None
    new = qualified if qualified is not None else base
    if new != current:
        state.changes.append(TierChange(at, _name(tiers, current), _name(tiers, new), False))
    state.tier = new
    held = new is not None and tiers.tiers[new].threshold > 0
    state.tier_until = add_months(at, tiers.settings.hold_months) if held else None


def _promote(state: _State, tiers: _Tiers, at: int, new: int) -> None:
    state.changes.append(TierChange(at, _name(tiers, state.tier), _name(tiers, new), True))
    state.tier = new
    state.tier_until = add_months(at, tiers.settings.hold_months)


def _name(tiers: _Tiers, index: int | None) -> str | None:
    return None if index is None else tiers.tiers[index].name


def _check_promotion(state: _State, tiers: _Tiers, at: int) -> None:
    if not tiers.tiers:
        return
    qualified = tiers.qualified(tiers.metric(at, state.entries))
    if qualified is not None and (state.tier is None or qualified > state.tier):
        _promote(state, tiers, at, qualified)
    elif qualified is not None and qualified == state.tier and state.tier_until is not None:
        pass  # the hold runs from entry; re-qualifying does not extend it


def _multiplier(state: _State, tiers: _Tiers) -> Fraction:
    if state.tier is None or not tiers.tiers:
        return Fraction(1)
    return Fraction(tiers.tiers[state.tier].multiplier)


def _on_earn(state: _State, tiers: _Tiers, at: int, order: _Order) -> None:
    facts = order.facts
    per_unit = state.settings.earn.points_per_unit
    multiplier = _multiplier(state, tiers)
    points = round_half_up(Fraction(facts.value * per_unit, UNIT) * multiplier)
    order.earned = points
    if points > 0:
        pending = bool(state.settings.earn.pending_days)
        order.bucket_pending = pending
        order.approved = not pending
        key = source_key("earn", state.customer, facts.order_id)
        state.add(
            key,
            "earn",
            at,
            points if pending else 0,
            0 if pending else points,
            f"order {facts.order_id} paid: {points} points"
            + (f" (tier multiplier {multiplier})" if multiplier != 1 else ""),
            facts.order_id,
            {"value_units": facts.value, "per_unit": per_unit, "multiplier": str(multiplier)},
        )
        if not pending:
            state.credit_lot(key, points)
        state.activity(at)
        if not pending:  # approved at payment: what approval pays is paid now
            milestones.on_kept_order(state, tiers, at, facts.order_id)
            _category_bonus(state, at, order, points)
    _check_promotion(state, tiers, at)
    if points > 0:
        milestones.check_progress(state, tiers, at, facts.order_id)


def _claw(state: _State, order: _Order, at: int, points: int, key: str, reason: str) -> None:
    if points <= 0:
        return
    order.clawed += points
    if not order.approved:
        state.add(key, "clawback", at, -points, 0, reason, order.facts.order_id)
    else:
        state.take(points, prefer=source_key("approve", state.customer, order.facts.order_id))
        state.add(key, "clawback", at, 0, -points, reason, order.facts.order_id)


def _on_refund(state: _State, tiers: _Tiers, at: int, payload: Any) -> None:
    order, (refund_id, _, _) = payload
    facts: OrderFacts = order.facts
    if order.earned <= 0 or (order.cancel_at is not None and order.cancel_at <= at):
        return
    refunded = 0
    for rid, _when, amount in order.refunds:
        refunded += amount
        if rid == refund_id:
            break
    share = Fraction(min(refunded, facts.total), facts.total) if facts.total else Fraction(1)
    target = min(order.earned, round_half_up(order.earned * share))
    _claw(
        state,
        order,
        at,
        target - order.clawed,
        source_key("clawback", state.customer, facts.order_id, refund_id),
        f"refund {refund_id} on order {facts.order_id}",
    )


def _on_cancel(state: _State, tiers: _Tiers, at: int, order: _Order) -> None:
    _claw(
        state,
        order,
        at,
        order.earned - order.clawed,
        source_key("clawback", state.customer, order.facts.order_id, "cancel"),
        f"order {order.facts.order_id} cancelled",
    )


def _on_approve(state: _State, tiers: _Tiers, at: int, order: _Order) -> None:
    facts = order.facts
    remaining = order.earned - order.clawed
    order.approved = True
    if remaining > 0:
        key = source_key("approve", state.customer, facts.order_id)
        state.add(
            key,
            "approve",
            at,
            -remaining,
            remaining,
            f"order {facts.order_id} past the {state.settings.earn.pending_days}-day return window",
            facts.order_id,
        )
        state.credit_lot(key, remaining)
        milestones.on_kept_order(state, tiers, at, facts.order_id)
        _check_promotion(state, tiers, at)
    _category_bonus(state, at, order, remaining)


def _category_bonus(state: _State, at: int, order: _Order, remaining: int) -> None:
    """A first order in a category, paid when the order's points are approved."""
    facts = order.facts
    bonus = state.settings.category_bonus.points
    fresh = sorted(set(facts.categories) - state.categories)
    if bonus and remaining > 0 and fresh and order.earned > 0:
        key = source_key("bonus", "category", state.customer, facts.order_id)
        state.add(
            key,
            "bonus",
            at,
            0,
            bonus,
            f"first order in {', '.join(fresh)}",
            facts.order_id,
            {"categories": fresh},
        )
        state.credit_lot(key, bonus)
        state.activity(at)
    if remaining > 0:
        state.categories.update(facts.categories)


def _on_bonus(state: _State, tiers: _Tiers, at: int, bonus: Bonus) -> None:
    if bonus.points <= 0:
        return
    state.add(bonus.key, "bonus", at, 0, bonus.points, bonus.reason, bonus.order_id)
    state.credit_lot(bonus.key, bonus.points)
    state.activity(at)
    _check_promotion(state, tiers, at)


def _on_adjust(state: _State, tiers: _Tiers, at: int, adjustment: Adjustment) -> None:
    key = source_key("adjust", adjustment.key)
    state.add(key, "adjust", at, 0, adjustment.points, adjustment.reason)
    if adjustment.points > 0:
        state.credit_lot(key, adjustment.points)
    else:
        state.take(-adjustment.points)


def _on_redeem(state: _State, tiers: _Tiers, at: int, redemption: Redemption) -> None:
    lots = state.take(redemption.points)
    state.add(
        source_key("redeem", redemption.key),
        "redeem",
        at,
        0,
        -redemption.points,
        f"redeemed {redemption.points} points for a reward",
        None,
        {"from": lots},
    )
    state.activity(at)


def _on_birthday(state: _State, tiers: _Tiers, at: int, bday: BirthdayInput) -> None:
    settings = state.settings.birthday
    if not settings.points:
        return
    if at - bday.entered_at < settings.min_days_after_entry * DAY:
        return  # entered too close to the date: pays from next year
    if state.last_birthday is not None and at - state.last_birthday < settings.cooldown_days * DAY:
        return
    state.last_birthday = at
    day = from_micros(at).date().isoformat()
    key = source_key("bonus", "birthday", state.customer, day)
    state.add(key, "bonus", at, 0, settings.points, f"birthday bonus {day}")
    state.credit_lot(key, settings.points)
    state.activity(at)


_HANDLERS: dict[str, Any] = {
    "earn": _on_earn,
    "refund": _on_refund,
    "cancel": _on_cancel,
    "approve": _on_approve,
    "bonus": _on_bonus,
    "adjust": _on_adjust,
    "redeem": _on_redeem,
    "birthday": _on_birthday,
    "anniversary": lambda *event: milestones.on_anniversary(*event),
}


def _birthday_occurrences(
    inputs: Sequence[BirthdayInput], as_of: int
) -> list[tuple[int, BirthdayInput]]:
    """Each birthday date up to ``as_of`` with the value that was current on it."""
    if not inputs:
        return []
    ordered = sorted(inputs, key=lambda b: b.entered_at)
    first_year = from_micros(ordered[0].entered_at).year
    last_year = from_micros(as_of).year
    found: list[tuple[int, BirthdayInput]] = []
    for year in range(first_year, last_year + 1):
        seen: set[int] = set()
        for candidate in ordered:
            at = _birthday_at(year, candidate.month, candidate.day)
            current = [b for b in ordered if b.entered_at <= at]
            if at <= as_of and current and current[-1] is candidate and at not in seen:
                seen.add(at)
                found.append((at, candidate))
    return found


# -- referrals ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Referral:
    """A referral as recorded: who referred whom, when, from where."""

    key: str
    advocate_id: str
    at: int
    friend_id: str | None = None
    friend_email: str | None = None
    ip: str | None = None


@dataclass(frozen=True, slots=True)
class Person:
    """What the fraud checks compare between advocate and friend."""

    customer_id: str
    email: str | None = None
    name: str | None = None
    address: str | None = None


@dataclass(frozen=True, slots=True)
class ReferralOutcome:
    key: str
    status: str
    """``rewarded``, ``waiting`` (no qualifying order approved yet) or ``blocked``."""
    reason: str
    friend_id: str | None = None
    order_id: str | None = None


def normalize_email(email: str | None) -> str | None:
    """Lower case, ``+tag`` and dots of the local part removed: "similar" addresses match."""
    if not email or "@" not in email:
        return None
    local, _, domain = email.strip().lower().partition("@")
    return local.split("+", 1)[0].replace(".", "") + "@" + domain


def normalize_text(value: str | None) -> str | None:
    if not value:
        return None
    squeezed = re.sub(r"[^0-9a-z]+", " ", value.casefold()).strip()
    return squeezed or None


def judge_referrals(
    referrals: Iterable[Referral],
    people: Mapping[str, Person],
    orders: Mapping[str, Sequence[OrderFacts]],
    email_to_customer: Mapping[str, str],
    settings: LoyaltySettings,
    as_of: int,
    *,
    currency: str,
) -> tuple[list[ReferralOutcome], dict[str, list[Bonus]]]:
    """Decide every referral up to ``as_of``; the bonuses are keyed by customer id.

    Blocked (each checked in this order): the friend is the advocate or shares their
    (normalized) email, name or address; the advocate or the IP made ``max_per_window``
    referrals within ``window_days``; the friend had a paid order before the referral (not
    their first order); the friend's first order is under ``min_order``; the friend has no
    account to credit. A referral waits until the friend's first order is past its approval
    period, and earns nothing if that order was cancelled or fully refunded by then.
    """
    rules = settings.referral
    outcomes: list[ReferralOutcome] = []
    bonuses: dict[str, list[Bonus]] = {}
    ordered = sorted((r for r in referrals if r.at <= as_of), key=lambda r: (r.at, r.key))
    for index, ref in enumerate(ordered):
        friend_id = ref.friend_id
        if friend_id is None and ref.friend_email:
            friend_id = email_to_customer.get(ref.friend_email.strip().lower())
        reason = _fraud(ref, friend_id, people, ordered[: index + 1], rules)
        if reason is None and friend_id is None:
            reason = "the friend has no customer account to credit"
        if reason is not None:
            outcomes.append(ReferralOutcome(ref.key, "blocked", reason, friend_id))
            continue
        assert friend_id is not None
        paid = sorted(
            (o for o in orders.get(friend_id, ()) if o.paid_at is not None and o.total > 0),
            key=lambda o: (o.paid_at or 0, o.order_id),
        )
        if paid and (paid[0].paid_at or 0) < ref.at:
            outcomes.append(
                ReferralOutcome(
                    ref.key, "blocked", "not the friend's first order", friend_id, paid[0].order_id
                )
            )
            continue
        first = paid[0] if paid else None
        if first is None or (first.paid_at or 0) > as_of:
            outcomes.append(ReferralOutcome(ref.key, "waiting", "no order yet", friend_id))
            continue
        if first.currency != currency:
            outcomes.append(
                ReferralOutcome(
                    ref.key, "blocked", f"order in {first.currency}", friend_id, first.order_id
                )
            )
            continue
        if Fraction(first.value, UNIT) < Fraction(rules.min_order):
            outcomes.append(
                ReferralOutcome(
                    ref.key, "blocked", "order below the minimum", friend_id, first.order_id
                )
            )
            continue
        approve_at = (first.paid_at or 0) + settings.earn.pending_days * DAY
        if approve_at > as_of:
            outcomes.append(
                ReferralOutcome(
                    ref.key, "waiting", "order in its return window", friend_id, first.order_id
                )
            )
            continue
        if first.cancelled_at is not None and first.cancelled_at <= approve_at:
            outcomes.append(
                ReferralOutcome(ref.key, "blocked", "order cancelled", friend_id, first.order_id)
            )
            continue
        refunded = sum(a for _, w, a in first.refunds if w <= approve_at)
        kept = Fraction(first.value) * (1 - Fraction(min(refunded, first.total), first.total or 1))
        if kept <= 0:
            outcomes.append(
                ReferralOutcome(ref.key, "blocked", "order refunded", friend_id, first.order_id)
            )
            continue
        per_point = settings.redemption.points_per_unit
        for who, percent, side in (
            (ref.advocate_id, rules.advocate_percent, "advocate"),
            (friend_id, rules.friend_percent, "friend"),
        ):
            points = round_half_up(kept * Fraction(percent) * per_point / (100 * UNIT))
            if points > 0:
                bonuses.setdefault(who, []).append(
                    Bonus(
                        source_key("bonus", "referral", ref.key, side),
                        approve_at,
                        points,
                        f"referral reward ({side}) for order {first.order_id}",
                        first.order_id,
                    )
                )
        outcomes.append(ReferralOutcome(ref.key, "rewarded", "", friend_id, first.order_id))
    return outcomes, bonuses


def _fraud(
    ref: Referral,
    friend_id: str | None,
    people: Mapping[str, Person],
    earlier: Sequence[Referral],
    rules: Any,
) -> str | None:
    advocate = people.get(ref.advocate_id)
    friend = people.get(friend_id) if friend_id else None
    if friend_id == ref.advocate_id:
        return "self-referral: the friend is the advocate"
    friend_email = normalize_email(friend.email if friend else ref.friend_email)
    if advocate is not None:
        if friend_email and friend_email == normalize_email(advocate.email):
            return "self-referral: same email as the advocate"
        if friend is not None:
            if friend.name and friend.name == advocate.name:
                return "self-referral: same name as the advocate"
            if friend.address and friend.address == advocate.address:
                return "self-referral: same address as the advocate"
    start = ref.at - rules.window_days * DAY
    recent = [r for r in earlier if r.at > start]
    by_advocate = sum(1 for r in recent if r.advocate_id == ref.advocate_id)
    by_ip = sum(1 for r in recent if ref.ip and r.ip == ref.ip)
    if max(by_advocate, by_ip) >= rules.max_per_window:
        return f"too many referrals: {rules.max_per_window} within {rules.window_days} days"
    return None


def money_points(amount: Decimal, per_unit: int) -> int:
    """Points worth ``amount`` at ``per_unit`` points per unit (half-up)."""
    return round_half_up(Fraction(amount) * per_unit)
