from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from shopsync import quarantine
from shopsync.adapter import Rejected
from shopsync.models import Order
from shopsync.store import Store
from tests.fakes import installed
from tests.test_models import order

# A platform whose mapping "gets fixed": it refuses totals of "abc" until FIXED is set.
TOY = """
import json
from shopsync.errors import InvalidRecordError
from shopsync.models import Order

FIXED = False

class ToyAdapter:
    @staticmethod
    def map_record(resource, raw, shop):
        doc = json.loads(raw)
        if doc["total"]["amount"] == "abc":
            if not FIXED:
                raise InvalidRecordError("not a decimal", raw=raw, path="total")
            doc["total"]["amount"] = "10.00"
        return Order.model_validate(doc)
"""
SHOP = "acme.myshopify.com"


@pytest.fixture(autouse=True)
def toy(tmp_path: Path) -> Iterator[None]:
    with installed(
        tmp_path, "shopsync_qtoy", TOY, {"shopsync.adapters": {"toy": "shopsync_qtoy:ToyAdapter"}}
    ):
        yield


def broken(order_id: str) -> Rejected:
    doc = order(platform="toy", id=order_id).model_dump(mode="json")
    doc["total"]["amount"] = "abc"
    raw = json.dumps(doc)
    return Rejected("orders", order_id, raw, "total: not a decimal")


def test_retry_keeps_what_still_fails_and_stores_what_maps(store: Store) -> None:
    store.quarantine("toy", SHOP, [broken("1"), broken("2")])
    assert quarantine.retry(store) == quarantine.RetryResult(fixed=0, still_failing=2)
    assert [q.times_seen for q in store.quarantined()] == [2, 2]

    import shopsync_qtoy  # type: ignore[import-not-found]

    shopsync_qtoy.FIXED = True
    first = store.quarantined()[0].id
    assert quarantine.retry(store, ids=[first]) == quarantine.RetryResult(fixed=1, still_failing=0)
    assert [q.record_id for q in store.quarantined()] == ["2"]
    assert quarantine.retry(store, platform="toy").fixed == 1
    assert store.quarantined() == []
    assert store.count(Order, "toy", SHOP) == 2
    assert len(store.quarantined(include_resolved=True)) == 2
