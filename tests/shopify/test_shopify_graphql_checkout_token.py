"""An order synced over GraphQL completes the checkout it was placed from, as an order
webhook does: since Admin API 2026-07 the GraphQL ``Order`` carries ``checkoutToken`` and
``cartToken`` (https://shopify.dev/changelog/new-checkouttoken-field-added-to-the-order-object,
https://shopify.dev/changelog/new-field-carttoken-added-to-the-order-graphql-admin-api), the
REST ``checkout_token``/``cart_token``. Read by paging, by a bulk operation on the columnar
path and on the models' path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import shopsync
from shopsync.store.checkout_recovery import recovered
from shopsync.store.checkout_rows import read_checkouts
from tests.apply.test_abandoned_e2e import (
    END,
    POLICY,
    WITH_CHECKOUTS,
    H,
    _emulated,
    _order,
    _started,
)
from tests.sync.emulated import connect, emulated

PATHS = {
    "paging": {"bulk_threshold": None},
    "bulk rows": {"bulk_threshold": 0},
    "bulk models": {"bulk_threshold": 0, "fast_ingest": False},
}


def _reminders(store: shopsync.Store, kid: str) -> list[Any]:
    found = shopsync.plan(store, POLICY, as_of=END)
    return [a for a in found if getattr(a, "checkout_id", None) == kid]


@pytest.mark.parametrize("path", sorted(PATHS))
def test_an_order_synced_over_graphql_completes_its_checkout_by_token(
    path: str, tmp_path: Path
) -> None:
    store = shopsync.Store(f"sqlite:///{tmp_path / 'sync.db'}")
    with emulated("shopify", seed=5, customers=10, orders=20, products=4, end=END) as shop:
        adapter = connect(shop)
        shopsync.sync(adapter, store)
        people = sorted(shop.state.customers.values(), key=lambda c: c.id)
        ann = next(c for c in people if c.email and c.consent.email.allows_marketing)
        kid = _started(shop, ann, END - 5 * H)
        shopsync.sync(adapter, store, resources=WITH_CHECKOUTS)
        assert len(_reminders(store, kid)) == 1  # abandoned: the first step is due

        # placed from it as a guest: no customer to stop the reminders by, only the tokens
        bought = _order(shop, ann, END - H, paid=True, from_checkout=_emulated(shop, kid).id)
        shop.state.update_order(bought.id, customer_id=None)
        for name, value in PATHS[path].items():
            setattr(adapter, name, value)
        report = shopsync.sync(adapter, store)  # orders only: no checkout page tells it
        assert adapter.read_path["orders"] == path.split()[0]  # type: ignore[attr-defined]
        assert report.resources["orders"].seen >= 1
        (held,) = read_checkouts(store, "shopify", shop.state.shop)
        assert held.completed_at == END - H
        assert recovered(store, "shopify", shop.state.shop, ann.id, kid) == (
            f"checkout {kid} was completed"
        )
        assert _reminders(store, kid) == []
    store.close()
