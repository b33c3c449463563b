"""The hand-built frames are the read model's frames: same columns, dtypes, rows and cut.

One small shop goes into a real store and through :func:`shopsync.frames.load`, and the kit
builds it by hand; every table must match, so the builder cannot drift from the read model.
"""

from __future__ import annotations

from dataclasses import fields

import polars as pl

from shopsync.core._data import SHIPMENT_SCHEMA, Frames
from shopsync.frames import load
from shopsync.store import Store
from shopsync.store.checkout_rows import upsert_checkouts
from shopsync.store.event_rows import record_events
from tests.core.frames_kit import DAY, SCHEMAS, T0, Shop

AT = T0 + 40 * DAY


def small_shop() -> Shop:
    return (
        Shop()
        .customer("c1", birthday="1990-02-28")
        .customer("c2", consent="unsubscribed")
        .customer("late", created=AT + DAY)  # created after as_of: not read
        .product("beans", "Coffee", ("organic",))
        .product("mug", None, status="archived")
        .order("o1", "c1", T0, [("beans", "1.5", "12.50"), ("mug", 1, "8")], sku="B-1")
        .order("o2", "c1", T0 + 3 * DAY, [(None, 1, "5")], fulfilled=False, paid=False)
        .order(
            "o3",
            "c2",
            T0 + 5 * DAY,
            [("beans", 2, "10")],
            ptype="Tea",
            delivered=T0 + 8 * DAY,
            refund=(T0 + 9 * DAY, "10"),
            returned={"beans": 1},
            country="FR",
        )
        .order("o4", "c2", T0 + 6 * DAY, cancelled=T0 + 7 * DAY)
        .order("o5", "c2", AT + DAY)  # placed after as_of: counted, not read
        .checkout("k1", "c1", T0 + 2 * DAY, ("beans", "mug"), total="20.5")
        .checkout("k2", "c2", T0 + 4 * DAY, completed=AT + DAY)  # completed after as_of
        .checkout("k3", None, T0 + 4 * DAY, completed=T0 + 5 * DAY)
        .checkout("k4", "c1", AT + DAY)  # started after as_of: not read
        .viewed("c1", "beans", T0 + DAY)
        .viewed("c2", "mug", T0 + 2 * DAY, "product_added_to_cart")
        .viewed(None, "beans", T0 + DAY)  # an anonymous visitor: never in the frame
        .viewed("c1", "mug", AT + DAY)  # after as_of: not read
    )


def ordered(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns, nulls_last=True)


def test_the_kit_gives_the_frames_a_real_store_gives(store: Store) -> None:
    shop = small_shop()
    store.upsert(shop.models())
    upsert_checkouts(store, shop.checkout_models())
    received = AT + 2 * DAY
    record_events(
        store, "shopify", "acme", shop.event_rows(), received_at=received, cap=99, window=DAY
    )
    read = load(store, "shopify", "acme", AT)
    built = shop.frames(AT)
    for name, schema in SCHEMAS.items():
        mine, theirs = getattr(built, name), getattr(read, name)
        assert theirs is not None and mine is not None, name
        assert dict(theirs.schema) == schema, f"{name}: the read model's columns changed"
        assert dict(mine.schema) == schema, name
        if name not in ("consent", "sent"):  # rows a store fills at write time: compared below
            assert ordered(mine).equals(ordered(theirs)), name
    # consent: the same states per customer (the store dates a row by the customer's update)
    email = pl.col("channel") == "email"  # the store keeps sms too; the programs read email
    states = sorted(read.consent.filter(email).select("customer_id", "state").rows())
    assert states == sorted(built.consent.select("customer_id", "state").rows())
    assert (
        (read.future_orders, read.currency) == (built.future_orders, built.currency) == (1, "USD")
    )
    assert read.requests_delivered == built.requests_delivered == {}
    # every field of Frames is covered by the kit's tables or checked just above
    covered = {*SCHEMAS, "platform", "shop", "as_of", "currency", "future_orders"}
    assert {f.name for f in fields(Frames)} == covered | {
        "requests_delivered",
        "shipments",
        "erased",
    }
    # the erased: none in this shop (tests/core/test_erased_plans.py erases some)
    assert dict(read.erased.schema) == dict(built.erased.schema)
    assert read.erased.height == built.erased.height == 0
    # shipments with their tracking: read only when the shipping program asks
    assert read.shipments.height == built.shipments.height == 0
    recent = load(store, "shopify", "acme", AT, shipments_since=AT - 400 * DAY).shipments
    assert dict(recent.schema) == SHIPMENT_SCHEMA
    shipped = {(o[0], o[1]) for o in built.fulfillments.rows() if o[1] <= built.as_of}
    mine = set(built.orders["id"].to_list())
    assert {(r[0], r[2]) for r in recent.rows()} == {s for s in shipped if s[0] in mine}
    assert (read.platform, read.shop, read.as_of) == (built.platform, built.shop, built.as_of)
