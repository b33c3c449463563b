"""The records of the loyalty rules: their inputs and outputs, units and small helpers.

Times are integers (microseconds since the epoch, UTC) and money integers (ten-thousandths
of the unit), as in the store. The rules themselves are in :mod:`shopsync.core.loyalty`.
"""

from __future__ import annotations

import calendar
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from shopsync._instants import instant as from_micros
from shopsync._instants import to_micros
from shopsync.errors import ShopSyncError
from shopsync.models import MONEY_DECIMALS as MONEY_SCALE

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
    "Redemption",
    "TierChange",
    "add_months",
    "money_points",
    "round_half_up",
    "source_key",
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
    purchase: bool = True
    """Whether it counts as a purchase once paid, by the one rule
    (:func:`shopsync.core.features.counts_as_purchase`, which
    :func:`shopsync.core.loyalty_history.facts_by_customer` applies): a false one earns
    nothing and is no claw-back either."""


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
    earned: Mapping[str, int] = field(default_factory=dict)
    """The points the ledger's earn entries already hold, by order id: a fact the current
    earn rule does not revisit (:func:`shopsync.core.loyalty.derive`); positive points."""
    pending_earns: frozenset[str] | None = None
    """Of :attr:`earned`, the orders whose earn entry holds its points pending (the others
    were approved at payment); None: as the return window says now. A window switched on or
    off later applies to the orders not earned yet, as the earn rule does."""


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


def money_points(amount: Decimal, per_unit: int) -> int:
    """Points worth ``amount`` at ``per_unit`` points per unit (half-up)."""
    return round_half_up(Fraction(amount) * per_unit)
