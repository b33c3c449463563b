"""The planner's shortcuts over repeat purchases give what the plain rules give.

Review requests' once-per-period walk and replenishment's last purchase skip the purchases
alone in their (customer, product) group; on random frames that mix lone and repeat
purchases (and null keys) they must agree with the rule written the plain way. And the
programs at those shortcuts' edges: last purchases or orders at one moment, a newer purchase
returned in full, a line without a product.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from shopsync._instants import to_micros
from shopsync.core import (
    _candidates,
    _data,
    loyalty_history,
    planner,
    replenish,
    review_requests,
    winback,
)
from shopsync.core import shop_stats as shop_stats_module
from shopsync.core._candidates import COMMON, Candidates, key_column, short_key, short_keys
from shopsync.core._data import Frames, paid_orders
from shopsync.core._replenish_rows import last_mask, last_purchases
from shopsync.core._review_rows import _Line as Line
from shopsync.core._review_rows import _once_per_period as few_walk
from shopsync.core._review_rows import months_before, months_before_value
from shopsync.core.actions import Action, Replenish, WarrantyNotice, WinBack
from shopsync.core.features import counts_as_purchase, is_purchase, paid_value
from shopsync.core.loyalty import from_micros
from shopsync.core.loyalty_records import source_key
from shopsync.core.planner import plan_frames
from shopsync.core.review_requests import _once_per_period, review_candidates
from shopsync.core.shop_stats import shop_stats
from tests.core.frames_kit import DAY, DAY_US, T0, Shop, frame, policy
from tests.core.polars_queries import count_queries

PAIR = ["customer_id", "product_id"]


def _plain_walk(lines: pl.DataFrame) -> pl.DataFrame:
    """Keep the first purchase of a group, then each one due after the last kept one's period."""
    keep: list[bool] = []
    last: dict[tuple[str | None, str | None], int] = {}
    for row in lines.iter_rows(named=True):
        group = (row["customer_id"], row["product_id"])
        kept_at = last.get(group)
        ok = kept_at is None or kept_at <= row["period_start"]
        keep.append(ok)
        if ok:
            last[group] = row["due"]
    return lines.filter(pl.Series(keep, dtype=pl.Boolean))


def _frame(rng: random.Random, rows: int) -> pl.DataFrame:
    return pl.DataFrame(
        [
            (
                rng.choice(["a", "b", "c", None]),
                rng.choice(["p", "q", "r", "s", None]),
                rng.randint(0, 60),
                f"o{rng.randint(0, 9)}",
            )
            for _ in range(rows)
        ],
        schema={
            "customer_id": pl.String,
            "product_id": pl.String,
            "due": pl.Int64,
            "order_id": pl.String,
        },
        orient="row",
    )


@pytest.mark.parametrize("seed", range(40))
def test_the_walk_over_repeats_only_matches_a_plain_walk(seed: int) -> None:
    rng = random.Random(seed)
    period = rng.randint(1, 25)
    lines = (
        _frame(rng, rng.randint(0, 50))
        .sort([*PAIR, "due", "order_id"])
        .with_columns((pl.col("due") - period).alias("period_start"))
    )
    assert _once_per_period(lines).equals(_plain_walk(lines))
    # and the few-rows path's walk, over the same lines as Python rows
    rows = [Line(c, p, d, o, None, False, s) for c, p, d, o, s in lines.iter_rows()]
    walked = [
        (x.customer_id, x.product_id, x.due, x.order_id, x.period_start) for x in few_walk(rows)
    ]
    assert walked == _plain_walk(lines).rows()


