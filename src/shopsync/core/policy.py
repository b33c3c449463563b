"""The retention policy: every program's settings in one validated model.

A policy is plain data. Rules read it; nothing in it is looked up at run time. Every default
comes from what the leading tools ship or recommend (shared research, retention §2 and §8),
and each field names its source, so a merchant can see why a number is what it is. The
reference page ``docs/policy.md`` is generated from this model by :mod:`shopsync._docs`
(``python -m shopsync._docs``).

Load one from TOML::

    policy = Policy.from_toml("retention.toml")        # a path
    policy = Policy.from_toml('[loyalty.earn]\\npoints_per_unit = 3')   # or TOML text

Unknown keys are refused (a typo must not silently fall back to a default), and every error
names the dotted key that is wrong.
"""

from __future__ import annotations

import datetime as dt
import sys
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from shopsync._currencies import EXPONENTS
from shopsync.errors import ConfigurationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = [
    "BirthdaySettings",
    "CategoryBonusSettings",
    "ConsentSettings",
    "EarnSettings",
    "ExpirySettings",
    "FrequencyCapSettings",
    "HoldoutSettings",
    "LifecycleSettings",
    "LoyaltySettings",
    "MessagingSettings",
    "MilestoneSettings",
    "OrderMilestone",
    "Policy",
    "PolicyError",
    "QuietPeriod",
    "QuietSettings",
    "RecommendationSettings",
    "RedemptionSettings",
    "ReferralSettings",
    "ReplenishmentSettings",
    "ReviewSettings",
    "Tier",
    "TierSettings",
    "WarrantySettings",
    "WinbackSettings",
]

SMILE_EARN = "Smile.io launch checklist and earning rules (help.smile.io 2547, 4036267)"
SMILE_REWARDS = "Smile.io fixed rewards (help.smile.io 4036249); research retention §2.1"
SMILE_EXPIRY = "Smile.io points expiry FAQ (help.smile.io 5348802); research retention §8"
LL_PENDING = "LoyaltyLion, how points work (help.loyaltylion.com 6062006)"
LL_REFUND = "LoyaltyLion, points on refunds (help.loyaltylion.com article 90)"
TIERS_SRC = "LoyaltyLion tiers (rolling 12 months, silent downgrade); Yotpo (12 months from entry)"
BIRTHDAY_SRC = "Smile.io birthday rewards (30-day rule); LoyaltyLion (365-day cool-off)"
REFERRAL_SRC = "Smile.io referral fraud (help.smile.io 4036291); LoyaltyLion refer-a-friend"
KLAVIYO_SS = "Klaviyo Smart Sending (help.klaviyo.com 115005078227)"
YOTPO_POLICY = "Yotpo review request email policies; research retention §3"
DERIVED = "shopsync default [derived], research retention §8"
MILESTONE_SRC = (
    "Smile.io VIP tier milestones (help.smile.io 4036321); tier progress email within 10-20 % "
    "of the next tier (yourorbit.team loyalty-program-lifecycle); 5th/10th order "
    "celebrations (sequenzy loyalty templates); research retention §8 (anniversary = first "
    "order date, yearly)"
)


def _decimal(value: Any) -> Any:
    # TOML has floats; a float threshold like 49.99 means the decimal 49.99, not its binary
    # neighbour, so go through its shortest repr.
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    return value


Dec = Annotated[Decimal, BeforeValidator(_decimal)]


def _f(default: Any, doc: str, source: str, **kw: Any) -> Any:
    return Field(default, description=doc, json_schema_extra={"source": source}, **kw)


class _Section(BaseModel):
    # ``model_min_customers`` and its kin: pydantic before 2.10 warns on any ``model_`` field
    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())


# -- loyalty ---------------------------------------------------------------------------


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


# -- messaging guards and the other programs --------------------------------------------


class FrequencyCapSettings(_Section):
    """Limits on marketing messages per customer, across all programs."""

    email_hours: int = _f(16, "Minimum hours between two marketing emails.", KLAVIYO_SS, ge=0)
    sms_hours: int = _f(24, "Minimum hours between two marketing SMS.", KLAVIYO_SS, ge=0)
    max_emails: int = _f(
        5,
        "At most this many marketing emails per rolling window (at least 1: to send "
        "nothing, switch the programs off instead).",
        YOTPO_POLICY,
    )
    window_days: int = _f(30, "The rolling window of the limit above.", YOTPO_POLICY, ge=1)

    @model_validator(mode="after")
    def _not_zero(self) -> FrequencyCapSettings:
        if self.max_emails < 1:
            raise ValueError(
                "max_emails must be at least 1: a cap of zero would silently drop every "
                "marketing message; set the programs' `enabled = false` instead"
            )
        return self


