"""The pinned Admin API version is one Shopify serves today, and ``shopsync check`` says when
a configured one is not (https://shopify.dev/docs/api/usage/versioning)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from shopsync_shopify import API_VERSION, ShopifyAdapter
from shopsync_shopify.emulator import DEFAULT_API_VERSION
from shopsync_shopify.versions import supported, version_problem

from shopsync.check import check_access
from shopsync.config import ShopConfig

TODAY = dt.datetime(2026, 12, 2, 12, tzinfo=dt.timezone.utc)


def test_the_pinned_version_is_the_newest_stable_one_on_the_day() -> None:
    assert API_VERSION == DEFAULT_API_VERSION == "2026-10"
    assert supported(API_VERSION, TODAY)
    assert ShopifyAdapter(shop="a.myshopify.com", access_token="t").endpoint.endswith(
        "/admin/api/2026-10/graphql.json"
    )


def test_versions_past_twelve_months_unknown_or_unreleased_are_named() -> None:
    assert supported("2026-01", TODAY) and not supported("2025-10", TODAY)
    assert "no longer supported" in (version_problem("2025-07", TODAY) or "")
    assert "support ended 2026-07-01" in (version_problem("2025-07", TODAY) or "")
    assert "not a stable" in (version_problem("unstable", TODAY) or "")
    assert "not a stable" in (version_problem("2026-05", TODAY) or "")
    assert "not released yet" in (version_problem("2027-01", TODAY) or "")
    assert version_problem("2026-04", TODAY) is None


def _config(shop: Any, **settings: Any) -> ShopConfig:
    return ShopConfig(
        name="main",
        platform="shopify",
        settings={
            "shop": shop.state.shop,
            "base_url": shop.url,
            "access_token": shop.emulator.access_token,
            **settings,
        },
    )


def test_check_fails_a_shop_pinned_to_an_unsupported_version(shopify_shop: Any) -> None:
    shop = shopify_shop(customers=2, orders=2, products=1)
    result = check_access(_config(shop, api_version="2025-07"))
    text = "\n".join(result.lines())
    assert not result.ok
    assert "api_version 2025-07 is no longer supported" in text and '"2026-10"' in text
    good = check_access(_config(shop))
    assert good.ok, good.lines()
    assert "api_version" not in "\n".join(good.lines())


def test_check_says_how_to_get_read_all_orders(shopify_shop: Any) -> None:
    shop = shopify_shop(
        customers=2, orders=2, products=1, scopes="read_customers,read_orders,read_products"
    )
    result = check_access(_config(shop))
    text = "\n".join(result.lines())
    assert "MISSING read_all_orders" in text
    assert "only the orders of the last 60 days" in text and "Access requests" in text
