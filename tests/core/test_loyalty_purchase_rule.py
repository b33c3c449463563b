"""The loyalty derivation and the features judge an order a purchase by one rule
(:func:`shopsync.core.features.counts_as_purchase`), on hand-built frames."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from shopsync.core import loyalty as rules
from shopsync.core._data import Frames, paid_orders
from shopsync.core.loyalty import DAY, UNIT, to_micros
from shopsync.core.loyalty_history import facts_by_customer, history_of
from shopsync.core.policy import Policy

AT = to_micros(dt.datetime(2024, 6, 1, 12, tzinfo=dt.timezone.utc))
PAID = AT - 60 * DAY
POLICY = Policy.from_dict({"loyalty": {"tiers": {"tiers": []}}})


def _order(oid: str, subtotal: int, total: int, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": oid,
        "customer_id": "c1",
        "created_at": PAID,
        "paid_at": PAID,
        "processed_at": PAID,
        "cancelled_at": None,
        "financial_status": "paid",
        "currency": "USD",
        "subtotal": subtotal * UNIT,
        "total_shipping": 0,
        "total_tax": 0,
        "total": total * UNIT,
    }
    row.update(extra)
    return row


ORDERS = pl.DataFrame(
    [
        # merchandise worth 40 but a total of zero: not a purchase for the features
        _order("zero-total", 40, 0),
        _order("kept", 30, 30),
        # paid, then cancelled: earned at payment and taken back at the cancellation
        _order("cancelled", 20, 20, cancelled_at=PAID + DAY),
        # cancelled before it was paid: never a purchase
        _order("void", 50, 50, cancelled_at=PAID - DAY),
    ],
    schema_overrides={"cancelled_at": pl.Int64},
)
REFUNDS = pl.DataFrame(
    schema={"order_id": pl.String, "id": pl.String, "created_at": pl.Int64, "amount": pl.Int64}
)


def _features_frames() -> Frames:
    empty = pl.DataFrame()
    return Frames(
        platform="shopify",
        shop="s",
        as_of=AT,
        currency="USD",
        customers=pl.DataFrame({"id": ["c1"], "created_at": [PAID], "birthday": [None]}),
        orders=ORDERS,
        refunds=REFUNDS.select("order_id", "created_at", "amount"),
        lines=empty,
        fulfillments=empty,
        consent=empty,
        products=empty,
        reviews=empty,
        advocates=empty,
        sent=None,
        suppressed=empty,
        future_orders=0,
    )


def _earned() -> dict[str, int]:
    facts = facts_by_customer({"orders": ORDERS, "refunds": REFUNDS}, POLICY)
    history = history_of("c1", facts["c1"], {})
    derivation = rules.derive(history, POLICY.loyalty, AT, currency="USD")
    return {
        e.order_id or "": e.pending + e.approved for e in derivation.entries if e.kind == "earn"
    }


def test_an_order_the_features_do_not_count_earns_no_points() -> None:
    counted = set(paid_orders(_features_frames())["id"].to_list())
    assert counted == {"kept"}
    earned = _earned()
    assert "zero-total" not in earned
    assert "void" not in earned
    assert earned["kept"] == 30 * POLICY.loyalty.earn.points_per_unit


def test_a_cancellation_after_payment_is_a_claw_back_not_a_never_purchase() -> None:
    facts = facts_by_customer({"orders": ORDERS, "refunds": REFUNDS}, POLICY)
    derivation = rules.derive(history_of("c1", facts["c1"], {}), POLICY.loyalty, AT, currency="USD")
    cancelled = [
        (e.kind, e.pending + e.approved) for e in derivation.entries if e.order_id == "cancelled"
    ]
    points = 20 * POLICY.loyalty.earn.points_per_unit
    assert cancelled == [("earn", points), ("clawback", -points)]


def test_a_referral_judges_the_friends_first_order_by_the_same_rule() -> None:
    """An order voided before payment (it carries a payment date all the same) is no
    purchase, so it is not the friend's first order: the real one after the referral is."""
    friend = pl.DataFrame(
        [
            _order(
                "void",
                50,
                50,
                customer_id="fr",
                paid_at=PAID - 3 * DAY,
                created_at=PAID - 3 * DAY,
                cancelled_at=PAID - 4 * DAY,
            ),
            _order("first", 30, 30, customer_id="fr"),
        ],
        schema_overrides={"cancelled_at": pl.Int64},
    )
    facts = facts_by_customer({"orders": friend, "refunds": REFUNDS}, POLICY)
    people = {
        "adv": rules.Person("adv", "ann@example.com", "ann lee", None),
        "fr": rules.Person("fr", "bob@example.com", "bob day", None),
    }
    referral = rules.Referral("r1", "adv", PAID - 2 * DAY, friend_id="fr")
    outcomes, bonuses = rules.judge_referrals(
        [referral], people, facts, {}, POLICY.loyalty, AT, currency="USD"
    )
    assert [o.status for o in outcomes] == ["rewarded"]
    assert bonuses["fr"][0].order_id == "first"
