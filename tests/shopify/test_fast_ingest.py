"""The columnar ingest path (issue 20 item 1): a bulk sync that builds store rows without a
model per order leaves the store exactly as the row path leaves it, every table and column;
a record the fast path refuses takes the row path (mapped, or quarantined with its field
path); a store written by an older shopsync (model-JSON hashes) is read without false
changes."""

from __future__ import annotations

import importlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import pytest
from shopsync_shopify import ShopifyAdapter
from shopsync_shopify.mapping import order_from_webhook
from sqlalchemy import select, update

import shopsync
from shopsync.models import FulfillmentStatus
from shopsync.store import metadata
from shopsync.store._rows import legacy_digest
from shopsync.store.schema import changed_customers, orders

from .test_shopify_adapter import FAST

sync_module = importlib.import_module("shopsync.sync")  # the package's ``sync`` is the function
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "shopify"
CLOCK = {
    ("shops", "created_at"),
    ("sync_cursors", "updated_at"),
    ("changed_customers", "changed_at"),
    ("quarantine", "first_seen"),
    ("quarantine", "last_seen"),
    ("tombstones", "at"),  # the redaction this test makes before each sync
    ("orders", "seq"),  # which page an order lands on: bulk output comes in no fixed order
    ("shops", "facts_seq"),  # a page of rows and models takes a value for each part
    ("changed_customers", "seq"),  # the store's note sequence: which note was written first
    ("note_counter", "value"),  # (SQLite's; how many note writes there were)
}
"""Columns that hold the wall clock or count writes, not content: left out. The sequences
only have to grow with each write (``store.facts``, ``store.changes``); a mixed page
advancing one twice is harmless."""


