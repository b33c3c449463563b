"""Review of the incremental plan's read of a set of customers (issue 19): ids bound as one
JSON array (odd characters, numeric-looking, long, none, many), the customers' checkouts,
browse events and deliveries, each checked against the contract (the incremental plan, its
customers' rows read alone, is the full plan restricted to them, action for action)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any
from unittest import mock

import polars as pl
from sqlalchemy import select, update

from shopsync import frames as frames_module
from shopsync import incremental
from shopsync.core._data import to_us
from shopsync.core.incremental import restrict
from shopsync.frames import load
from shopsync.loyalty import record_referral
from shopsync.models import Consent, ConsentState, Customer, MarketingConsent, Order, Product
from shopsync.outbox import apply
from shopsync.planning import plan
from shopsync.sinks import JsonLines
from shopsync.store import Store
from shopsync.store.checkout_rows import upsert_checkouts
from shopsync.store.event_rows import record_events
from shopsync.store.incremental import plannable_among
from shopsync.store.schema import loyalty_due, program_due, shop_models
from shopsync.testing.generator import generate_shop
from tests.core.frames_kit import DAY, T0, Shop
from tests.core.frames_kit import policy as kit_policy
from tests.core.retention_helpers import customer, order
from tests.core.test_incremental_plan import DAY as IDAY
from tests.core.test_incremental_plan import POLICY, _small_shop
from tests.core.test_incremental_plan import T0 as IT0

P, SHOP = "shopify", "acme"
HOUR = dt.timedelta(hours=1)
ODD = [
    "1",
    "001",
    "1.0",
    "1e3",
    "true",
    "null",
    "[1]",
    "a'b",
    'q"x',
    "back\\slash",
    "%_",
    " spaced ",
    "ü-ñ-日本",
    "😀",  # a surrogate pair once escaped by json.dumps
    "x" * 120,
]


def _odd_shop(store: Store) -> None:
    shop = Shop().product("p1", "Coffee").product("p2", "Coffee")
    for n, cid in enumerate(ODD):
        shop.order(f"o{n}", cid, T0 - 30 * DAY, ptype="Coffee")
        shop.checkout(f"k{n}", f"c{n}", T0 - 4 * HOUR, ("p2",))  # its id set below
        shop.viewed(cid, "p2", T0 - 3 * HOUR)
    made = T0 - 400 * DAY
    people = [  # (the kit's customers take their address from the id, which makes none here)
        Customer(
            platform=P,
            shop=SHOP,
            id=cid,
            email=f"c{n}@example.com",
            created_at=made,
            updated_at=made,
            consent=Consent(email=MarketingConsent(state=ConsentState.SUBSCRIBED)),
        )
        for n, cid in enumerate(ODD)
    ]
    store.upsert([*people, *shop.models()])
    started = shop.checkout_models()
    upsert_checkouts(
        store, [k.model_copy(update={"customer_id": ODD[n]}) for n, k in enumerate(started)]
    )
    record_events(store, P, SHOP, shop.event_rows(), received_at=T0, cap=999, window=DAY)


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns, nulls_last=True)


def test_odd_ids_read_as_the_whole_shop_restricted(store: Store) -> None:
    _odd_shop(store)
    whole = load(store, P, SHOP, T0, currency="USD")
    for ids in (ODD, ODD[:7], ["001"], ["1"], ["😀", "x" * 120], [], ["x" * 5000]):
        mine = load(store, P, SHOP, T0, currency="USD", customer_ids=ids)
        want = restrict(whole, ids)
        for name in ("customers", "orders", "consent", "checkouts", "browse"):
            got, expected = getattr(mine, name), getattr(want, name)
            if name in ("checkouts", "browse"):
                expected = expected.filter(pl.col("customer_id").is_in(ids))
            assert _sorted(got).equals(_sorted(expected)), (name, ids)
        assert set(mine.customers["id"].to_list()) == set(ids) & set(ODD), ids


def test_odd_ids_are_sorted_by_plannable_among(store: Store) -> None:
    _odd_shop(store)
    shop_id = store.shop_id(P, SHOP)
    at = int(T0.timestamp() * 1_000_000)
    asked = [*ODD, "01", "1.00", "ü-n", "no such"]
    known, plannable = plannable_among(store, shop_id, at, asked)
    assert known == plannable == set(ODD)
    assert plannable_among(store, shop_id, at, []) == (set(), set())


def test_plannable_among_counts_rows_by_at_and_real_orders_alone(store: Store) -> None:
    """Known: a customer row by ``at``; plannable: that, or a real order, a checkout or a
    browse event by then (a deleted customer keeps them). A test order, rows dated after
    ``at`` and ids the shop never saw make no one plannable."""
    shop = Shop().product("p1", "Coffee").customer("known").customer("late", created=T0 + DAY)
    shop.order("o1", "buyer", T0 - DAY).order("o2", "late", T0 + DAY).order(
        "o3", "after", T0 + HOUR
    )
    shop.checkout("k1", "starter", T0 - HOUR).checkout("k2", "after", T0 + HOUR)
    shop.viewed("browser", "p1", T0 - HOUR).viewed("v-later", "p1", T0 + HOUR)
    tested = order("t1", "tester", T0 - DAY).model_copy(update={"test": True})
    store.upsert([*shop.models(), tested])
    upsert_checkouts(store, shop.checkout_models())
    record_events(store, P, SHOP, shop.event_rows(), received_at=T0 + DAY, cap=999, window=DAY)
    asked = [
        "known",
        "late",
        "buyer",
        "later",
        "k-later",
        "v-later",
        "starter",
        "browser",
        "tester",
        "nobody",
    ]
    at = int(T0.timestamp() * 1_000_000)
    assert plannable_among(store, store.shop_id(P, SHOP), at, asked) == (
        {"known"},
        {"known", "buyer", "starter", "browser"},
    )


def test_a_hundred_thousand_ids_are_bound_as_one_array(store: Store) -> None:
    _odd_shop(store)
    ids = [*ODD, *(f"ghost-{n}" for n in range(100_000))]
    mine = load(store, P, SHOP, T0, currency="USD", customer_ids=ids)
    assert set(mine.customers["id"].to_list()) == set(ODD)
    assert mine.orders.height == len(ODD)
    shop_id = store.shop_id(P, SHOP)
    at = int(T0.timestamp() * 1_000_000)
    assert plannable_among(store, shop_id, at, ids)[1] == set(ODD)


def _dump(actions: Any) -> list[dict[str, Any]]:
    return [a.model_dump(mode="json") for a in actions]


def test_odd_ids_plan_as_the_full_plan(store: Store) -> None:
    """Every program with rows of the customers' own (orders, checkouts, browse events), the
    customers' rows read alone: the same actions, facts and all, as the full plan."""
    _odd_shop(store)
    pol = kit_policy(
        abandoned_checkout={},
        browse_abandonment={},
        replenishment={"usage_days_by_type": {"Coffee": 21}},
        winback={},
    )
    at = T0 + HOUR
    full = plan(store, pol, at, platform=P, shop=SHOP, update_ledger=False)
    found = {a.kind for a in full} | {h.action.kind for h in full.held}
    assert found >= {"abandoned_checkout", "replenishment"}
    with mock.patch.object(incremental, "_WHOLE_SHARE", 0):
        alone = plan(store, pol, at, platform=P, shop=SHOP, only_changed=True)
    assert set(alone.customers) == set(ODD)
    chosen = set(alone.customers)
    assert _dump(alone) == _dump(a for a in full if a.customer_id in chosen)
    assert [(h.action.idempotency_key, h.rule) for h in alone.held] == [
        (h.action.idempotency_key, h.rule) for h in full.held if h.action.customer_id in chosen
    ]


