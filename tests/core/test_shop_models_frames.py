"""The shop-level models on frames built by hand: what they read of the paid orders.

At 10M orders the models' rebuild peaked in :func:`shopsync.core.shop_stats.purchases`
with every paid-order column alive beside it (824 MB of thirteen columns, three read).
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

import shopsync.core.shop_stats as shop_stats
from shopsync.core.policy import Policy
from tests.core.frames_kit import DAY, T0, Shop, purchase_lines


def _shop() -> Shop:
    shop = Shop()
    for n in range(4):
        cid = f"c{n}"
        shop.customer(cid)
        for k in range(3):  # three orders each, 20 days apart, two products
            lines: list[tuple[str | None, Any, str]] = [("beans", 1, "12"), ("tea", 2, "8")]
            shop.order(f"o{n}-{k}", cid, T0 + (20 * k + n) * DAY, lines, ptype="Coffee")
    return shop


@pytest.mark.parametrize("many", [False, True], ids=["python", "query"])
def test_the_models_read_three_columns_of_the_paid_orders(
    monkeypatch: pytest.MonkeyPatch, many: bool
) -> None:
    frames = _shop().frames(T0 + 90 * DAY)
    if many:  # past FEW_ROWS: paid_orders and purchases take their Polars queries
        monkeypatch.setattr("shopsync.core._data.FEW_ROWS", -1)
        monkeypatch.setattr(shop_stats, "FEW_ROWS", -1)
    seen: list[list[str]] = []
    real = shop_stats.purchases

    def spied(paid: pl.DataFrame, lines: pl.DataFrame, **kw: Any) -> pl.DataFrame:
        seen.append(paid.columns)
        return real(paid, lines, **kw)

    monkeypatch.setattr(shop_stats, "purchases", spied)
    policy = Policy.from_dict({"replenishment": {"learn": True}})
    models = shop_stats.shop_models(frames, policy)
    assert seen == [["id", "customer_id", "created_at"]]
    assert models.customers_with_orders == 4
    assert models.repeat_customers == 4
    assert models.second_gap_median_days == 20.0


def test_an_order_id_twice_counts_in_the_query_as_in_python(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The query groups by the order's row (integers): two rows of one id and customer
    (frames built by hand; the store's key forbids it) still make one group, as the text keys
    and :func:`_few_purchases` make, and a guest's order (no customer) keeps its lines."""
    text, num = pl.String, pl.Int64
    paid = pl.DataFrame(
        [("o1", "c1", 1), ("o1", "c1", 1), ("o2", "c2", 2), ("o3", None, 3), ("o3", None, 3)],
        schema={"id": text, "customer_id": text, "created_at": num},
        orient="row",
    )
    lines = purchase_lines(
        [
            ("o1", "p1", None, "Coffee", 10_000, 5, 0),
            ("o2", "p1", None, None, 10_000, 5, 2_500),
            ("o3", "p2", "S2", None, 5_000, 5, 0),
            ("o2", None, None, None, 10_000, 5, 0),
        ]
    )
    few = shop_stats.purchases(paid, lines, amounts=False)
    monkeypatch.setattr(shop_stats, "FEW_ROWS", -1)
    by_query = shop_stats.purchases(paid, lines, amounts=False)
    key = ["customer_id", "order_id", "product_id"]
    assert by_query.schema == few.schema
    assert by_query.sort(key, nulls_last=True).equals(few.sort(key, nulls_last=True))
    assert by_query.sort(key, nulls_last=True)["kept_units"].to_list() == [20_000, 7_500, 10_000]