class ConsentSettings(_Section):
    """Who may receive marketing."""

    allow_soft_opt_in: bool = _f(
        False,
        "Treat existing customers as reachable under the EU/UK soft opt-in.",
        "research retention §6 (ICO soft opt-in; off by default)",
    )
    allow_cart_to_not_subscribed: bool = _f(
        False,
        "Send cart reminders to customers who never subscribed.",
        "research retention §6 (Klaviyo allows it; EU practice filters it)",
    )


class ReviewSettings(_Section):
    """Review requests after fulfilment."""

    enabled: bool = _f(True, "Plan review requests.", DERIVED)
    days_after_fulfillment: int = _f(
        14, "Days after fulfilment.", "Yotpo, Stamped and Loox default (14 days)", ge=0
    )
    days_after_delivery: int = _f(
        7, "Days after delivery, when a delivery date is known.", DERIVED, ge=0
    )
    international_extra_days: int = _f(
        7,
        "Extra days for orders shipped outside `home_country` (only when that is set).",
        DERIVED,
        ge=0,
    )
    home_country: str | None = _f(
        None,
        "The shop's country (ISO 3166-1 alpha-2); orders shipped elsewhere wait the extra "
        "days above. Null: no order counts as international.",
        DERIVED,
        pattern=r"^[A-Z]{2}$",
    )
    max_products: int = _f(3, "Products per request, most expensive first.", YOTPO_POLICY, ge=1)
    reminder_days: int | None = _f(
        7,
        "One reminder this many days after the request, unless the customer reviewed "
        "(null: none). Must be at least 1: a reminder cannot come before its request.",
        YOTPO_POLICY,
    )
    same_product_months: int = _f(
        12,
        "The same product is requested at most once per this many months (and not at all "
        "if the customer reviewed it in that time).",
        YOTPO_POLICY,
        ge=0,
    )
    max_late_days: int = _f(
        30,
        "A request not sent within this many days of its due date is dropped, so a first "
        "plan on an old store does not ask about orders from years ago.",
        f"{DERIVED}; Judge.me review links stay valid 45 days (classic)",
        ge=0,
    )

    @model_validator(mode="after")
    def _reminder_after_request(self) -> ReviewSettings:
        if self.reminder_days is not None and self.reminder_days < 1:
            raise ValueError(
                "reminder_days must be at least 1: the reminder would come before (or with) "
                "the request it reminds of"
            )
        return self


class WinbackSettings(_Section):
    """Win-back for customers past their usual buying rhythm."""

    enabled: bool = _f(True, "Plan win-back sequences.", DERIVED)
    min_days: int = _f(60, "Never earlier than this many days after the last order.", DERIVED, ge=1)
    gap_multiple: Dec = _f(
        Decimal("1.5"),
        "One-time buyers: trigger at this multiple of the shop's median gap between first "
        "and second orders, if later than `min_days`.",
        DERIVED,
        gt=0,
    )
    fallback_days: int = _f(
        90, "One-time buyers' trigger when there is too little data for a median.", DERIVED, ge=1
    )
    min_repeat_customers: int = _f(
        30,
        "Customers with a second order the shop needs before its median gap is used "
        "(fewer: `fallback_days`).",
        f"{DERIVED} (same floor as replenishment's repeat pairs)",
        ge=1,
    )
    repeat_gap_multiple: Dec = _f(
        Decimal("1.5"),
        "Repeat buyers: trigger at this multiple of the customer's own median gap.",
        "Klaviyo win-back delay = the average time between orders (help.klaviyo.com "
        "115002775192); the 1.5 margin matches the one-time rule",
        gt=0,
    )
    repeat_min_days: int = _f(
        30, "Repeat buyers are never lapsing earlier than this many days.", DERIVED, ge=1
    )
    alive_threshold: Dec = _f(
        Decimal("0.3"),
        "Also lapsing once the MBG/NBD probability of being alive falls below this (0 "
        "switches the model trigger off).",
        "research retention §5.1 and §8 (MBG/NBD, not BG/NBD, for P(alive)); the level is "
        "[derived]",
        ge=0,
        lt=1,
    )
    model_min_customers: int = _f(
        500,
        "Customers with orders needed before the model trigger is used.",
        "Klaviyo predictive analytics gate (help.klaviyo.com 360020919731)",
        ge=1,
    )
    model_min_history_days: int = _f(
        180,
        "Days of order history needed before the model trigger is used.",
        "Klaviyo predictive analytics gate",
        ge=1,
    )
    model_min_days: int = _f(
        30, "The model trigger never fires earlier than this after the last order.", DERIVED, ge=1
    )
    steps: int = _f(
        3,
        "Messages in the sequence: a reminder without discount, offers, a last chance.",
        DERIVED,
        ge=1,
    )
    span_days: int = _f(21, "Days the sequence spans.", DERIVED, ge=1)
    late_days: int = _f(
        7, "The last stage may still go out this many days after it was due.", DERIVED, ge=0
    )
    discount_percent: int = _f(
        10,
        "Discount offered in the offer and last-chance stages (0: no discount).",
        f"{DERIVED}; practitioners put the incentive only in the later emails",
        ge=0,
        le=100,
    )
    no_coupon_days_after_order: int = _f(
        30,
        "No coupon while any order of the customer is younger than this (the return "
        "window): offer stages wait until it has passed.",
        "research retention §8 (return window, default 30 days)",
        ge=0,
    )


