"""The whole-shop queries on integer keys (issue 18: the candidates' memory at 10M orders).

Replenishment and review requests group and join their purchases on integers standing for
text keys (:mod:`shopsync.core._codes`); on hand-built frames, each query (every "few rows"
cut-off at -1) must give what the texts gave: nulls apart from every text, a blank SKU or
type the same as none, and the due dates exact at their bounds.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest

from shopsync.core import _codes, replenish, review_requests
from shopsync.core import shop_stats as shop_stats_module
from shopsync.core._data import paid_orders
from shopsync.core.planner import PAID_COLUMNS
from shopsync.core.shop_stats import purchases, shop_stats
from tests.core.frames_kit import DAY, T0, Shop, policy, purchase_lines

US = dt.timedelta(microseconds=1)
COFFEE = {"usage_days_by_type": {"Coffee": 21}}


def test_codes_are_equal_for_equal_texts_ordered_as_them_and_nulls_apart() -> None:
    column = pl.Series("c", ["b", "a", None, "b", "", "c"])
    found, values = _codes.codes(column)
    assert values.to_list() == ["", "a", "b", "c"]
    assert found.to_list() == [2, 1, 4, 2, 0, 3]  # null: len(values), after every text
    blank, kept = _codes.codes(column, blank=True)
    assert kept.to_list() == ["a", "b", "c"]
    assert blank.to_list() == [1, 0, 3, 1, 3, 2]  # "" and null one code


def _groups(key: pl.Series) -> list[list[int]]:
    """The rows ``key`` puts together, as lists of positions."""
    frame = key.to_frame("k").with_row_index("i")
    found = frame.group_by("k").agg(pl.col("i").sort()).sort(pl.col("i").list.first())
    return [list(g) for g in found["i"].to_list()]


@pytest.mark.parametrize("limit", [2**63, 5])
def test_a_joint_code_groups_rows_as_their_texts_do(
    limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(null, p) and (a, null) apart (a mix by the values' count alone, nulls left out, gave
    both one code); at a low limit the keys so far are ranked down first."""
    monkeypatch.setattr(_codes, "_LIMIT", limit)
    customers = pl.Series("customer_id", [None, "a", "a", None, "b", "a", "b"])
    products = pl.Series("product_id", ["p", None, "q", "p", "", "q", None])
    key = _codes.joint_code(customers, products)
    assert _groups(key) == [[0, 3], [1], [2, 5], [4], [6]]
    blank = _codes.joint_code(customers, products, blank=["product_id"])
    assert _groups(blank) == [[0, 3], [1], [2, 5], [4, 6]]


def _candidates(shop: Shop, at: dt.datetime, rules: Any) -> pl.DataFrame:
    frames = shop.frames(at)
    paid = paid_orders(frames, columns=PAID_COLUMNS)
    stats = shop_stats(frames, rules)
    bought = purchases(paid, frames.lines, amounts=False)
    return replenish.replenishment_candidates(frames, paid, stats, rules, bought).frame


