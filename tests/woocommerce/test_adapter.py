"""WooCommerceAdapter: settings, the retry policy, paging, incremental reads and cursors."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from shopsync_woocommerce import DEFAULT_OVERLAP, DEFAULT_TIMEOUT, WooCommerceAdapter
from shopsync_woocommerce import _reads as adapter_module

import shopsync
from shopsync.errors import AuthenticationError, ConfigurationError, NotFoundError
from shopsync.http import RetryPolicy
from shopsync.testing import EmulatedShop, Request, emulate
from shopsync.testing.contract import read_all

FAST = RetryPolicy(initial_wait=0.01, max_wait=0.05)


@pytest.fixture(scope="module")
def shop() -> Iterator[EmulatedShop]:
    with emulate("woocommerce", seed=6, customers=30, orders=180, products=10) as shop:
        yield shop


@pytest.fixture
def seen(shop: EmulatedShop) -> Iterator[list[Request]]:
    """Every request the emulator answers during the test."""
    requests: list[Request] = []
    emulator: Any = shop.emulator
    original = emulator.handle

    def spy(request: Request) -> Any:
        requests.append(request)
        return original(request)

    emulator.handle = spy
    yield requests
    emulator.handle = original


def connect(shop: EmulatedShop, **kw: Any) -> WooCommerceAdapter:
    adapter = shopsync.connect("woocommerce", **{**shop.settings, "retry_policy": FAST, **kw})
    assert isinstance(adapter, WooCommerceAdapter)
    return adapter


def test_settings_defaults_and_secrets(shop: EmulatedShop) -> None:
    adapter = WooCommerceAdapter(
        url="https://shop.example/store/",
        consumer_key="ck_1",
        consumer_secret=SecretStr("cs_very_secret"),
    )
    assert adapter.shop == "shop.example/store"
    assert adapter.api.timeout == DEFAULT_TIMEOUT == 30.0  # not the client's 5 s
    assert adapter.http.timeout == DEFAULT_TIMEOUT
    assert adapter.overlap == DEFAULT_OVERLAP
    assert adapter.per_page == 100
    assert "cs_very_secret" not in repr(adapter)
    assert WooCommerceAdapter(
        url="http://127.0.0.1:8080", consumer_key="k", consumer_secret="s", overlap=30
    ).overlap == dt.timedelta(seconds=30)
    assert connect(shop).shop == shop.state.shop
    for bad in (
        {"per_page": 101},
        {"per_page": 0},
        {"url": "shop.example"},
        {"consumer_secret": ""},
    ):
        with pytest.raises(ConfigurationError):
            WooCommerceAdapter(
                **{"url": "https://s.example", "consumer_key": "k", "consumer_secret": "s", **bad}
            )


def test_reads_in_the_fewest_pages(shop: EmulatedShop, seen: list[Request]) -> None:
    adapter = connect(shop)
    records, rejected, pages = read_all(adapter, "orders")
    assert len(records) == 180 and not rejected
    listing = [r for r in seen if r.path.endswith("/orders")]
    assert len(listing) == math.ceil(180 / 100) == len(pages)
    assert {r.query["per_page"] for r in listing} == {"100"}
    assert {r.query["dates_are_gmt"] for r in listing} == {"true"}
    assert [r.query["orderby"] for r in listing] == ["modified", "modified"]
    assert "modified_after" not in listing[0].query  # a full read
    assert (
        listing[1].query["modified_after"]
        < max(  # the next page starts at the last second
            o.updated_at for o in list(records.values())[:100]
        ).strftime("%Y-%m-%dT%H:%M:%S")
    )
    refunds = sum(len(o.refunds) for o in shop.state.orders.values())
    bulk = [r for r in seen if r.path.endswith("/wc/v3/refunds")]
    assert len(bulk) == max(1, math.ceil(refunds / 100))  # all refunds, 100 a request
    assert len(seen) == len(listing) + len(bulk)  # and no per-order look-up
    assert sum(p.stats["requests"] for p in pages) == len(seen)


def test_refunds_per_order_without_the_bulk_endpoint(seen: list[Request]) -> None:
    with emulate(
        "woocommerce", seed=6, customers=30, orders=180, products=10, refunds_endpoint=False
    ) as old_store:
        emulator: Any = old_store.emulator
        original = emulator.handle
        emulator.handle = lambda request: (seen.append(request), original(request))[1]
        records, _, _ = read_all(connect(old_store), "orders")
        want = {k: emulator.view(v) for k, v in old_store.state.orders.items()}
        assert records == want
        refunded = sum(1 for o in old_store.state.orders.values() if o.refunds)
        per_order = [r for r in seen if r.path.endswith("/refunds") and "/orders/" in r.path]
        assert len(per_order) == refunded > 0
        assert sum(1 for r in seen if r.path.endswith("/wc/v3/refunds")) == 1  # tried once


def test_old_refund_on_a_recently_changed_order_is_fetched_for_that_order(
    shop: EmulatedShop, seen: list[Request]
) -> None:
    adapter = connect(shop, overlap=0)
    order = next(o for o in shop.state.orders.values() if o.refunds)
    changed = shop.state.update_order(order.id, tags=("late-change",))
    since = changed.updated_at
    records, _, _ = read_all(adapter, "orders", since)
    assert records[order.id] == shop.emulator.view(changed)  # type: ignore[union-attr]
    assert any(r.path.endswith(f"/orders/{order.id}/refunds") for r in seen)
    bulk = next(r for r in seen if r.path.endswith("/wc/v3/refunds"))
    assert bulk.query["after"] == seen[-1].query.get("modified_after", bulk.query["after"])


def test_customer_scan_pages_and_its_checkpoint(shop: EmulatedShop) -> None:
    records, _, pages = read_all(connect(shop, per_page=7), "customers")
    assert len(pages) == math.ceil(30 / 7)
    assert len(records) == 30
    # a scan in id order only has a safe checkpoint once it is complete
    assert [p.high_water for p in pages[:-1]] == [None] * (len(pages) - 1)
    assert pages[-1].high_water == max(c.updated_at for c in records.values())


def test_keyset_pages_of_orders_have_rising_checkpoints(shop: EmulatedShop) -> None:
    records, _, pages = read_all(connect(shop, per_page=25), "orders")
    assert len(records) == 180
    marks = [p.high_water for p in pages]
    assert all(m is not None for m in marks) and marks == sorted(marks)  # type: ignore[type-var]
    # everything up to each checkpoint's second has been read by then: a safe resume point
    seen: set[str] = set()
    for page in pages:
        seen |= {o.id for o in page.records}
        assert page.high_water is not None
        cut = page.high_water.replace(microsecond=0)
        assert {o.id for o in shop.state.orders.values() if o.updated_at < cut} <= seen


def test_a_crowded_second_is_paged_through(seen: list[Request]) -> None:
    with emulate("woocommerce", seed=9, customers=10, orders=60, products=4) as crowded:
        moment = dt.datetime(2031, 5, 5, 5, 5, 5, tzinfo=dt.timezone.utc)
        for k, order_id in enumerate(sorted(crowded.state.orders)[:45]):
            crowded.state.update_order(order_id, updated_at=moment + dt.timedelta(microseconds=k))
        emulator: Any = crowded.emulator
        original = emulator.handle
        emulator.handle = lambda request: (seen.append(request), original(request))[1]
        records, _, pages = read_all(connect(crowded, per_page=10), "orders")
        assert set(records) == set(crowded.state.orders)
        windows = [r for r in seen if "modified_before" in r.query]
        assert len(windows) == 5  # 45 orders in one second, 10 a page
        assert sum(len(p.records) for p in pages) == 60  # no order read twice
        assert len(seen) < 20


def test_an_order_changed_during_the_read_is_not_lost(shop: EmulatedShop) -> None:
    adapter = connect(shop, per_page=20)
    reader = adapter.read_orders()
    first = next(reader)
    early = first.records[0].id
    changed = shop.state.update_order(early, tags=("changed-mid-read",))
    rest = [o for page in reader for o in page.records]
    ids = {o.id for o in first.records} | {o.id for o in rest}
    assert ids == set(shop.state.orders)
    assert [o for o in rest if o.id == early] == [shop.emulator.view(changed)]  # type: ignore[union-attr]


def test_orders_incremental_with_the_overlap(shop: EmulatedShop, seen: list[Request]) -> None:
    adapter = connect(shop, overlap=dt.timedelta(minutes=10))
    since = dt.datetime(2030, 1, 1, 12, 0, 0, 500_000, tzinfo=dt.timezone.utc)
    assert read_all(adapter, "orders", since)[0] == {}
    # 10 minutes of overlap, and one second for the strict, whole-second comparison
    assert seen[-1].query["modified_after"] == "2030-01-01T11:49:59"


def test_customers_full_scan_yields_only_the_changed(
    shop: EmulatedShop, seen: list[Request], monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = connect(shop, overlap=0)
    everyone, _, _ = read_all(adapter, "customers")
    mapped: list[str] = []
    real = adapter_module.customer_from_rest

    def counting(payload: Any, **kw: Any) -> Any:
        mapped.append(str(payload["id"]))
        return real(payload, **kw)

    monkeypatch.setattr(adapter_module, "customer_from_rest", counting)
    newest = max(c.updated_at for c in everyone.values())
    target = sorted(everyone)[3]
    shop.state.update_customer(target, tags=("changed",))
    seen.clear()
    changed, _, _ = read_all(adapter, "customers", newest + dt.timedelta(seconds=3))
    assert set(changed) == {target} == set(mapped)  # the others were not even mapped
    assert all("modified_after" not in r.query for r in seen)  # no such filter on /customers
    assert len(seen) == 1  # but a full scan all the same


def test_products_with_variations(shop: EmulatedShop) -> None:
    records, rejected, _ = read_all(connect(shop), "products")
    assert not rejected
    variable = [p for p in records.values() if p.variants]
    assert variable and all(v.price is not None for p in variable for v in p.variants)


def test_retried_and_not_retried(shop: EmulatedShop, seen: list[Request]) -> None:
    adapter = connect(shop)
    shop.faults.retry_after = 0.01
    shop.faults.inject("5xx", 2)
    shop.faults.inject("429", 1)
    body, _ = adapter._get("orders", {"per_page": "1"})
    assert len(body) == 1 and adapter.http.stats.retries == 3
    assert adapter.http.stats.throttle_waits == 1
    before = adapter.http.stats.requests
    with pytest.raises(NotFoundError):
        adapter._get("orders/1", {})
    assert adapter.http.stats.requests == before + 1  # 404: once
    wrong = connect(shop, consumer_secret="cs_wrong")
    with pytest.raises(AuthenticationError) as info:
        next(wrong.read_orders())
    assert info.value.status == 401
    assert wrong.http.stats.requests == 1  # 401: once
    assert "cs_wrong" not in str(info.value)
    assert "oauth_signature=***" in str(info.value)  # redacted, as is the consumer key
    assert shop.settings["consumer_key"] not in str(info.value)


def test_cursor_resumes_after_the_page(shop: EmulatedShop) -> None:
    adapter = connect(shop, per_page=50)
    pages = list(adapter.read_orders())
    resumed = {o.id for p in adapter.read_orders(cursor=pages[1].cursor) for o in p.records}
    later = {o.id for p in pages[2:] for o in p.records}
    assert later <= resumed
    assert resumed - later <= {o.id for o in pages[1].records}  # the boundary second again
    with pytest.raises(ConfigurationError):
        next(adapter.read_products(cursor=pages[1].cursor))


def test_rejected_records_carry_reason_and_raw(shop: EmulatedShop) -> None:
    victim = sorted(shop.state.customers)[0]
    shop.faults.invalid_records.add(("customers", victim))
    try:
        records, rejected, _ = read_all(connect(shop), "customers")
    finally:
        shop.faults.invalid_records.discard(("customers", victim))
    assert victim not in records and len(records) == 29
    (bad,) = rejected
    assert (bad.resource, bad.record_id) == ("customers", victim)
    assert "date_created_gmt" in bad.reason and '"not-a-date"' in bad.raw
