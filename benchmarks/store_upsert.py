"""Upsert throughput of the store: orders with 3 line items, one transaction per 250-order page.

    python benchmarks/store_upsert.py [--orders 20000] [--postgres URL]

Three passes per engine: first insert, the same pages again (unchanged: the updated_at guard
makes them cheap), and every order with a newer updated_at (replaced with its children).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
from decimal import Decimal

from shopsync.models import LineItem, Money, Order
from shopsync.store import Store

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
PAGE = 250


def usd(cents: int) -> Money:
    return Money(amount=Decimal(cents).scaleb(-2), currency="USD")


def make_orders(n: int, bump: int = 0) -> list[Order]:
    orders = []
    for i in range(n):
        lines = tuple(
            LineItem(
                id=f"{i}-{k}",
                product_id=str(100 + k),
                variant_id=str(1000 + k),
                sku=f"SKU-{k}",
                title=f"Product {k}",
                quantity=1 + k,
                unit_price=usd(500 + k),
                total=usd((500 + k) * (1 + k)),
            )
            for k in range(3)
        )
        subtotal = sum((li.total.amount for li in lines), Decimal(0))
        orders.append(
            Order(
                platform="shopify",
                shop="bench.myshopify.com",
                id=str(i),
                name=f"#{1000 + i}",
                customer_id=str(i % 5000),
                email=f"c{i % 5000}@example.com",
                created_at=T0 + dt.timedelta(minutes=i),
                updated_at=T0 + dt.timedelta(minutes=i, seconds=bump),
                financial_status="paid",
                currency="USD",
                subtotal=Money(amount=subtotal, currency="USD"),
                total_discounts=usd(0),
                total_shipping=usd(500),
                total_tax=usd(0),
                total=Money(amount=subtotal + 5, currency="USD"),
                total_refunded=usd(0),
                line_items=lines,
            )
        )
    return orders


def run(store: Store, orders: list[Order]) -> float:
    start = time.perf_counter()
    for k in range(0, len(orders), PAGE):
        store.upsert(orders[k : k + PAGE])
    return len(orders) / (time.perf_counter() - start)


def bench(label: str, url: str, n: int) -> None:
    store = Store(url)
    fresh, newer = make_orders(n), make_orders(n, bump=30)
    rates = {
        "insert": run(store, fresh),
        "unchanged": run(store, fresh),
        "replace": run(store, newer),
    }
    store.close()
    print(f"{label:10} " + "  ".join(f"{k} {v:8,.0f} orders/s" for k, v in rates.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--postgres", default=os.environ.get("SHOPSYNC_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    print(f"{args.orders:,} orders x 3 line items, pages of {PAGE}, one transaction per page")
    with tempfile.TemporaryDirectory() as tmp:
        bench("sqlite", f"sqlite:///{tmp}/bench.db", args.orders)
    if args.postgres:  # a schema of this run's own: two runs at once never share one
        from _pg_bench import schema

        with schema(args.postgres) as url:
            bench("postgres", url, args.orders)


if __name__ == "__main__":
    main()
