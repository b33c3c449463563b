"""The WooCommerce columnar ingest path (issue 20 items 1 and 3): a sync that builds store rows
without a model per order leaves the store exactly as the row path leaves it, every table and
column, on emulated shops and on every real order payload in tests/fixtures; a record the fast
path refuses takes the row path (mapped, or quarantined with its field path)."""

from __future__ import annotations

import copy
import importlib
import time
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest
import requests
from shopsync_woocommerce import WooCommerceAdapter
from shopsync_woocommerce._fast_orders import order_tables
from shopsync_woocommerce.mapping import order_from_rest

import shopsync
import shopsync.errors
from shopsync.http import RetryPolicy
from shopsync.ingest_columns import RowsPage, store_page
from shopsync.store._rows import order_rows
from tests.shopify.test_fast_ingest import snapshot, two_urls
from tests.sync.emulated import FAST_RETRIES, emulated
from tests.woocommerce._fixtures import ORDER_FILES, SHOP, load, records

__all__ = ["two_urls"]  # the fixture, shared with the Shopify tests

sync_module = importlib.import_module("shopsync.sync")  # the package's ``sync`` is the function


def _fixture_orders() -> Iterator[tuple[str, dict[str, Any], list[Any] | None]]:
    """(label, record, its refund records) for every real order payload: with the refunds
    the adapter would read (``/orders/<id>/refunds``), and an order without refunds alone."""
    refunds = load("list-all-refunds")
    for label, raw in records(*ORDER_FILES):
        listed = {r["id"] for r in raw.get("refunds") or ()}
        yield label, raw, [r for r in refunds if r["id"] in listed] if listed else None


def _model_rows(raw: Any, refunds: list[Any] | None) -> dict[str, list[dict[str, Any]]]:
    tables = order_rows(0, order_from_rest(raw, shop=SHOP, refunds=refunds))
    for rows in tables.values():
        for row in rows:
            del row["shop_id"]
    return tables


@pytest.mark.parametrize(("label", "raw", "refunds"), list(_fixture_orders()))
def test_every_real_order_maps_to_the_model_paths_rows(
    label: str, raw: dict[str, Any], refunds: list[Any] | None
) -> None:
    rows = order_tables(copy.deepcopy(raw), refunds)
    assert rows is not None, label
    assert rows.tables == _model_rows(raw, refunds)
    assert rows.id == str(raw["id"]) and rows.raw == raw


def test_a_store_written_from_real_orders_equals_the_row_paths(tmp_path: Any) -> None:
    """Each fixture order, with its refunds, then an older version of it: both paths store
    the same rows (the newer version kept), hashes and change notes included."""
    stores = {fast: shopsync.Store(f"sqlite:///{tmp_path / f'{fast}.db'}") for fast in (0, 1)}
    for _, raw, refunds in _fixture_orders():
        older = dict(raw, date_modified_gmt="2017-03-20T10:00:00", status="pending")
        for version in (raw, older):
            for fast, store in stores.items():
                with store.transaction() as tx:
                    if fast:
                        rows = order_tables(version, refunds)
                        assert rows is not None
                        page = RowsPage(records=[], rows=[rows], fallback=None)
                        store_page(store, "woocommerce", SHOP, page, tx)
                    else:
                        model = order_from_rest(version, shop=SHOP, refunds=refunds)
                        store.upsert([model], conn=tx)
    snaps = {fast: snapshot(store) for fast, store in stores.items()}
    assert len(snaps[1]["orders"]) == 2 and snaps[1]["refunds"]
    for table in snaps[0]:
        assert snaps[1][table] == snaps[0][table], table
    for store in stores.values():
        store.close()


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


def _adapter(shop: Any, fast: bool) -> WooCommerceAdapter:
    adapter = shopsync.connect(
        "woocommerce", **shop.settings, retry_policy=FAST_RETRIES, per_page=25
    )
    assert isinstance(adapter, WooCommerceAdapter)
    adapter.fast_ingest = fast
    return adapter


