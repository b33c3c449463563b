"""Customer webhooks as Shopify sends them since API version 2025-01, for the emulator.

``customers/create`` and ``customers/update`` no longer carry ``tags``, the marketing
consents, ``orders_count`` or ``total_spent`` (compare the 2026-07 ``customers/update``
sample in shared/fixtures/reference/shopify-webhook-samples/); those facts come on their own
topics, sent when they change (changelog "New customer's webhook and changes to existing
customer's webhooks payload", https://shopify.dev/changelog/new-customer-s-webhook-and-changes-to-existing-customer-s-webhooks-payload):

- ``customers_email_marketing_consent/update``: ``customer_id``, ``email_address``,
  ``email_marketing_consent`` (``state``, ``opt_in_level``, ``consent_updated_at``);
- ``customers_marketing_consent/update``: ``id``, ``phone``, ``sms_marketing_consent``;
- ``customer.tags_added`` / ``customer.tags_removed`` (topics since 2023-07,
  https://shopify.dev/changelog/additional-webhook-subscription-topics-for-customer-tags):
  the customer's GID and the tags added or removed.

:class:`CustomerFacts` remembers what was last announced per customer, so these topics fire
for a change only, once per event whatever the number of subscriptions.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from shopsync.models import Customer
from shopsync_shopify._render_rest import _consent_rest
from shopsync_shopify.mapping import gid

if TYPE_CHECKING:
    from shopsync.testing.state import Event

__all__ = ["FACT_TOPICS", "WEBHOOK_DROPPED", "CustomerFacts"]

FACT_TOPICS = (
    "customers_email_marketing_consent/update",
    "customers_marketing_consent/update",
    "customer.tags_added",
    "customer.tags_removed",
)
WEBHOOK_DROPPED = (
    "tags",
    "email_marketing_consent",
    "sms_marketing_consent",
    "orders_count",
    "total_spent",
    "last_order_id",
    "last_order_name",
)
"""Keys of the REST customer that customer webhooks no longer carry."""

_Facts = tuple[tuple[str, ...], Any, Any]


class CustomerFacts:
    def __init__(self, memory: int = 20_000) -> None:
        self._sent: dict[str, _Facts] = {}
        self._diffs: OrderedDict[tuple[str, str], tuple[_Facts | None, _Facts]] = OrderedDict()
        self._memory = memory

    def _diff(self, event: Event, customer: Customer) -> tuple[_Facts | None, _Facts]:
        key = (event.record_id, event.at.isoformat())
        found = self._diffs.get(key)
        if found is None:
            after = (tuple(customer.tags), customer.consent.email, customer.consent.sms)
            found = (self._sent.get(customer.id), after)
            self._sent[customer.id] = after
            self._diffs[key] = found
            while len(self._diffs) > self._memory:
                self._diffs.popitem(last=False)
        return found

    def payload(self, topic: str, event: Event) -> dict[str, Any] | None:
        customer = event.record
        if not isinstance(customer, Customer):
            return None
        before, after = self._diff(event, customer)
        tags, email, sms = after
        old_tags, old_email, old_sms = before if before is not None else ((), None, None)
        if topic == "customers_email_marketing_consent/update":
            shown = _consent_rest(email, sms=False)
            if email == old_email or shown is None:
                return None
            return {
                "customer_id": int(customer.id) if customer.id.isdigit() else customer.id,
                "email_address": customer.email,
                "email_marketing_consent": shown,
            }
        if topic == "customers_marketing_consent/update":
            shown = _consent_rest(sms, sms=True)
            if sms == old_sms or shown is None:
                return None
            return {
                "id": int(customer.id) if customer.id.isdigit() else customer.id,
                "phone": customer.phone,
                "sms_marketing_consent": shown,
            }
        if topic in ("customer.tags_added", "customer.tags_removed"):
            lower_old = {t.lower() for t in old_tags}
            lower_new = {t.lower() for t in tags}
            if topic == "customer.tags_added":
                changed = [t for t in tags if t.lower() not in lower_old]
            else:
                changed = [t for t in old_tags if t.lower() not in lower_new]
            if not changed:
                return None
            return {"customerId": gid("Customer", customer.id), "tags": changed}
        return None
