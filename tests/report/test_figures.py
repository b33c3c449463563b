"""The report's figures: pure helpers on hand-computed examples, and agreement with the
library functions the figures come from."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from shopsync import loyalty, metrics
from shopsync.core.actions import Action
from shopsync.core.policy import Policy
from shopsync.planning import plan
from shopsync.report import money
from shopsync.report.charts import _ticks, blend, nice_max
from shopsync.report.figures import due_histogram, lift_dates, month_ends, shop_figures, tally
from shopsync.store import Store
from tests.core.retention_helpers import DAY, T0, P, S, customer, order

UTC = dt.timezone.utc
AS_OF = T0 + 90 * DAY  # 2024-05-30 12:00 UTC


def _action(kind: str, due: dt.datetime, n: int) -> Action:
    return Action(
        kind=kind,
        platform=P,
        shop=S,
        customer_id=f"c{n}",
        due_at=due,
        reason="test",
        idempotency_key=f"{kind}:{n}",
        marketing=False,
    )


def test_month_ends_are_the_whole_months_before_as_of() -> None:
    got = month_ends(dt.datetime(2024, 3, 15, 10, tzinfo=UTC), 4)
    assert got == [
        dt.datetime(2023, 12, 1, tzinfo=UTC),
        dt.datetime(2024, 1, 1, tzinfo=UTC),
        dt.datetime(2024, 2, 1, tzinfo=UTC),
        dt.datetime(2024, 3, 1, tzinfo=UTC),
    ]
    # another zone is read in UTC: 00:30 on the 1st in Paris is still February in UTC
    paris = dt.timezone(dt.timedelta(hours=1))
    assert month_ends(dt.datetime(2024, 3, 1, 0, 30, tzinfo=paris), 1) == [
        dt.datetime(2024, 2, 1, tzinfo=UTC)
    ]
    with pytest.raises(ValueError, match="timezone-aware"):
        month_ends(dt.datetime(2024, 3, 1), 2)


def test_due_histogram_puts_overdue_first_and_late_last() -> None:
    at = dt.datetime(2024, 3, 1, 12, tzinfo=UTC)
    actions = [
        _action("winback", dt.datetime(2024, 2, 28, tzinfo=UTC), 1),  # overdue: slot 0
        _action("winback", dt.datetime(2024, 3, 1, 18, tzinfo=UTC), 2),  # today: slot 0
        _action("review_request", dt.datetime(2024, 3, 3, 1, tzinfo=UTC), 3),  # slot 2
        _action("review_request", dt.datetime(2024, 4, 30, tzinfo=UTC), 4),  # beyond: slot 4
    ]
    due = due_histogram(actions, ["consent", "holdout", "consent"], at, days=5)
    assert due.start == dt.date(2024, 3, 1)
    assert due.kinds == ("review_request", "winback")
    assert due.counts == {"review_request": [0, 0, 1, 0, 1], "winback": [2, 0, 0, 0, 0]}
    assert due.held == {"consent": 2, "holdout": 1}
    assert (due.days, due.total) == (5, 4)


def test_tally_keeps_the_order_and_the_zeros() -> None:
    values = ["b", None, "a", "z", "b"]
    assert tally(values, ["a", "b", "c"], none="none") == {
        "a": 1,
        "b": 2,
        "c": 0,
        "none": 1,
        "z": 1,
    }
    assert tally(values, ["a", "b", "c"]) == {"a": 1, "b": 2, "c": 0, "z": 1}


def test_lift_dates_end_one_horizon_before_the_latest_order() -> None:
    latest = dt.datetime(2024, 5, 31, tzinfo=UTC)
    got = lift_dates(latest, dt.timedelta(days=30), count=3)
    assert got == [
        dt.datetime(2024, 4, 17, tzinfo=UTC),
        dt.datetime(2024, 4, 24, tzinfo=UTC),
        dt.datetime(2024, 5, 1, tzinfo=UTC),
    ]


def test_money_uses_the_currency_minor_unit() -> None:
    assert money(Decimal("1234.5"), "EUR") == "1,234.50 EUR"
    assert money(Decimal("1234.5"), "JPY") == "1,235 JPY"
    assert money(Decimal("1.2345"), "KWD") == "1.235 KWD"
    assert money(None, "USD") == "–"


def test_axis_helpers() -> None:
    assert [nice_max(v) for v in (188, 0.37, 7, 1000, 0)] == [200, 0.5, 10, 1000, 1]
    assert _ticks(200) == [0, 50, 100, 150, 200]
    assert _ticks(250) == [0, 50, 100, 150, 200, 250]
    assert (blend(0), blend(1), blend(2)) == ("#f2f7fc", "#084594", "#084594")


@pytest.fixture
def shop(store: Store) -> Store:
    store.upsert(
        [
            *(customer(c) for c in "abcdef"),
            order("a1", "a", T0 - 100 * DAY, lines=[("p", 1, "10")]),
            order("b1", "b", T0 - 50 * DAY, lines=[("p", 1, "20")]),
            order("b2", "b", T0 + 10 * DAY, lines=[("p", 1, "30")]),
            order("c1", "c", T0 + 5 * DAY, lines=[("p", 1, "40")]),
            order("c2", "c", T0 + 20 * DAY, lines=[("p", 1, "10")], refund=(T0 + 21 * DAY, "4")),
            order("d1", "d", T0 + 30 * DAY, lines=[("p", 1, "50")], cancelled=T0 + 31 * DAY),
            order("e1", "e", T0 - 400 * DAY, lines=[("p", 1, "5")]),
        ]
    )
    return store


def test_figures_agree_with_the_library(shop: Store) -> None:
    policy = Policy()
    loyalty.update_ledger(shop, P, S, as_of=AS_OF, policy=policy)
    f = shop_figures(shop, P, S, as_of=AS_OF, policy=policy)
    assert (f.currency, f.customers, f.buyers, f.orders) == ("USD", 6, 4, 6)
    assert f.net_revenue == Decimal("111")  # 10 + 20 + 30 + 40 + 6 + 5, d's was cancelled
    # every month point is what metrics.report says for the twelve months to that month end
    assert len(f.months) == 12  # e's order is older than the twelve month ends
    for point in f.months:
        start = point.end.replace(year=point.end.year - 1)
        expected = metrics.period(shop, P, S, start=start, end=point.end, policy=policy)
        assert point.retention_rate == expected.retention_rate
        assert point.repeat_rate == expected.repeat_purchase_rate
        assert point.average_order_value == expected.average_order_value
        assert point.clv == expected.historical_clv
        assert point.customers == expected.customers
    assert f.months[-1].label == "2024-04"
    assert f.cohorts.equals(metrics.cohorts(shop, P, S, AS_OF, months=12).tail(12))
    segments = metrics.segments(shop, P, S, AS_OF, policy)
    assert f.stages == tally(segments["stage"].to_list(), metrics.STAGES)
    assert f.rfm == tally(segments["rfm_group"].to_list(), metrics.RFM_GROUPS)
    assert sum(f.stages.values()) == sum(f.rfm.values()) == 6
    # the lowest tier starts at 0, so every customer holds it
    assert f.loyalty is not None and f.loyalty.tiers == {"Bronze": 6, "Silver": 0, "Gold": 0}
    points = loyalty.shop_balance(shop, P, S)
    assert (f.loyalty.approved, f.loyalty.pending) == (points.approved, points.pending) != (0, 0)
    assert f.loyalty.value(250) == Decimal("2.5")
    planned = plan(shop, policy, AS_OF)
    assert f.actions.total == len(planned)
    assert sum(f.actions.held.values()) == len(planned.held)


def test_given_tiers_and_plan_are_used_as_they_are(shop: Store) -> None:
    empty = plan(shop, Policy(), AS_OF - 1000 * DAY)
    f = shop_figures(shop, P, S, as_of=AS_OF, planned=empty, tiers={"a": "Gold", "b": None})
    assert f.actions.total == 0
    assert f.loyalty is not None and f.loyalty.tiers == {
        "Bronze": 0,
        "Silver": 0,
        "Gold": 1,
        "no tier": 1,
    }
    off = Policy.from_dict({"loyalty": {"enabled": False}})
    assert shop_figures(shop, P, S, as_of=AS_OF, policy=off, planned=empty).loyalty is None


def test_the_abandoned_checkout_recovery_rate_is_a_figure_and_a_tile(shop: Store) -> None:
    from shopsync.checkouts import Checkout
    from shopsync.models import Money
    from shopsync.report import _tiles
    from shopsync.store.checkout_rows import upsert_checkouts

    empty = plan(shop, Policy(), AS_OF - 1000 * DAY)
    assert shop_figures(shop, P, S, as_of=AS_OF, planned=empty).checkout_recovery is None
    started = AS_OF - 20 * DAY
    upsert_checkouts(
        shop,
        [
            Checkout(
                platform=P,
                shop=S,
                id=f"k{n}",
                customer_id=None,
                created_at=started,
                updated_at=started,
                completed_at=started + DAY if n < 1 else None,
                currency="USD",
                subtotal=Money.of("10", "USD"),
                total=Money.of("10", "USD"),
            )
            for n in range(4)
        ],
    )
    f = shop_figures(shop, P, S, as_of=AS_OF, planned=empty)
    assert f.checkout_recovery is not None
    assert (f.checkout_recovery.checkouts, f.checkout_recovery.recovered) == (4, 1)
    assert ("abandoned-checkout recovery, 30 days", "25.0% of 4") in _tiles(f)
