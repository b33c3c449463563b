"""Review of the webhook re-plan speed work (issue 19): a one-customer plan must plan what
the whole-shop plan gives that customer, at any moment, and the loyalty currency it keeps
between webhooks must follow the store's data, whoever wrote it."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest

from shopsync import planning
from shopsync.core.actions import Action
from shopsync.core.policy import Policy
from shopsync.models import Order
from shopsync.outbox import apply
from shopsync.planning import plan, plan_customer
from shopsync.store import Store
from shopsync.store import shop_models as rows
from shopsync.store.shop_figures import main_currency
from shopsync.testing.generator import generate_shop
from tests.core.test_stored_models import DAY, T0, P, _policy, _shop

END = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
EVERY = Policy.from_dict(
    {
        "replenishment": {"usage_days_by_type": {"Coffee": 21, "Tea": 45, "Pet Food": 28}},
        "warranty": {"days_by_type": {"Electronics": 730, "Kitchen": 365}, "days_before": 60},
        "reviews": {"reminder_days": 5, "home_country": "US", "international_extra_days": 7},
    }
)


@pytest.mark.slow(seconds=90)
def test_one_customer_plans_equal_the_whole_plan_for_every_customer_and_moment(
    store: Store,
) -> None:
    """The early exits (reviews, win-back, replenishment, warranty) must never skip what the
    full computation plans: every customer, with or without an action, at moments spread
    over the shop's history and past its last order; each plan is delivered, so reminders,
    the frequency cap and the delivered requests' dates come into later plans."""
    shop = f"every-{random.getrandbits(32):x}.example"
    state = generate_shop(platform=P, shop=shop, seed=23, customers=80, orders=500, end=END)
    store.upsert([*state.products.values(), *state.customers.values(), *state.orders.values()])
    ids = sorted(state.customers)
    pick = random.Random(7)
    starts = sorted(
        END - dt.timedelta(days=pick.randint(-90, 300), minutes=pick.randint(0, 1439))
        for _ in range(3)
    )
    for as_of in [s + dt.timedelta(days=d) for s in starts for d in (0, 6, 13)]:
        whole = plan(store, EVERY, as_of, platform=P, shop=shop)
        for cid in ids:
            alone = plan_customer(store, EVERY, as_of, P, shop, cid)
            expected = [a.idempotency_key for a in whole if a.customer_id == cid]
            assert alone.keys == expected, (as_of, cid)
            assert [h.action.idempotency_key for h in alone.held] == [
                h.action.idempotency_key for h in whole.held if h.action.customer_id == cid
            ], (as_of, cid)
        apply(list(whole), store, [_Sink()], now=as_of)


class _Sink:
    """Delivers every action (the outbox then holds what was sent, and when)."""

    name, stage, guarantee, contacts_customer = "mail", 1, "at_least_once", False

    def accepts(self, action: Action) -> bool:
        return True

    def render(self, action: Action, context: Any) -> dict[str, Any]:
        return {}

    def deliver(self, action: Action, context: Any) -> dict[str, Any]:
        return {"sent": True}

    def close(self) -> None:
        pass


def test_a_shop_removed_and_created_again_gets_its_own_loyalty_currency(store: Store) -> None:
    """The kept currency was keyed by (platform, shop, shop id) and trusted while the shop's
    sequence had not gone below the kept mark; SQLite gives a removed shop's id to the next
    shop created (no AUTOINCREMENT), whose sequence starts again from 0: once it reaches
    the old mark, the removed shop's currency was returned for the new shop's orders."""
    name = _shop(store)
    policy = _policy()
    assert planning._loyalty_currency(store, P, name, policy) == "USD"
    old_id = store.shop_id(P, name, create=False)
    mark = rows.facts_seq(store, old_id)
    orders = sorted(store.iter(Order, P, name), key=lambda o: o.id)
    store.remove_shop(P, name)
    euros = [o.model_copy(update={"currency": "EUR"}) for o in orders[:3]]
    store.upsert(euros)
    shop_id = store.shop_id(P, name, create=False)
    step = 0
    while rows.facts_seq(store, shop_id) < mark:  # the new shop's writes reach the old mark
        step += 1
        again = euros[0].model_copy(update={"updated_at": T0 + step * DAY})
        store.upsert([again])
    assert main_currency(store, shop_id) == "EUR"
    assert planning._loyalty_currency(store, P, name, policy) == "EUR"


