"""VIP milestones: progress towards the next tier, and rewards for milestones reached.

Tiers reward where a customer stands; milestones make the way there visible, as the loyalty
apps do (Smile's tier milestones, "you are 200 points from Gold" emails when a customer is
within 10-20 % of the next tier, 5th-order celebrations; see :mod:`shopsync.core.policy`,
``loyalty.milestones``). Everything here is pure and runs inside
:func:`shopsync.core.loyalty.derive`, on the same events:

- **order milestones**: the n-th *kept* order (earned, past its return window, not fully
  refunded by then) pays a bonus at its approval, keyed ``bonus:milestone:{customer}:order_{n}``
  so it is paid once whatever happens later;
- **anniversaries**: each yearly return of the first earning order's payment date pays a
  bonus (``bonus:anniversary:{customer}:{date}``) once the customer has a kept order;
- **progress**: after an order earns, a customer left at most ``progress_within_percent`` of
  the next tier's threshold short of it gets a progress record (at most one per tier per
  ``progress_cooldown_days``). Records are not ledger entries; :func:`notices` turns the ones
  in the planning window into ``loyalty_tier_progress`` actions, keyed by the order that
  caused them, for customers who have not reached that tier since.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal

from shopsync.core import loyalty as rules
from shopsync.core.actions import Action

if TYPE_CHECKING:
    from shopsync.core.policy import Policy

__all__ = ["MilestoneReward", "Progress", "TierProgress", "notices"]

_DAY = 86_400_000_000
_ORDINAL = {1: "first", 2: "second", 3: "third"}


class MilestoneReward(Action):
    """A milestone was reached and its bonus points are in the ledger (a celebration)."""

    kind: Literal["loyalty_milestone"] = "loyalty_milestone"
    marketing: bool = True
    milestone: str
    """``order_{n}`` or ``anniversary_{years}``."""
    points: int


class TierProgress(Action):
    """The customer is close to the next tier: "you are 200 points from Gold"."""

    kind: Literal["loyalty_tier_progress"] = "loyalty_tier_progress"
    marketing: bool = True
    to_tier: str
    points_to_go: int
    """Points still to earn (with the spend metric: points the missing spend would earn)."""


@dataclass(frozen=True, slots=True)
class Progress:
    at: int
    tier: str
    tier_index: int
    metric: str
    short: Fraction
    """Missing metric: points, or shop-currency units of spend."""
    points_to_go: int
    order_id: str


def ordinal(n: int) -> str:
    if n in _ORDINAL:
        return _ORDINAL[n]
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# -- rules, called by shopsync.core.loyalty.derive ---------------------------------------------


def on_kept_order(state: Any, tiers: Any, at: int, order_id: str) -> None:
    """An order was kept (approved with points left): count it, pay an order milestone."""
    state.kept_orders += 1
    for milestone in state.settings.milestones.orders:
        if milestone.orders == state.kept_orders and milestone.points > 0:
            n = milestone.orders
            key = rules.source_key("bonus", "milestone", state.customer, f"order_{n}")
            state.add(
                key,
                "bonus",
                at,
                0,
                milestone.points,
                f"{ordinal(n)} order milestone: {milestone.points} bonus points",
                order_id,
                {"milestone": f"order_{n}"},
            )
            state.credit_lot(key, milestone.points)
            state.activity(at)


def anniversary_events(
    state: Any, first_paid: int | None, horizon: int
) -> list[tuple[int, int, str, Any]]:
    """The yearly anniversaries of the first earning order up to ``horizon``."""
    points = state.settings.milestones.anniversary_points
    if first_paid is None or not points:
        return []
    events: list[tuple[int, int, str, Any]] = []
    years = 1
    while (at := rules.add_months(first_paid, 12 * years)) <= horizon:
        events.append((at, 8, f"anniversary{years}", ("anniversary", years)))
        years += 1
    return events


def on_anniversary(state: Any, tiers: Any, at: int, years: int) -> None:
    points = state.settings.milestones.anniversary_points
    if state.kept_orders < 1 or not points:
        return  # nothing kept yet: a refunded first order earns no anniversary
    day = rules.from_micros(at).date().isoformat()
    key = rules.source_key("bonus", "anniversary", state.customer, day)
    state.add(
        key,
        "bonus",
        at,
        0,
        points,
        f"{years}-year anniversary of the first order: {points} bonus points",
        None,
        {"milestone": f"anniversary_{years}"},
    )
    state.credit_lot(key, points)
    state.activity(at)


def check_progress(state: Any, tiers: Any, at: int, order_id: str) -> None:
    """After an order earned: is the customer now close to the next tier?"""
    settings = state.settings.milestones
    percent = Fraction(settings.progress_within_percent)
    if not tiers.tiers or percent <= 0:
        return
    target = 0 if state.tier is None else state.tier + 1
    if target >= len(tiers.tiers):
        return  # already in the top tier
    tier = tiers.tiers[target]
    threshold = Fraction(tier.threshold)
    short = threshold - tiers.metric(at, state.entries)
    if short <= 0 or short > threshold * percent / 100:
        return
    last = state.progress_last.get(tier.name)
    if last is not None and at - last < settings.progress_cooldown_days * _DAY:
        return
    state.progress_last[tier.name] = at
    metric = tiers.settings.metric
    if metric == "points":
        points = -(-short.numerator // short.denominator)  # whole points still to earn
    else:
        multiplier = Fraction(tiers.tiers[state.tier].multiplier) if state.tier is not None else 1
        points = rules.round_half_up(short * state.settings.earn.points_per_unit * multiplier)
    state.progress.append(Progress(at, tier.name, target, metric, short, points, order_id))


# -- actions -----------------------------------------------------------------------------------


def notices(
    platform: str,
    shop: str,
    customer_id: str,
    derivation: Any,
    policy: Policy,
    at: int,
    since: int,
) -> list[Action]:
    """Milestone rewards and progress notices whose moment falls in ``(since, at]``."""
    base = {"platform": platform, "shop": shop, "customer_id": customer_id}
    found: list[Action] = []
    for entry in derivation.entries:
        milestone = entry.detail.get("milestone") if entry.kind == "bonus" else None
        if milestone and since < entry.at <= at:
            found.append(
                MilestoneReward(
                    **base,
                    due_at=rules.from_micros(entry.at),
                    reason=entry.reason,
                    facts={"points": entry.approved, "source_key": entry.key},
                    idempotency_key=rules.source_key("loyalty_milestone", shop, entry.key),
                    milestone=milestone,
                    points=entry.approved,
                )
            )
    names = [t.name for t in policy.loyalty.tiers.tiers]
    held = names.index(derivation.tier) if derivation.tier in names else -1
    for p in derivation.progress:
        if not since < p.at <= at or held >= p.tier_index:
            continue  # outside the window, or the tier was reached since
        if p.metric == "points":
            reason = f"{p.points_to_go} points from {p.tier}"
            short = str(p.points_to_go)
        else:
            short = str(
                (Decimal(p.short.numerator) / Decimal(p.short.denominator)).quantize(
                    Decimal("0.01")
                )
            )
            reason = f"{short} more in spend ({p.points_to_go} points) reaches {p.tier}"
        found.append(
            TierProgress(
                **base,
                due_at=rules.from_micros(p.at),
                reason=reason,
                facts={"to_tier": p.tier, "metric": p.metric, "short": short},
                idempotency_key=rules.source_key(
                    "loyalty_tier_progress", shop, customer_id, p.tier, p.order_id
                ),
                to_tier=p.tier,
                points_to_go=p.points_to_go,
            )
        )
    return found
