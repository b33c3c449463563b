from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from shopsync.adapter import Deletion, DeletionReader, Page, Rejected
from shopsync.errors import AuthenticationError
from shopsync.models import Customer, Order, Product
from shopsync.store import Store
from shopsync.sync import sync
from tests.test_models import T0, order


class ListAdapter(DeletionReader):
    """An in-memory adapter that reads in (updated_at, id) order, inclusive of ``since``."""

    platform = "shopify"
    shop = "acme.myshopify.com"

    def __init__(self, page_size: int = 2) -> None:
        self.page_size = page_size
        self.orders: dict[str, Order] = {}
        self.bad: list[Rejected] = []
        self.deletions: list[Deletion] = []
        self.reads: list[dt.datetime | None] = []
        self.fail_after_pages: int | None = None

    def read_orders(self, updated_since: dt.datetime | None = None) -> Iterator[Page[Order]]:
        self.reads.append(updated_since)
        chosen = sorted(
            (
                o
                for o in self.orders.values()
                if updated_since is None or o.updated_at >= updated_since
            ),
            key=lambda o: (o.updated_at, o.id),
        )
        high = None
        for n, start in enumerate(range(0, max(len(chosen), 1), self.page_size)):
            if self.fail_after_pages is not None and n >= self.fail_after_pages:
                raise AuthenticationError("token revoked", status=401)
            records = chosen[start : start + self.page_size]
            if records:
                high = records[-1].updated_at
            rejected = self.bad if start == 0 else []
            yield Page(records=records, rejected=rejected, high_water=high, stats={"requests": 1})

    def read_customers(self, updated_since: dt.datetime | None = None) -> Iterator[Page[Customer]]:
        yield Page(records=[])

    def read_products(self, updated_since: dt.datetime | None = None) -> Iterator[Page[Product]]:
        yield Page(records=[])

    def read_deletions(self, updated_since: dt.datetime | None = None) -> Iterator[Deletion]:
        return iter(
            [d for d in self.deletions if updated_since is None or d.deleted_at >= updated_since]
        )

    def close(self) -> None:
        pass


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


@pytest.fixture
def shop() -> ListAdapter:
    adapter = ListAdapter()
    for n in range(5):
        adapter.orders[str(n)] = order(id=str(n), updated_at=at(n))
    return adapter


def stored(store: Store) -> dict[str, Order]:
    return {o.id: o for o in store.iter(Order, "shopify", "acme.myshopify.com")}


def test_first_sync_reads_everything(store: Store, shop: ListAdapter) -> None:
    report = sync(shop, store, resources=["orders"])
    assert stored(store) == shop.orders
    r = report.resources["orders"]
    assert (r.seen, r.inserted, r.pages, r.requests, r.since) == (5, 5, 3, 3, None)
    cursor = store.get_cursor("shopify", "acme.myshopify.com", "orders")
    assert cursor is not None and cursor.high_water == at(4)


def test_incremental_sync_starts_at_the_high_water_minus_overlap(
    store: Store, shop: ListAdapter
) -> None:
    sync(shop, store, resources=["orders"])
    shop.orders["2"] = order(id="2", updated_at=at(60), name="edited")
    shop.orders["9"] = order(id="9", updated_at=at(61))
    report = sync(shop, store, resources=["orders"], overlap=dt.timedelta(minutes=1))
    assert shop.reads[-1] == at(3)
    r = report.resources["orders"]
    assert (r.inserted, r.updated, r.unchanged) == (1, 1, 2)
    assert stored(store) == shop.orders


def test_equal_timestamps_across_a_page_boundary_are_not_skipped(store: Store) -> None:
    shop = ListAdapter(page_size=2)
    for n in range(3):
        shop.orders[str(n)] = order(id=str(n), updated_at=at(0))
    shop.fail_after_pages = 1  # the run dies after the first page: "0" and "1" are in
    with pytest.raises(AuthenticationError):
        sync(shop, store, resources=["orders"], overlap=dt.timedelta(0))
    assert set(stored(store)) == {"0", "1"}
    shop.fail_after_pages = None
    sync(shop, store, resources=["orders"], overlap=dt.timedelta(0))
    assert set(stored(store)) == {"0", "1", "2"}


def test_an_unretryable_error_keeps_what_was_committed(store: Store, shop: ListAdapter) -> None:
    shop.fail_after_pages = 2
    with pytest.raises(AuthenticationError):
        sync(shop, store, resources=["orders"])
    assert set(stored(store)) == {"0", "1", "2", "3"}
    cursor = store.get_cursor("shopify", "acme.myshopify.com", "orders")
    assert cursor is not None and cursor.high_water == at(3)
    shop.fail_after_pages = None
    sync(shop, store, resources=["orders"])
    assert stored(store) == shop.orders


def test_bad_records_are_quarantined_and_the_rest_goes_on(store: Store, shop: ListAdapter) -> None:
    shop.bad = [
        Rejected("orders", "77", '{"id": 77, "total_price": "abc"}', "total: not a decimal")
    ]
    report = sync(shop, store, resources=["orders"])
    assert report.resources["orders"].quarantined == 1
    assert stored(store) == shop.orders
    [item] = store.quarantined()
    assert (item.record_id, item.reason) == ("77", "total: not a decimal")


def test_deletions_are_applied(store: Store, shop: ListAdapter) -> None:
    sync(shop, store, resources=["orders"])
    del shop.orders["3"]
    shop.deletions.append(Deletion("orders", "3", at(30)))
    report = sync(shop, store, resources=["orders"])
    assert report.resources["deletions"].deleted == 1
    assert "3" not in stored(store)


def test_deletions_are_read_only_from_an_adapter_that_declares_them(store: Store) -> None:
    class Undeclared:
        platform = "shopify"
        shop = "acme.myshopify.com"
        asked = False

        def read_deletions(self, updated_since: dt.datetime | None = None) -> Iterator[Deletion]:
            self.asked = True
            return iter(())

        def read_orders(self, updated_since: dt.datetime | None = None) -> Iterator[Page[Order]]:
            yield Page(records=[])

    shop = Undeclared()
    report = sync(shop, store, resources=["orders"])  # type: ignore[arg-type]
    assert "deletions" not in report.resources and not shop.asked


def test_full_ignores_the_checkpoint(store: Store, shop: ListAdapter) -> None:
    sync(shop, store, resources=["orders"])
    sync(shop, store, resources=["orders"], full=True)
    assert shop.reads[-1] is None


def test_unknown_resource_is_refused(store: Store, shop: ListAdapter) -> None:
    with pytest.raises(ValueError, match="unknown resource"):
        sync(shop, store, resources=["invoices"])
