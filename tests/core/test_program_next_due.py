"""Each program's next-due function (issue 19): the moment it gives is never later than the
first moment time alone brings the program a new candidate. Checked on hand-built shops by
evaluating the candidates at that moment and 1 µs before (and, for a single threshold, that
the candidate does appear at it: the bound is tight where it can be)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import polars as pl
import pytest

from shopsync.core._data import Frames, paid_orders
from shopsync.core.abandoned import abandoned_candidates, abandoned_next_due
from shopsync.core.browse import browse_candidates, browse_next_due
from shopsync.core.incremental import program_due, row_moments
from shopsync.core.loyalty import from_micros
from shopsync.core.planner import PAID_COLUMNS
from shopsync.core.replenish import (
    replenishment_candidates,
    replenishment_next_due,
    warranty_candidates,
    warranty_next_due,
)
from shopsync.core.review_requests import review_candidates, review_next_due
from shopsync.core.shop_stats import ShopStats, shop_stats
from shopsync.core.surveys import survey_candidates, survey_next_due
from shopsync.core.winback import winback_candidates, winback_next_due
from tests.core.frames_kit import DAY, T0, Shop, policy

US = dt.timedelta(microseconds=1)
HOUR = dt.timedelta(hours=1)

Program = tuple[Callable[..., Any], Callable[..., Any]]


def _paid(frames: Frames) -> pl.DataFrame:
    return paid_orders(frames, columns=PAID_COLUMNS)


PROGRAMS: dict[str, Program] = {
    "reviews": (
        lambda f, p, s: review_candidates(f, p),
        lambda f, p, s: review_next_due(f, p),
    ),
    "winback": (
        lambda f, p, s: winback_candidates(f, _paid(f), s, p),
        lambda f, p, s: winback_next_due(f, _paid(f), s, p),
    ),
    "replenishment": (
        lambda f, p, s: replenishment_candidates(f, _paid(f), s, p),
        lambda f, p, s: replenishment_next_due(f, _paid(f), s, p),
    ),
    "warranty": (
        lambda f, p, s: warranty_candidates(f, _paid(f), s, p),
        lambda f, p, s: warranty_next_due(f, _paid(f), s, p),
    ),
    "surveys": (
        lambda f, p, s: survey_candidates(f, p),
        lambda f, p, s: survey_next_due(f, p),
    ),
    "abandoned": (
        lambda f, p, s: abandoned_candidates(f, _paid(f), p),
        lambda f, p, s: abandoned_next_due(f, p),
    ),
    "browse": (
        lambda f, p, s: browse_candidates(f, _paid(f), p),
        lambda f, p, s: browse_next_due(f, p),
    ),
}


def _keys(shop: Shop, pol: Any, stats: ShopStats, name: str, at: dt.datetime) -> set[str]:
    candidates = PROGRAMS[name][0](shop.frames(at), pol, stats)
    return set(candidates.frame["key"].to_list())


def _due(shop: Shop, pol: Any, stats: ShopStats, name: str, at: dt.datetime) -> dt.datetime:
    found = PROGRAMS[name][1](shop.frames(at), pol, stats)
    assert found["customer_id"].to_list() == ["c1"]
    return from_micros(found["due"].item())


def _coffee(shop: Shop) -> Shop:
    return shop.product("beans", "Coffee").customer("c1")


CASES: list[tuple[str, Shop, Any, dt.datetime, bool]] = [
    # (program, shop, policy, as_of, whether the candidate appears exactly at the moment)
    (
        "reviews",
        Shop().customer("c1").order("o1", "c1", T0 - 3 * DAY),
        policy(reviews={}),
        T0,
        True,
    ),
    (
        "reviews",  # delivered: days after delivery instead
        Shop().customer("c1").order("o1", "c1", T0 - 3 * DAY, delivered=T0 - DAY),
        policy(reviews={}),
        T0,
        True,
    ),
    (
        "reviews",  # the request went out: the reminder's moment
        Shop()
        .customer("c1")
        .order("o1", "c1", T0 - 30 * DAY)
        .delivered("review_request:acme:o1", T0 - 2 * DAY),
        policy(reviews={"reminder_days": 5}),
        T0,
        True,
    ),
    (
        "winback",  # a one-time buyer: the shop's delay
        Shop().customer("c1").order("o1", "c1", T0 - 10 * DAY),
        policy(winback={}),
        T0,
        True,
    ),
    (
        "winback",  # a repeat buyer past the start: the next stage
        Shop()
        .customer("c1")
        .order("o1", "c1", T0 - 80 * DAY)
        .order("o2", "c1", T0 - 60 * DAY)
        .order("o3", "c1", T0 - 40 * DAY),
        policy(winback={}),
        T0,
        True,
    ),
    (
        "replenishment",
        _coffee(Shop()).order("o1", "c1", T0 - 5 * DAY, [("beans", 1, "12")], ptype="Coffee"),
        policy(replenishment={"usage_days_by_type": {"Coffee": 30}}),
        T0,
        True,
    ),
    (
        "warranty",
        Shop()
        .product("tv", "Electronics")
        .customer("c1")
        .order("o1", "c1", T0 - 300 * DAY, [("tv", 1, "500")], ptype="Electronics"),
        policy(warranty={"days_by_type": {"Electronics": 365}}),
        T0,
        True,
    ),
    (
        "surveys",
        Shop().customer("c1").order("o1", "c1", T0 - 3 * DAY),
        policy(surveys={"enabled": True}),
        T0,
        True,
    ),
    (
        "abandoned",
        Shop().customer("c1").checkout("k1", "c1", T0 - HOUR),
        policy(abandoned_checkout={}),
        T0,
        True,
    ),
    (
        "abandoned",  # past the first step: the second
        Shop().customer("c1").checkout("k1", "c1", T0 - 6 * HOUR),
        policy(abandoned_checkout={"steps_hours": [1, 24]}),
        T0,
        True,
    ),
    (
        "browse",
        Shop().customer("c1").viewed("c1", "p1", T0 - HOUR),
        policy(browse_abandonment={}),
        T0,
        True,
    ),
    (
        "browse",  # held back by a recent order: its end is a moment (nothing new there yet)
        Shop()
        .customer("c1")
        .order("o1", "c1", T0 - 5 * DAY, fulfilled=False)
        .viewed("c1", "p1", T0 - 3 * DAY),
        policy(browse_abandonment={}),
        T0,
        False,
    ),
]


@pytest.mark.parametrize(
    ("name", "shop", "pol", "at", "tight"),
    CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)],
)
def test_nothing_new_before_the_next_due_moment(
    name: str, shop: Shop, pol: Any, at: dt.datetime, tight: bool
) -> None:
    stats = shop_stats(shop.frames(at), pol)
    now = _keys(shop, pol, stats, name, at)
    due = _due(shop, pol, stats, name, at)
    assert due > at
    # between as_of and the moment, time alone brings nothing new (the last instant and a
    # few on the way)
    for when in [at + (due - at) * k / 4 for k in (1, 2, 3)] + [due - US]:
        assert _keys(shop, pol, stats, name, when) <= now, when
    if tight:
        assert _keys(shop, pol, stats, name, due) - now


def test_a_customer_without_a_threshold_ahead_is_never_due() -> None:
    shop = Shop().customer("c1").order("o1", "c1", T0 - 400 * DAY)
    pol = policy(reviews={})
    frames = shop.frames(T0)
    assert review_next_due(frames, pol).height == 0
    assert program_due(frames, pol, shop_stats(frames, pol)).height == 0


def test_later_dated_rows_of_the_frames_are_moments() -> None:
    """A refund, a shipment, a delivery and a cancellation dated after as_of each answer a
    rule differently when their date comes (the frames hold them; the rules compare)."""
    later = T0 + 4 * DAY
    shop = (
        Shop()
        .customer("c1")
        .customer("c2")
        .customer("c3")
        .order("o1", "c1", T0 - DAY, refund=(later, "20"))
        .order("o2", "c2", T0 - DAY, fulfilled=later)
        .order("o3", "c3", T0 - DAY, cancelled=later + DAY)
    )
    found = dict(row_moments(shop.frames(T0), policy()).iter_rows())
    assert found == {
        "c1": int(later.timestamp() * 1_000_000),
        "c2": int(later.timestamp() * 1_000_000),
        "c3": int((later + DAY).timestamp() * 1_000_000),
    }


def test_program_due_is_the_soonest_of_the_programs() -> None:
    shop = Shop().customer("c1").order("o1", "c1", T0 - 3 * DAY).checkout("k1", "c1", T0 - HOUR)
    pol = policy(reviews={}, abandoned_checkout={})
    frames = shop.frames(T0)
    stats = shop_stats(frames, pol)
    each = [
        review_next_due(frames, pol)["due"].item(),
        abandoned_next_due(frames, pol)["due"].item(),
    ]
    assert program_due(frames, pol, stats)["due"].to_list() == [min(each)]


def _many_purchases() -> Shop:
    """Sixty customers' 660 purchases (past :data:`FEW_ROWS`: the query path), repeats, SKUs
    given, blank and missing, and types that take a period or a warranty and some that do not."""
    shop = Shop()
    kinds = [("Coffee", None), ("Coffee", ""), ("Tea", "T-1"), ("Mill", None), ("Other", None)]
    for c in range(60):
        cid = f"c{c:02d}"
        shop.customer(cid)
        for k in range(11):
            ptype, sku = kinds[(c + k) % len(kinds)]
            at = T0 - (3 + (c * 7 + k * 13) % 80) * DAY
            shop.order(
                f"o{c:02d}-{k:02d}",
                cid,
                at,
                [(f"p{(c + k) % 7}", 1 + k % 3, "9")],
                ptype=ptype,
                sku=sku,
            )
    return shop


def test_the_next_due_moments_of_many_purchases_are_each_customers_own() -> None:
    from shopsync.core._data import FEW_ROWS
    from shopsync.core.incremental import restrict

    pol = policy(
        replenishment={"usage_days_by_type": {"Coffee": 30}, "usage_days_by_sku": {"T-1": 21}},
        warranty={"days_by_type": {"Mill": 60}},
    )
    frames = _many_purchases().frames(T0)
    assert frames.lines.height > FEW_ROWS
    stats = shop_stats(frames, pol)
    for next_due in (replenishment_next_due, warranty_next_due):
        whole = next_due(frames, _paid(frames), stats, pol)
        assert whole.height > 30
        for cid in frames.customers["id"].to_list():
            mine = restrict(frames, [cid])
            alone = next_due(mine, _paid(mine), stats, pol)
            assert alone.rows() == whole.filter(pl.col("customer_id") == cid).rows(), cid


def test_a_draft_and_its_due_moments_find_the_last_purchases_and_the_rhythm_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shopsync.core import _replenish_rows, planner, winback
    from shopsync.core.planner import draft

    calls: list[str] = []

    def counted(module: Any, name: str) -> None:
        real = getattr(module, name)

        def count(*args: Any) -> Any:
            calls.append(name)
            return real(*args)

        monkeypatch.setattr(module, name, count)

    counted(_replenish_rows, "last_mask")
    for module in (planner, winback):
        counted(module, "rhythm")
    pol = policy(replenishment={"usage_days_by_type": {"Coffee": 30}}, winback={})
    frames = _many_purchases().frames(T0)
    drafted = draft(frames, pol, T0, stats=shop_stats(frames, pol))
    due = program_due(frames, pol, drafted.stats, drafted)
    assert sorted(calls) == ["last_mask", "rhythm"]
    assert due.height > 0
