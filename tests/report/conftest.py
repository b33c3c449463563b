"""A small two-shop store (USD and EUR) and its report, shared by the report tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from shopsync.report import write_report
from shopsync.store import Store
from shopsync.testing.generator import generate_shop

AS_OF = dt.datetime(2025, 6, 15, 9, 30, tzinfo=dt.timezone.utc)
SHOPS = (
    ("shopify", "north <b>&</b> co.myshopify.com", "USD", 31),
    ("woocommerce", "south.example", "EUR", 32),
)


def fill(store: Store) -> Store:
    for platform, shop, currency, seed in SHOPS:
        state = generate_shop(
            platform=platform,
            shop=shop,
            seed=seed,
            customers=150,
            orders=700,
            products=15,
            currency=currency,
            end=AS_OF - dt.timedelta(days=1),
            years=2.0,
        )
        store.upsert([*state.products.values(), *state.customers.values()])
        store.upsert(list(state.orders.values()))
    return store


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of the two generated shops (SQLite), written once per module."""
    folder = tmp_path_factory.mktemp("report")
    store = fill(Store(f"sqlite:///{folder / 'store.db'}"))
    try:
        return write_report(store, folder / "report.html", as_of=AS_OF)
    finally:
        store.close()
