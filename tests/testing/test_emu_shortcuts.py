"""One-line customers and orders in an emulated shop, read back through a real sync."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

import shopsync
from shopsync.models import ConsentState, Customer, FinancialStatus, Money, Order
from shopsync.testing import add_customer, add_order, emulate, generate_shop

END = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_a_customer_and_an_order_in_one_line_each_reach_the_store(platform: str) -> None:
    extra = {"plan": "plus"} if platform == "shopify" else {}
    with emulate(platform, seed=4, customers=5, orders=10, products=3, end=END, **extra) as shop:
        ada = shop.add_customer("ada@example.com", first_name="Ada", consent="subscribed")
        order = shop.add_order(ada, "49.90")
        second = shop.add_order(ada.id, "12.50", quantity=2, paid=False)
        store = shopsync.Store("sqlite:///:memory:")
        adapter = shopsync.connect(platform, **shop.settings)
        try:
            shopsync.sync(adapter, store)
        finally:
            adapter.close()
    stored = store.get(Customer, platform, shop.state.shop, ada.id)
    assert stored is not None and stored.email == "ada@example.com"
    assert stored.first_name == "Ada"
    placed = store.get(Order, platform, shop.state.shop, order.id)
    assert placed is not None and placed.customer_id == ada.id
    assert placed.total == Money(amount=Decimal("49.90"), currency="USD")
    assert placed.financial_status is FinancialStatus.PAID
    (line,) = placed.line_items
    assert line.product_id in shop.state.products and line.total == placed.total
    pending = store.get(Order, platform, shop.state.shop, second.id)
    assert pending is not None and pending.financial_status is FinancialStatus.PENDING
    assert pending.line_items[0].quantity == 2
    assert pending.line_items[0].unit_price.amount == Decimal("6.25")
    store.close()


def test_the_shortcuts_fill_what_a_platform_would_and_refuse_nonsense() -> None:
    state = generate_shop(
        platform="shopify",
        shop="a.myshopify.com",
        seed=2,
        customers=3,
        orders=4,
        products=2,
        currency="EUR",
        end=END,
    )
    ada = add_customer(state, "ada@example.com", consent="subscribed")
    assert ada.consent.email.state is ConsentState.SUBSCRIBED
    assert ada.created_at.tzinfo is not None and ada.id in state.customers
    at = END - dt.timedelta(days=30)
    order = add_order(state, ada, "10", at=at, product=next(iter(state.products)))
    assert order.created_at == at and order.paid_at == at and order.currency == "EUR"
    assert order.email == "ada@example.com" and order.subtotal == order.total
    assert state.customers[ada.id].orders_count == 1  # as on the platforms
    guest = add_order(state, None, "5.00", email="guest@example.com")
    assert guest.customer_id is None and guest.email == "guest@example.com"
    # the full form still works: a model or fields
    assert state.add_customer(email="b@example.com").email == "b@example.com"
    with pytest.raises(ValueError, match="amount"):
        add_order(state, ada, "-3")
    with pytest.raises(ValueError, match="amount"):
        add_order(state, ada, 1.1)  # type: ignore[arg-type]  # money is never a float
    with pytest.raises(KeyError, match="customer"):
        add_order(state, "no-such-customer", "5")
    with pytest.raises(KeyError, match="product"):
        add_order(state, ada, "5", product="nope")


def _docs_block(heading: str) -> str:
    """The Python block under ``heading`` in docs/emulators.md."""
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "emulators.md").read_text()
    section = page.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_one_line_example_of_the_docs_runs() -> None:
    namespace: dict[str, object] = {"emulate": emulate}
    exec(_docs_block("A customer or an order in one line"), namespace)
    ada = namespace["ada"]
    assert isinstance(ada, Customer)
    shop = namespace["shop"]
    orders = [o for o in shop.state.orders.values() if o.customer_id == ada.id]  # type: ignore[attr-defined]
    assert sorted(o.total.amount for o in orders) == [
        Decimal("12.50"),
        Decimal(20),
        Decimal("49.90"),
    ]


def test_the_write_log_example_of_the_docs_shows_what_apply_wrote(
    capsys: pytest.CaptureFixture[str],
) -> None:
    namespace: dict[str, object] = {}
    exec(_docs_block("What shopsync wrote: the emulator's write log"), namespace)
    shop = namespace["shop"]
    emulator = shop.emulator  # type: ignore[attr-defined]
    assert emulator.writes["customer_updated"] > 0 and emulator.customer_meta
    balances = [m["_loyalty_points_balance"] for m in emulator.customer_meta.values()]
    assert all(str(b).isdigit() for b in balances)
    printed = capsys.readouterr().out
    assert "customer_updated" in printed