def test_the_set_read_keeps_every_field_of_the_whole_read(store: Store) -> None:
    """The frames a set read gives carry the same fields as the whole read's restricted
    (but for what is documented to differ: the later orders' count, the uncut lines)."""
    _odd_shop(store)
    whole = load(store, P, SHOP, T0, currency="USD")
    mine = load(store, P, SHOP, T0, currency="USD", customer_ids=ODD[:3])
    want = restrict(whole, ODD[:3])
    for f in dataclasses.fields(want):
        if f.name in ("future_orders", "lines", "refunds", "fulfillments", "checkouts", "browse"):
            continue
        got, expected = getattr(mine, f.name), getattr(want, f.name)
        if isinstance(expected, pl.DataFrame):
            assert _sorted(got).equals(_sorted(expected)), f.name
        else:
            assert got == expected, f.name


def test_a_catalogue_change_below_the_newest_update_reaches_the_incremental_plan(
    store: Store,
) -> None:
    """A product retagged ("fast", refilled after 21 days, to "slow", after 45) by an update
    older than another product's newest: the incremental plan, which takes the catalogue
    beside the stored models, must see it as the full plan does."""
    shop = Shop().product("p1", tags=("fast",)).product("p2", tags=("fast",))
    for n in range(4):
        shop.customer(f"c{n}").order(f"o{n}", f"c{n}", T0 - 25 * DAY, [("p2", 1, "20")])
    rows = shop.models()
    p1, p2 = (next(m for m in rows if isinstance(m, Product) and m.id == i) for i in ("p1", "p2"))
    store.upsert([*rows, p1.model_copy(update={"updated_at": T0 - DAY})])  # p1's is newest
    pol = kit_policy(replenishment={"usage_days_by_tag": {"fast": 21, "slow": 45}})
    at = T0
    for _ in range(2):  # the first stores the models, the second plans from them
        before = plan(store, pol, at, platform=P, shop=SHOP, only_changed=True)
    assert [a.kind for a in before] == ["replenishment"] * 4
    store.upsert([p2.model_copy(update={"tags": ("slow",), "updated_at": T0 - 2 * DAY})])
    full = plan(store, pol, at, platform=P, shop=SHOP, update_ledger=False)
    inc = plan(store, pol, at, platform=P, shop=SHOP, only_changed=True)
    assert set(inc.customers) == {f"c{n}" for n in range(4)}  # nothing settled: all noted
    assert [a.kind for a in full] == []  # a slow refill is not due yet
    assert _dump(inc) == _dump(full)