def snapshot(store: shopsync.Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table as the database holds it (JSON as its text), clock columns
    left out, in a fixed order."""
    out = {}
    with store.engine.connect() as c:
        for table in metadata.sorted_tables:
            cols = ", ".join(
                f'"{col.name}"' for col in table.c if (table.name, col.name) not in CLOCK
            )
            rows = [tuple(r) for r in c.exec_driver_sql(f'SELECT {cols} FROM "{table.name}"')]
            out[table.name] = sorted(rows, key=repr)
    return out


def _adapter(shop: Any, fast: bool) -> ShopifyAdapter:
    adapter = shopsync.connect(
        "shopify",
        **shop.settings,
        retry_policy=FAST,
        bulk_threshold=0,
        bulk_poll_interval=0.01,
    )
    assert isinstance(adapter, ShopifyAdapter)
    adapter.bulk_partition_bytes = 40_000  # several partitions, pages cut inside them
    adapter.fast_ingest = fast
    return adapter


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Orders the sync stored from rows and by model, counted at the sync's one call."""
    seen = {"rows": 0, "models": 0}
    real = sync_module.store_page

    def spy(store: Any, platform: str, shop: str, page: Any, conn: Any) -> Any:
        seen["rows"] += len(getattr(page, "rows", ()))
        seen["models"] += sum(isinstance(r, shopsync.Order) for r in page.records)
        return real(store, platform, shop, page, conn)

    monkeypatch.setattr(sync_module, "store_page", spy)
    return seen


def _fixture_orders(shop: str) -> Iterator[shopsync.Order]:
    """Every real REST order payload in tests/fixtures/shopify, as the emulator's state."""
    for path in sorted(FIXTURES.glob("*order*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for raw in data.get("orders") or [data.get("order")]:
            if raw:
                yield order_from_webhook(raw, shop=shop)


def _prepare(shop: Any) -> dict[str, str]:
    """A varied shop: the real payloads, an edited order, an order with tax in its prices;
    what was added, by kind."""
    state = shop.state
    added: dict[str, str] = {}
    for order in _fixture_orders(state.shop):
        if order.id not in state.orders:
            state.add_order(order.model_copy(update={"customer_id": None}))
            added.setdefault("fixture", order.id)
    plain = [o for o in state.orders.values() if o.line_items and not o.refunds]
    base = next(o for o in plain if not (o.cancelled_at or o.test))
    edited = state.add_order(
        base.model_copy(
            update={
                "id": state.new_id("orders"),
                "name": None,
                "fulfillments": (),
                "fulfillment_status": FulfillmentStatus.UNFULFILLED,
                "taxes_included": False,
                "line_items": tuple(
                    li.model_copy(update={"id": state.new_id("line_items")})
                    for li in base.line_items
                ),
            }
        )
    )
    line = edited.line_items[0]
    state.edit_order(edited.id, line.id, int(line.quantity) - 1)  # 0 removes the line
    added["edited"] = edited.id
    taxed = next(o for o in plain if o.id != edited.id)
    state.update_order(taxed.id, taxes_included=True)
    added["taxed"] = taxed.id
    return added


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def two_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[bool, str]]:
    """Two empty databases of one engine: the fast path's and the row path's."""
    if request.param == "sqlite":
        yield {fast: f"sqlite:///{tmp_path / f'{fast}.db'}" for fast in (True, False)}
        return
    from sqlalchemy import create_engine, text

    from tests.conftest import _require_postgres

    base = _require_postgres()
    admin = create_engine(base)
    names = {fast: f"t_fast_{uuid.uuid4().hex[:10]}" for fast in (True, False)}
    with admin.begin() as conn:
        for name in names.values():
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield {f: f"{base}{sep}options={quote(f'-csearch_path={n}')}" for f, n in names.items()}
    finally:
        with admin.begin() as conn:
            for name in names.values():
                conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def test_the_fast_path_leaves_the_store_the_row_path_leaves(
    shopify_shop: Any, counted: dict[str, int], two_urls: dict[bool, str]
) -> None:
    shop = shopify_shop(customers=15, orders=80, order_variety=True)
    _prepare(shop)
    redacted = next(o.customer_id for o in shop.state.orders.values() if o.customer_id)
    snaps = {}
    for fast in (False, True):
        store = shopsync.Store(two_urls[fast])
        store.redact_customer("shopify", shop.state.shop, redacted)  # a tombstone the sync meets
        counted.update(rows=0, models=0)
        with _adapter(shop, fast) as adapter:
            report = shopsync.sync(adapter, store, resources=["customers", "orders"])
            assert adapter.read_path["orders"] == "bulk"
        assert report.total("quarantined") == 0
        snaps[fast] = snapshot(store)
        if fast:
            # most orders came as rows; the edited and the taxed order, and those of the
            # redacted customer (the store hands them back) went through the models
            assert counted["rows"] >= len(shop.state.orders) - 10
            assert counted["models"] >= 2
        else:
            assert counted["rows"] == 0
        store.close()
    assert snaps[True]["orders"] and snaps[True]["line_items"] and snaps[True]["refunds"]
    for table in snaps[False]:
        assert snaps[True][table] == snaps[False][table], table


def _corrupt(spool: IO[bytes], changes: dict[str, Any]) -> IO[bytes]:
    """The bulk result with some root lines changed (``changes``: order gid -> fields)."""
    import tempfile

    out = tempfile.TemporaryFile()  # noqa: SIM115 - the reader closes it
    for raw in spool:
        line = json.loads(raw)
        if line.get("id") in changes:
            line.update(changes[line["id"]])
            raw = (json.dumps(line) + "\n").encode()
        out.write(raw)
    spool.close()
    out.seek(0)
    return out


def test_a_record_the_fast_path_refuses_is_quarantined_with_its_field_path(
    shopify_shop: Any, monkeypatch: pytest.MonkeyPatch, counted: dict[str, int]
) -> None:
    shop = shopify_shop(customers=10, orders=40)
    ids = sorted(shop.state.orders)
    changes = {
        f"gid://shopify/Order/{ids[0]}": {"totalPriceSet": {"shopMoney": {"amount": "1.23456"}}},
        f"gid://shopify/Order/{ids[1]}": {"updatedAt": "yesterday"},
        f"gid://shopify/Order/{ids[2]}": {"currencyCode": "XXQ"},
        f"gid://shopify/Order/{ids[3]}": {"email": "\u0000@x"},
    }
    real = ShopifyAdapter._download
    monkeypatch.setattr(
        ShopifyAdapter, "_download", lambda self, *a: _corrupt(real(self, *a), changes)
    )
    results = {}
    for fast in (False, True):
        store = shopsync.Store("sqlite://")
        with _adapter(shop, fast) as adapter:
            report = shopsync.sync(adapter, store, resources=["orders"])
        assert report.total("quarantined") == 4
        held = {q.record_id: (q.reason, q.raw) for q in store.quarantined()}
        assert set(held) == {ids[0], ids[1], ids[2], ids[3]}
        assert store.count(shopsync.Order, "shopify", shop.state.shop) == 36
        results[fast] = (held, snapshot(store))
        store.close()
    assert "decimal places" in results[True][0][ids[0]][0]
    assert "updatedAt" in results[True][0][ids[1]][0]
    assert results[True] == results[False]


def test_an_older_stores_hashes_are_recognised_without_false_changes(shopify_shop: Any) -> None:
    shop = shopify_shop(customers=15, orders=60)
    store = shopsync.Store("sqlite://")
    with _adapter(shop, False) as adapter:
        shopsync.sync(adapter, store, resources=["orders"])
    # as an older shopsync left it: every order hashed from its model's JSON
    with store.transaction() as c:
        for order in store.iter(shopsync.Order, "shopify", shop.state.shop):
            c.execute(
                update(orders)
                .where(orders.c.id == order.id)
                .values(content_hash=legacy_digest(order))
            )
        c.execute(changed_customers.delete())
        before = {
            r.id: r.content_hash for r in c.execute(select(orders.c.id, orders.c.content_hash))
        }
    for fast in (True, False):
        with _adapter(shop, fast) as adapter:
            report = shopsync.sync(adapter, store, resources=["orders"], full=True)
        assert report.total("unchanged") == 60 and report.total("updated") == 0
    with store.engine.connect() as c:
        assert c.execute(select(changed_customers)).first() is None  # no false "changed"
        after = {
            r.id: r.content_hash for r in c.execute(select(orders.c.id, orders.c.content_hash))
        }
    assert after == before
    # a real change at the same stamp is still seen (and the order then hashed anew)
    order = shop.state.orders[sorted(shop.state.orders)[0]]
    shop.state.update_order(order.id, tags=("changed",), updated_at=order.updated_at)
    with _adapter(shop, True) as adapter:
        report = shopsync.sync(adapter, store, resources=["orders"], full=True)
    assert report.total("updated") == 1
    stored = store.get(shopsync.Order, "shopify", shop.state.shop, order.id)
    assert stored is not None and stored.tags == ("changed",)
    store.close()


def _repeated(spool: IO[bytes], order: str) -> IO[bytes]:
    """The bulk result with ``order``'s root line written again at the end, an older copy."""
    import tempfile

    out = tempfile.TemporaryFile()  # noqa: SIM115 - the reader closes it
    copy = b""
    for raw in spool:
        line = json.loads(raw)
        if line.get("id") == order:
            line["updatedAt"] = "2000-01-01T00:00:00Z"
            copy = json.dumps(line, separators=(",", ":")).replace("/", "\\/").encode() + b"\n"
        out.write(raw)
    out.write(copy)
    spool.close()
    out.seek(0)
    return out


def test_an_order_written_twice_in_the_bulk_file_is_stored_with_its_lines(
    shopify_shop: Any, monkeypatch: pytest.MonkeyPatch, two_urls: dict[bool, str]
) -> None:
    """The store keeps the newer copy, with its line items, on both paths."""
    shop = shopify_shop(customers=5, orders=20)
    order = next(o for o in shop.state.orders.values() if len(o.line_items) > 0)
    real = ShopifyAdapter._download
    monkeypatch.setattr(
        ShopifyAdapter,
        "_download",
        lambda self, *a: _repeated(real(self, *a), f"gid://shopify/Order/{order.id}"),
    )
    snaps = {}
    for fast in (False, True):
        store = shopsync.Store(two_urls[fast])
        with _adapter(shop, fast) as adapter:
            report = shopsync.sync(adapter, store, resources=["orders"])
        assert report.total("quarantined") == 0
        stored = store.get(shopsync.Order, "shopify", shop.state.shop, order.id)
        assert stored is not None and stored.updated_at == order.updated_at
        assert [li.id for li in stored.line_items] == [li.id for li in order.line_items]
        snaps[fast] = snapshot(store)
        store.close()
    assert snaps[True] == snaps[False]


def _line_twice(spool: IO[bytes]) -> IO[bytes]:
    """The bulk result with its first line item's line written again at the end."""
    import tempfile

    out = tempfile.TemporaryFile()  # noqa: SIM115 - the reader closes it
    copy = b""
    for raw in spool:
        if not copy and b'"__typename":"LineItem"' in raw:
            copy = raw
        out.write(raw)
    out.write(copy)
    spool.close()
    out.seek(0)
    return out


@pytest.mark.parametrize("fast", [False, True])
def test_a_line_item_written_twice_costs_at_most_its_order(
    shopify_shop: Any, monkeypatch: pytest.MonkeyPatch, fast: bool
) -> None:
    shop = shopify_shop(customers=5, orders=20)
    real = ShopifyAdapter._download
    monkeypatch.setattr(ShopifyAdapter, "_download", lambda self, *a: _line_twice(real(self, *a)))
    store = shopsync.Store("sqlite://")
    with _adapter(shop, fast) as adapter:
        shopsync.sync(adapter, store, resources=["orders"])
    # the order is quarantined with the reason, every other one stored
    assert store.count(shopsync.Order, "shopify", shop.state.shop) == len(shop.state.orders) - 1
    [held] = store.quarantined()
    assert held.resource == "orders" and "line items id" in held.reason
    assert "appears twice" in held.reason
    store.close()
