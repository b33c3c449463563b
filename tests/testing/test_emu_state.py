"""The state's change API: every change stamps a strictly later updated_at and emits."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest

from shopsync.errors import NotFoundError
from shopsync.models import ConsentState, FinancialStatus, FulfillmentStatus, Money
from shopsync.testing import Event, ShopState, generate_shop

END = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture
def state() -> ShopState:
    s = generate_shop(
        platform="shopify", shop="st.example", seed=3, customers=40, orders=150, end=END
    )
    frozen = END + dt.timedelta(days=1)
    s.clock = lambda: frozen  # a stopped clock: strictness must come from the state
    return s


@pytest.fixture
def events(state: ShopState) -> list[Event]:
    seen: list[Event] = []
    state.subscribe(seen.append)
    return seen


def paid_order(state: ShopState) -> str:
    return next(
        o.id
        for o in state.orders.values()
        if o.financial_status is FinancialStatus.PAID
        and len(o.line_items) > 1
        and o.fulfillment_status is FulfillmentStatus.FULFILLED
    )


def test_updates_bump_updated_at_strictly_and_emit(state: ShopState, events: list[Event]) -> None:
    cid = next(iter(state.customers))
    before = state.customers[cid].updated_at
    first = state.update_customer(cid, first_name="Ada")
    second = state.update_customer(cid, tags=("vip",))
    assert before < first.updated_at < second.updated_at
    assert state.customers[cid] is second and second.first_name == "Ada"
    assert [(e.topic, e.record_id) for e in events] == [("customer.updated", cid)] * 2
    assert events[1].record == second and events[1].at == second.updated_at


def test_stamps_are_unique_across_records(state: ShopState) -> None:
    stamps = [state.update_customer(cid, last_name="X").updated_at for cid in state.customers]
    assert len(set(stamps)) == len(stamps)
    assert stamps == sorted(stamps)
    assert stamps[0] > max(o.updated_at for o in state.orders.values())


def test_forced_updated_at_is_kept(state: ShopState) -> None:
    cid = next(iter(state.customers))
    forced = END - dt.timedelta(days=400)
    assert state.update_customer(cid, updated_at=forced).updated_at == forced


def test_invalid_update_is_refused_and_changes_nothing(state: ShopState) -> None:
    cid = next(iter(state.customers))
    old = state.customers[cid]
    with pytest.raises(ValueError):
        state.update_customer(cid, email="not an email")
    assert state.customers[cid] is old
    with pytest.raises(NotFoundError):
        state.update_customer("999", first_name="x")


def test_add_records_with_fresh_ids(state: ShopState, events: list[Event]) -> None:
    customer = state.add_customer(email="new@example.com", first_name="New")
    assert customer.id not in ("", None) and customer.id.isdigit()
    assert customer.platform == "shopify" and customer.created_at == customer.updated_at
    product = state.add_product(title="Thing")
    order = state.add_order(
        customer_id=customer.id,
        email=customer.email,
        financial_status="pending",
        subtotal=Money.of(10, "USD"),
        total_discounts=Money.of(0, "USD"),
        total_shipping=Money.of(0, "USD"),
        total_tax=Money.of(0, "USD"),
        total=Money.of(10, "USD"),
        total_refunded=Money.of(0, "USD"),
    )
    assert order.id in state.orders and product.id in state.products
    assert state.customers[customer.id].orders_count == 1
    assert state.customers[customer.id].total_spent == Money.of(10, "USD")
    assert [e.topic for e in events] == [
        "customer.created",
        "product.created",
        "order.created",
        "customer.updated",
    ]
    paid = state.pay_order(order.id)
    assert paid.financial_status is FinancialStatus.PAID and paid.paid_at == paid.updated_at
    assert events[-1].topic == "order.paid"


def test_partial_then_full_refund(state: ShopState, events: list[Event]) -> None:
    oid = paid_order(state)
    order = state.orders[oid]
    line = order.line_items[0]
    partial = state.refund_order(oid, lines={line.id: 1})
    assert partial.financial_status is FinancialStatus.PARTIALLY_REFUNDED
    assert partial.line_items[0].refunded_quantity == 1
    assert partial.total_refunded.amount == (line.total.amount / line.quantity).quantize(
        Decimal("0.01")
    )
    assert events[-1].topic == "refund.created" and events[-1].child_id == partial.refunds[-1].id
    full = state.refund_order(oid)
    assert full.financial_status is FinancialStatus.REFUNDED and full.total_refunded == full.total
    with pytest.raises(ValueError, match="exceeds"):
        state.refund_order(oid, amount="0.01")


def test_cancel_refunds_paid_money(state: ShopState, events: list[Event]) -> None:
    oid = paid_order(state)
    cancelled = state.cancel_order(oid)
    assert cancelled.cancelled_at is not None and cancelled.total_refunded == cancelled.total
    assert [e.topic for e in events] == ["refund.created", "order.cancelled"]
    with pytest.raises(ValueError, match="already"):
        state.cancel_order(oid)


def test_fulfil_in_two_parts(state: ShopState, events: list[Event]) -> None:
    oid = paid_order(state)
    order = state.update_order(oid, fulfillments=(), fulfillment_status="unfulfilled")
    del events[:]
    first = order.line_items[0]
    part = state.fulfill_order(
        oid, lines={first.id: first.quantity}, tracking_company="UPS", tracking_numbers=["1Z1"]
    )
    assert part.fulfillment_status is FulfillmentStatus.PARTIALLY_FULFILLED
    assert events[-1].topic == "fulfillment.created"
    done = state.fulfill_order(oid)
    assert done.fulfillment_status is FulfillmentStatus.FULFILLED
    assert [e.topic for e in events[-2:]] == ["fulfillment.created", "order.fulfilled"]
    with pytest.raises(ValueError, match="to ship"):
        state.fulfill_order(oid, lines={first.id: 1})


def test_redact_and_delete(state: ShopState, events: list[Event]) -> None:
    cid = next(c.id for c in state.customers.values() if c.orders_count)
    redacted = state.redact_customer(cid)
    assert redacted.email is None and redacted.default_address is None
    assert redacted.consent.email.state is ConsentState.REDACTED
    assert all(o.email is None for o in state.orders.values() if o.customer_id == cid)
    assert events[0].topic == "customer.redact"
    gone = state.delete_customer(cid)
    assert cid not in state.customers and ("customers", cid) in state.deleted
    assert state.deleted[("customers", cid)] > gone.updated_at
    oid = next(iter(state.orders))
    state.delete_order(oid)
    assert [e.topic for e in events[-2:]] == ["customer.deleted", "order.deleted"]
    assert state.redact_shop().topic == "shop.redact"


def test_ordered_snapshot_follows_changes(state: ShopState) -> None:
    by_updated = state.ordered("orders", by="updated_at")
    assert [o.updated_at for o in by_updated] == sorted(o.updated_at for o in by_updated)
    assert state.ordered("orders", by="updated_at") is by_updated  # cached
    oid = by_updated[0].id
    state.update_order(oid, tags=("x",))
    assert state.ordered("orders", by="updated_at")[-1].id == oid
    ids = [int(o.id) for o in state.ordered("orders")]
    assert ids == sorted(ids)


def test_concurrent_changes_keep_stamps_unique(state: ShopState) -> None:
    ids = list(state.customers)[:8]
    stamps: list[dt.datetime] = []

    def work(cid: str) -> None:
        for _ in range(20):
            stamps.append(state.update_customer(cid, tags=("t",)).updated_at)

    threads = [threading.Thread(target=work, args=(cid,)) for cid in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(stamps) == 160 and len(set(stamps)) == 160


def test_unsubscribe(state: ShopState) -> None:
    seen: list[Event] = []
    stop = state.subscribe(seen.append)
    state.redact_shop()
    stop()
    state.redact_shop()
    assert len(seen) == 1
