"""The loyalty sections of the policy: earning, redemption, expiry, tiers, birthdays,
referrals, category bonuses and milestones (``[loyalty.*]`` in TOML).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from shopsync.core.policy_fields import (
    BIRTHDAY_SRC,
    DERIVED,
    LL_PENDING,
    MILESTONE_SRC,
    REFERRAL_SRC,
    SMILE_EARN,
    SMILE_EXPIRY,
    SMILE_REWARDS,
    TIERS_SRC,
    Dec,
    _f,
    _Section,
)

__all__ = [
    "BirthdaySettings",
    "CategoryBonusSettings",
    "EarnSettings",
    "ExpirySettings",
    "LoyaltySettings",
    "MilestoneSettings",
    "OrderMilestone",
    "RedemptionSettings",
    "ReferralSettings",
    "Tier",
    "TierSettings",
]


class EarnSettings(_Section):
    """Points for paid orders."""

    points_per_unit: int = _f(
        5,
        "Points per whole shop-currency unit of the order's merchandise value after "
        "discounts (rounded half-up, then times the tier multiplier).",
        f"{SMILE_EARN}: 3-5 points per $1; retention §8 picks 5",
        gt=0,
    )
    include_shipping: bool = _f(False, "Count shipping in the earning value.", SMILE_EARN)
    include_tax: bool = _f(False, "Count tax in the earning value.", SMILE_EARN)
    pending_days: int = _f(
        14,
        "Days from payment that earned points stay pending (not spendable) before they are "
        "approved: the return window. A refund inside it removes them before they count.",
        f"{LL_PENDING}: approval period = return policy, 14 days suggested",
        ge=0,
    )


class RedemptionSettings(_Section):
    """Turning points into single-use discount codes."""

    points_per_unit: int = _f(
        100, "Points worth one shop-currency unit of discount.", SMILE_REWARDS, gt=0
    )
    steps: tuple[int, ...] = _f(
        (500, 1000, 1500, 2000),
        "The fixed rewards a customer can redeem, in points (even steps, no gaps).",
        SMILE_REWARDS,
        min_length=1,
    )
    code_prefix: str = _f(
        "LOYAL", "Prefix of generated discount codes.", DERIVED, pattern=r"^[A-Z0-9]{1,12}$"
    )

    @model_validator(mode="after")
    def _positive_steps(self) -> RedemptionSettings:
        if any(step <= 0 for step in self.steps) or list(self.steps) != sorted(set(self.steps)):
            raise ValueError("steps must be positive and strictly increasing")
        return self


class ExpirySettings(_Section):
    """Approved points expire after a period with no earning and no spending."""

    inactivity_months: int | None = _f(
        12,
        "Months without earning or spending after which the approved balance expires "
        "(null: never).",
        f"{SMILE_EXPIRY}: 1 year is the most common choice",
        ge=1,
    )
    warn_days_before: tuple[int, ...] = _f(
        (30, 7),
        "Days before expiry to send a warning, then a last chance.",
        f"{SMILE_EXPIRY}: warning and last-chance emails 7-30 days before",
    )


class Tier(_Section):
    name: str = Field(min_length=1, max_length=64)
    threshold: Dec = Field(ge=0)
    """Qualifying amount: shop-currency units of net spend, or points earned."""
    multiplier: Dec = Field(default=Decimal(1), gt=0)
    """Earning multiplier while in this tier."""


class TierSettings(_Section):
    """VIP tiers."""

    metric: Literal["spend", "points"] = _f(
        "spend",
        "What qualifies: net spend of paid orders after refunds, or points earned.",
        f"{TIERS_SRC}; retention §8 picks net spend",
    )
    window: Literal["rolling_12_months", "calendar_year", "lifetime"] = _f(
        "rolling_12_months", "Over which period the metric is counted.", TIERS_SRC
    )
    hold_months: int = _f(
        12,
        "A tier, once entered, is kept this many months from entry; then it is re-evaluated "
        "and a lower one is applied silently.",
        "Yotpo tier term (12 months from entry); LoyaltyLion silent downgrade",
        ge=1,
    )
    tiers: tuple[Tier, ...] = _f(
        (
            Tier(name="Bronze", threshold=Decimal(0), multiplier=Decimal(1)),
            Tier(name="Silver", threshold=Decimal(500), multiplier=Decimal("1.25")),
            Tier(name="Gold", threshold=Decimal(1000), multiplier=Decimal("1.5")),
        ),
        "The tiers, lowest first. Three tiers follow retention §8; the thresholds and "
        "multipliers are illustrative and should be set from the shop's own order values. "
        "An empty list switches tiers off.",
        f"{DERIVED} (3 tiers on rolling 12-month net spend, multiplier on earning)",
    )

    @model_validator(mode="after")
    def _ordered(self) -> TierSettings:
        thresholds = [t.threshold for t in self.tiers]
        if thresholds != sorted(set(thresholds)):
            raise ValueError("tier thresholds must be strictly increasing, lowest tier first")
        if len({t.name for t in self.tiers}) != len(self.tiers):
            raise ValueError("tier names must be unique")
        return self


class BirthdaySettings(_Section):
    """A yearly bonus on the customer's birthday."""

    points: int = _f(
        500,
        "Bonus points (0 switches the bonus off). The default equals the smallest fixed "
        "reward, so a birthday is worth one reward.",
        f"{DERIVED} (amount); {BIRTHDAY_SRC}",
        ge=0,
    )
    min_days_after_entry: int = _f(
        30,
        "A birthday entered fewer than this many days before the date pays from next year.",
        BIRTHDAY_SRC,
        ge=0,
    )
    cooldown_days: int = _f(
        365, "At most one birthday bonus per this many days.", BIRTHDAY_SRC, ge=0
    )


