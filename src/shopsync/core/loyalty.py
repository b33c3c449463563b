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
  earn nothing, nor do orders the one purchase rule does not count
  (:attr:`OrderFacts.purchase`). Points an order earned are a fact: an order whose earn
  entry the ledger holds (:attr:`History.earned`) keeps those points whatever the earn rule
  says now (a rule change applies to orders not earned yet), and all that follows an earn
  (claw-backs, approval, balances, tiers, expiry) follows them.
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

The records (inputs, outputs, units) are in :mod:`shopsync.core.loyalty_records`, the
referral rules in :mod:`shopsync.core.loyalty_referrals` (both re-exported here) and tier
qualification in :mod:`shopsync.core.loyalty_tiers`.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from shopsync._instants import instant as from_micros
from shopsync._instants import to_micros
from shopsync.core import milestones
from shopsync.core.loyalty_records import (
    DAY,
    KIND_ORDER,
    UNIT,
    Adjustment,
    BirthdayInput,
    Bonus,
    Derivation,
    Entry,
    History,
    LoyaltyError,
    Note,
    OrderFacts,
    Redemption,
    TierChange,
    add_months,
    money_points,
    round_half_up,
    source_key,
)
from shopsync.core.loyalty_referrals import (
    Person,
    Referral,
    ReferralOutcome,
    judge_referrals,
    normalize_email,
    normalize_text,
)
from shopsync.core.loyalty_tiers import _Tiers
from shopsync.core.policy import LoyaltySettings

__all__ = [
    "DAY",
    "KIND_ORDER",
    "UNIT",
    "Adjustment",
    "BirthdayInput",
    "Bonus",
    "Derivation",
    "Entry",
    "History",
    "LoyaltyError",
    "Note",
    "OrderFacts",
    "Person",
    "Redemption",
    "Referral",
    "ReferralOutcome",
    "TierChange",
    "add_months",
    "derive",
    "from_micros",
    "judge_referrals",
    "money_points",
    "normalize_email",
    "normalize_text",
    "round_half_up",
    "source_key",
    "to_micros",
]


# -- small helpers -----------------------------------------------------------------------


def _birthday_at(year: int, month: int, day: int) -> int:
    if month == 2 and day == 29 and not calendar.isleap(year):
        day = 28  # a leap-day birthday is celebrated on 28 February in common years
    return to_micros(dt.datetime(year, month, day, tzinfo=dt.timezone.utc))


# -- the derivation ----------------------------------------------------------------------


@dataclass(slots=True)
class _Order:
    facts: OrderFacts
    refunds: list[tuple[str, int, int]]
    cancel_at: int | None
    held: int | None = None
    """The points the ledger's earn entry holds (None: not earned yet)."""
    pending: bool = False  # waits for approval: by the window now, or as its earn entry holds
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
        held = history.earned.get(facts.order_id)
        held = held if held is not None and held > 0 else None
        if (facts.value == 0 and held is None) or not facts.purchase:
            continue  # a free order, or one that is no purchase, earns nothing (not an error)
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
        pending = bool(settings.earn.pending_days)
        if held is not None and history.pending_earns is not None:
            pending = facts.order_id in history.pending_earns  # as earned, as for the points
        order = _Order(facts, [(i, max(w, paid), a) for i, w, a in refunds], cancel, held, pending)
        orders.append(order)
        events.append((paid, 0, facts.order_id, ("earn", order)))
        for refund in order.refunds:
            events.append((refund[1], 1, facts.order_id, ("refund", (order, refund))))
        if cancel is not None:
            events.append((cancel, 2, facts.order_id, ("cancel", order)))
        if pending:
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
    qualified = tiers.level(at, state.entries)
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
    qualified = tiers.level(at, state.entries)
    if qualified is not None and (state.tier is None or qualified > state.tier):
        _promote(state, tiers, at, qualified)
    elif qualified is not None and qualified == state.tier and state.tier_until is not None:
        pass  # the hold runs from entry; re-qualifying does not extend it


def _multiplier(state: _State, tiers: _Tiers) -> Fraction:
    if state.tier is None or not tiers.tiers:
        return Fraction(1)
    return tiers.multipliers[state.tier]


def _on_earn(state: _State, tiers: _Tiers, at: int, order: _Order) -> None:
    facts = order.facts
    per_unit = state.settings.earn.points_per_unit
    multiplier = _multiplier(state, tiers)
    # round_half_up(value * per_unit / UNIT * multiplier) in integers (value >= 0 here)
    top, bottom = facts.value * per_unit * multiplier.numerator, UNIT * multiplier.denominator
    points = (2 * top + bottom) // (2 * bottom)
    note = f" (tier multiplier {multiplier})" if multiplier != 1 else ""
    if order.held is not None:  # points an order earned are a fact
        note = note if order.held == points else " (earned under an earlier earn rule)"
        points = order.held
    order.earned = points
    if points > 0:
        pending = order.bucket_pending = order.pending
        order.approved = not pending
        key = source_key("earn", state.customer, facts.order_id)
        state.add(
            key,
            "earn",
            at,
            points if pending else 0,
            0 if pending else points,
            f"order {facts.order_id} paid: {points} points{note}",
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