class ReplenishmentSettings(_Section):
    """Reminders before a consumable runs out."""

    enabled: bool = _f(True, "Plan replenishment reminders.", DERIVED)
    usage_days_by_sku: dict[str, int] = _f(
        {}, "Days one unit lasts, by SKU (wins over tag and type).", DERIVED
    )
    usage_days_by_tag: dict[str, int] = _f(
        {}, "Days one unit lasts, by product tag (the shortest matching tag wins).", DERIVED
    )
    usage_days_by_type: dict[str, int] = _f({}, "Days one unit lasts, by product type.", DERIVED)
    learn: bool = _f(
        True,
        "Without a configured period, learn it as the median repurchase interval per unit.",
        "research retention §8 (median repeat interval of the same SKU)",
    )
    min_repeat_pairs: int = _f(
        30, "Repeat-purchase pairs a SKU needs before its own interval is used.", DERIVED, ge=1
    )
    days_before: int = _f(5, "Days before the expected run-out.", DERIVED, ge=0)
    late_days: int = _f(
        14, "Still remind this many days after the expected run-out.", DERIVED, ge=0
    )

    @model_validator(mode="after")
    def _positive(self) -> ReplenishmentSettings:
        for name in ("usage_days_by_sku", "usage_days_by_tag", "usage_days_by_type"):
            if any(days < 1 for days in getattr(self, name).values()):
                raise ValueError(f"{name}: every period must be at least 1 day")
        return self


class WarrantySettings(_Section):
    """Notice before a product's warranty ends."""

    enabled: bool = _f(True, "Plan warranty notices.", DERIVED)
    days_by_sku: dict[str, int] = _f({}, "Warranty length in days, by SKU.", DERIVED)
    days_by_tag: dict[str, int] = _f({}, "Warranty length in days, by product tag.", DERIVED)
    days_by_type: dict[str, int] = _f({}, "Warranty length in days, by product type.", DERIVED)
    days_before: int = _f(30, "Days before the warranty ends.", DERIVED, ge=0)

    @model_validator(mode="after")
    def _positive(self) -> WarrantySettings:
        for name in ("days_by_sku", "days_by_tag", "days_by_type"):
            if any(days < 1 for days in getattr(self, name).values()):
                raise ValueError(f"{name}: every warranty must be at least 1 day")
        return self


class RecommendationSettings(_Section):
    """ "Customers who bought this also bought"."""

    enabled: bool = _f(True, "Attach recommendations to actions.", DERIVED)
    min_co_buyers: int = _f(
        3,
        "Distinct customers who bought both items before a pair is recommended.",
        "Amazon item-to-item (Linden et al. 2003); research retention §5.5",
        ge=1,
    )
    min_lift: Dec = _f(
        Decimal(1),
        "A pair must be bought together more than this many times as often as chance "
        "predicts (co-buyers x customers / (buyers of one x buyers of the other)).",
        "Smith & Linden 2017, related = bought more often than expected by chance",
        ge=0,
    )
    top_k: int = _f(10, "Neighbours kept per product.", DERIVED, ge=1)
    per_action: int = _f(3, "Recommendations attached to one action.", DERIVED, ge=0)


class LifecycleSettings(_Section):
    """Lifecycle stages (prospect, new, returning, loyal, at risk, lapsed, ambassador)."""

    loyal_orders_12m: int = _f(
        4,
        "Orders in 12 months that make a returning customer loyal (or a top tier).",
        f"{DERIVED} (the stage ladder; the count is illustrative)",
        ge=2,
    )
    lapsed_multiple: Dec = _f(
        Decimal(2),
        "At risk from the win-back trigger; lapsed once the time since the last order is "
        "this multiple of the trigger's delay.",
        DERIVED,
        gt=1,
    )


class HoldoutSettings(_Section):
    """A control group that receives no marketing, to measure what the programs add."""

    share: Dec = _f(
        Decimal("0.10"),
        "Share of customers held out (0 switches it off). Membership is a hash of shop, "
        "customer and `salt`, so it is stable from run to run.",
        f"{DERIVED}; no vendor anchor in the research, 10 % is the usual universal control",
        ge=0,
        lt=1,
    )
    salt: str = _f(
        "holdout",
        "Change it to draw a new group (every customer may move).",
        DERIVED,
        min_length=1,
    )


