"""Consent and erasure: no marketing without consent, and a redacted customer stays erased.

The consent property runs over random small shops (seeded generator, random consent states,
later unsubscriptions before and after ``as_of``, one-click suppressions) with the default
policy and with soft opt-in, and checks both the plan and what the sinks received. The
erasure tests scan every column of every table for the customer's personal data, after the
redaction and again after late webhooks and a later sync page try to bring it back.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shopsync_shopify import _render as render
from shopsync_shopify.webhooks import sign
from sqlalchemy import select

import shopsync
from shopsync import webhooks
from shopsync.adapter import Rejected
from shopsync.core.actions import Action
from shopsync.models import (
    Address,
    ConsentState,
    Customer,
    MarketingConsent,
    Order,
)
from shopsync.sinks._base import DeliveryContext, Guarantee
from shopsync.store import Store
from shopsync.store.schema import metadata, suppressions
from shopsync.testing.generator import generate_shop

END = dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc)
AS_OF = END + dt.timedelta(days=3)
SECRET = "whsec_privacy"
_shops = itertools.count(1)
SEEN: Counter[str] = Counter()


def _load(store: Store, platform: str, shop: str, seed: int) -> Any:
    state = generate_shop(
        platform=platform,
        shop=shop,
        seed=seed,
        customers=12,
        orders=60,
        products=4,
        end=END,
        years=0.25,
    )
    store.upsert([*state.products.values(), *state.customers.values(), *state.orders.values()])
    return state


def _consent_at(store: Store, platform: str, shop: str, customer_id: str) -> str:
    states = [
        state
        for channel, at, state in store.consent_history(platform, shop, customer_id)
        if channel == "email" and at <= AS_OF
    ]
    return states[-1] if states else "unknown"


def _allowed(state: str, soft: bool) -> bool:
    return state == "subscribed" or (soft and state in ("not_subscribed", "unknown"))


@settings(max_examples=30, derandomize=True, database=None)
@given(
    seed=st.integers(min_value=1, max_value=10**6),
    states=st.lists(st.sampled_from(ConsentState), min_size=12, max_size=12),
    changes=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=11),
            st.sampled_from(ConsentState),
            st.integers(min_value=-3, max_value=3),
        ),
        max_size=6,
    ),
    suppressed=st.sets(st.integers(min_value=0, max_value=11), max_size=3),
    soft=st.booleans(),
)
def test_no_marketing_without_consent(
    store: Store,
    tmp_path: Path,
    seed: int,
    states: list[ConsentState],
    changes: list[tuple[int, ConsentState, int]],
    suppressed: set[int],
    soft: bool,
) -> None:
    platform, shop = "shopify", f"consent-{next(_shops)}.myshopify.com"
    state = _load(store, platform, shop, seed)
    people = sorted(state.customers.values(), key=lambda c: c.id)
    first_seen = END - dt.timedelta(days=100)
    store.upsert(
        [
            c.model_copy(
                update={
                    "consent": c.consent.model_copy(update={"email": MarketingConsent(state=s)}),
                    "updated_at": max(c.updated_at, first_seen) + dt.timedelta(seconds=1),
                }
            )
            for c, s in zip(people, states, strict=False)
        ]
    )
    for n, (who, new_state, days) in enumerate(changes):
        current = store.get(Customer, platform, shop, people[who].id)
        assert current is not None
        moment = max(current.updated_at, AS_OF + dt.timedelta(hours=days * 20))
        moment += dt.timedelta(seconds=n + 1)
        email = MarketingConsent(state=new_state, updated_at=moment)
        store.upsert(
            [
                current.model_copy(
                    update={
                        "consent": current.consent.model_copy(update={"email": email}),
                        "updated_at": moment,
                    }
                )
            ]
        )
    shop_id = store.shop_id(platform, shop)
    with store.transaction() as conn:
        for who in suppressed:
            conn.execute(
                suppressions.insert().values(
                    shop_id=shop_id,
                    customer_id=people[who].id,
                    channel="email",
                    created_at=0,
                    source="test",
                )
            )
    blocked = {people[who].id for who in suppressed}
    policy = shopsync.Policy.model_validate({"consent": {"allow_soft_opt_in": soft}})
    plan = shopsync.plan(store, policy=policy, as_of=AS_OF, platform=platform, shop=shop)
    for action in plan.actions:
        if action.marketing:
            consent = _consent_at(store, platform, shop, action.customer_id)
            assert _allowed(consent, soft), (action.kind, action.customer_id, consent)
            assert action.customer_id not in blocked
    # Withdrawn between planning and delivery: the outbox must check again.
    late = {a.customer_id for a in plan.actions if a.marketing}
    with store.transaction() as conn:
        for cid in sorted(late)[:2]:
            conn.execute(
                suppressions.insert().values(
                    shop_id=shop_id, customer_id=cid, channel="email", created_at=0, source="late"
                )
            )
    blocked |= set(sorted(late)[:2])
    sink = _Inbox()
    shopsync.apply(plan, store, sinks=[sink], now=AS_OF, policy=policy)
    SEEN["planned marketing"] += len(late)
    SEEN["delivered marketing"] += sum(1 for a in sink.sent if a.marketing)
    SEEN["held for consent"] += sum(1 for h in plan.held if h.rule in ("consent", "suppressed"))
    for action in sink.sent:
        if action.marketing:
            assert action.customer_id not in blocked
            current = store.get(Customer, platform, shop, action.customer_id)
            assert current is not None and _allowed(current.consent.email.state.value, soft)


class _Inbox:
    """A sink that reaches the customer (as email or an ESP does), recording what it got."""

    name = "inbox"
    guarantee: ClassVar[Guarantee] = "exactly_once"
    stage: ClassVar[int] = 1
    contacts_customer: ClassVar[bool] = True

    def __init__(self) -> None:
        self.sent: list[Action] = []

    def accepts(self, action: Action) -> bool:
        return True

    def render(self, action: Action, context: DeliveryContext) -> dict[str, Any]:
        return {"kind": action.kind}

    def deliver(self, action: Action, context: DeliveryContext) -> dict[str, Any]:
        self.sent.append(action)
        return {"kind": action.kind}

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- erasure

VICTIM = {
    "email": "zephyrine.quillfeather@privacy.example",
    "phone": "+15550107788",
    "first_name": "Zephyrine",
    "last_name": "Quillfeather",
    "address1": "17 Wyvernmoor Lane",
    "city": "Xanthoraven",
    "zip": "ZQ 7788",
    "note": "left at Zephyrine's back door",
}


def _personal(text: str) -> list[str]:
    low = text.lower()
    return [value for value in VICTIM.values() if value.lower() in low]


def scan(store: Store) -> list[tuple[str, str, list[str]]]:
    """Every (table, column, values found) where the victim's personal data remains."""
    found = []
    with store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for column, value in row._mapping.items():
                    if value is None:
                        continue
                    text = value if isinstance(value, str) else json.dumps(value, default=str)
                    hits = _personal(text)
                    if hits:
                        found.append((table.name, column, hits))
    return found


