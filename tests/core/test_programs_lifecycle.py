"""Customer features, lifecycle stages and RFM groups on hand-built frames
(shopsync.core.features and shopsync.core.lifecycle docstrings, docs/programs.md "Lifecycle,
RFM and metrics")."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from shopsync.core._data import paid_orders
from shopsync.core.features import compute_features
from shopsync.core.lifecycle import lifecycle
from shopsync.core.shop_stats import shop_stats
from tests.core.frames_kit import DAY, T0, Shop, policy

US = dt.timedelta(microseconds=1)


def features(shop: Shop, at: dt.datetime) -> dict[str, dict[str, Any]]:
    frames = shop.frames(at)
    table = compute_features(frames.feature_inputs(), at, currency=frames.currency)
    return {row["customer_id"]: row for row in table.iter_rows(named=True)}


def stages(shop: Shop, at: dt.datetime, **settings: Any) -> dict[str, dict[str, Any]]:
    frames = shop.frames(at)
    rules = policy(**({"lifecycle": settings} if settings else {}))
    table = compute_features(frames.feature_inputs(), at, currency=frames.currency)
    stats = shop_stats(frames, rules)
    out = lifecycle(frames, table, paid_orders(frames), stats, rules)
    return {row["customer_id"]: row for row in out.iter_rows(named=True)}


def stage(shop: Shop, at: dt.datetime, customer: str = "c1") -> str:
    return str(stages(shop, at)[customer]["stage"])


# -- what counts as a purchase (the features every program and RFM stand on) -------------------


def test_a_paid_order_counts_from_payment_until_a_cancellation() -> None:
    shop = Shop().customer("c1").order("o1", "c1", T0, paid=T0 + 2 * DAY, cancelled=T0 + 5 * DAY)
    assert features(shop, T0 + 2 * DAY - US)["c1"]["paid_orders"] == 0
    assert features(shop, T0 + 2 * DAY)["c1"]["paid_orders"] == 1
    assert features(shop, T0 + 5 * DAY)["c1"]["paid_orders"] == 0  # cancelled by then


def test_paid_without_a_date_free_and_unpaid_orders() -> None:
    shop = (
        Shop()
        .customer("c1")
        .order("o1", "c1", T0, paid=None)  # status paid, no payment date: counts when created
        .order("o2", "c1", T0, total="0")  # free: not a purchase
        .order("o3", "c1", T0, paid=False)  # pending
    )
    assert features(shop, T0 + DAY)["c1"]["paid_orders"] == 1


def test_refunds_by_as_of_reduce_net_spend_capped_at_the_total() -> None:
    shop = (
        Shop()
        .customer("c1")
        .order("o1", "c1", T0, [("a", 1, "40")], refund=(T0 + 10 * DAY, "15"))
        .order("o2", "c1", T0, [("b", 1, "10")], refund=(T0 + 10 * DAY, "25"))
    )
    before = features(shop, T0 + 10 * DAY - US)["c1"]
    assert before["net_spend"] == Decimal(50) and before["refunded"] == Decimal(0)
    after = features(shop, T0 + 10 * DAY)["c1"]
    assert after["refunded"] == Decimal(25)  # 15 + the 10 of o2 (25 capped at its total)
    assert after["net_spend"] == Decimal(25) and after["refund_rate"] == 0.5


def test_a_foreign_currency_order_is_counted_apart_not_converted() -> None:
    shop = Shop().customer("c1").order("o1", "c1", T0).order("o2", "c1", T0, currency="EUR")
    row = features(shop, T0 + DAY)["c1"]
    assert (row["paid_orders"], row["foreign_currency_orders"]) == (1, 1)
    assert row["net_spend"] == Decimal(20)


def test_spend_in_the_last_twelve_months_is_the_365_days_up_to_as_of() -> None:
    shop = Shop().customer("c1").order("o1", "c1", T0)
    assert features(shop, T0 + 365 * DAY - US)["c1"]["spend_12m"] == Decimal(20)
    assert features(shop, T0 + 365 * DAY)["c1"]["spend_12m"] == Decimal(0)


def test_consent_is_the_last_state_observed_by_as_of() -> None:
    shop = Shop().customer("c1").consent("c1", "unsubscribed", T0)
    assert features(shop, T0 - US)["c1"]["email_consent"] == "subscribed"
    assert features(shop, T0)["c1"]["email_consent"] == "unsubscribed"
    assert features(Shop().customer("c1", consent=None), T0)["c1"]["email_consent"] == "unknown"


def test_a_customer_created_after_as_of_is_not_there_yet() -> None:
    shop = Shop().customer("c1", created=T0 + DAY)
    assert features(shop, T0) == {}
    assert set(features(shop, T0 + DAY)) == {"c1"}


def test_a_leap_day_birthday_is_a_date() -> None:
    shop = Shop().customer("c1", birthday="2000-02-29")
    assert features(shop, T0)["c1"]["birthday"] == dt.date(2000, 2, 29)


# -- stages -------------------------------------------------------------------------------------


def test_prospect_new_returning_loyal() -> None:
    shop = Shop().customer("c1")
    assert stage(shop, T0) == "prospect"
    shop.order("o1", "c1", T0)
    assert stage(shop, T0 + DAY) == "new"
    shop.order("o2", "c1", T0 + 10 * DAY)
    assert stage(shop, T0 + 11 * DAY) == "returning"
    shop.order("o3", "c1", T0 + 20 * DAY).order("o4", "c1", T0 + 30 * DAY)
    assert stage(shop, T0 + 31 * DAY) == "loyal"  # four orders in the last 365 days


def test_loyal_counts_only_the_last_365_days() -> None:
    shop = Shop().customer("c1")
    for i in range(4):
        shop.order(f"o{i}", "c1", T0 + 10 * i * DAY)
    rules = {"lapsed_multiple": 100}  # keep the rhythm rules out of the way
    at = T0 + 365 * DAY  # the first order is exactly 365 days old: out of the window
    assert stages(shop, at - US, **rules)["c1"]["stage"] == "at_risk"  # 335 d > 1.5 x 10
    got = stages(shop, at - US, **rules)["c1"]["orders_12m"]
    assert got == 4 and stages(shop, at, **rules)["c1"]["orders_12m"] == 3


def test_at_risk_past_the_win_back_delay_lapsed_past_twice_it() -> None:
    shop = Shop().customer("c1").order("o1", "c1", T0)  # one-time buyer: 90-day fallback
    assert stage(shop, T0 + 90 * DAY) == "new"
    assert stage(shop, T0 + 90 * DAY + US) == "at_risk"
    assert stage(shop, T0 + 180 * DAY) == "at_risk"
    assert stage(shop, T0 + 180 * DAY + US) == "lapsed"


def test_a_repeat_buyer_is_at_risk_against_their_own_rhythm() -> None:
    shop = Shop().customer("c1").order("o1", "c1", T0).order("o2", "c1", T0 + 40 * DAY)
    # 1.5 x 40 = 60 days after the last order
    assert stage(shop, T0 + 100 * DAY) == "returning"
    assert stage(shop, T0 + 100 * DAY + US) == "at_risk"


def test_ambassadors_reviewed_or_referred_but_at_risk_comes_first() -> None:
    base = Shop().customer("c1").order("o1", "c1", T0)
    assert stage(base.review("c1", "p1", T0 + 20 * DAY), T0 + 30 * DAY) == "ambassador"
    referred = Shop().customer("c1").order("o1", "c1", T0).advocate("c1")
    assert stage(referred, T0 + 30 * DAY) == "ambassador"
    assert stage(referred, T0 + 91 * DAY) == "at_risk"
    later = Shop().customer("c1").order("o1", "c1", T0).review("c1", "p1", T0 + 40 * DAY)
    assert stage(later, T0 + 30 * DAY) == "new"  # the review came after as_of


# -- RFM ----------------------------------------------------------------------------------------


def test_rfm_scores_by_quintile_and_the_shopify_groups() -> None:
    shop = Shop()
    for i in range(5):  # customer k<i>: i + 1 orders, the last one i x 10 days ago... reversed
        cid = f"k{i}"
        shop.customer(cid)
        for n in range(i + 1):
            shop.order(f"{cid}-{n}", cid, T0 + (10 * i + n) * DAY, [("p", 1, str(10 * (i + 1)))])
    shop.customer("none")
    rows = stages(shop, T0 + 60 * DAY)
    scores = {
        c: (r["recency_score"], r["frequency_score"], r["monetary_score"]) for c, r in rows.items()
    }
    assert scores["k0"] == (1, 1, 1) and scores["k4"] == (5, 5, 5) and scores["k2"] == (3, 3, 3)
    groups = {c: r["rfm_group"] for c, r in rows.items()}
    assert groups == {
        "k0": "dormant",
        "k1": "almost_lost",
        "k2": "needs_attention",
        "k3": "loyal",
        "k4": "champions",
        "none": "prospects",
    }
    assert scores["none"] == (None, None, None)


def test_tied_customers_share_the_lowest_quintile() -> None:
    shop = Shop()
    for i in range(5):
        shop.customer(f"k{i}").order(f"o{i}", f"k{i}", T0 + i * DAY)  # one order each
    rows = stages(shop, T0 + 10 * DAY)
    assert {r["frequency_score"] for r in rows.values()} == {1}
    assert {r["monetary_score"] for r in rows.values()} == {1}
    assert [rows[f"k{i}"]["recency_score"] for i in range(5)] == [1, 2, 3, 4, 5]
