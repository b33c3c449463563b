"""PostgreSQL writes by COPY (``shopsync.store._copy``): the store after the COPY path equals
the store after the row path, byte for byte, on the emulators' shops and on every real
payload in tests/fixtures; a failure mid-page leaves nothing of the page behind."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from shopsync_shopify.mapping import customer_from_webhook, order_from_webhook
from shopsync_woocommerce.mapping import customer_from_rest, order_from_rest, product_from_rest
from sqlalchemy import JSON, Text, cast, select

import shopsync
from shopsync.errors import StoreError
from shopsync.models import Customer, Order, Product
from shopsync.store import Store, _copy
from shopsync.store.schema import (
    consent_history,
    customers,
    fulfillments,
    line_items,
    orders,
    products,
    refunds,
    shops,
)
from shopsync.testing import emulate

from ..sync.compare import differences, snapshot
from ..sync.emulated import connect, emulated

pytestmark = pytest.mark.postgres

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TABLES = (shops, customers, consent_history, orders, line_items, refunds, fulfillments, products)
PAGE = 50


def _load(path: Path) -> list[Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict):
        for key in ("order", "orders", "customer", "customers"):
            if key in data:
                data = data[key]
                break
    return data if isinstance(data, list) else [data]


def fixture_records() -> list[Customer | Order | Product]:
    """Every real payload of tests/fixtures that maps to a record."""
    found: list[Customer | Order | Product] = []
    for path in sorted((FIXTURES / "shopify").glob("*.json")):
        if "order" in path.name:
            found += [order_from_webhook(r, shop="fx.myshopify.com") for r in _load(path)]
        elif "customer" in path.name:
            found += [customer_from_webhook(r, shop="fx.myshopify.com") for r in _load(path)]
    woo = FIXTURES / "woocommerce"
    for name, mapper in (
        ("retrieve-an-order", order_from_rest),
        ("list-all-orders", order_from_rest),
        ("update-an-order", order_from_rest),
        ("retrieve-a-customer", customer_from_rest),
        ("list-all-customers", customer_from_rest),
        ("create-a-customer", customer_from_rest),
        ("retrieve-a-product", product_from_rest),
        ("list-all-products", product_from_rest),
    ):
        found += [mapper(r, shop="example.com") for r in _load(woo / f"{name}.json")]
    return found


NASTY = "\\N\t\\\n\r\"'; DROP TABLE orders; -- \u2603 \U0001f389 \x01 \u2028"
"""COPY's own NULL marker (a backslash N), its delimiters, quotes, SQL, astral unicode."""


def hostile_text(records: list[Any]) -> list[Any]:
    """Copies of an order and a customer whose text fields hold :data:`NASTY`."""
    order = next(r for r in records if isinstance(r, Order) and r.line_items and r.refunds)
    line = order.line_items[0].model_copy(update={"title": NASTY, "sku": "\\N"})
    refund = order.refunds[0].model_copy(update={"note": NASTY})
    customer = next(r for r in records if isinstance(r, Customer))
    return [
        order.model_copy(
            update={
                "id": "nasty-order",
                "name": NASTY,
                "tags": (NASTY, "\\N", ""),
                "line_items": (line, *order.line_items[1:]),
                "refunds": (refund, *order.refunds[1:]),
            }
        ),
        customer.model_copy(
            update={
                "id": "nasty-customer",
                "first_name": "\\N",
                "last_name": NASTY,
                "tags": (NASTY,),
            }
        ),
    ]


def _newer(record: Any, seconds: int) -> Any:
    later = record.updated_at + dt.timedelta(seconds=seconds)
    return record.model_copy(update={"updated_at": later})


def _write(store: Store, records: list[Any]) -> None:
    for k in range(0, len(records), PAGE):
        store.upsert(records[k : k + PAGE])