def test_a_one_customer_read_is_one_snapshot_while_an_order_is_written(store_url: str) -> None:
    """The one-customer read's selects share one connection, but not one snapshot (SQLite:
    no transaction; PostgreSQL: read committed): an order written by another process between
    the orders select and the line select showed up as lines of an order the read lacks."""
    from sqlalchemy import event

    from shopsync.store.read import read_shop

    store, writer = Store(store_url), Store(store_url)
    try:
        name = _shop(store)
        mine = sorted(
            (o for o in store.iter(Order, P, name) if o.customer_id),
            key=lambda o: (o.customer_id, o.id),
        )[0]
        cid = mine.customer_id
        assert cid is not None and mine.line_items
        new = mine.model_copy(
            update={"id": f"{mine.id}-late", "created_at": T0 - DAY / 2, "updated_at": T0}
        )
        seen: list[str] = []
        written: list[str] = []

        def between(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
            refunds = statement.startswith("SELECT") and "FROM refunds WHERE" in statement
            if refunds and not written:
                written.extend(seen)
                writer.upsert([new])  # another process, after the orders select
            seen.append(statement)

        event.listen(store.engine, "before_cursor_execute", between)
        shop_id = store.shop_id(P, name, create=False)
        at = int(T0.timestamp() * 1_000_000)
        read = read_shop(store, shop_id, at, customer_id=cid, read_products=False)
        event.remove(store.engine, "before_cursor_execute", between)
        assert any("FROM orders WHERE" in s for s in written)  # the write came between
        assert set(read.lines["order_id"]) <= set(read.orders["id"])
        assert set(read.refunds["order_id"]) <= set(read.orders["id"])
    finally:
        writer.close()
        store.close()


def test_the_kept_currency_follows_another_process_near_a_tie(store_url: str) -> None:
    """Another process's writes (an order's currency flipped in place, orders deleted) are
    counted from the database: with a lead of two, one flipped order makes a tie (the
    alphabetical first wins) and one deleted order gives the lead back."""
    store, other = Store(store_url), Store(store_url)
    try:
        name, policy = _shop(store), _policy()
        orders = sorted(store.iter(Order, P, name), key=lambda o: o.id)
        assert planning._loyalty_currency(store, P, name, policy) == "USD"
        half = (len(orders) - 2) // 2  # USD ahead by two
        edit = {"currency": "EUR", "updated_at": T0}
        other.upsert([o.model_copy(update=edit) for o in orders[:half]])
        assert planning._loyalty_currency(store, P, name, policy) == "USD"
        flipped = orders[half].model_copy(update={**edit, "updated_at": T0 + DAY})
        other.upsert([flipped])  # the same order, its currency flipped: a tie
        shop_id = store.shop_id(P, name, create=False)
        assert main_currency(store, shop_id) == "EUR"
        assert planning._loyalty_currency(store, P, name, policy) == "EUR"
        assert other.delete(Order, P, name, flipped.id, deleted_at=T0 + 2 * DAY)
        assert main_currency(store, shop_id) == "USD"
        assert planning._loyalty_currency(store, P, name, policy) == "USD"
    finally:
        other.close()
        store.close()


def test_with_a_later_day_s_models_stored_webhooks_build_the_models_once(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A later day's models (a plan run ahead of time) cannot serve an earlier plan: the
    one-customer plan builds its day's models and cannot store them over the later ones.
    It kept them under the order-facts mark, which every webhook's write moves, so every
    webhook built them again from the whole shop instead of once."""
    from tests.core.test_one_customer_models import _customer
    from tests.core.test_stored_models import _builds

    name = _shop(store)
    policy = _policy()
    plan(store, policy, T0 + 5 * DAY, platform=P, shop=name)
    cid = _customer(store, name)
    mine = sorted(
        (o for o in store.iter(Order, P, name) if o.customer_id == cid), key=lambda o: o.id
    )[-1]
    builds = _builds(monkeypatch)
    for hook in range(3):  # a webhook: the customer's order written, the customer re-planned
        edit = {"tags": (f"hook{hook}",), "updated_at": T0 - DAY / 2 + hook * dt.timedelta(0, 1)}
        store.upsert([mine.model_copy(update=edit)])
        one = plan_customer(store, policy, T0, P, name, cid)
    assert len(builds) == 1
    used = one.models[0]
    assert (used.version, used.rebuilt, used.changes_since) == (None, False, 1)  # one order
    assert any("built before, kept used as stored though stale" in n for n in one.notes)


def test_a_shop_created_again_under_a_reused_id_never_gets_the_removed_shop_s_built_models(
    store: Store,
) -> None:
    """Models built and not stored were kept on the store object by (shop, settings, day,
    data mark): a shop removed and created again under the same id (SQLite) whose mark
    reached the removed shop's was handed the removed shop's models, and stored them."""
    from tests.core.test_stored_models import _used

    name, policy = _shop(store), _policy()
    old = _used(plan(store, policy, T0, platform=P, shop=name, update_ledger=False))
    assert old.version is None  # built for this plan alone, kept on the store object
    mark = rows.facts_seq(store, store.shop_id(P, name, create=False))
    orders = sorted(store.iter(Order, P, name), key=lambda o: o.id)
    store.remove_shop(P, name)
    few = orders[: len(orders) // 3]
    store.upsert(few)
    shop_id = store.shop_id(P, name, create=False)
    step = 0
    while rows.facts_seq(store, shop_id) < mark:
        step += 1
        store.upsert([few[0].model_copy(update={"updated_at": T0 - DAY + step * DAY / 100})])
    new = _used(plan(store, policy, T0, platform=P, shop=name))
    assert new.rebuilt
    head = rows.header(store, shop_id)
    assert head is not None and head.customers <= len({o.customer_id for o in few})


@pytest.mark.parametrize("back", [False, True], ids=["moved-away", "moved-back"])
def test_a_customer_whose_order_moved_away_is_planned_as_the_whole_shop_plans_them(
    store: Store, back: bool
) -> None:
    """The one-customer loyalty read counts that customer's moved generations alone: an
    order that left them (and came back) earns as the whole shop's derivation says."""
    import polars as pl

    from shopsync import loyalty
    from shopsync.store import ledger
    from tests.core.test_loyalty_store import DAY as D
    from tests.core.test_loyalty_store import T0 as START
    from tests.core.test_loyalty_store import P as LP
    from tests.core.test_loyalty_store import S as LS
    from tests.core.test_loyalty_store import customer, order

    store.upsert([customer("a"), customer("b"), order("o1", "a", START, "10")])
    store.upsert([order("o2", "a", START + 2 * D, "20")])
    loyalty.update_ledger(store, LP, LS, as_of=START + 20 * D)
    moved = order("o1", "b", START, "10").model_copy(update={"updated_at": START + 21 * D})
    store.upsert([moved])
    loyalty.update_ledger(store, LP, LS, as_of=START + 22 * D)  # o1's points leave a
    if back:  # o1 is a's again, the ledger not derived since: it has not earned again yet
        store.upsert([moved.model_copy(update={"customer_id": "a", "updated_at": START + 23 * D})])
    store.upsert([order("o3", "a", START + 25 * D, "30")])
    shop_id = store.shop_id(LP, LS, create=False)
    whole_shop = ledger.earned_points(store, shop_id).filter(pl.col("customer_id") == "a")
    earned = ledger.customer_history(store, shop_id, "a", False)[0]["earned"]
    assert earned.sort("order_id").equals(whole_shop.sort("order_id"))
    assert earned["order_id"].to_list() == ["o2"]  # o1's earn was reversed, not earned again
    policy = Policy()
    for at in (START + 26 * D, START + 30 * D):
        whole = plan(store, policy, at, platform=LP, shop=LS, update_ledger=False)
        expected = sorted(a.idempotency_key for a in whole.actions if a.customer_id == "a")
        one = plan_customer(store, policy, at, LP, LS, "a")
        assert sorted(a.idempotency_key for a in one.actions) == expected
        assert expected  # the customer has notices to compare
