"""Expiry in columns at month ends (the calendar clamps Jan 31 + 1 month to Feb 28/29) and
leap days, against the rules: the columns skip the calendar for moments nearer than 28 days a
month to the next one or to ``as_of`` (8cad242); an activity at a month's end, another or
``as_of`` exactly at its expiry, a micro before or after, must expire as the rules do."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from shopsync._instants import to_micros
from shopsync.core.loyalty_records import UNIT, add_months
from shopsync.core.loyalty_shop import LoyaltyTables
from shopsync.core.policy import Policy
from tests.core.test_loyalty_columns_oracle import EXAMPLES, ORDER_SCHEMA, _derive

CUSTOMERS = ["c0", "c1"]


def _end(year: int, month: int, back: int) -> int:
    """Noon UTC ``back`` days before the first of the month after ``month`` of ``year``."""
    first = dt.date(year + month // 12, month % 12 + 1, 1)
    day = first - dt.timedelta(days=back)
    return to_micros(dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.timezone.utc))


month_ends = st.builds(
    _end, st.integers(2023, 2025), st.integers(1, 12), st.integers(1, 4)
).flatmap(lambda t: st.sampled_from([t, t + 1, t - 1, t + 12 * 3600 * 10**6 - 1]))


@st.composite
def cases(draw: st.DrawFn) -> tuple[LoyaltyTables, Policy, int]:
    months = draw(st.sampled_from([1, 2, 3, 12, 13]))
    rows: list[dict[str, Any]] = []
    for n in range(draw(st.integers(1, 6))):
        created = draw(month_ends)
        if rows and draw(st.booleans()):  # the next activity exactly at (or by) an expiry
            created = add_months(rows[-1]["created_at"], months) + draw(st.sampled_from([-1, 0, 1]))
        rows.append(
            {
                "id": f"o{n}",
                "customer_id": draw(st.sampled_from(CUSTOMERS)),
                "created_at": created,
                "paid_at": created,
                "processed_at": created,
                "cancelled_at": None,
                "financial_status": "paid",
                "currency": "USD",
                "total": 40 * UNIT,
                "subtotal": 40 * UNIT,
                "total_shipping": 0,
            }
        )
    last = max(r["created_at"] for r in rows)
    at = draw(
        month_ends.map(lambda t: max(t, last))
        | st.sampled_from(rows).flatmap(
            lambda r: st.sampled_from([-1, 0, 1]).map(
                lambda d: add_months(r["created_at"], months) + d
            )
        )
    )
    policy = Policy.from_dict(
        {
            "currency": "USD",
            "loyalty": {
                "earn": {"pending_days": draw(st.sampled_from([0, 3]))},
                "expiry": {"inactivity_months": months, "warn_days_before": [30, 7, 0]},
            },
        }
    )
    orders = pl.DataFrame(rows, schema=ORDER_SCHEMA)
    refunds = pl.DataFrame(
        schema={"order_id": pl.String, "id": pl.String, "created_at": pl.Int64, "amount": pl.Int64}
    )
    customers = pl.DataFrame(
        {
            "id": CUSTOMERS,
            "birthday": [None] * len(CUSTOMERS),
            "updated_at": [0] * len(CUSTOMERS),
            "email": [f"{c}@example.com" for c in CUSTOMERS],
        },
        schema={"id": pl.String, "birthday": pl.String, "updated_at": pl.Int64, "email": pl.String},
    )
    return LoyaltyTables(orders, refunds, customers), policy, at


@settings(max_examples=max(40, EXAMPLES), deadline=None)
@given(case=cases())
def test_the_columns_expire_at_month_ends_as_the_rules_do(
    case: tuple[LoyaltyTables, Policy, int],
) -> None:
    tables, policy, at = case
    _, columns = _derive(tables, [], policy, at, "columns")
    _, rules = _derive(tables, [], policy, at, "rules")
    assert columns == rules