def _by_query(shop: Shop, at: dt.datetime, rules: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    with monkeypatch.context() as patched:
        patched.setattr(replenish, "FEW_ROWS", -1)
        return _candidates(shop, at, rules)


def test_a_blank_and_a_missing_sku_make_one_reminder_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two customers' last purchases of one product, one line's SKU "" and the other's none:
    one (product, "", type) period each (the text join matched each to both, two reminders
    under one key)."""
    shop = Shop().customer("c1").customer("c2")
    shop.order("o1", "c1", T0, [("beans", 1, "12")], ptype="Coffee", sku="")
    shop.order("o2", "c2", T0, [("beans", 1, "12")], ptype="Coffee", sku=None)
    found = _by_query(shop, T0 + 16 * DAY, policy(replenishment=COFFEE), monkeypatch)
    assert found["key"].to_list() == [
        "replenishment:acme:c1:beans:o1",
        "replenishment:acme:c2:beans:o2",
    ]
    assert found["sku"].to_list() == ["", ""] and found["period"].to_list() == [21.0, 21.0]


@pytest.mark.parametrize(
    ("at", "due"),
    [
        (T0 + 16 * DAY, True),  # 21 - 5 days: due from this microsecond
        (T0 + 16 * DAY - US, False),
        (T0 + 35 * DAY, True),  # the run-out + 14 days: the last moment
        (T0 + 35 * DAY + US, False),
    ],
)
def test_the_query_s_reminders_are_exact_at_their_bounds(
    at: dt.datetime, due: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The due dates are estimated in floats over every purchase, then computed exactly for the
    rows near: a day wider each way, so no row at a bound is lost or gained."""
    shop = Shop().customer("c1").customer("c2")
    shop.order("o1", "c1", T0, [("beans", 1, "12")], ptype="Coffee")
    shop.order("o2", "c2", T0 - 400 * DAY, [("beans", 1, "12")], ptype="Coffee")  # long gone
    rules = policy(replenishment=COFFEE)
    found = _by_query(shop, at, rules, monkeypatch)
    assert found["key"].to_list() == (["replenishment:acme:c1:beans:o1"] if due else [])
    assert found.equals(_candidates(shop, at, rules))  # the few rows' path in Python


def test_review_requests_by_query_of_an_order_id_twice_follow_the_orders_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Frames built by hand (the store's key forbids it): an order id of two customers is one
    order to the query, asked of its first row's customer about every line of the id; the
    orders' shipments are grouped and joined by the streaming engine, which keeps the orders'
    order only when told (each join keeps its left's)."""
    shop = Shop().customer("c1").customer("c2")
    shop.order("o1", "c1", T0, [("p1", 1, "12"), ("p2", 1, "30")], fulfilled=T0 + DAY)
    shop.order("o1", "c2", T0, [("p3", 1, "20")], fulfilled=T0 + DAY)
    shop.order("o2", "c2", T0 + DAY, [("p3", 1, "20")], fulfilled=T0 + 2 * DAY)
    monkeypatch.setattr(review_requests, "FEW_ROWS", -1)
    found = review_requests.review_candidates(
        shop.frames(T0 + 20 * DAY), policy(reviews={"max_products": 5})
    ).frame
    assert found.select("customer_id", "order_id", "ask").rows() == [
        ("c1", "o1", ["p2", "p3", "p1"]),
        ("c2", "o2", ["p3"]),
    ]


def test_purchases_by_query_keep_every_order_and_product_apart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The query groups by one integer, the order's row times the products seen plus the
    product's index: each (order, product) of a grid is its own purchase, as in Python."""
    text, num = pl.String, pl.Int64
    paid = pl.DataFrame(
        [(f"o{i}", f"c{i % 2}", i) for i in range(3)],
        schema={"id": text, "customer_id": text, "created_at": num},
        orient="row",
    )
    lines = purchase_lines(
        [
            (f"o{i}", f"p{j}", None, None, (3 * i + j + 1) * 10_000, 5, 0)
            for i in range(3)
            for j in range(3)
        ]
    )
    few = shop_stats_module.purchases(paid, lines, amounts=False)
    monkeypatch.setattr(shop_stats_module, "FEW_ROWS", -1)
    by_query = shop_stats_module.purchases(paid, lines, amounts=False)
    key = ["order_id", "product_id"]
    assert by_query.sort(key).equals(few.sort(key))
    assert by_query.sort(key)["kept_units"].to_list() == [n * 10_000 for n in range(1, 10)]


KETTLE = {"days_by_type": {"Kettle": 60}}


def _notices(shop: Shop, at: dt.datetime, monkeypatch: pytest.MonkeyPatch) -> pl.DataFrame:
    rules = policy(warranty=KETTLE)
    frames = shop.frames(at)
    paid = paid_orders(frames, columns=PAID_COLUMNS)
    stats = shop_stats(frames, rules)
    with monkeypatch.context() as patched:
        patched.setattr(replenish, "FEW_ROWS", -1)
        return replenish.warranty_candidates(frames, paid, stats, rules).frame


def test_warranty_notices_by_query_one_each_for_a_blank_and_a_missing_sku(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shop = Shop().customer("c1").customer("c2")
    shop.order("o1", "c1", T0, [("kettle", 1, "50")], ptype="Kettle", sku="")
    shop.order("o2", "c2", T0, [("kettle", 1, "50")], ptype="Kettle", sku=None)
    found = _notices(shop, T0 + 40 * DAY, monkeypatch)
    assert found["key"].to_list() == [
        "warranty_notice:acme:o1:kettle",
        "warranty_notice:acme:o2:kettle",
    ]


@pytest.mark.parametrize(
    ("at", "due"),
    [
        (T0 + 30 * DAY, True),  # 60 - 30 days: due from this microsecond
        (T0 + 30 * DAY - US, False),
        (T0 + 60 * DAY - US, True),  # the warranty's last microsecond
        (T0 + 60 * DAY, False),
    ],
)
def test_warranty_notices_by_query_are_exact_at_their_bounds(
    at: dt.datetime, due: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = Shop().customer("c1").customer("c2")
    shop.order("o1", "c1", T0, [("kettle", 1, "50")], ptype="Kettle")
    shop.order("o2", "c2", T0 - 400 * DAY, [("kettle", 1, "50")], ptype="Kettle")  # long gone
    found = _notices(shop, at, monkeypatch)
    assert found["key"].to_list() == (["warranty_notice:acme:o1:kettle"] if due else [])
