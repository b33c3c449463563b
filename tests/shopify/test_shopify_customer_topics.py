"""Customer webhooks since 2025-01 carry no tags, no marketing consent and no order count
(changelog "New customer's webhook and changes to existing customer's webhooks payload",
https://shopify.dev/changelog/new-customer-s-webhook-and-changes-to-existing-customer-s-webhooks-payload):
a delivery never erases what it does not carry, and the topics that now carry those facts
are applied."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from shopsync_shopify.webhooks import CUSTOMER_FACT_TOPICS, parse_webhook, sign

from shopsync import webhooks
from shopsync.models import Consent as ConsentModel
from shopsync.models import (
    ConsentState,
    Customer,
    MarketingConsent,
    Money,
    OptInLevel,
)
from shopsync.store import Store
from tests.shopify.deliveries import SECRET, deliver

SHOP = "acme.myshopify.com"
T0 = dt.datetime(2026, 11, 1, 12, tzinfo=dt.timezone.utc)


def _deliver(store: Store, topic: str, payload: dict[str, Any], n: int) -> Any:
    return deliver(store, topic, payload, n, shop=SHOP, t0=T0)


def _synced(store: Store) -> None:
    store.upsert(
        [
            Customer(
                platform="shopify",
                shop=SHOP,
                id="7",
                email="bob@biller.com",
                first_name="Bob",
                created_at=T0 - dt.timedelta(days=400),
                updated_at=T0,
                tags=("vip", "wholesale"),
                consent=ConsentModel(
                    email=MarketingConsent(
                        state=ConsentState.SUBSCRIBED,
                        opt_in_level=OptInLevel.SINGLE_OPT_IN,
                        updated_at=T0 - dt.timedelta(days=30),
                    )
                ),
                birthday=dt.date(1990, 5, 17),
                orders_count=5,
                total_spent=Money(amount=Decimal("412.50"), currency="USD"),
            )
        ]
    )


UPDATE_2026 = {  # the shape of the 2026-07 customers/update sample: no tags, consent, counts
    "id": 7,
    "created_at": "2025-09-27T08:00:00-04:00",
    "updated_at": "2026-11-02T09:00:00-04:00",
    "first_name": "Robert",
    "last_name": "Biller",
    "state": "enabled",
    "note": None,
    "verified_email": True,
    "multipass_identifier": None,
    "tax_exempt": False,
    "email": "bob@biller.com",
    "phone": None,
    "currency": "USD",
    "addresses": [],
    "tax_exemptions": [],
    "admin_graphql_api_id": "gid://shopify/Customer/7",
    "default_address": None,
}


def test_a_2025_customer_update_keeps_what_it_does_not_carry(store: Store) -> None:
    _synced(store)
    result = _deliver(store, "customers/update", UPDATE_2026, 1)
    assert result.status == "applied"
    stored = store.get(Customer, "shopify", SHOP, "7")
    assert stored is not None
    assert stored.first_name == "Robert"  # carried: applied
    assert stored.tags == ("vip", "wholesale")
    assert stored.consent.email.state is ConsentState.SUBSCRIBED
    assert stored.orders_count == 5 and stored.total_spent is not None
    assert stored.birthday == dt.date(1990, 5, 17)


def test_consent_and_tag_topics_are_applied(store: Store) -> None:
    _synced(store)
    email = {
        "customer_id": 7,
        "email_address": "bob@biller.com",
        "email_marketing_consent": {
            "state": "unsubscribed",
            "opt_in_level": "single_opt_in",
            "consent_updated_at": "2026-11-02T10:00:00-04:00",
        },
    }
    assert _deliver(store, "customers_email_marketing_consent/update", email, 1).status == (
        "applied"
    )
    sms = {
        "id": 7,
        "phone": "+15555550100",
        "sms_marketing_consent": {
            "state": "subscribed",
            "opt_in_level": "single_opt_in",
            "consent_updated_at": "2026-11-02T11:00:00-04:00",
            "consent_collected_from": "SHOPIFY",
        },
    }
    _deliver(store, "customers_marketing_consent/update", sms, 2)
    _deliver(
        store,
        "customer.tags_added",
        {"customerId": "gid://shopify/Customer/7", "tags": ["gold", "vip"]},
        3,
    )
    _deliver(
        store,
        "customer.tags_removed",
        {"customerId": "gid://shopify/Customer/7", "tags": ["wholesale"]},
        4,
    )
    stored = store.get(Customer, "shopify", SHOP, "7")
    assert stored is not None
    assert stored.consent.email.state is ConsentState.UNSUBSCRIBED
    assert stored.consent.sms.state is ConsentState.SUBSCRIBED
    assert sorted(stored.tags) == ["gold", "vip"]
    # an older consent delivery arriving late (a retry) does not undo the newer one
    stale = {
        **email,
        "email_marketing_consent": {
            **email["email_marketing_consent"],
            "state": "subscribed",
            "consent_updated_at": "2026-10-01T10:00:00-04:00",
        },
    }
    _deliver(store, "customers_email_marketing_consent/update", stale, 5)
    again = store.get(Customer, "shopify", SHOP, "7")
    assert again is not None and again.consent.email.state is ConsentState.UNSUBSCRIBED


def test_the_new_topics_parse_to_customer_changes() -> None:
    raw = json.dumps({"customerId": "gid://shopify/Customer/7", "tags": ["a"]}).encode()
    headers = {
        "X-Shopify-Topic": "customer.tags_added",
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-Hmac-Sha256": sign(SECRET, raw),
    }
    event = parse_webhook(headers, raw, SECRET)
    assert not event.records
    [change] = event.customer_changes
    assert change.customer_id == "7" and change.tags_added == ("a",)


def test_the_emulator_sends_the_2025_shapes_and_the_store_ends_right(
    shopify_shop: Any, tmp_path: Any
) -> None:
    from shopsync.testing import Event, Subscription

    shop = shopify_shop(customers=10, orders=5)
    state, emulator = shop.state, shop.emulator
    target = next(c for c in state.customers.values() if c.tags)
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    store.upsert([target])  # what a sync stored
    events: list[Event] = []
    state.subscribe(events.append)
    subscribed = ["customers/update", *sorted(CUSTOMER_FACT_TOPICS)]
    subs = [
        Subscription(str(i), t, "http://127.0.0.1:9/x", SECRET) for i, t in enumerate(subscribed)
    ]
    state.update_customer(target.id, first_name="Renamed")
    state.update_customer(
        target.id,
        tags=(*target.tags[1:], "gold"),
        consent=ConsentModel(
            email=MarketingConsent(
                state=ConsentState.UNSUBSCRIBED,
                opt_in_level=OptInLevel.SINGLE_OPT_IN,
                updated_at=state.clock(),
            )
        ),
    )
    deliveries = [
        d for event in events for sub in subs if (d := emulator.webhook(event, sub)) is not None
    ]
    update = json.loads(next(d for d in deliveries if b'"first_name"' in d.body).body)
    assert not {"tags", "email_marketing_consent", "orders_count", "total_spent"} & set(update)
    topics = [d.headers["X-Shopify-Topic"] for d in deliveries]
    assert topics.count("customers/update") == 2
    assert {"customers_email_marketing_consent/update", "customer.tags_added"} <= set(topics)
    for delivery in deliveries:
        webhooks.handle(
            "shopify", delivery.headers, delivery.body, store, SECRET, shops={state.shop}
        )
    stored = store.get(Customer, "shopify", state.shop, target.id)
    now = state.customers[target.id]
    assert stored is not None and stored.first_name == "Renamed"
    assert sorted(stored.tags) == sorted(now.tags)
    assert stored.consent.email.state is ConsentState.UNSUBSCRIBED
    assert stored.orders_count == target.orders_count