def _add_fixture_orders(state: Any) -> None:
    """The real payloads as orders of the emulated shop (served as the emulator renders
    them), and an order whose refunds the emulator keeps apart."""
    for _, raw, refunds in _fixture_orders():
        order = order_from_rest(raw, shop=state.shop, refunds=refunds)
        if order.id not in state.orders:
            state.add_order(order.model_copy(update={"customer_id": None}))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_fast_path_leaves_the_store_the_row_path_leaves(
    seed: int, counted: dict[str, int], two_urls: dict[bool, str]
) -> None:
    with emulated("woocommerce", seed=seed, customers=20, orders=120) as shop:
        _add_fixture_orders(shop.state)
        redacted = next(o.customer_id for o in shop.state.orders.values() if o.customer_id)
        snaps = {}
        for fast in (False, True):
            store = shopsync.Store(two_urls[fast])
            store.redact_customer("woocommerce", shop.state.shop, redacted)  # a tombstone
            counted.update(rows=0, models=0)
            with closing(_adapter(shop, fast)) as adapter:
                report = shopsync.sync(adapter, store, resources=["customers", "orders"])
            assert report.total("quarantined") == 0
            snaps[fast] = snapshot(store)
            if fast:
                # every order came as rows; those of the redacted customer the store handed
                # back to the row path
                assert counted["rows"] == len(shop.state.orders)
            else:
                assert counted["rows"] == 0
            store.close()
    assert snaps[True]["orders"] and snaps[True]["line_items"] and snaps[True]["refunds"]
    assert snaps[True]["fulfillments"]
    for table in snaps[False]:
        assert snaps[True][table] == snaps[False][table], table


def test_a_record_the_fast_path_refuses_is_quarantined_with_its_field_path(
    monkeypatch: pytest.MonkeyPatch, counted: dict[str, int]
) -> None:
    with emulated("woocommerce", customers=10, orders=40) as shop:
        ids = sorted(shop.state.orders, key=int)
        changes: dict[str, dict[str, Any]] = {
            ids[0]: {"total": "1.23456"},
            ids[1]: {"date_created_gmt": "yesterday"},
            ids[2]: {"currency": "XXQ"},
            ids[3]: {"billing": {"email": "\u0000@x"}},
            ids[4]: {"line_items": [{"id": 1, "quantity": -1, "total": "1.00"}]},
        }
        real = WooCommerceAdapter._list

        def corrupt(self: Any, endpoint: str, params: Any) -> tuple[list[Any], int | None]:
            rows, pages = real(self, endpoint, params)
            if endpoint == "orders":
                rows = [dict(r, **changes.get(str(r.get("id")), {})) for r in rows]
            return rows, pages

        monkeypatch.setattr(WooCommerceAdapter, "_list", corrupt)
        results = {}
        for fast in (False, True):
            store = shopsync.Store("sqlite://")
            counted.update(rows=0, models=0)
            with closing(_adapter(shop, fast)) as adapter:
                report = shopsync.sync(adapter, store, resources=["orders"])
            assert report.total("quarantined") == 5
            held = {q.record_id: (q.reason, q.raw) for q in store.quarantined()}
            assert set(held) == set(ids[:5])
            assert store.count(shopsync.Order, "woocommerce", shop.state.shop) == 35
            assert counted["rows"] == (35 if fast else 0)
            results[fast] = (held, snapshot(store))
            store.close()
    reasons = {rid: held[0] for rid, held in results[True][0].items()}
    assert "decimal places" in reasons[ids[0]]
    assert "date_created_gmt" in reasons[ids[1]]
    assert "currency" in reasons[ids[2]]
    assert "line_items[0].quantity" in reasons[ids[4]]
    assert results[True] == results[False]


def test_the_models_stay_for_a_reader_outside_the_sync() -> None:
    """A user's loop over ``read_orders`` gets models, as before the fast path."""
    with (
        emulated("woocommerce", customers=5, orders=10) as shop,
        closing(_adapter(shop, True)) as adapter,
    ):
        pages = list(adapter.read_orders())
    assert sum(len(p.records) for p in pages) == 10
    assert not any(getattr(p, "rows", ()) for p in pages)


def test_a_sync_that_stops_does_not_wait_out_the_read_aheads_retries() -> None:
    """The store fails on page 1 (or the lease is lost, or Ctrl-C) while page 2's request
    fails and is being retried: the error surfaces after at most the attempt on the wire,
    not after every retry the policy allows (up to two minutes by default), and no request
    goes out after the reader stopped."""
    policy = RetryPolicy(attempts=8, max_elapsed=60, initial_wait=0.2, max_wait=0.2)
    with emulated("woocommerce", customers=5, orders=60) as shop:
        adapter = shopsync.connect("woocommerce", **shop.settings, retry_policy=policy, per_page=25)
        assert isinstance(adapter, WooCommerceAdapter)
        adapter.takes_rows = True
        real = adapter.api.get
        sent: list[str] = []
        stopped: list[float] = []

        def get(endpoint: str, **kwargs: Any) -> Any:
            if endpoint == "orders":
                sent.append("after stop" if stopped else "before stop")
                if len(sent) > 1:  # page 2 and its retries: the site is down
                    raise requests.ConnectionError("down")
            return real(endpoint, **kwargs)

        adapter.api.get = get  # type: ignore[method-assign]
        with closing(adapter):
            pages = adapter.read_orders()
            assert getattr(next(pages), "rows", ())
            deadline = time.monotonic() + 10
            while len(sent) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)  # until page 2's first attempt has gone out (and failed)
            stopped.append(time.monotonic())
            pages.close()  # the sync raised while storing page 1
            waited = time.monotonic() - stopped[0]
    assert sent.count("after stop") <= 1, sent
    assert waited < 0.5, waited


