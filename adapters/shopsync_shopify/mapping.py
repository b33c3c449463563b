"""Shopify wire JSON -> shared models, for both shapes Shopify sends.

The adapter reads GraphQL nodes (camelCase, ``gid://`` ids, ``MoneyBag`` amounts); webhooks
arrive REST-shaped (snake_case, integer ids, decimal strings). Both map to the same models, and
for an order known to both shapes the results are equal: that is what lets a webhook update a
record that a sync wrote.

Rules (the same in both shapes):

- **No email**: kept as ``None``. Shopify customers may have only a phone; an order may have
  neither. Neither is a reason to reject.
- **Guest order**: ``customer`` null or absent -> ``customer_id=None``; the order email stays.
- **Unknown enum values**: a financial status we do not know rejects the order (revenue
  figures depend on it); ``null`` means pending and ``EXPIRED`` means voided (Shopify has no
  "cancelled" payment state: a cancelled order is voided or refunded and carries
  ``cancelled_at``). Unknown fulfilment statuses read as
  ``unfulfilled`` (the fulfilments themselves stay the truth); unknown consent states and
  opt-in levels read as ``unknown``, which never allows marketing.
- **Malformed amount or date**: the record is rejected with :class:`InvalidRecordError`
  naming the field path (``lineItems[2].originalUnitPriceSet``); a record is never half-mapped.
  Any other wrong shape (a list where an object belongs, a number for a tag list) is rejected
  the same way, with the Python error as its reason: no payload escapes as another exception.
- **Derived values**: ``paid_at`` is ``processed_at`` once the financial status says money was
  captured (neither shape carries a payment time on the order itself); ``total_refunded`` and
  each refund's amount come from the refund transactions (REST) or ``totalRefundedSet``
  (GraphQL); a line's ``refunded_quantity`` is the sum of its refund lines; a line's
  ``total`` is ``price * quantity - discount``, its discount the sum of its discount
  allocations. A fulfilment's ``delivered_at`` is ``deliveredAt`` (GraphQL) or, in REST, the
  fulfilment's ``updated_at`` once ``shipment_status`` is ``delivered`` (the delivery event is
  its last change). Empty address strings read as ``None``. The birthday is the standard
  ``facts.birth_date`` metafield (GraphQL ``metafield``; REST ``metafields`` when the webhook
  subscription asks for the ``facts`` namespace).
- **Consent**: ``emailMarketingConsent`` / ``smsMarketingConsent`` (REST
  ``email_marketing_consent`` / ``sms_marketing_consent``); the removed ``accepts_marketing``
  is read only when the new field is absent (old payloads): true -> subscribed.
"""

from __future__ import annotations

from shopsync.adapter_kit import quarantined_record
from shopsync.errors import InvalidRecordError
from shopsync.models import Customer, Order, Product
from shopsync_shopify._map_common import PLATFORM, gid, parse_gid
from shopsync_shopify._map_graphql import (
    customer_from_graphql,
    order_from_graphql,
    product_from_graphql,
)
from shopsync_shopify._map_rest import (
    consent_from_webhook,
    customer_from_webhook,
    order_from_webhook,
    product_from_webhook,
)

__all__ = [
    "PLATFORM",
    "consent_from_webhook",
    "customer_from_graphql",
    "customer_from_webhook",
    "gid",
    "map_record",
    "order_from_graphql",
    "order_from_webhook",
    "parse_gid",
    "product_from_graphql",
    "product_from_webhook",
]


def map_record(resource: str, raw: str, shop: str) -> Customer | Order | Product:
    """Map a quarantined record again: a GraphQL node (its id is a GID) or a webhook
    payload (REST-shaped). Products need the shop currency and are re-read by a sync."""
    node = quarantined_record(raw)
    graphql = str(node.get("id", "")).startswith("gid://")
    if resource == "orders":
        return (
            order_from_graphql(node, shop=shop) if graphql else order_from_webhook(node, shop=shop)
        )
    if resource == "customers":
        return (
            customer_from_graphql(node, shop=shop)
            if graphql
            else customer_from_webhook(node, shop=shop)
        )
    raise InvalidRecordError(
        f"{resource} are re-read by a sync (shopsync sync shopify --full -r {resource})",
        raw=raw,
    )
