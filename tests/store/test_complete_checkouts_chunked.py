"""``complete_checkouts`` (now one query a chunk of keys) on both engines: an order's token
and cart token naming two checkouts complete both; a key naming a checkout of another shop
completes nothing there; a page replayed changes nothing; a checkout named by several keys
of a page is completed as by the first; more keys than a chunk."""

from __future__ import annotations

import datetime as dt

from shopsync.checkouts import Checkout
from shopsync.store import Store
from shopsync.store.checkout_rows import complete_checkouts, read_checkouts, upsert_checkouts

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 11, 1, tzinfo=UTC)
MONEY = {"amount": "10", "currency": "USD"}


def _checkout(
    shop: str, cid: str, token_key: str | None = None, number: str | None = None
) -> Checkout:
    return Checkout(
        platform="shopify",
        shop=shop,
        id=cid,
        customer_id=None,
        email="guest@example.com",
        created_at=T0,
        updated_at=T0,
        currency="USD",
        subtotal=MONEY,
        total=MONEY,
        token_key=token_key,
        number=number,
    )


def _done(store: Store, shop: str) -> dict[str, dt.datetime | None]:
    return {c.id: c.completed_at for c in read_checkouts(store, "shopify", shop)}


def test_completions_by_key_per_shop_replayed_and_past_a_chunk(store: Store) -> None:
    upsert_checkouts(store, [_checkout("a", "k1", "tA"), _checkout("a", "k2", "tB")])
    upsert_checkouts(store, [_checkout("a", "k3", "tC", number="#3")])
    upsert_checkouts(store, [_checkout("b", "k1", "tA")])  # the same key in another shop
    many = [_checkout("a", f"m{i:04}", f"tm{i:04}") for i in range(1200)]
    upsert_checkouts(store, many)
    t1, t2 = T0 + dt.timedelta(hours=1), T0 + dt.timedelta(hours=2)
    page = [("tA", t1), ("tB", t1), ("#3", t1), ("tC", t2)]  # an order's two tokens; k3 twice
    page += [(f"tm{i:04}", t2) for i in range(1200)]
    with store.transaction() as tx:
        assert complete_checkouts(store, tx, "shopify", "a", page) == 3 + 1200
    done = _done(store, "a")
    assert (done["k1"], done["k2"], done["k3"]) == (t1, t1, t1)  # k3: its first key's moment
    assert all(done[f"m{i:04}"] == t2 for i in range(1200))
    assert _done(store, "b") == {"k1": None}
    with store.transaction() as tx:  # the page replayed
        assert complete_checkouts(store, tx, "shopify", "a", page) == 0
    assert _done(store, "a") == done