def test_a_record_handed_back_to_the_models_reads_its_refunds_once(
    counted: dict[str, int], two_urls: dict[bool, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the bulk ``/refunds`` (WooCommerce before 9.0) each order's refunds cost a
    request. An order the store hands back to the model path (a tombstone concerns it) comes
    back after its page's rows were mapped, and is not read again."""
    asked: list[str] = []
    real = WooCommerceAdapter._refunds_of

    def spy(self: Any, raw: Any, index: Any) -> Any:
        asked.append(str(raw.get("id")))
        return real(self, raw, index)

    monkeypatch.setattr(WooCommerceAdapter, "_refunds_of", spy)
    with emulated("woocommerce", seed=2, customers=20, orders=120) as shop:
        owners = [o.customer_id for o in shop.state.orders.values() if o.refunds and o.customer_id]
        store = shopsync.Store(two_urls[True])
        store.redact_customer("woocommerce", shop.state.shop, owners[0])  # its orders go back
        with closing(_adapter(shop, True)) as adapter:
            adapter.bulk_refunds = False
            shopsync.sync(adapter, store, resources=["orders"])
        store.close()
    mine = {o.id for o in shop.state.orders.values() if o.customer_id == owners[0]}
    assert mine and counted["rows"] == len(shop.state.orders)  # all as rows, these handed back
    assert sorted(asked) == sorted(set(asked)), "an order's refunds were read twice"


_TRACK = {"tracking_provider": "UPS", "tracking_number": "1Z9", "date_shipped": "1490123000"}


def _odd_records() -> Iterator[tuple[dict[str, Any], list[Any] | None]]:
    """Order 723 (with its refunds) written oddly: addresses of numbers, nulls and nested
    values, fractional and zero quantities, zero to two tracking items, list columns of
    text json escapes, refunds listed without their records."""
    raw = next(o for o in load("list-all-orders") if o["refunds"])
    refunds = load("list-all-refunds")
    ship = raw["shipping"]
    tracked = [[], [_TRACK], [_TRACK, {**_TRACK, "tracking_number": "2"}]]
    tracked += [[_TRACK, {**_TRACK, "tracking_id": "b", "status": "cancelled"}]]
    tracked += [[{**_TRACK, "tracking_number": n}] for n in ('a"b', "a\\b", "\u00fc", "", "\x7f")]
    edits: list[dict[str, Any]] = [
        {"billing": {**raw["billing"], "postcode": 80395, "phone": 4930, "state": None}},
        {"shipping": {**ship, "city": {"a": [1]}, "company": [1, "x"], "address_2": True}},
        {"shipping": {**ship, "address_1": '5 "Main" St \\ 2', "city": "\u5317\u4eac\u2028"}},
        {"shipping": {**ship, "first_name": "\U0001f600", "state": 1.5, "country": "br"}},
        {"shipping": {}, "billing": None},
        {"refunds": []},
        *({"meta_data": [{"key": "_wc_shipment_tracking_items", "value": v}]} for v in tracked),
        *({"meta_data": [{"key": "_shopsync_tags", "value": v}]} for v in (["x"], ['"'], "a, b")),
    ]
    for quantity in (0, 1.5, 0.0001, 2.0, 3):
        line = {**raw["line_items"][1], "quantity": quantity}
        edits.append({"line_items": [raw["line_items"][0], line]})
    for i, edit in enumerate(edits):
        yield {**raw, "id": 1000 + i, **edit}, refunds
    yield {**raw, "id": 999}, []  # refunds listed, their records read: none


def test_odd_records_stored_by_either_path_are_alike(two_urls: dict[bool, str]) -> None:
    """The store after the fast path equals the row path's on both engines, the JSON
    columns' text and the content hashes included, for records off the common shape."""
    stores = {fast: shopsync.Store(two_urls[fast]) for fast in (False, True)}
    fast_mapped = 0
    for raw, refunds in _odd_records():
        rows = order_tables(copy.deepcopy(raw), refunds)
        fast_mapped += rows is not None
        model = order_from_rest(raw, shop=SHOP, refunds=refunds)
        for fast, store in stores.items():
            with store.transaction() as tx:
                if fast and rows is not None:
                    page = RowsPage(records=[], rows=[rows], fallback=None)
                    store_page(store, "woocommerce", SHOP, page, tx)
                else:
                    store.upsert([model], conn=tx)
    snaps = {fast: snapshot(store) for fast, store in stores.items()}
    for store in stores.values():
        store.close()
    assert fast_mapped == len(list(_odd_records()))
    for table in snaps[False]:
        assert snaps[True][table] == snaps[False][table], table
