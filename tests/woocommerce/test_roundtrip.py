"""mapping(render(model)) == model: the central round trip, on generated WooCommerce shops."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from shopsync_woocommerce import _render as render
from shopsync_woocommerce.mapping import customer_from_rest, order_from_rest, product_from_rest

from shopsync.models import Consent, ConsentState, Customer, Money, Order, Product
from shopsync.testing import generate_shop
from shopsync.testing.state import ShopState

BASE = "https://emulated.example"


@pytest.fixture(scope="module", params=[("USD", 11, "-03:00"), ("JPY", 12, "+09:00")])
def shop(request: pytest.FixtureRequest) -> tuple[ShopState, dt.tzinfo]:
    currency, seed, offset = request.param
    hours = int(offset[:3])
    state = generate_shop(
        platform="woocommerce",
        shop="emulated.example",
        seed=seed,
        customers=150,
        orders=700,
        products=25,
        currency=currency,
    )
    return state, dt.timezone(dt.timedelta(hours=hours))


def roundtrip(record: Any, state: ShopState, tz: dt.tzinfo) -> Any:
    if isinstance(record, Order):
        wire = render.render_order(record, tz=tz, base=BASE)
        refunds = render.render_refunds(record, tz=tz, base=BASE) if wire["refunds"] else None
        return order_from_rest(wire, shop=state.shop, refunds=refunds)
    if isinstance(record, Customer):
        return customer_from_rest(render.render_customer(record, tz=tz, base=BASE), shop=state.shop)
    variations = render.render_variations(record, tz=tz, base=BASE) if record.variants else None
    wire = render.render_product(record, tz=tz, base=BASE, currency=state.currency)
    return product_from_rest(wire, shop=state.shop, currency=state.currency, variations=variations)


@pytest.mark.parametrize("resource", ["customers", "orders", "products"])
def test_mapping_of_rendering_is_what_the_store_keeps(
    shop: tuple[ShopState, dt.tzinfo], resource: str
) -> None:
    state, tz = shop
    records = state.records(resource)
    assert records
    for record in records.values():
        assert roundtrip(record, state, tz) == render.woocommerce_view(record)


@pytest.mark.parametrize("resource", ["customers", "orders", "products"])
def test_what_the_store_keeps_is_stable(shop: tuple[ShopState, dt.tzinfo], resource: str) -> None:
    """view(view(m)) == view(m), and for kept models mapping(render(m)) == m exactly."""
    state, tz = shop
    for record in state.records(resource).values():
        kept = render.woocommerce_view(record)
        assert render.woocommerce_view(kept) == kept
        assert roundtrip(kept, state, tz) == kept


def seconds(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(microsecond=0) if value else None


def test_the_loss_is_only_what_the_docstring_lists(shop: tuple[ShopState, dt.tzinfo]) -> None:
    """A generated shop loses sub-second time, customer counters, line product types, the
    None of an undiscounted line and the case of discount codes; nothing else."""
    state, tz = shop
    for order in state.orders.values():
        kept = render.woocommerce_view(order)
        assert kept.financial_status is order.financial_status
        assert kept.cancelled_at == seconds(order.cancelled_at)
        assert kept.discount_codes == tuple(c.lower() for c in order.discount_codes)
        for before, after in zip(order.line_items, kept.line_items, strict=True):
            assert after.product_type is None
            expected = before.total_discount or Money.of(Decimal(0), order.currency)
            assert after.total_discount == expected
            same = (
                "id",
                "product_id",
                "variant_id",
                "sku",
                "title",
                "quantity",
                "unit_price",
                "total",
                "refunded_quantity",
            )
            assert all(getattr(before, f) == getattr(after, f) for f in same)
        same = set(Order.model_fields) - {
            "line_items",
            "discount_codes",
            "fulfillment_status",
            "created_at",
            "updated_at",
            "processed_at",
            "paid_at",
            "cancelled_at",
            "closed_at",
            "refunds",
            "fulfillments",
            # what WooCommerce has no place for, or says its own way (_render's docstring)
            "tax_lines",
            "discount_applications",
            "taxes_included",
            "cancel_reason",
            "total_tip",
            "total_duties",
            "test",
        }
        assert all(getattr(order, f) == getattr(kept, f) for f in same)
        assert kept.paid_at == seconds(order.paid_at)
        assert [r.id for r in kept.refunds] == [r.id for r in order.refunds]
        assert [f.tracking_numbers for f in kept.fulfillments] == [
            f.tracking_numbers for f in order.fulfillments
        ]
    for customer in state.customers.values():
        kept = render.woocommerce_view(customer)
        same = set(Customer.model_fields) - {
            "orders_count",
            "total_spent",
            "created_at",
            "updated_at",
            "consent",
        }
        assert all(getattr(customer, f) == getattr(kept, f) for f in same)
        # WooCommerce core keeps no consent; a plugin keeps what its checkbox can say.
        assert kept.consent == Consent()
        for plugin in ("shopsync", "mailchimp", "constant_contact"):
            with_plugin = render.woocommerce_view(customer, plugin).consent.email
            wire = render.render_customer(customer, tz=tz, base=BASE, consent_plugin=plugin)
            assert customer_from_rest(wire, shop=state.shop).consent.email == with_plugin
            state_kept = customer.consent.email.state
            if plugin == "shopsync" or state_kept is ConsentState.SUBSCRIBED:
                assert with_plugin.state is state_kept
    for product in state.products.values():
        kept = render.woocommerce_view(product)
        same = set(Product.model_fields) - {"created_at", "updated_at"}
        assert all(getattr(product, f) == getattr(kept, f) for f in same)


def test_state_changes_round_trip(shop: tuple[ShopState, dt.tzinfo]) -> None:
    """Orders refunded, fulfilled, cancelled and paid through the change API still map back."""
    state, tz = shop
    orders = sorted(state.orders.values(), key=lambda o: int(o.id))
    open_orders = [o for o in orders if o.cancelled_at is None and not o.refunds]
    changed = [
        state.refund_order(open_orders[0].id, lines={open_orders[0].line_items[0].id: 1}),
        state.cancel_order(open_orders[1].id),
        state.update_order(open_orders[2].id, tags=("gift", "vip"), discount_codes=("SAVE15",)),
    ]
    pending = [o for o in orders if o.paid_at is None and o.cancelled_at is None]
    if pending:
        changed.append(state.pay_order(pending[0].id))
    unshipped = [o for o in orders if not o.fulfillments and o.cancelled_at is None and o.paid_at]
    if unshipped:
        changed.append(
            state.fulfill_order(
                unshipped[0].id,
                tracking_company="UPS",
                tracking_numbers=("1Z1", "1Z2"),
                tracking_urls=("https://u/1", "https://u/2"),
            )
        )
    for order in changed:
        assert roundtrip(order, state, tz) == render.woocommerce_view(order)