def test_undecodable_stored_models_cost_one_whole_read(store: Store) -> None:
    """Stored models whose header is current but whose body cannot be read: the incremental
    plan rebuilds them from its own read of the shop (one), not from a second whole read,
    and plans as the full plan does."""
    shop = Shop().product("p1", tags=("fast",))
    for n in range(4):
        shop.customer(f"c{n}").order(f"o{n}", f"c{n}", T0 - 25 * DAY, [("p1", 1, "20")])
    store.upsert(shop.models())
    pol = kit_policy(replenishment={"usage_days_by_tag": {"fast": 21}})
    plan(store, pol, T0, platform=P, shop=SHOP, only_changed=True)  # stores the models
    with store.transaction() as conn:
        conn.execute(update(shop_models).values(body=b"not a model"))
    fresh = Store(store.engine.url.render_as_string(hide_password=False))  # no memo
    try:
        reads = mock.Mock(wraps=frames_module.read_shop)
        with mock.patch.object(frames_module, "read_shop", reads):
            inc = plan(fresh, pol, T0, platform=P, shop=SHOP, only_changed=True)
        assert reads.call_count == 1
        full = plan(fresh, pol, T0, platform=P, shop=SHOP, update_ledger=False)
        assert [a.kind for a in full] == ["replenishment"] * 4
        assert _dump(inc) == _dump(full)
    finally:
        fresh.close()