def _address() -> Address:
    return Address(
        first_name=VICTIM["first_name"],
        last_name=VICTIM["last_name"],
        address1=VICTIM["address1"],
        city=VICTIM["city"],
        zip=VICTIM["zip"],
        country_code="US",
        phone=VICTIM["phone"],
    )


def _victim_records(state: Any) -> tuple[Customer, list[Order], Order]:
    customer_id = next(o.customer_id for o in state.orders.values() if o.customer_id)
    customer = state.customers[customer_id].model_copy(
        update={
            "email": VICTIM["email"],
            "phone": VICTIM["phone"],
            "first_name": VICTIM["first_name"],
            "last_name": VICTIM["last_name"],
            "default_address": _address(),
        }
    )
    orders = [
        o.model_copy(
            update={
                "email": VICTIM["email"],
                "billing_address": _address(),
                "shipping_address": _address(),
                "refunds": tuple(r.model_copy(update={"note": VICTIM["note"]}) for r in o.refunds),
            }
        )
        for o in state.orders.values()
        if o.customer_id == customer_id
    ]
    other = next(o for o in state.orders.values() if o.customer_id != customer_id)
    guest = other.model_copy(
        update={
            "id": "990001",
            "customer_id": None,
            "email": VICTIM["email"],
            "shipping_address": _address(),
        }
    )
    return customer, orders, guest


