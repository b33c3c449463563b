"""An order whose ``checkoutToken`` cannot name any checkout (a lone UTF-16 surrogate, which
JSON's ``\\ud800`` escape allows and Python's json reads) is still an order: the sync stores
it on every read path, and the token completes nothing, rather than the key's hashing
(UTF-8) failing the whole page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import shopsync_shopify._render as render

import shopsync
from shopsync.models import Order
from tests.shopify.test_shopify_graphql_checkout_token import PATHS
from tests.sync.emulated import connect, emulated


@pytest.mark.parametrize("path", sorted(PATHS))
def test_an_order_with_an_unencodable_checkout_token_is_stored(
    path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def tokens(order: Any, state: Any) -> tuple[str | None, str | None]:
        return "\ud800odd", "cart-\udfff"

    monkeypatch.setattr(render, "_checkout_tokens", tokens)
    store = shopsync.Store(f"sqlite:///{tmp_path / 'sync.db'}")
    with emulated("shopify", seed=5, customers=5, orders=12, products=3) as shop:
        adapter = connect(shop)
        for name, value in PATHS[path].items():
            setattr(adapter, name, value)
        report = shopsync.sync(adapter, store, resources=["customers", "products", "orders"])
        assert report.total("quarantined") == 0
        held = list(store.iter(Order, "shopify", shop.state.shop))
        assert len(held) == len(shop.state.orders)
    store.close()
