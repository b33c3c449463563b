"""One customer's loyalty notices from hand-built frames: no store, no emulator."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import polars as pl

from shopsync.core._loyalty_one import actions_for, in_a_referral
from shopsync.core.loyalty import DAY, to_micros
from shopsync.core.policy import Policy

AT = to_micros(dt.datetime(2024, 6, 1, 12, tzinfo=dt.timezone.utc))
RULES = Policy.from_dict({"loyalty": {"tiers": {"tiers": []}}})


def frames(*orders: tuple[str, int, int], refunds: tuple[tuple[str, int, int], ...] = ()) -> Any:
    """Orders as (id, paid micros, subtotal in ten-thousandths), all of customer c1 in USD;
    refunds as (order id, micros, amount)."""
    rows = [
        {
            "id": oid,
            "customer_id": "c1",
            "created_at": paid,
            "paid_at": paid,
            "processed_at": paid,
            "cancelled_at": None,
            "financial_status": "paid",
            "currency": "USD",
            "subtotal": amount,
            "total_shipping": 0,
            "total_tax": 0,
            "total": amount,
        }
        for oid, paid, amount in orders
    ]
    refund_rows = [
        {"order_id": oid, "id": f"r-{oid}", "created_at": at, "amount": amount}
        for oid, at, amount in refunds
    ]
    return {
        "orders": pl.DataFrame(rows, schema_overrides={"cancelled_at": pl.Int64}),
        "refunds": pl.DataFrame(
            refund_rows,
            schema={
                "order_id": pl.String,
                "id": pl.String,
                "created_at": pl.Int64,
                "amount": pl.Int64,
            },
        ),
    }


def plan(data: Any, inputs: tuple[Any, ...] | list[Any] = ()) -> list[Any]:
    return actions_for(data, inputs, RULES, AT, "shopify", "acme", "c1", currency="USD")


def test_an_order_paid_in_the_window_earns_an_award_keyed_by_the_order() -> None:
    (award,) = plan(frames(("o1", AT - 2 * DAY, 400_000)))  # 40.00 USD
    assert award.kind == "loyalty_award" and award.order_id == "o1"
    assert award.points == 200 and award.idempotency_key == "loyalty_award:acme:o1"  # 5 a unit


def test_an_order_before_the_lookback_was_announced_by_an_earlier_plan() -> None:
    assert plan(frames(("o1", AT - 30 * DAY, 400_000))) == []


def test_an_order_in_another_currency_earns_nothing() -> None:
    data = frames(("o1", AT - 2 * DAY, 400_000))
    data["orders"] = data["orders"].with_columns(pl.lit("EUR").alias("currency"))
    assert plan(data) == []


def test_the_customers_own_inputs_count_and_no_one_elses() -> None:
    data = frames(("o1", AT - 2 * DAY, 400_000))
    birthday = SimpleNamespace(
        customer_id="c1",
        kind="birthday",
        key="birthday:c1",
        occurred_at=AT - 200 * DAY,
        data={"birthday": "1990-05-31"},  # the day before AT: inside the 7-day window
    )
    someone_else = SimpleNamespace(**{**vars(birthday), "customer_id": "c2", "key": "b:c2"})
    assert sorted(a.points for a in plan(data, [birthday, someone_else])) == [200, 500]
    assert [a.points for a in plan(data, [someone_else])] == [200]


def test_a_referral_involves_its_advocate_and_its_friend_by_id_or_email() -> None:
    rows = [
        SimpleNamespace(customer_id="adv", data={"friend_id": "f1"}),
        SimpleNamespace(customer_id="adv2", data={"friend_email": "f2@example.com"}),
    ]
    assert in_a_referral("adv", None, rows) and in_a_referral("f1", None, rows)
    assert in_a_referral("f2", "f2@example.com", rows)
    assert not in_a_referral("f2", None, rows) and not in_a_referral("c9", "c9@x.org", rows)