def _deliver(store: Store, topic: str, doc: dict[str, Any], delivery: str, **extra: str) -> Any:
    body = json.dumps(doc).encode()
    headers = {
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": extra.get("shop", ""),
        "X-Shopify-Webhook-Id": delivery,
        "X-Shopify-Hmac-Sha256": sign(SECRET, body),
        **({"X-Shopify-Triggered-At": extra["at"]} if "at" in extra else {}),
    }
    return webhooks.handle("shopify", headers, body, store, SECRET)


def test_redaction_leaves_no_personal_data_and_nothing_brings_it_back(store: Store) -> None:
    shop = "erasure.myshopify.com"
    state = _load(store, "shopify", shop, seed=5)
    customer, orders, guest = _victim_records(state)
    store.upsert([customer, *orders, guest])
    store.quarantine(
        "shopify",
        shop,
        [Rejected("orders", "990002", json.dumps({"email": VICTIM["email"].upper()}), "bad")],
    )
    assert scan(store), "the victim's data should be there before the redaction"
    totals = {o.id: o.total for o in orders}
    redact = {
        "shop_id": 548380009,
        "shop_domain": shop,
        "customer": {"id": int(customer.id), "email": VICTIM["email"], "phone": VICTIM["phone"]},
        "orders_to_redact": [int(o.id) for o in orders] + [int(guest.id)],
    }
    _deliver(store, "customers/redact", redact, "redact-1", shop=shop)
    assert scan(store) == []
    assert store.get(Customer, "shopify", shop, customer.id) is None
    for order in orders:  # the shop's figures stay
        kept = store.get(Order, "shopify", shop, order.id)
        assert kept is not None and kept.total == totals[order.id] and kept.email is None

    # Late and replayed deliveries, newer versions included, and a later sync page.
    later = dt.timedelta(days=3)
    newer_customer = customer.model_copy(update={"updated_at": customer.updated_at + later})
    _deliver(store, "customers/update", render.customer_rest(customer), "late-1", shop=shop)
    _deliver(store, "customers/update", render.customer_rest(newer_customer), "late-2", shop=shop)
    for n, order in enumerate([*orders, guest]):
        newer = order.model_copy(update={"updated_at": order.updated_at + later})
        _deliver(store, "orders/updated", render.order_rest(newer), f"late-o{n}", shop=shop)
    store.upsert([newer_customer, *orders, guest])
    assert scan(store) == []
    assert store.get(Customer, "shopify", shop, customer.id) is None
    assert all(store.get(Order, "shopify", shop, o.id) is not None for o in orders)


def test_a_late_update_does_not_revive_a_deleted_record(store: Store) -> None:
    shop = "deleted.myshopify.com"
    state = _load(store, "shopify", shop, seed=6)
    order = next(iter(state.orders.values()))
    deleted_at = order.updated_at + dt.timedelta(hours=1)
    stamp = deleted_at.isoformat().replace("+00:00", "Z")
    _deliver(store, "orders/delete", {"id": int(order.id)}, "del-1", shop=shop, at=stamp)
    assert store.get(Order, "shopify", shop, order.id) is None
    older = order.model_copy(update={"updated_at": deleted_at - dt.timedelta(minutes=5)})
    result = _deliver(store, "orders/updated", render.order_rest(older), "late-1", shop=shop)
    assert result.upserted.stale == 1
    store.upsert([order])  # a sync page read before the deletion
    assert store.get(Order, "shopify", shop, order.id) is None
    restored = order.model_copy(update={"updated_at": deleted_at + dt.timedelta(minutes=5)})
    _deliver(store, "orders/updated", render.order_rest(restored), "restore-1", shop=shop)
    back = store.get(Order, "shopify", shop, order.id)
    assert back is not None and back.updated_at == restored.updated_at


@pytest.fixture(scope="module", autouse=True)
def _summary() -> Iterator[None]:
    yield
    print(f"\nconsent property: {dict(SEEN)}")
