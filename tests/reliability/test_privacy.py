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
    Consent,
    ConsentState,
    Customer,
    MarketingConsent,
    OptInLevel,
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


@pytest.mark.slow(seconds=40)
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


# --------------------------------------------------------------------------- issue 16 item 9

FRIEND_IP = "203.0.113.77"


def _leftovers(store: Store, *extra: str) -> list[tuple[str, str, list[str]]]:
    """:func:`scan`, also for ``extra`` values (an IP address, a hashed e-mail...)."""
    found = scan(store)
    with store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for column, value in row._mapping.items():
                    text = value if isinstance(value, str) else json.dumps(value, default=str)
                    hits = [v for v in extra if v and v.lower() in (text or "").lower()]
                    if hits:
                        found.append((table.name, column, hits))
    return found


def _referral_world(store: Store, shop: str) -> tuple[Customer, list[Order], Order, str]:
    """The victim as customer, guest buyer, referred friend (by e-mail and IP, under a new
    key and under a key of the kind older versions wrote), reviewer, unsubscriber and
    recipient of outbox messages; ``advocate`` referred them and holds points for it."""
    from shopsync import loyalty, reviews
    from shopsync.outbox import record_unsubscribe
    from shopsync.store.schema import loyalty_ledger, outbox

    state = _load(store, "shopify", shop, seed=7)
    customer, orders, guest = _victim_records(state)
    store.upsert([customer, *orders, guest])
    advocate = next(c for c in state.customers if c != customer.id)
    at = dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc)
    key = loyalty.record_referral(
        store,
        "shopify",
        shop,
        advocate_id=advocate,
        friend_email=VICTIM["email"],
        ip=FRIEND_IP,
        at=at,
    )
    assert VICTIM["email"] not in key, "a new referral key must not carry the friend's e-mail"
    legacy = f"referral:{advocate}:{VICTIM['email']}"  # what shopsync wrote before
    loyalty.record_referral(
        store,
        "shopify",
        shop,
        advocate_id=advocate,
        friend_id=customer.id,
        ip=FRIEND_IP,
        at=at,
        key=legacy,
    )
    shop_id = store.shop_id("shopify", shop)
    bonus = f"bonus:referral:{legacy}:advocate"
    with store.transaction() as conn:
        conn.execute(
            loyalty_ledger.insert().values(
                shop_id=shop_id, customer_id=advocate, source_key=bonus, kind="bonus",
                pending=0, approved=50, effective_at=1, recorded_at=1, order_id=orders[0].id,
                reason="referral reward (advocate)", detail={"source_key": bonus},
            )
        )  # fmt: skip
        for who, idem in ((advocate, f"loyalty_award:{shop}:{bonus}"), (customer.id, "nudge:1")):
            conn.execute(
                outbox.insert().values(
                    shop_id=shop_id, idempotency_key=idem, sink="jsonl", stage=1, kind="nudge",
                    customer_id=who, marketing=1, model="shopsync.core.actions:Action",
                    action={"note": idem, "to": VICTIM["email"] if who == customer.id else ""},
                    status="done", attempts=1, due_at=1, next_attempt_at=1, created_at=1,
                    updated_at=1,
                )
            )  # fmt: skip
    product = orders[0].line_items[0].product_id or "p1"
    reviews.record(store, "shopify", shop, customer.id, product, at, rating=5, review_id="r-1")
    record_unsubscribe(store, "shopify", shop, customer.id, now=at)
    return customer, orders, guest, advocate


def _redact_doc(shop: str, customer: Customer, orders: list[Order]) -> dict[str, Any]:
    return {
        "shop_id": 548380009,
        "shop_domain": shop,
        "customer": {"id": int(customer.id), "email": VICTIM["email"], "phone": VICTIM["phone"]},
        "orders_to_redact": [int(o.id) for o in orders],
    }


def test_redaction_also_clears_referrals_ledger_keys_and_outbox_keys(store: Store) -> None:
    from shopsync.store.schema import loyalty_inputs, loyalty_ledger

    shop = "referrals.myshopify.com"
    customer, orders, _guest, advocate = _referral_world(store, shop)
    assert _leftovers(store, FRIEND_IP), "the victim's data should be there before"
    _deliver(store, "customers/redact", _redact_doc(shop, customer, orders), "r-1", shop=shop)
    assert _leftovers(store, FRIEND_IP) == []
    # The advocate keeps their referrals and points; only the friend's data went.
    with store.engine.connect() as conn:
        kept = list(
            conn.execute(select(loyalty_inputs).where(loyalty_inputs.c.customer_id == advocate))
        )
        points = list(
            conn.execute(select(loyalty_ledger).where(loyalty_ledger.c.customer_id == advocate))
        )
    assert len(kept) == 2 and all(r.data.get("ip") is None for r in kept)
    assert [p.approved for p in points] == [50]


