"""The WooCommerce fast path's store write (issue 20, 3.3: on SQLite the open checkouts are
looked up in the page's one statement and the sequence bump is plain SQL) leaves the store the
row path leaves, on both engines: paid orders complete their checkouts (not one created at
another time, nor an unpaid order's), with refunds, tracking items of the plain shape and with
fractional quantities, and tax lines with rates; a page that fails after its lookup leaves
nothing, and its rerun stores what a clean run stores."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from shopsync_woocommerce._checkouts import checkout_from_rest
from shopsync_woocommerce._fast_orders import order_tables
from shopsync_woocommerce._map_common import META
from shopsync_woocommerce.mapping import order_from_rest
from sqlalchemy.exc import SQLAlchemyError

import shopsync
from shopsync.errors import StoreError
from shopsync.ingest_columns import RowsPage, store_page
from shopsync.store import fast_rows
from shopsync.store.checkout_rows import upsert_checkouts
from shopsync.store.schema import checkouts
from tests.shopify.test_fast_ingest import CLOCK, snapshot, two_urls
from tests.woocommerce._fixtures import SHOP, load

__all__ = ["two_urls"]

HOUR = dt.timedelta(hours=1)

_ITEM = {
    "tracking_provider": "",
    "custom_tracking_provider": "FedEx",
    "custom_tracking_link": "https://www.fedex.com/fedextrack/?trknbr=5081",
    "tracking_number": "5081",
    "date_shipped": "1702000043",
    "status": "success",
    "date_delivered": "1702192215",
}


def _orders() -> list[tuple[dict[str, Any], list[Any] | None]]:
    """(record, refunds): order 723 with its refunds, and versions of it under other ids with
    plain tracking items, fractional ones, tax rates, unpaid."""
    base = next(o for o in load("list-all-orders") if o["refunds"])
    refunds = load("list-all-refunds")
    lines = [li["id"] for li in base["line_items"]]

    def variant(n: int, **changes: Any) -> dict[str, Any]:
        raw: dict[str, Any] = copy.deepcopy(base)
        raw.update(id=base["id"] + n, refunds=[], **changes)
        return raw

    def tracked(quantity: Any) -> list[dict[str, Any]]:
        return [
            {**_ITEM, "tracking_id": "t1", "line_items": [{"id": lines[0], "quantity": quantity}]},
            {**_ITEM, "tracking_id": "", "date_delivered": ""},
        ]

    tax = {"id": 1, "rate_code": "US-CA", "label": "State tax", "rate_percent": "7.25"}
    tax |= {"tax_total": "1.20", "shipping_tax_total": "0.30"}
    out: list[tuple[dict[str, Any], list[Any] | None]] = [(base, refunds)]
    for n, quantity in ((1, 2), (2, 1.5)):
        meta = [*base["meta_data"], {"id": 9, "key": META["tracking"], "value": tracked(quantity)}]
        out.append((variant(n, meta_data=meta, status="completed"), None))
    out.append((variant(3, tax_lines=[tax, {**tax, "rate_percent": 20}]), None))
    out.append((variant(4, status="pending", date_paid_gmt=None, date_paid=None), None))
    out.append((variant(5, date_created_gmt="2017-03-21T15:00:00"), None))
    return out


def _checkouts(orders: list[tuple[dict[str, Any], list[Any] | None]]) -> list[Any]:
    """An open checkout of every order (the last one's created an hour earlier: another
    checkout), and one completed already."""
    made = []
    for raw, _ in orders:
        pending = {**raw, "status": "pending", "date_paid_gmt": None, "date_paid": None}
        made.append(checkout_from_rest(pending, shop=SHOP))
    made[-1] = made[-1].model_copy(update={"created_at": made[-1].created_at - HOUR})
    made.append(made[0].model_copy(update={"id": "999", "completed_at": made[0].created_at}))
    return made


def _write(store: shopsync.Store, fast: bool, orders: list[Any]) -> None:
    with store.transaction() as tx:
        if fast:
            rows = []
            for raw, refunds in orders:
                row = order_tables(copy.deepcopy(raw), refunds)
                assert row is not None
                rows.append(row)
            store_page(store, "woocommerce", SHOP, RowsPage(records=[], rows=rows), tx)
        else:
            models = [order_from_rest(raw, shop=SHOP, refunds=refunds) for raw, refunds in orders]
            store.upsert(models, conn=tx)


_COMPLETED = [c.name for c in checkouts.c if ("checkouts", c.name) not in CLOCK].index(
    "completed_at"
)


def test_paid_orders_complete_their_checkouts_on_both_paths(two_urls: dict[bool, str]) -> None:
    orders = _orders()
    snaps = {}
    for fast, url in two_urls.items():
        store = shopsync.Store(url)
        upsert_checkouts(store, _checkouts(orders))
        _write(store, fast, orders)
        _write(store, fast, orders)  # again: unchanged, nothing completed twice
        snaps[fast] = snapshot(store)
        store.close()
    done = [c for c in snaps[True]["checkouts"] if c[_COMPLETED] is not None]
    assert len(done) == 5  # four paid orders of their own checkouts, and the one done before
    assert len(snaps[True]["fulfillments"]) == 4 and snaps[True]["refunds"]
    for table in snaps[False]:
        assert snaps[True][table] == snaps[False][table], table


def test_a_page_failing_after_its_lookup_leaves_nothing_and_its_rerun_stores_it_whole(
    two_urls: dict[bool, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    orders = _orders()
    clean = shopsync.Store(two_urls[False])
    upsert_checkouts(clean, _checkouts(orders))
    _write(clean, True, orders)
    store = shopsync.Store(two_urls[True])
    upsert_checkouts(store, _checkouts(orders))
    before = snapshot(store)
    real = fast_rows._insert

    def crash(c: Any, table: Any, rows: Any) -> None:
        if table.name == "refunds":  # the checkouts completed and orders written already
            raise SQLAlchemyError("the connection dropped")
        real(c, table, rows)

    with monkeypatch.context() as patch:
        patch.setattr(fast_rows, "_insert", crash)
        with pytest.raises(StoreError):
            _write(store, True, orders)
    assert snapshot(store) == before
    _write(store, True, orders)
    assert snapshot(store) == snapshot(clean)
    clean.close()
    store.close()