@pytest.mark.parametrize("seed", range(4))
def test_the_walk_of_many_lines_by_a_query_matches_a_plain_walk(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above ``FEW_ROWS`` lines the runs are found by a query, below in Python: both agree."""
    monkeypatch.setattr(review_requests, "FEW_ROWS", 0)
    test_the_walk_over_repeats_only_matches_a_plain_walk(seed)


@pytest.mark.parametrize(
    "at",
    [
        dt.datetime(2024, 3, 31, 23, 59, 59, 999999, tzinfo=dt.timezone.utc),
        dt.datetime(2024, 2, 29, 12, tzinfo=dt.timezone.utc),
        dt.datetime(2023, 5, 31, tzinfo=dt.timezone.utc),
        dt.datetime(1969, 12, 31, 23, 0, 0, 1, tzinfo=dt.timezone.utc),
        dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc),
    ],
)
@pytest.mark.parametrize("months", [0, 1, 3, 12, 13, 25])
def test_a_moments_months_before_in_python_is_polars_offset(at: dt.datetime, months: int) -> None:
    moment = to_micros(at)
    by_polars = pl.DataFrame({"t": [moment]}).select(months_before("t", months)).item()
    assert months_before_value(moment, months) == by_polars


@pytest.mark.parametrize("seed", range(40))
def test_the_last_purchase_over_repeats_only_matches_two_windows(seed: int) -> None:
    rng = random.Random(seed)
    bought = (
        _frame(rng, rng.randint(0, 50))
        .rename({"due": "created_at"})
        .with_columns(pl.int_range(pl.len()).alias("position"))
    )
    newest = pl.col("created_at") == pl.col("created_at").max().over(PAIR)
    expected = bought.filter(newest).filter(
        pl.col("order_id") == pl.col("order_id").max().over(PAIR)
    )
    assert last_purchases(bought).equals(expected)


@pytest.mark.parametrize("seed", range(12))
def test_the_last_mask_of_a_few_purchases_in_python_is_the_querys(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Repeats tied on time and order, null times, orders, customers and products."""
    rng = random.Random(seed)
    bought = _frame(rng, rng.randint(0, 30)).rename({"due": "created_at"})
    holes = [rng.random() < 0.15 for _ in range(bought.height)]
    bought = bought.with_columns(
        pl.when(pl.Series(holes, dtype=pl.Boolean))
        .then(None)
        .otherwise("created_at")
        .alias("created_at"),
        pl.when(pl.col("order_id") == "o3").then(None).otherwise("order_id").alias("order_id"),
    )
    few = last_mask(bought)
    monkeypatch.setattr(replenish, "FEW_ROWS", -1)
    assert few.equals(last_mask(bought))


def test_the_last_mask_runs_no_query_when_no_purchase_repeats(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A one-customer plan's usual case: each query costs ~0.3 ms of fixed overhead."""
    bought = pl.DataFrame(
        {"customer_id": ["a", "a", None], "product_id": ["p", "q", "p"], "created_at": [1, 2, 3]}
    ).with_columns(pl.lit("o1").alias("order_id"))

    again = bought.with_columns(pl.Series("product_id", ["p", "p", "p"]))  # a few: in Python
    count_queries(monkeypatch, refuse=True)
    assert last_mask(bought).to_list() == [True, True, True]
    assert last_mask(again).to_list() == [False, True, True]


# -- the programs at the shortcuts' edges (a plan of hand-built frames) ------------------------


def _plan(shop: Shop, at: dt.datetime, **sections: Any) -> list[Action]:
    rules = policy(**sections, frequency_cap={"email_hours": 0, "max_emails": 99})
    return list(plan_frames(shop.frames(at), rules, at))


COFFEE = {"usage_days_by_type": {"Coffee": 21}}


def test_two_last_purchases_at_one_moment_the_greater_order_id_is_last() -> None:
    shop = Shop().customer("c1")
    shop.order("o2", "c1", T0, [("beans", "1.5", "12")], ptype="Coffee")
    shop.order("o1", "c1", T0, [("beans", 1, "12")], ptype="Coffee")
    due = T0 + 26 * DAY + 12 * dt.timedelta(hours=1)  # 1.5 x 21 - 5 days
    assert _plan(shop, due - dt.timedelta(microseconds=1), replenishment=COFFEE) == []
    [reminder] = _plan(shop, due, replenishment=COFFEE)
    assert isinstance(reminder, Replenish)
    assert (reminder.order_id, reminder.quantity) == ("o2", Decimal("1.5"))


def test_a_newer_purchase_returned_in_full_leaves_the_older_one_last() -> None:
    shop = Shop().customer("c1").order("o1", "c1", T0, [("beans", 1, "12")], ptype="Coffee")
    shop.order(
        "o2", "c1", T0 + 10 * DAY, [("beans", 2, "12")], ptype="Coffee", returned={"beans": 2}
    )
    [reminder] = _plan(shop, T0 + 16 * DAY, replenishment=COFFEE)
    assert isinstance(reminder, Replenish) and reminder.order_id == "o1"


def test_a_warranty_skips_a_line_without_a_product() -> None:
    shop = Shop().customer("c1")
    shop.order("o1", "c1", T0, [(None, 1, "5"), ("kettle", 1, "50")], ptype="Kettle")
    found = _plan(shop, T0 + 340 * DAY, warranty={"days_by_type": {"Kettle": 365}})
    assert [(type(a), a.product_id) for a in found] == [(WarrantyNotice, "kettle")]  # type: ignore[attr-defined]


def test_win_back_follows_the_greater_order_id_of_two_orders_at_one_moment() -> None:
    shop = Shop().customer("c1")
    for oid in ("b", "a"):
        shop.order(oid, "c1", T0)
    stages = [
        a
        for day in range(20, 200, 5)
        for a in _plan(shop, T0 + day * DAY, winback={})
        if isinstance(a, WinBack)
    ]
    assert stages and {a.last_order_id for a in stages} == {"b"}


@pytest.mark.parametrize("seed", range(20))
def test_the_rhythm_of_a_few_orders_in_python_is_the_querys(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    paid = pl.DataFrame(
        [
            (f"o{i}", rng.choice(["a", "b", "c"]), rng.randint(-5, 400) * DAY_US // 3)
            for i in range(rng.randint(1, 12))
        ],
        schema={"id": pl.String, "customer_id": pl.String, "created_at": pl.Int64},
        orient="row",
    )
    rules = policy(winback={"repeat_min_days": rng.choice([1, 20])})
    stats = shop_stats(Shop().frames(T0), rules)
    few = winback.rhythm(paid, stats, rules, 0)
    monkeypatch.setattr(winback, "FEW_ROWS", -1)
    assert_frame_equal(few, winback.rhythm(paid, stats, rules, 0), check_exact=True)


def test_a_median_gap_in_python_rounds_as_the_query_divides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Gaps of 0 and 64 days 1 hour: Python's ``/`` and Polars' differ in the last bit of
    64.0416..., and the start (hence the action's due moment) by a microsecond."""
    at = [0, 0, 64 * DAY_US + 3_600_000_000]
    paid = pl.DataFrame(
        {"id": ["o0", "o1", "o2"], "customer_id": ["c1"] * 3, "created_at": at},
        schema={"id": pl.String, "customer_id": pl.String, "created_at": pl.Int64},
    )
    rules = policy(winback={})
    stats = shop_stats(Shop().frames(T0), rules)
    few = winback.rhythm(paid, stats, rules, 0)
    monkeypatch.setattr(winback, "FEW_ROWS", -1)
    assert_frame_equal(few, winback.rhythm(paid, stats, rules, 0), check_exact=True)


@pytest.mark.parametrize("few", [512, 0])
def test_a_long_key_is_hashed_down_as_source_key_does(
    few: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In Python over a few rows, by a query over many: the same keys."""
    monkeypatch.setattr(_candidates, "FEW_ROWS", few)
    frame = pl.DataFrame({"order_id": ["o1", "x" * 300]})
    keyed = key_column(frame, "review_request", "acme", pl.col("order_id"))
    assert keyed["key"].to_list() == [
        source_key("review_request", "acme", "o1"),
        source_key("review_request", "acme", "x" * 300),
    ]
    assert short_keys(frame.with_columns(keyed["key"]))["key"].equals(keyed["key"])


@pytest.mark.parametrize("few", [512, 0])
def test_a_missing_key_beside_a_long_one_stays_missing(
    few: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_candidates, "FEW_ROWS", few)
    frame = pl.DataFrame({"key": [None, "review_request:" + "x" * 300]}, schema={"key": pl.String})
    keys = short_keys(frame)["key"].to_list()
    assert keys[0] is None and keys[1].startswith("review_request:sha256:")


_SHORTCUTS = (
    (planner, "FEW_ROWS"),
    (winback, "FEW_ROWS"),
    (replenish, "FEW_ROWS"),
    (review_requests, "FEW_ROWS"),
    (_candidates, "FEW_ROWS"),
    (loyalty_history, "FEW_ROWS"),
    (_data, "FEW_ROWS"),
    (shop_stats_module, "FEW_ROWS"),
)
"""Every program's "a few rows in Python" cut-off (issue 18): at -1 each takes its query."""


def _random_shop(rng: random.Random) -> Shop:
    """Three customers' orders on the same day, moment and microsecond or not, with repeat
    and lone products, refunds, paid without a date, reviews, deliveries and consent."""
    shop = Shop()
    for cid in ("c1", "c2", "c3"):
        shop.customer(cid)
    for i in range(rng.randint(0, 8)):
        at = T0 + rng.randint(0, 200) * DAY + rng.choice([0, 0, 1, 13]) * dt.timedelta(hours=1)
        at += rng.choice([0, 0, 7]) * dt.timedelta(microseconds=1)
        lines = [(rng.choice(["p1", "p2", None]), rng.choice([1, "1.5"]), "20")]
        shop.order(
            f"o{i}",
            rng.choice(["c1", "c2", "c3"]),
            at,
            lines * rng.randint(1, 2),
            ptype=rng.choice(["Coffee", "Kettle", None]),
            sku=rng.choice([None, "S1"]),
            refund=(at + DAY, "5") if rng.random() < 0.3 else None,
            paid=rng.choice([True, True, None]),
        )
    for _ in range(rng.randint(0, 2)):
        shop.review(
            rng.choice(["c1", "c2"]), rng.choice(["p1", "p2"]), T0 + rng.randint(0, 250) * DAY
        )
    for _ in range(rng.randint(0, 3)):
        key = rng.choice(["winback:acme:c1:o0:stage1", "review_request:acme:o1", "k"])
        shop.sent(rng.choice(["c1", "c2"]), key, T0 + rng.randint(0, 260) * DAY)
    for _ in range(rng.randint(0, 2)):
        state = rng.choice(["unsubscribed", "not_subscribed", "subscribed"])
        shop.consent(rng.choice(["c1", "c2", "c3"]), state, T0 + rng.randint(0, 260) * DAY)
    return shop


@pytest.mark.parametrize("seed", range(28, 40))  # 30, 36: a median gap (fixed)
def test_every_program_s_few_rows_in_python_plan_as_its_query(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small shop's whole plan takes the Python paths too: the same shop with every
    cut-off at -1 (each program's query) must plan the same actions, held and due alike."""
    rng = random.Random(seed)
    rules = policy(
        reviews={},
        winback={"repeat_min_days": rng.choice([1, 30])},
        replenishment={"usage_days_by_type": {"Coffee": 21}, "usage_days_by_sku": {"S1": 7}},
        warranty={"days_by_type": {"Kettle": 60}, "days_by_sku": {"S1": 30}},
        frequency_cap={"email_hours": rng.choice([0, 24]), "max_emails": rng.choice([1, 5])},
    )
    shop = _random_shop(rng)
    for day in (40, 100, 160, 230):
        at = T0 + day * DAY + rng.choice([0, 11]) * dt.timedelta(hours=1)
        frames = shop.frames(at)
        few = plan_frames(frames, rules, at)
        with monkeypatch.context() as patched:
            for module, name in _SHORTCUTS:
                patched.setattr(module, name, -1)
            by_queries = plan_frames(frames, rules, at)
        assert (few.actions, tuple(few.held)) == (by_queries.actions, tuple(by_queries.held))


# -- one customer's paid orders, purchases, loyalty facts and guard in Python (issue 18) -------


def _random_orders(rng: random.Random, extra: bool = False) -> pl.DataFrame:
    """Orders paid or not, with or without a date, cancelled before or after, totals of zero,
    below or none, guests (no customer), placement ties."""
    rows = []
    for i in range(rng.randint(0, 12)):
        created = rng.randint(0, 20)
        paid = rng.choice([None, created, created + rng.randint(-2, 10)])
        status = rng.choice(["paid", "pending", "refunded", "partially_refunded", "voided", None])
        rows.append(
            (
                f"o{rng.randint(0, 99)}" if extra else f"o{i}",
                rng.choice(["c1", "c2", None]),
                created,
                paid,
                rng.choice([None, created + 1]),
                rng.choice([None, None, rng.randint(0, 30), paid]),
                status,
                None,
                "EUR",
                rng.choice([0, 100, 250, -5, None] if extra else [0, 100, 250, -5]),
                None,
            )
        )
    return frame("orders", rows)


def _random_refunds(rng: random.Random, orders: pl.DataFrame, at: int) -> pl.DataFrame:
    """Refunds in part, in full, above the total, several of one order, at, before and after
    ``at``, of unknown orders."""
    ids = [*orders["id"].to_list()[:3] * 3, *orders["id"].to_list(), "ox", None]
    return frame(
        "refunds",
        [
            (
                rng.choice(ids),
                rng.choice([None, rng.randint(0, 30), at, at]),
                rng.choice([10, 40, 40, 400]),
            )
            for _ in range(rng.randint(0, 12))
        ],
    )


@pytest.mark.parametrize("seed", range(30))
def test_a_few_paid_orders_in_python_are_the_querys(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    orders = _random_orders(rng)
    base = Shop().frames(T0)
    at = rng.choice([30, rng.randint(0, 30), *orders["created_at"].to_list()])  # ties: placed at at
    frames = dataclasses.replace(base, orders=orders, refunds=_random_refunds(rng, orders, at))
    columns = rng.choice([None, planner.PAID_COLUMNS])
    few = paid_orders(frames, at, columns)
    monkeypatch.setattr(_data, "FEW_ROWS", -1)
    assert_frame_equal(few, paid_orders(frames, at, columns), check_exact=True)


@pytest.mark.parametrize("seed", range(12))
def test_the_purchase_rule_in_python_is_the_expression(seed: int) -> None:
    """:func:`is_purchase` is :func:`counts_as_purchase` row by row, nulls included."""
    rng = random.Random(seed)
    orders = _random_orders(rng, extra=True)
    at = rng.choice([rng.randint(0, 30), *orders["cancelled_at"].drop_nulls()])  # ties at at
    expected = orders.select(counts_as_purchase(at))[:, 0].to_list()
    rule = ("paid_at", "processed_at", "created_at", "financial_status", "cancelled_at", "total")
    rows = zip(*(orders[name].to_list() for name in rule), strict=True)
    assert [is_purchase(at, paid_value(*r[:4]), *r[4:]) for r in rows] == expected


@pytest.mark.parametrize("seed", range(12))
def test_a_few_purchases_in_python_are_the_querys(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lines without a product or order, refunded in part, in full or more, quantities null;
    an order paid twice over (duplicate ids) counts as the join counts it."""
    rng = random.Random(seed)
    orders = _random_orders(rng, extra=True).filter(pl.col("total").is_not_null())
    paid = dataclasses.replace(Shop().frames(T0), orders=orders)
    paid_rows = paid_orders(paid, 30, planner.PAID_COLUMNS)
    ids = [*orders["id"].to_list(), "ox", None]
    lines = frame(
        "lines",
        [
            (
                rng.choice(ids),
                rng.choice(["p1", "p2", None]),
                rng.choice(["S1", None]),
                rng.choice(["Coffee", None]),
                rng.choice([10_000, 15_000, None]),
                100,
                rng.choice([0, 0, 10_000, 15_000, None]),
            )
            for _ in range(rng.randint(0, 14))
        ],
    )
    key = ["customer_id", "order_id", "product_id"]
    few = shop_stats_module.purchases(paid_rows, lines, amounts=False)
    monkeypatch.setattr(shop_stats_module, "FEW_ROWS", -1)
    by_query = shop_stats_module.purchases(paid_rows, lines, amounts=False)
    assert few.columns == by_query.columns and few.schema == by_query.schema
    assert few.height == by_query.height
    for name in ("sku", "product_type"):  # the first non-null of a group: order-sensitive
        few, by_query = few.drop(name), by_query.drop(name)
    assert_frame_equal(few.sort(key, nulls_last=True), by_query.sort(key, nulls_last=True))


@pytest.mark.parametrize("seed", range(12))
def test_a_few_orders_loyalty_facts_in_python_are_the_querys(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    orders = _random_orders(rng, extra=True)
    shipping = [rng.choice([0, 5, None]) for _ in range(orders.height)]
    orders = orders.with_columns(
        subtotal=pl.col("total"),
        total_shipping=pl.Series(shipping, dtype=pl.Int64),
        total_tax=pl.lit(3, dtype=pl.Int64),
    )
    earn = {"include_shipping": rng.random() < 0.5, "include_tax": rng.random() < 0.5}
    rules = policy(loyalty={"enabled": True, "earn": earn})
    tables = {"orders": orders.unique("id", keep="first", maintain_order=True)}
    tables["refunds"] = frame("refunds", []).with_columns(id=pl.lit("r"))
    few_table = loyalty_history.facts_table(tables, rules)
    few = loyalty_history.facts_by_customer(tables, rules)
    monkeypatch.setattr(loyalty_history, "FEW_ROWS", -1)
    assert_frame_equal(few_table, loyalty_history.facts_table(tables, rules), check_exact=True)
    assert few == loyalty_history.facts_by_customer(tables, rules)


def _random_candidates(rng: random.Random) -> list[Candidates]:
    kinds = ["winback", "review_request", "replenish", "loyalty_award"]
    found = []
    for _ in range(rng.randint(1, 3)):
        rows = [
            (
                rng.choice(["c1", "c2", "c3", "c4", None]),
                rng.choice(kinds),
                rng.choice([0, 5, 5, None]),
                rng.choice(["k1", "k2", "k3", "winback:acme:c1:o0:stage1"]),
                rng.choice([True, True, False, None]),
            )
            for _ in range(rng.randint(0, 6))
        ]
        schema = dict(
            zip(COMMON, [pl.String, pl.String, pl.Int64, pl.String, pl.Boolean], strict=True)
        )
        found.append(Candidates(pl.DataFrame(rows, schema=schema, orient="row"), dict))
    return found


@pytest.mark.parametrize("seed", range(16))
def test_a_few_candidates_guard_in_python_is_the_querys(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Consent (last state, none, soft opt-in), suppressed, erased, holdout, quiet, the cap
    with deliveries, marketing overrides and priorities, null customers, ties in order."""
    rng = random.Random(seed)
    shop = Shop().customer("c4").suppress("c4")
    for cid in ("c1", "c2"):
        shop.customer(cid, consent=rng.choice([None, "subscribed", "not_subscribed"]))
    moments = rng.sample(range(0, 200), 4)
    for moment in moments[: rng.randint(0, 4)]:
        state = rng.choice(["subscribed", "not_subscribed", "unsubscribed"])
        shop.consent(rng.choice(["c1", "c2", "c3"]), state, T0 - moment * DAY)
    for _ in range(rng.randint(0, 3)):
        shop.sent(rng.choice(["c1", "c2"]), rng.choice(["k1", "k9"]), T0 - rng.randint(0, 40) * DAY)
    rules = policy(
        consent={"allow_soft_opt_in": rng.random() < 0.5},
        holdout={"share": rng.choice([0, 0.5, 0.9])},
        quiet={"hours": rng.choice([None, (11, 13)])},  # T0 is 12:00 UTC
        messaging={
            "marketing": rng.choice([{}, {"review_request": True}]),
            "priority": rng.choice([("winback", "review_request"), ()]),
        },
        frequency_cap={"email_hours": rng.choice([0, 24]), "max_emails": rng.choice([1, 5])},
    )
    frames = shop.frames(T0)
    erased = pl.DataFrame(
        {"customer_id": rng.choice([[], ["c2"]])}, schema={"customer_id": pl.String}
    )
    other = [  # another channel's state, a state unknown (null) after a known one
        (rng.choice(["c1", "c2"]), rng.choice(["sms", "email"]), to_micros(T0), state)
        for state in rng.sample(["subscribed", None], rng.randint(0, 2))
    ]
    consent = pl.concat([frames.consent, pl.DataFrame(other, frames.consent.schema, orient="row")])
    frames = dataclasses.replace(frames, erased=erased, consent=consent)
    paid = pl.DataFrame({"customer_id": rng.choice([["c1", "c3"], ["c1", "c2", "c3"]])})
    found = _random_candidates(rng)
    few = planner._decide(found, frames, rules, T0, paid)
    monkeypatch.setattr(planner, "FEW_ROWS", -1)
    assert_frame_equal(few, planner._decide(found, frames, rules, T0, paid), check_exact=True)


@pytest.mark.parametrize("seed", range(8))
def test_a_few_purchases_warranty_notices_in_python_are_the_querys(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Notices due, not yet or no longer, by sku or by type, lines without sku or type."""
    rng = random.Random(seed)
    rules = policy(warranty={"days_by_type": {"Kettle": 60}, "days_by_sku": {"S1": 45}})
    shop, placed = Shop().customer("c1"), []
    for i in range(rng.randint(1, 6)):
        products = [(rng.choice(["p1", "p2", None]), 1, "20") for _ in range(rng.randint(1, 2))]
        placed.append(T0 + rng.randint(0, 40) * DAY + rng.choice([0, 1]) * dt.timedelta(hours=1))
        shop.order(
            f"o{rng.randint(0, 3)}{i}",
            "c1",
            placed[-1],
            products,
            ptype=rng.choice(["Kettle", None]),
            sku=rng.choice([None, "S1"]),
            returned=rng.choice([None, {"p1": 1}]),
        )
    for _ in range(3):  # at a warranty's end or its notice's start, or a day within
        at = rng.choice(placed) + rng.choice([15, 16, 30, 44, 45, 59, 60]) * DAY
        frames = shop.frames(at)
        paid = paid_orders(frames, columns=planner.PAID_COLUMNS)
        stats = shop_stats(frames, rules)
        few = replenish.warranty_candidates(frames, paid, stats, rules).frame
        with monkeypatch.context() as patched:
            patched.setattr(replenish, "FEW_ROWS", -1)
            by_query = replenish.warranty_candidates(frames, paid, stats, rules).frame
        assert_frame_equal(few, by_query, check_exact=True)


def _random_review_frames(rng: random.Random, at: int, months: int) -> Frames:
    """One customer's (and a guest's) orders over the past year for review requests: refunds,
    cancellations, partial, failed and several shipments, deliveries, shipments abroad,
    reviews before, within and after a period (and at its bounds), products bought again,
    tied and null prices, delivered requests, and keys long enough to be hashed down; a null
    in each column read (total, quantities, a shipment's, a refund's or a review's moment, a
    refund's amount) and cancellations, shipments and refunds at ``as_of``."""
    back = lambda days: at - days * DAY_US + rng.choice([0, 0, 0, 3_600_000_000])  # noqa: E731
    shop = rng.choice(["acme", "s" * 250])  # a long one: keys hashed down
    orders, lines, ships, refunds, delivered = [], [], [], [], {}
    for i in range(rng.randint(0, 14)):
        placed = rng.choice([rng.randint(5, 50), rng.randint(5, 50), rng.randint(0, 400)])
        total = rng.choice([0, 20_000, 20_000, 50_000, 50_000, None])
        orders.append(
            (
                f"o{i}",
                rng.choice(["c1"] * 5 + [None]),
                rng.choice(["paid"] * 9 + ["partially_refunded", "refunded", "voided", None]),
                rng.choice(["fulfilled"] * 9 + ["partial", None]),
                rng.choice([None] * 6 + [back(placed - 1), at, at + DAY_US]),
                total,
                rng.choice([None, "", "DE", "FR"]),
            )
        )
        for _ in range(rng.randint(1, 3)):
            quantity = rng.choice([10_000, 20_000, 20_000, None])
            product = rng.choice(["p1", "p2", "p3", "p4", None])
            price = rng.choice([500, 500, 900, 1_200, None])
            returned = rng.choice([0, 0, 10_000, quantity, None])
            lines.append((f"o{i}", product, quantity, returned, price))
        for _ in range(rng.choice([0, 1, 1, 1, 1, 2, 2, 3])):
            shipped = max(0, placed - rng.randint(0, 5))
            arrived = rng.choice([None, back(shipped - rng.randint(1, 9))])
            status = rng.choice(["success"] * 9 + ["cancelled", "FAILURE", None])
            created = rng.choice([back(shipped)] * 8 + [None, at])
            ships.append((f"o{i}", created, status, arrived))
        for _ in range(rng.choice([0, 0, 1, 2])):
            when = rng.choice([back(placed - rng.randint(0, 30))] * 3 + [None, at, at + 1])
            refunds.append((f"o{i}", when, rng.choice([5_000, total, None])))
        if rng.random() < 0.5:
            delivered[short_key(f"review_request:{shop}:o{i}")] = back(rng.randint(0, 60))
    reviews = [
        (
            rng.choice(["c1", "c1", None]),
            rng.choice(["p1", "p2", "p3"]),
            rng.choice([back(rng.randint(-5, 120))] * 5 + [None]),
        )
        for _ in range(rng.randint(0, 6))
    ]
    bounds = [  # a line's possible due moments: a review there, or at its period's start
        (pid, moment + days * DAY_US)
        for oid, pid, *_ in lines
        for ship in ships
        if ship[0] == oid
        for moment in ship[1:4:2]
        if moment is not None
        for days in (0, 7, 14, 21)
    ]
    for pid, due in rng.sample(bounds, min(len(bounds), rng.randint(0, 10))):
        reviews.append(("c1", pid, rng.choice([due, months_before_value(due, months), None])))
    base = Shop().customer("c1").frames(from_micros(at))
    return dataclasses.replace(
        base,
        shop=shop,
        orders=_rows(base.orders, orders, *_ORDER_COLUMNS),
        lines=_rows(base.lines, lines, *_LINE_COLUMNS),
        fulfillments=_rows(base.fulfillments, ships, *base.fulfillments.columns),
        refunds=_rows(base.refunds, refunds, *base.refunds.columns),
        reviews=_rows(base.reviews, reviews, *base.reviews.columns),
        requests_delivered=delivered,
    )


_ORDER_COLUMNS = (
    "id",
    "customer_id",
    "financial_status",
    "fulfillment_status",
    "cancelled_at",
    "total",
    "ship_country",
)
_LINE_COLUMNS = ("order_id", "product_id", "quantity", "refunded_quantity", "unit_price")


def _rows(like: pl.DataFrame, rows: list[tuple[Any, ...]], *names: str) -> pl.DataFrame:
    """Frame ``like``'s columns, ``names`` from ``rows`` and the others null."""
    given = pl.DataFrame(rows, schema={n: like.schema[n] for n in names}, orient="row")
    return given.select(
        pl.col(n) if n in names else pl.lit(None, like.schema[n]).alias(n) for n in like.columns
    )


@pytest.mark.parametrize("seed", range(80))
def test_review_candidates_of_few_rows_in_python_are_the_querys(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    months = rng.choice([0, 1, 3, 12])
    rules = policy(
        reviews={
            "days_after_fulfillment": rng.choice([0, 14]),
            "days_after_delivery": rng.choice([0, 7]),
            "home_country": rng.choice([None, "DE"]),
            "international_extra_days": rng.choice([0, 7]),
            "max_products": rng.choice([1, 2, 3]),
            "reminder_days": rng.choice([None, 7, 20]),
            "same_product_months": months,
            "max_late_days": rng.choice([10, 30, 90]),
        }
    )
    frames = _random_review_frames(rng, to_micros(T0) + 400 * DAY_US, months)
    few = review_candidates(frames, rules).frame
    monkeypatch.setattr(review_requests, "FEW_ROWS", -1)
    assert_frame_equal(few, review_candidates(frames, rules).frame, check_exact=True)
