"""An order webhook trimmed by its subscription's ``includeFields`` (Shopify delivers only the
fields named: https://shopify.dev/docs/apps/build/webhooks/customize and
https://shopify.dev/docs/apps/build/webhooks/delivery-structure) or by a proxy may lack the
line items, refunds or fulfilments: the order is replaced whole when stored, so such a
delivery is quarantined with the key's name instead of storing the order without them (a
REST read's ``fields`` is the caller's choice: the mapping itself still takes a record
without them). An order without a customer carries ``"customer": null`` or no ``customer``
key at all: either is stored as it says."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from shopsync.models import Order
from shopsync.store import Store
from tests.shopify.deliveries import deliver

SHOP = "jsmith.myshopify.com"  # the shop the fixture names
T0 = dt.datetime(2026, 11, 1, 12, tzinfo=dt.timezone.utc)
ORDER = Path(__file__).parents[1] / "fixtures" / "shopify" / "ruby-2026-07-order.json"


def _order() -> dict[str, Any]:
    order: dict[str, Any] = json.loads(ORDER.read_text())["order"]
    return order


def _deliver(store: Store, topic: str, payload: dict[str, Any], n: int) -> Any:
    return deliver(store, topic, payload, n, shop=SHOP, t0=T0, shops={SHOP})


@pytest.mark.parametrize("part", ["line_items", "refunds", "fulfillments"])
def test_a_delivery_without_an_order_part_keeps_the_stored_order(tmp_path: Path, part: str) -> None:
    with Store(f"sqlite:///{tmp_path / 'store.db'}") as store:
        order = _order()
        assert _deliver(store, "orders/create", order, 1).status == "applied"
        before = store.get(Order, "shopify", SHOP, str(order["id"]))
        assert isinstance(before, Order) and len(before.line_items) == 3
        assert before.refunds and before.fulfillments and before.customer_id
        later = {k: v for k, v in order.items() if k != part}
        later["updated_at"] = "2026-11-02T10:00:00-05:00"
        result = _deliver(store, "orders/updated", later, 2)
        assert result.quarantined == 1
        after = store.get(Order, "shopify", SHOP, str(order["id"]))
        held = [q.reason for q in store.quarantined()]
    assert after == before
    assert len(held) == 1 and part in held[0]


@pytest.mark.parametrize("shape", ["null", "absent"])
def test_an_order_without_a_customer_is_stored_as_it_says(tmp_path: Path, shape: str) -> None:
    """A guest order, or one whose customer is gone, may carry ``"customer": null`` or no
    ``customer`` key at all (Shopify's answer to a fulfilled order's webhook without one:
    handlers must expect it, a deleted customer leaves it out): either is a real order,
    stored, not quarantined (a quarantined order would never complete its checkout)."""
    with Store(f"sqlite:///{tmp_path / 'store.db'}") as store:
        order = {**_order(), "customer": None}
        if shape == "absent":
            del order["customer"]
        result = _deliver(store, "orders/create", order, 1)
        assert result.status == "applied" and not result.quarantined
        stored = store.get(Order, "shopify", SHOP, str(order["id"]))
    assert isinstance(stored, Order) and stored.customer_id is None
