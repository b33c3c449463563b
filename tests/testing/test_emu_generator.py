"""The generator: deterministic, and shaped like a real shop."""

from __future__ import annotations

import collections
import datetime as dt
import itertools
from decimal import Decimal

import pytest

from shopsync.models import ConsentState, FinancialStatus, FulfillmentStatus
from shopsync.testing import ShopState, generate_shop

END = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)


def shop(seed: int = 1, **kw: object) -> ShopState:
    args: dict[str, object] = {"customers": 400, "orders": 3000, "end": END, **kw}
    return generate_shop(platform="shopify", shop="gen.myshopify.com", seed=seed, **args)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def big() -> ShopState:
    return shop(seed=11, customers=1000, orders=8000, products=80)


def test_same_seed_same_state() -> None:
    a, b = shop(seed=5), shop(seed=5)
    assert a == b
    assert list(a.orders) == list(b.orders)
    assert a.orders == b.orders and a.customers == b.customers


def test_different_seed_different_state() -> None:
    a, b = shop(seed=5), shop(seed=6)
    assert a != b
    assert [o.total for o in a.orders.values()] != [o.total for o in b.orders.values()]


def test_exact_counts_numeric_ids_and_window(big: ShopState) -> None:
    assert len(big.customers) == 1000 and len(big.orders) == 8000
    assert len(big.products) + sum(1 for k in big.deleted if k[0] == "products") == 80
    for record in (*big.customers.values(), *big.orders.values(), *big.products.values()):
        assert record.id.isdigit()
        assert record.platform == "shopify" and record.shop == "gen.myshopify.com"
        assert END - dt.timedelta(days=3 * 366) <= record.created_at <= record.updated_at < END


@pytest.mark.parametrize(
    ("platform", "currency"),
    [("shopify", "USD"), ("woocommerce", "JPY"), ("shopify", "KWD"), ("woocommerce", "EUR")],
)
def test_every_record_is_a_valid_model(platform: str, currency: str) -> None:
    """Orders are built unvalidated for speed, so check they survive validation unchanged."""
    state = generate_shop(
        platform=platform,
        shop="v.example",
        seed=2,
        customers=200,
        orders=1200,
        currency=currency,
        end=END,
    )
    for record in (*state.customers.values(), *state.orders.values(), *state.products.values()):
        again = type(record).model_validate(record.model_dump())
        assert again == record
        assert again.model_dump_json() == record.model_dump_json()
    assert {o.currency for o in state.orders.values()} == {currency}


def test_one_time_buyers_and_regulars(big: ShopState) -> None:
    per_customer = collections.Counter(o.customer_id for o in big.orders.values() if o.customer_id)
    one_time = sum(1 for n in per_customer.values() if n == 1) / len(per_customer)
    assert 0.5 <= one_time <= 0.7
    assert max(per_customer.values()) >= 10  # some real regulars
    never = [c for c in big.customers.values() if c.id not in per_customer]
    assert never and all(c.orders_count == 0 for c in never)
    for cid, n in per_customer.items():
        assert big.customers[cid].orders_count == n


def test_regulars_have_their_own_rhythm(big: ShopState) -> None:
    times = collections.defaultdict(list)
    for o in big.orders.values():
        if o.customer_id:
            times[o.customer_id].append(o.created_at)
    spreads = []
    for dates in times.values():
        if len(dates) >= 6:
            dates.sort()
            gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(dates)]
            mean = sum(gaps) / len(gaps)
            spreads.append(mean)
    assert len(spreads) > 20
    spreads.sort()
    assert spreads[-1] > 3 * spreads[0]  # customers differ in how often they buy


def test_guests_refunds_cancellations(big: ShopState) -> None:
    orders = list(big.orders.values())
    guests = [o for o in orders if o.customer_id is None]
    assert 0.12 <= len(guests) / len(orders) <= 0.18
    assert all(o.email for o in guests)
    refunded = [o for o in orders if o.refunds and o.cancelled_at is None]
    assert 0.03 <= len(refunded) / len(orders) <= 0.07
    statuses = {o.financial_status for o in refunded}
    assert {FinancialStatus.REFUNDED, FinancialStatus.PARTIALLY_REFUNDED} <= statuses
    for o in refunded:
        assert o.total_refunded.amount == sum(r.amount.amount for r in o.refunds)
    cancelled = [o for o in orders if o.cancelled_at is not None]
    assert 0.01 <= len(cancelled) / len(orders) <= 0.03
    assert all(o.fulfillment_status is FulfillmentStatus.UNFULFILLED for o in cancelled)


def test_fulfilments_discounts_and_products(big: ShopState) -> None:
    orders = list(big.orders.values())
    shipped = [f for o in orders for f in o.fulfillments]
    assert len(shipped) > 0.9 * len(orders)
    assert all(f.tracking_numbers and f.tracking_urls and f.tracking_company for f in shipped)
    assert sum(1 for f in shipped if f.delivered_at) > 0.9 * len(shipped)
    assert 0.08 < sum(1 for o in orders if o.discount_codes) / len(orders) < 0.25
    facts = big.product_facts.values()
    assert any(f.usage_days for f in facts) and any(f.warranty_days for f in facts)
    assert set(big.product_facts) == set(big.products)
    for o in orders:
        assert o.subtotal.amount == sum(li.total.amount for li in o.line_items)
        assert o.total.amount == o.subtotal.amount + o.total_shipping.amount + o.total_tax.amount


def test_consent_mix_and_birthdays(big: ShopState) -> None:
    customers = list(big.customers.values())
    email = collections.Counter(c.consent.email.state for c in customers)
    sms = collections.Counter(c.consent.sms.state for c in customers)
    for state in (
        ConsentState.SUBSCRIBED,
        ConsentState.NOT_SUBSCRIBED,
        ConsentState.UNSUBSCRIBED,
        ConsentState.PENDING,
    ):
        assert email[state] > 0.02 * len(customers)
    assert 0.3 < email[ConsentState.SUBSCRIBED] / len(customers) < 0.55
    assert sms[ConsentState.SUBSCRIBED] > 0 and sms[ConsentState.UNKNOWN] > 0.5 * len(customers)
    with_birthday = sum(1 for c in customers if c.birthday) / len(customers)
    assert 0.2 < with_birthday < 0.4
    assert len({c.email for c in customers}) == len(customers)


def test_seasonality_peaks_in_november_and_december(big: ShopState) -> None:
    per_month = collections.Counter(o.created_at.month for o in big.orders.values())
    peak = (per_month[11] + per_month[12]) / 2
    rest = sum(per_month[m] for m in range(1, 11)) / 10
    assert peak > 1.4 * rest


def test_end_defaults_to_today_midnight_utc() -> None:
    state = generate_shop(platform="shopify", shop="s", customers=5, orders=20)
    today = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    assert max(o.updated_at for o in state.orders.values()) < today + dt.timedelta(days=1)


def test_edge_sizes() -> None:
    only_guests = shop(customers=0, orders=30)
    assert all(o.customer_id is None for o in only_guests.orders.values())
    empty = shop(customers=10, orders=0)
    assert not empty.orders and len(empty.customers) == 10
    with pytest.raises(ValueError, match="timezone-aware"):
        shop(end=dt.datetime(2025, 1, 1))
    tiny = shop(customers=3, orders=4, products=1)
    assert len(tiny.orders) == 4 and Decimal(0) < next(iter(tiny.orders.values())).total.amount
