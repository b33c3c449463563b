"""The shop's main currency (:func:`shopsync.store.shop_figures.main_currency`), read from the order
facts' snapshot where the store keeps one: the same answer as counting in SQL, as of any
moment, after writes the snapshot has not taken in yet, and without a snapshot."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from sqlalchemy import text

from shopsync.core._data import to_us
from shopsync.models import Order
from shopsync.store import Store
from shopsync.store.read import REAL_ORDERS_SQL, read_shop
from shopsync.store.read_set import read_customers
from shopsync.store.shop_figures import main_currencies, main_currency
from shopsync.testing.generator import generate_shop

P = "shopify"
END = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)


def _counted(store: Store, shop_id: int, at: int | None) -> str | None:
    """The definition, counted by the database."""
    cut = "" if at is None else f" AND created_at <= {int(at)}"
    sql = (
        f"SELECT currency FROM orders WHERE shop_id = :sid AND {REAL_ORDERS_SQL}{cut} "
        "GROUP BY currency ORDER BY count(*) DESC, currency LIMIT 1"
    )
    with store.engine.connect() as conn:
        found = conn.execute(text(sql), {"sid": shop_id}).scalar()
    return None if found is None else str(found)


def _micros(moment: dt.datetime) -> int:
    return int(moment.timestamp()) * 1_000_000


@pytest.mark.parametrize("snapshot", [True, False], ids=["snapshot", "no-snapshot"])
def test_the_main_currency_is_the_one_most_real_orders_placed_by_then_use(
    store_url: str, tmp_path: Any, snapshot: bool
) -> None:
    store = Store(store_url, facts_dir=tmp_path / "facts" if snapshot else False)
    try:
        shop = f"cur-{random.getrandbits(32):x}.example"
        state = generate_shop(platform=P, shop=shop, seed=3, customers=20, orders=60, end=END)
        orders: list[Order] = sorted(state.orders.values(), key=lambda o: o.created_at)
        pick = random.Random(11)
        # later orders mostly in EUR, some test orders in GBP: the answer moves with ``at``
        mixed = [
            o.model_copy(update={"currency": "EUR"}) if i > 20 and pick.random() < 0.8 else o
            for i, o in enumerate(orders)
        ]
        mixed = [
            o.model_copy(update={"currency": "GBP", "test": True}) if i % 7 == 0 else o
            for i, o in enumerate(mixed)
        ]
        store.upsert([*state.customers.values(), *mixed])
        shop_id = store.shop_id(P, shop, create=False)
        read_shop(store, shop_id, _micros(END))  # the snapshot is written by a whole read
        moments = [None, *(_micros(o.created_at) for o in orders[::6])]
        ids = sorted({o.customer_id for o in orders if o.customer_id})[:3]

        def check() -> None:
            for at in moments:
                assert main_currency(store, shop_id, at) == _counted(store, shop_id, at), at
                if at is not None:
                    read = read_customers(store, shop_id, at, ids)
                    assert read.currency == _counted(store, shop_id, at), at
                    both = (_counted(store, shop_id, at), _counted(store, shop_id, None))
                    assert main_currencies(store, shop_id, at) == both, at

        check()
        assert {main_currency(store, shop_id, at) for at in moments} >= {"USD", "EUR"}
        # writes the snapshot has not taken in: currencies flipped back, an order deleted
        later = END + dt.timedelta(days=1)
        store.upsert(
            [o.model_copy(update={"currency": "USD", "updated_at": later}) for o in mixed[21:40]]
        )
        store.delete(Order, P, shop, mixed[45].id, deleted_at=later)
        check()
        assert main_currency(store, shop_id + 1000) is None
        assert main_currencies(store, shop_id + 1000, _micros(END)) == (None, None)
    finally:
        store.close()


@pytest.mark.parametrize("snapshot", [True, False], ids=["snapshot", "no-snapshot"])
def test_both_main_currencies_break_ties_alphabetically_and_know_no_orders_yet(
    store_url: str, tmp_path: Any, snapshot: bool
) -> None:
    """:func:`main_currencies`: a tie goes to the first currency alphabetically, as SQL's
    ``ORDER BY count(*) DESC, currency`` gives it, and before the first order there is none
    by then (while every order has one)."""
    store = Store(store_url, facts_dir=tmp_path / "facts" if snapshot else False)
    try:
        shop = f"tie-{random.getrandbits(32):x}.example"
        state = generate_shop(platform=P, shop=shop, seed=4, customers=4, orders=8, end=END)
        orders = sorted(
            (o.model_copy(update={"test": False}) for o in state.orders.values()),
            key=lambda o: o.created_at,
        )
        tied = [  # 4 SEK, 4 CHF: CHF wins the tie, whichever comes first
            o.model_copy(update={"currency": "SEK" if i % 2 == 0 else "CHF"})
            for i, o in enumerate(orders)
        ]
        store.upsert([*state.customers.values(), *tied])
        shop_id = store.shop_id(P, shop, create=False)
        read_shop(store, shop_id, _micros(END))
        first = to_us(orders[0].created_at)
        assert main_currencies(store, shop_id, _micros(END)) == ("CHF", "CHF")
        assert main_currencies(store, shop_id, first) == ("SEK", "CHF")
        assert main_currencies(store, shop_id, first - 1) == (None, "CHF")
        assert _counted(store, shop_id, None) == "CHF"
    finally:
        store.close()