def tables(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the record tables, JSON as the text the database holds (so a JSON
    ``null`` and an SQL NULL differ), in key order."""
    out = {}
    with store.engine.connect() as conn:
        for table in TABLES:
            cols = [cast(c, Text) if isinstance(c.type, JSON) else c for c in table.c]
            if table is shops:  # the moment a store first saw the shop: a wall-clock reading
                cols = [c for c in cols if c.name != "created_at"]
            keys = list(table.primary_key.columns)
            out[table.name] = [tuple(r) for r in conn.execute(select(*cols).order_by(*keys))]
    return out


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The tables each COPY wrote, a staging table under its target's name (so a test
    knows the COPY path ran)."""
    seen: list[str] = []
    real = _copy._stream

    def spy(conn: Any, into: str, *args: Any) -> None:
        seen.append(into.strip('"').removeprefix("shopsync_stage_"))
        real(conn, into, *args)

    monkeypatch.setattr(_copy, "_stream", spy)
    yield seen


@contextmanager
def _second_url(postgres_url: str) -> Iterator[str]:
    # a second fresh schema: the conftest fixture gives one per test
    import uuid
    from urllib.parse import quote

    from sqlalchemy import create_engine, text

    base = postgres_url.split("?")[0]
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{base}?options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def two_stores(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    """(write by rows, write by COPY): two empty PostgreSQL stores and a switch for each."""
    with _second_url(postgres_url) as other:
        row_store, copy_store = Store(postgres_url), Store(other)

        def by_rows(fn: Any, *args: Any) -> Any:
            monkeypatch.setattr(_copy, "COPY_MIN_ROWS", 10**9)
            return fn(row_store, *args)

        def by_copy(fn: Any, *args: Any) -> Any:
            monkeypatch.setattr(_copy, "COPY_MIN_ROWS", 1)
            return fn(copy_store, *args)

        yield by_rows, by_copy
        row_store.close()
        copy_store.close()


def test_copy_equals_rows_on_emulated_shops_and_fixtures(
    two_stores: tuple[Any, Any], copies: list[str]
) -> None:
    by_rows, by_copy = two_stores
    records: list[Any] = []
    for platform in ("shopify", "woocommerce"):
        with emulate(platform, customers=25, orders=90, products=10) as shop:
            state = shop.state
            records += [*state.customers.values(), *state.products.values()]
            records += list(state.orders.values())
    records += fixture_records()
    records += hostile_text(records)
    assert any(isinstance(r, Order) and r.refunds for r in records)
    assert any(isinstance(r, Order) and r.fulfillments for r in records)
    # a first write, the same again (unchanged), then newer versions of half (replaced)
    passes = [records, records, [_newer(r, 5) for r in records[::2]]]
    for batch in passes:
        by_rows(_write, batch)
        by_copy(_write, batch)
    assert {"orders", "line_items", "refunds", "fulfillments", "customers", "products"} <= set(
        copies
    )
    assert by_rows(tables) == by_copy(tables)
    nasty = next(r for r in records if r.id == "nasty-order")
    stored = by_copy(lambda s: s.get(Order, nasty.platform, nasty.shop, nasty.id))
    assert stored.name == NASTY and stored.tags == nasty.tags
    assert stored.line_items[0].title == NASTY and stored.refunds[0].note == NASTY


def test_a_sync_by_copy_equals_a_sync_by_rows(
    two_stores: tuple[Any, Any], copies: list[str]
) -> None:
    by_rows, by_copy = two_stores
    for platform in ("shopify", "woocommerce"):
        with emulated(platform, customers=20, orders=60, products=8) as shop:

            def sync(store: Store) -> Any:
                adapter = connect(shop)
                shopsync.sync(adapter, store)
                return snapshot(store, shop.platform, adapter.shop)

            left, right = by_rows(sync), by_copy(sync)
            assert not differences(left, right)
            assert len(left["orders"]) == len(shop.state.orders)
    assert "orders" in copies
    assert by_rows(tables) == by_copy(tables)


def test_the_copy_insert_keeps_a_newer_stored_order(postgres_url: str) -> None:
    """The staged rows go in through ``ON CONFLICT ... WHERE updated_at``: a row the store
    holds in a newer version stays, an older one is replaced."""
    store = Store(postgres_url)
    order = next(r for r in fixture_records() if isinstance(r, Order))
    store.upsert([order])
    with store.transaction() as conn:
        (row,) = [dict(r._mapping) for r in conn.execute(select(orders))]
    older = {**row, "name": "older", "updated_at": row["updated_at"] - 1}
    newer = {**row, "name": "newer", "updated_at": row["updated_at"] + 1}
    for row_in, kept in ((older, row["name"]), (newer, "newer")):
        with store.transaction() as conn:
            _copy.insert_rows(conn, orders, [row_in], min_rows=1)
        with store.engine.connect() as conn:
            assert conn.execute(select(orders.c.name)).scalar_one() == kept
    store.close()


def test_a_failure_mid_copy_writes_nothing_of_the_page(
    postgres_url: str, copies: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two line items with one id in one order: the line COPY's insert fails after the
    order's went in, and the whole page rolls back (as on the row path)."""
    monkeypatch.setattr(_copy, "COPY_MIN_ROWS", 1)
    store = Store(postgres_url)
    good = [r for r in fixture_records() if isinstance(r, Order) and r.line_items]
    bad = good[0].model_copy(
        update={"id": "dup", "line_items": (good[0].line_items[0], good[0].line_items[0])}
    )
    with pytest.raises(StoreError):
        store.upsert([*good[1:], bad])
    assert "orders" in copies and "line_items" in copies
    with store.engine.connect() as conn:
        assert conn.execute(select(orders.c.id)).first() is None
        assert conn.execute(select(line_items.c.id)).first() is None
    store.upsert(good)  # the store took no harm: the same page without the bad order goes in
    with store.engine.connect() as conn:
        assert len(conn.execute(select(orders.c.id)).all()) == len({o.id for o in good})
    store.close()


def test_without_the_temporary_privilege_records_go_in_by_rows(
    postgres_url: str, copies: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A role that may not create temporary tables still stores a page: its records by
    rows, their child rows by COPY (no staging table needed)."""
    monkeypatch.setattr(_copy, "COPY_MIN_ROWS", 1)
    monkeypatch.setattr(_copy, "SAVEPOINTS", 0)  # as when a key is taken: staging needed
    monkeypatch.setattr(_copy, "_may_stage", lambda conn: False)
    store = Store(postgres_url)
    good = [r for r in fixture_records() if isinstance(r, Order) and r.line_items]
    store.upsert(good)
    assert "orders" not in copies and "line_items" in copies
    with store.engine.connect() as conn:
        assert len(conn.execute(select(orders.c.id)).all()) == len({o.id for o in good})
        assert conn.execute(select(line_items.c.id)).first() is not None
    store.close()
