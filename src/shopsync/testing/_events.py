"""The vocabulary of a shop's changes: neutral event topics, the :class:`Event` a change
emits, webhook :class:`Subscription` and :class:`DeliveryAttempt`, and :class:`ProductFacts`.

Split from :mod:`.state` (which re-exports every name) so the emulators' webhook code and the
state backend share these without the backend's bulk.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import NamedTuple

from pydantic import BaseModel

__all__ = ["TOPICS", "DeliveryAttempt", "Event", "ProductFacts", "Subscription"]

TOPICS = (
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "customer.redact",
    "customer.data_request",
    "order.created",
    "order.updated",
    "order.paid",
    "order.cancelled",
    "order.fulfilled",
    "order.deleted",
    "refund.created",
    "fulfillment.created",
    "product.created",
    "product.updated",
    "shop.redact",
    "checkout.created",
    "checkout.updated",
    "checkout.deleted",
)
"""Platform-neutral event topics; each emulator maps them to its own webhook topics."""


@dataclass(frozen=True)
class ProductFacts:
    """What retention rules need to know about a product that the platform does not say."""

    category: str
    usage_days: int | None = None
    """How long one unit lasts (consumables), for replenishment reminders."""
    warranty_days: int | None = None


@dataclass(frozen=True)
class Event:
    """One change of the shop, in neutral terms.

    For ``refund.created`` and ``fulfillment.created`` the record is the whole order and
    ``child_id`` names the new refund or fulfilment (the last one of the order).
    """

    topic: str
    resource: str
    """``customers``, ``orders``, ``products`` or ``shop``."""
    record_id: str
    record: BaseModel | None
    """The record after the change (before it, for deletions); None for shop-wide events."""
    at: dt.datetime
    child_id: str | None = None


@dataclass
class Subscription:
    """A webhook subscription; ``topic`` is the platform's own topic string."""

    id: str
    topic: str
    address: str
    secret: str | None = field(default=None, repr=False)


class DeliveryAttempt(NamedTuple):
    """One POST of a webhook; ``status`` is None when no HTTP answer came back."""

    subscription_id: str
    delivery_id: str
    status: int | None