class QuietPeriod(_Section):
    start: dt.date
    """First day without marketing (shop time zone)."""
    end: dt.date
    """Last day without marketing (inclusive)."""
    name: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> QuietPeriod:
        if self.end < self.start:
            raise ValueError("a quiet period must not end before it starts")
        return self


class QuietSettings(_Section):
    """When no marketing goes out; held messages wait for a later plan."""

    hours: tuple[int, int] | None = _f(
        None,
        "Nightly quiet hours [from, to) in `timezone`, e.g. [21, 8] (null: none).",
        f"{DERIVED}; Klaviyo sends date flows at e.g. 09:00 recipient time",
    )
    timezone: str = _f("UTC", "IANA time zone of `hours` and `periods`.", DERIVED)
    periods: tuple[QuietPeriod, ...] = _f(
        (), "Date ranges without marketing (`[[quiet.periods]]` start, end, name).", DERIVED
    )

    @model_validator(mode="after")
    def _valid(self) -> QuietSettings:
        if self.hours is not None:
            start, end = self.hours
            if not (0 <= start <= 23 and 0 <= end <= 23) or start == end:
                raise ValueError("hours must be two different hours between 0 and 23")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.timezone!r}") from None
        return self


DEFAULT_PRIORITY = (
    "review_request",
    "review_reminder",
    "replenishment",
    "loyalty_expiry_warning",
    "warranty_notice",
    "loyalty_tier_change",
    "loyalty_milestone",
    "loyalty_tier_progress",
    "winback",
)


class MessagingSettings(_Section):
    """How the planner classifies and orders messages."""

    marketing: dict[str, bool] = _f(
        {},
        "Override whether an action kind needs marketing consent, e.g. "
        "`warranty_notice = false`. Review requests, win-back, replenishment and warranty "
        "notices are marketing by default.",
        "research retention §6 (BGH VI ZR 225/17: a review request is advertising)",
    )
    priority: tuple[str, ...] = _f(
        DEFAULT_PRIORITY,
        "When programs collide for one customer, the earlier kind goes first; kinds not "
        "listed come after, alphabetically. Transactional actions are never held back.",
        "research retention §1.3 (transactional > cart > back-in-stock > review > "
        "replenishment > win-back)",
    )


# -- the policy ------------------------------------------------------------------------


def _currency(value: Any) -> Any:
    if value is None:
        return None
    code = str(value).strip().upper()
    if code not in EXPONENTS:
        raise ValueError(f"{value!r} is not an ISO 4217 currency code")
    return code


class Policy(_Section):
    """Every retention program's settings. ``Policy()`` is the documented default."""

    currency: Annotated[str | None, BeforeValidator(_currency)] = _f(
        None,
        "The shop currency (ISO 4217). Orders in another currency are kept out of money "
        "features and quarantined from loyalty. Null: the currency most orders use.",
        DERIVED,
    )
    loyalty: LoyaltySettings = LoyaltySettings()
    frequency_cap: FrequencyCapSettings = FrequencyCapSettings()
    consent: ConsentSettings = ConsentSettings()
    reviews: ReviewSettings = ReviewSettings()
    winback: WinbackSettings = WinbackSettings()
    replenishment: ReplenishmentSettings = ReplenishmentSettings()
    warranty: WarrantySettings = WarrantySettings()
    recommendations: RecommendationSettings = RecommendationSettings()
    lifecycle: LifecycleSettings = LifecycleSettings()
    holdout: HoldoutSettings = HoldoutSettings()
    quiet: QuietSettings = QuietSettings()
    messaging: MessagingSettings = MessagingSettings()

    @classmethod
    def from_toml(cls, source: str | Path) -> Policy:
        """A policy from a TOML file path or TOML text; missing keys keep their defaults.

        Raises :class:`PolicyError` naming every wrong key (``loyalty.earn.points_per_unit``).
        """
        if isinstance(source, Path) or (source.strip() and not any(c in source for c in "\n=[")):
            path = Path(source)
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise PolicyError(f"cannot read policy file {str(path)!r}: {exc}", []) from None
        else:
            text = source
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"policy is not valid TOML: {exc}", []) from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Policy:
        """A policy from plain data (as parsed from TOML or JSON)."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = [(_key(err["loc"]), err["msg"]) for err in exc.errors()]
            lines = "; ".join(f"{key}: {msg}" for key, msg in problems)
            raise PolicyError(f"invalid policy: {lines}", [k for k, _ in problems]) from None


def _key(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1]}[{part}]"] if parts else [f"[{part}]"]
        else:
            parts.append(part)
    return ".".join(parts) or "(policy)"


class PolicyError(ConfigurationError):
    """A policy that does not validate; ``keys`` lists the dotted keys at fault."""

    def __init__(self, message: str, keys: list[str]) -> None:
        super().__init__(message)
        self.keys = keys
