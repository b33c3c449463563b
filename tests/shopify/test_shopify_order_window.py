"""Without ``read_all_orders`` Shopify serves only the orders of the last 60 days, silently
(https://shopify.dev/docs/api/usage/access-scopes, "read_all_orders": "Access to all orders
rather than the default window of 60 days worth of orders"). The emulator models it, a sync
says so, and the CLI summary prints it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import shopsync
from shopsync.cli import app
from shopsync.store import Store

from .test_shopify_emulator import ORDERS_PAGE, _gql

LIMITED = "read_customers,read_orders,read_products,write_customers,write_discounts"


def _recent(shop: Any) -> set[str]:
    cutoff = shop.state.clock() - dt.timedelta(days=60)
    return {o.id for o in shop.state.orders.values() if o.created_at >= cutoff}


def test_the_emulator_hides_older_orders_without_the_scope(shopify_shop: Any) -> None:
    limited = shopify_shop(orders=120, scopes=LIMITED)
    recent = _recent(limited)
    assert 0 < len(recent) < 120
    body = _gql(limited, ORDERS_PAGE, {"first": 250}).json()
    seen = {e["node"]["id"].rsplit("/", 1)[-1] for e in body["data"]["orders"]["edges"]}
    assert seen == recent
    count = _gql(limited, "{ ordersCount(limit: null) { count } }").json()["data"]
    assert count["ordersCount"]["count"] == len(recent)
    full = shopify_shop(orders=120)
    body = _gql(full, ORDERS_PAGE, {"first": 250}).json()
    assert len(body["data"]["orders"]["edges"]) == 120


def test_a_sync_reports_the_window(shopify_shop: Any, tmp_path: Path) -> None:
    shop = shopify_shop(orders=120, scopes=LIMITED)
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    adapter = shopsync.connect("shopify", **shop.settings, bulk_threshold=None)
    report = shopsync.sync(adapter, store)
    assert report.resources["orders"].seen == len(_recent(shop))
    assert report.orders_visible_since is not None
    assert report.warnings and "read_all_orders" in report.warnings[0]
    assert "60 days" in report.warnings[0]
    full = shopify_shop(orders=20)
    report = shopsync.sync(shopsync.connect("shopify", **full.settings), store)
    assert report.orders_visible_since is None and not report.warnings


def test_the_cli_summary_says_it(
    shopify_shop: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = shopify_shop(orders=40, scopes=LIMITED)
    config = tmp_path / "shopsync.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "shop.db"}"\n'
        f'[shops.main]\nplatform = "shopify"\nshop = "{shop.state.shop}"\n'
        f'base_url = "{shop.url}"\naccess_token = "env:TEST_WINDOW_TOKEN"\n'
    )
    monkeypatch.setenv("TEST_WINDOW_TOKEN", str(shop.settings["access_token"]))
    result = CliRunner().invoke(app, ["--config", str(config), "sync"])
    assert result.exit_code == 0, result.output
    assert "read_all_orders" in result.output and "60 days" in result.output
