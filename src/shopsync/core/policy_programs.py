"""The policy sections of the messaging guards and of every program but loyalty: frequency
caps, consent, reviews, win-back, replenishment, warranty, recommendations, lifecycle,
holdout, quiet periods and message priority.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import model_validator

from shopsync.core.policy_fields import DERIVED, KLAVIYO_SS, YOTPO_POLICY, Dec, _f, _Section

__all__ = [
    "ConsentSettings",
    "FrequencyCapSettings",
    "HoldoutSettings",
    "LifecycleSettings",
    "MessagingSettings",
    "QuietPeriod",
    "QuietSettings",
    "RecommendationSettings",
    "ReplenishmentSettings",
    "ReviewSettings",
    "WarrantySettings",
    "WinbackSettings",
]


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
    "abandoned_checkout",
    "review_request",
    "review_reminder",
    "replenishment",
    "loyalty_expiry_warning",
    "warranty_notice",
    "loyalty_tier_change",
    "loyalty_milestone",
    "loyalty_tier_progress",
    "winback",
    "browse_abandonment",
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