class ReferralSettings(_Section):
    """Refer-a-friend: both sides earn when the friend's first order is paid and approved."""

    advocate_percent: Dec = _f(
        Decimal(15),
        "Advocate's reward as a percentage of the friend's order value, paid in points at "
        "the redemption rate (15 % of a 30.00 order = 450 points).",
        f"{REFERRAL_SRC}: LoyaltyLion about 15 %; Smile 10-20 % of AOV",
        ge=0,
    )
    friend_percent: Dec = _f(
        Decimal(15),
        "Friend's reward, same basis.",
        f"{REFERRAL_SRC}: Smile suggests the same reward on both sides",
        ge=0,
    )
    min_order: Dec = _f(
        Decimal(0),
        "Minimum merchandise value of the friend's order (0: none).",
        "ReferralCandy and LoyaltyLion minimum purchase (off by default)",
        ge=0,
    )
    max_per_window: int = _f(
        10,
        "An advocate (or an IP address) with this many referrals inside the window is "
        "blocked from further rewards in it.",
        f"{REFERRAL_SRC}: 10 referrals in a week from one IP",
        ge=1,
    )
    window_days: int = _f(7, "The window of the limit above.", REFERRAL_SRC, ge=1)


class CategoryBonusSettings(_Section):
    """Optional bonus for a first order in a category the customer never bought."""

    points: int = _f(
        0,
        "Bonus points when an approved order holds a category new to the customer (0: off).",
        f"{DERIVED} (no vendor anchor; off by default)",
        ge=0,
    )


class OrderMilestone(_Section):
    orders: int = Field(ge=1)
    """The customer's n-th kept order (paid, past its return window, not fully refunded)."""
    points: int = Field(ge=0)
    """Bonus points for reaching it."""


class MilestoneSettings(_Section):
    """VIP milestones: progress notices towards the next tier and one-off milestone rewards.

    Milestone rewards are ledger bonuses keyed by the milestone (``bonus:milestone:...``,
    ``bonus:anniversary:...``), so each is paid once; each comes with a
    ``loyalty_milestone`` notice, and an order that brings a customer close to the next tier
    makes a ``loyalty_tier_progress`` notice ("you are 200 points from Gold"). Both are
    marketing: consent, holdout, quiet hours and the frequency cap apply.
    """

    progress_within_percent: Dec = _f(
        Decimal(20),
        "Send a progress notice when an order leaves the customer at most this percentage "
        "of the next tier's threshold short of it (0: no progress notices).",
        MILESTONE_SRC,
        ge=0,
        le=100,
    )
    progress_cooldown_days: int = _f(
        30,
        "At most one progress notice per customer and tier within this many days.",
        f"{DERIVED} (one nudge a month, like the frequency cap's window)",
        ge=0,
    )
    orders: tuple[OrderMilestone, ...] = _f(
        (),
        "Order-count milestones, each paid once when the n-th kept order is approved, e.g. "
        "`[{orders = 1, points = 100}, {orders = 5, points = 500}, {orders = 10, points = "
        "1000}]` (the first order worth one currency unit, the 5th and the 10th one and two "
        "fixed rewards). None by default: milestone points add to the shop's points "
        "liability, so a merchant turns them on, like the category bonus.",
        MILESTONE_SRC,
    )
    anniversary_points: int = _f(
        0,
        "Bonus points on each yearly anniversary of the customer's first paid order, once "
        "they have a kept order (0: off; 500, a birthday's worth, is the suggested value).",
        MILESTONE_SRC,
        ge=0,
    )

    @model_validator(mode="after")
    def _distinct(self) -> MilestoneSettings:
        counts = [m.orders for m in self.orders]
        if len(set(counts)) != len(counts):
            raise ValueError("each order milestone needs its own order count")
        return self


class LoyaltySettings(_Section):
    """Points, tiers, birthday and referral rewards, and VIP milestones."""

    enabled: bool = _f(True, "Run the loyalty program.", DERIVED)
    earn: EarnSettings = EarnSettings()
    redemption: RedemptionSettings = RedemptionSettings()
    expiry: ExpirySettings = ExpirySettings()
    tiers: TierSettings = TierSettings()
    birthday: BirthdaySettings = BirthdaySettings()
    referral: ReferralSettings = ReferralSettings()
    category_bonus: CategoryBonusSettings = CategoryBonusSettings()
    milestones: MilestoneSettings = MilestoneSettings()