def test_an_erasure_between_the_plan_and_its_apply_leaves_no_stored_moment(
    store: Store, tmp_path: Path
) -> None:
    """A customer erased after the plan read them and before it is applied: the settle must
    not write their loyalty or program moments back (an erasure leaves none)."""
    _small_shop(store, "e.example")
    at = IT0 + IDAY
    made = plan(store, POLICY, at, platform=P, shop="e.example", only_changed=True)
    victim = sorted(made.customers)[0]
    store.redact_customer(P, "e.example", victim)
    apply(made, store, [JsonLines("out.jsonl", root=tmp_path)], now=at)
    shop_id = store.shop_id(P, "e.example")
    with store.engine.connect() as conn:
        for table in (loyalty_due, program_due):
            mine = (table.c.shop_id == shop_id) & (table.c.customer_id == victim)
            assert conn.execute(select(table.c.due_at).where(mine)).all() == [], table.name


def test_a_referral_by_email_plans_both_parties_from_their_rows_alone(store: Store) -> None:
    """An advocate whose friend, named by e-mail only, placed a first order past its approval
    period (the referral is rewarded): both are planned, from their rows alone, as in full."""
    _small_shop(store, "r.example")
    advocate = sorted(c.id for c in store.iter(Customer, P, "r.example"))[0]
    friend = "friend-1"  # new: the order below is their first
    store.upsert([customer(friend, created=IT0).model_copy(update={"shop": "r.example"})])
    at = IT0 + 40 * IDAY
    record_referral(
        store,
        P,
        "r.example",
        advocate_id=advocate,
        at=IT0,
        friend_email=f"{friend.upper()}@EXAMPLE.COM",
    )
    late = order("ref1", friend, IT0 + IDAY, ptype="Coffee").model_copy(
        update={"shop": "r.example"}
    )
    store.upsert([late])
    full = plan(store, POLICY, at, platform=P, shop="r.example", update_ledger=False)
    with mock.patch.object(incremental, "_WHOLE_SHARE", 0):
        alone = plan(store, POLICY, at, platform=P, shop="r.example", only_changed=True)
    assert {advocate, friend} <= set(alone.customers)
    chosen = set(alone.customers)
    assert _dump(alone) == _dump(a for a in full if a.customer_id in chosen)


def test_the_set_reads_currency_and_the_loyalty_currency_come_from_one_scan(
    store: Store,
) -> None:
    """Orders in EUR by ``as_of`` and more in USD later: the read's currency (by ``as_of``)
    and the loyalty derivation's (of every order) differ, both counted in one scan of the
    snapshot; the incremental plan, its customers read alone, is still the full plan."""
    from shopsync.store import facts
    from shopsync.store.shop_figures import main_currencies

    state = generate_shop(platform=P, shop=SHOP, seed=5, customers=12, orders=45, end=IT0)
    orders = sorted(state.orders.values(), key=lambda o: o.created_at)
    cut = len(orders) // 3
    euro = [
        Order.model_validate(json.loads(o.model_dump_json().replace('"USD"', '"EUR"')))
        for o in orders[:cut]
    ]
    store.upsert([*state.products.values(), *state.customers.values(), *euro, *orders[cut:]])
    at = orders[cut - 1].created_at + HOUR
    with mock.patch.object(facts, "MIN_ORDERS", 0):
        facts.order_facts(store, store.shop_id(P, SHOP))
    assert main_currencies(store, store.shop_id(P, SHOP), to_us(at)) == ("EUR", "USD")
    plan(store, POLICY, at, platform=P, shop=SHOP, only_changed=True)  # stores the models
    with mock.patch.object(incremental, "_WHOLE_SHARE", 0):
        alone = plan(store, POLICY, at, platform=P, shop=SHOP, only_changed=True)
    full = plan(store, POLICY, at, platform=P, shop=SHOP, update_ledger=False)
    chosen = set(alone.customers)
    assert chosen and not any(m.rebuilt for m in alone.models)
    assert _dump(alone) == _dump(a for a in full if a.customer_id in chosen)
