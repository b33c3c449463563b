"""Actions: what the retention programs want done, as data.

Rules never send anything. They return actions, and the outbox delivers each one exactly
once, keyed by :attr:`Action.idempotency_key`: a key is built only from what caused the
action (shop, order, customer, stage), never from a clock or a counter, so planning the same
day twice yields the same keys and the second plan delivers nothing new.

Every program adds its own subclasses with a fixed ``kind``; the loyalty ones live here
because the loyalty program is the first user.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from shopsync.models import Money, Quantity

__all__ = [
    "Action",
    "LoyaltyAward",
    "PointsExpiryWarning",
    "Replenish",
    "ReviewReminder",
    "ReviewRequest",
    "RewardCode",
    "TierChange",
    "WarrantyNotice",
    "WinBack",
]


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    return value.astimezone(dt.timezone.utc)


class Action(BaseModel):
    """One thing to do for one customer, at or after ``due_at``."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    kind: str
    """What to do, e.g. ``"loyalty_award"``; fixed per subclass."""
    platform: str
    shop: str
    customer_id: str
    due_at: Annotated[dt.datetime, AfterValidator(_utc)]
    """Earliest moment to deliver; aware UTC."""
    reason: str
    """One sentence a merchant can read: why this action exists."""
    facts: dict[str, Any] = Field(default_factory=dict)
    """The numbers behind the reason (JSON-ready), for templates and audits."""
    idempotency_key: Annotated[str, Field(min_length=1, max_length=255)]
    """Deterministic: ``"{kind}:{shop}:..."`` from the causing records only."""
    marketing: bool
    """True if it needs marketing consent to be sent (see retention research §6)."""


class LoyaltyAward(Action):
    """Points were earned (a notice; the points are already in the ledger)."""

    kind: Literal["loyalty_award"] = "loyalty_award"
    marketing: bool = False
    points: int
    order_id: str | None = None


class TierChange(Action):
    """The customer entered a higher VIP tier (demotions are silent and make no action)."""

    kind: Literal["loyalty_tier_change"] = "loyalty_tier_change"
    marketing: bool = True
    from_tier: str | None
    to_tier: str


class PointsExpiryWarning(Action):
    """Points will expire for inactivity unless the customer earns or spends before then."""

    kind: Literal["loyalty_expiry_warning"] = "loyalty_expiry_warning"
    marketing: bool = True
    points: int
    expires_at: Annotated[dt.datetime, AfterValidator(_utc)]
    days_before: int


class RewardCode(Action):
    """A redemption became a single-use discount code to create on the platform."""

    kind: Literal["loyalty_reward_code"] = "loyalty_reward_code"
    marketing: bool = False
    code: str
    value: Money
    points: int


# -- retention programs (issue 6) -------------------------------------------------------------

UTCDateTime = Annotated[dt.datetime, AfterValidator(_utc)]


class ReviewRequest(Action):
    """Ask for reviews of a fulfilled order's products (marketing: research retention §6)."""

    kind: Literal["review_request"] = "review_request"
    marketing: bool = True
    order_id: str
    product_ids: tuple[str, ...]
    """At most ``reviews.max_products``, most expensive first."""
    recommendations: tuple[str, ...] = ()
    """Products the customer does not own, bought by people who bought these."""


class ReviewReminder(Action):
    """The one reminder after a review request, when nothing was reviewed since."""

    kind: Literal["review_reminder"] = "review_reminder"
    marketing: bool = True
    order_id: str
    product_ids: tuple[str, ...]


class WinBack(Action):
    """One stage of a win-back sequence; a new order starts a new sequence."""

    kind: Literal["winback"] = "winback"
    marketing: bool = True
    stage: int
    """1-based position in the sequence."""
    stage_name: Literal["reminder", "offer", "last_chance"]
    last_order_id: str
    """The order the sequence follows; part of the idempotency key."""
    trigger: Literal["rhythm", "model"]
    """Past the customer's rhythm, or the P(alive) model fell below the threshold."""
    discount_percent: int | None = None
    """None: no coupon in this stage."""
    recommendations: tuple[str, ...] = ()


class Replenish(Action):
    """A product the customer bought is about to run out."""

    kind: Literal["replenishment"] = "replenishment"
    marketing: bool = True
    product_id: str
    order_id: str
    """The last order holding the product."""
    quantity: Quantity
    """Units kept (bought minus returned), exact: 1.5 for a line sold by weight."""
    runs_out_at: UTCDateTime
    recommendations: tuple[str, ...] = ()


class WarrantyNotice(Action):
    """A product's warranty ends soon."""

    kind: Literal["warranty_notice"] = "warranty_notice"
    marketing: bool = True
    product_id: str
    order_id: str
    expires_at: UTCDateTime