def test_a_referral_recorded_under_an_old_key_is_not_recorded_twice(store: Store) -> None:
    from shopsync import loyalty
    from shopsync.store.schema import loyalty_inputs

    shop = "oldkeys.myshopify.com"
    store.shop_id("shopify", shop)
    at = dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc)
    legacy = "referral:42:friend@old.example"
    loyalty.record_referral(
        store,
        "shopify",
        shop,
        advocate_id="42",
        friend_email="friend@old.example",
        at=at,
        key=legacy,
    )
    again = loyalty.record_referral(
        store, "shopify", shop, advocate_id="42", friend_email="Friend@Old.example ", at=at
    )
    assert again == legacy
    with store.engine.connect() as conn:
        assert len(list(conn.execute(select(loyalty_inputs)))) == 1


def test_a_data_request_exports_everything_held_about_the_person(store: Store) -> None:
    shop = "access.myshopify.com"
    customer, orders, guest, advocate = _referral_world(store, shop)
    # A guest checkout under another address, which only the platform's request names.
    other = guest.model_copy(update={"id": "990003", "email": "z.q@elsewhere.example"})
    store.upsert([other])
    doc = {
        "shop_id": 548380009,
        "shop_domain": shop,
        "customer": {"id": int(customer.id), "email": VICTIM["email"], "phone": VICTIM["phone"]},
        "orders_requested": [int(o.id) for o in orders] + [int(other.id)],
        "data_request": {"id": 9999},
    }
    export = _deliver(store, "customers/data_request", doc, "dr-1", shop=shop).export
    assert export["customer"]["email"] == VICTIM["email"]
    assert {o["id"] for o in export["orders"]} == {o.id for o in orders} | {guest.id, other.id}
    assert [r["product_id"] for r in export["reviews"]] and export["reviews"][0]["rating"] == 5
    assert [s["channel"] for s in export["suppressions"]] == ["email"]
    assert [m["idempotency_key"] for m in export["outbox"]] == ["nudge:1"]
    referred = export["referrals"]
    assert len(referred) == 2 and {r["advocate_id"] for r in referred} == {advocate}
    assert all(r["ip"] == FRIEND_IP for r in referred)
    assert "loyalty_ledger" in export and "loyalty_inputs" in export
    text = json.dumps(export)
    assert VICTIM["email"] in text and FRIEND_IP in text


def test_an_unsubscribe_after_shop_redact_does_not_bring_the_shop_back(store: Store) -> None:
    from shopsync.outbox import record_unsubscribe

    shop = "gone.myshopify.com"
    state = _load(store, "shopify", shop, seed=8)
    customer_id = next(iter(state.customers))
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3)
    body = json.dumps({"shop_id": 1, "shop_domain": shop}).encode()
    headers = {
        "X-Shopify-Topic": "shop/redact",
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-Webhook-Id": "wipe-1",
        "X-Shopify-Hmac-Sha256": sign(SECRET, body),
    }
    webhooks.handle("shopify", headers, body, store, SECRET, now=later)
    assert ("shopify", shop) not in store.shops()
    assert record_unsubscribe(store, "shopify", shop, customer_id) == 0
    assert ("shopify", shop) not in store.shops()
    with store.engine.connect() as conn:
        assert list(conn.execute(select(suppressions))) == []


def test_the_ad_audience_drops_who_withdrew_consent_or_was_erased(
    store: Store, tmp_path: Path
) -> None:
    from shopsync.privacy import prune_audience
    from shopsync.sinks.files import AdAudience, audience_row

    shop = "audience.myshopify.com"
    state = _load(store, "shopify", shop, seed=9)
    consent = MarketingConsent(state=ConsentState.SUBSCRIBED, opt_in_level=OptInLevel.SINGLE_OPT_IN)
    people = [
        c.model_copy(update={"consent": Consent(email=consent), "email": f"p{n}@aud.example"})
        for n, c in enumerate(list(state.customers.values())[:3])
    ]
    store.upsert(people)
    sink = AdAudience("audience.csv", root=tmp_path)
    rows = [audience_row(c) for c in people]
    lines = [f"{r['email_sha256']},{r['phone_sha256']}" for r in rows if r]
    sink.path.write_text("Email,Phone\n" + "".join(f"{line}\n" for line in lines), encoding="utf-8")
    # One withdraws consent on the platform, one is erased.
    withdrawn = people[0].model_copy(
        update={
            "consent": Consent(email=MarketingConsent(state=ConsentState.UNSUBSCRIBED)),
            "updated_at": people[0].updated_at + dt.timedelta(days=1),
        }
    )
    store.upsert([withdrawn])
    store.redact_customer("shopify", shop, people[1].id)
    assert prune_audience(store, sink, "shopify", shop) == 2
    assert sink.path.read_text(encoding="utf-8").splitlines() == ["Email,Phone", lines[2]]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".audience")]  # no temp left
