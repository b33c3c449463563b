"""The pure planner on frames built by hand: no store, no emulator (issue 18, item 3).

One customer bought four bags of coffee at T0; ninety days later win-back (stage 1) and the
replenishment reminder (4 x 21 days - 5) are both due, and the safety rules decide.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from shopsync._instants import to_micros
from shopsync.core._data import Frames
from shopsync.core.actions import LoyaltyAward
from shopsync.core.planner import Plan, in_holdout, plan_frames
from shopsync.core.policy import Policy

T0 = dt.datetime(2024, 3, 1, 12, tzinfo=dt.timezone.utc)
AT = T0 + dt.timedelta(days=90)  # 12:00 UTC
US = to_micros(T0)
INT, STR = pl.Int64, pl.String


def frame(rows: list[tuple[Any, ...]], **schema: Any) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=schema, orient="row")


def shop(
    consent: str = "subscribed",
    sent: list[tuple[str, str, int]] | None = None,
    suppressed: tuple[str, ...] = (),
    customer: str = "c1",
) -> Frames:
    """The shop's frames at :data:`AT`; ``sent``: the outbox's done marketing messages."""
    return Frames(
        platform="shopify",
        shop="acme",
        as_of=to_micros(AT),
        currency="USD",
        customers=frame(
            [(customer, US - 400 * 86_400_000_000, None)], id=STR, created_at=INT, birthday=STR
        ),
        orders=frame(
            [("o1", customer, US, US, US, None, "paid", "fulfilled", "USD", 360_000, None)],
            id=STR,
            customer_id=STR,
            created_at=INT,
            paid_at=INT,
            processed_at=INT,
            cancelled_at=INT,
            financial_status=STR,
            fulfillment_status=STR,
            currency=STR,
            total=INT,
            ship_country=STR,
        ),
        refunds=frame([], order_id=STR, created_at=INT, amount=INT),
        lines=frame(
            [("o1", "beans", None, "Coffee", 40_000, 90_000, 0)],
            order_id=STR,
            product_id=STR,
            sku=STR,
            product_type=STR,
            quantity=INT,
            unit_price=INT,
            refunded_quantity=INT,
        ),
        fulfillments=frame(
            [("o1", US, "success", None)],
            order_id=STR,
            created_at=INT,
            status=STR,
            delivered_at=INT,
        ),
        consent=frame(
            [(customer, "email", US - 1, consent)],
            customer_id=STR,
            channel=STR,
            observed_at=INT,
            state=STR,
        ),
        products=frame([], id=STR, product_type=STR, tags=pl.List(STR), status=STR),
        reviews=frame([], customer_id=STR, product_id=STR, reviewed_at=INT),
        advocates=frame([], customer_id=STR),
        sent=frame(sent or [], customer_id=STR, key=STR, at=INT),
        suppressed=frame([(c,) for c in suppressed], customer_id=STR),
        future_orders=0,
    )


def policy(**sections: Any) -> Policy:
    data: dict[str, Any] = {
        "loyalty": {"enabled": False},
        "reviews": {"enabled": False},
        "holdout": {"share": 0},
        "replenishment": {"usage_days_by_type": {"Coffee": 21}},
    }
    for name, value in sections.items():
        data[name] = {**data.get(name, {}), **value}
    return Policy.from_dict(data)


def kinds(plan: Plan) -> list[str]:
    return [a.kind for a in plan]


def held(plan: Plan) -> list[tuple[str, str]]:
    return sorted((h.action.kind, h.rule) for h in plan.held)


def test_priority_and_the_cap_choose_one_of_two_candidates() -> None:
    result = plan_frames(shop(), policy(), AT)
    assert kinds(result) == ["replenishment"]  # the default priority puts it first
    assert held(result) == [("winback", "frequency_cap")]
    flipped = plan_frames(shop(), policy(messaging={"priority": ["winback"]}), AT)
    assert kinds(flipped) == ["winback"] and held(flipped) == [("replenishment", "frequency_cap")]
    uncapped = plan_frames(shop(), policy(frequency_cap={"email_hours": 0}), AT)
    assert sorted(kinds(uncapped)) == ["replenishment", "winback"] and uncapped.held == ()


def test_a_customer_without_consent_gets_no_marketing() -> None:
    for state in ("not_subscribed", "unsubscribed", "unknown"):
        result = plan_frames(shop(consent=state), policy(), AT)
        assert len(result) == 0
        assert held(result) == [("replenishment", "consent"), ("winback", "consent")]
    soft = plan_frames(
        shop(consent="not_subscribed"), policy(consent={"allow_soft_opt_in": True}), AT
    )
    assert kinds(soft) == ["replenishment"]  # a buyer who never said no, with soft opt-in


def test_an_unsubscribed_customer_is_held_even_when_the_shop_says_subscribed() -> None:
    result = plan_frames(shop(suppressed=("c1",)), policy(), AT)
    assert len(result) == 0 and {rule for _, rule in held(result)} == {"suppressed"}


def test_a_holdout_customer_gets_none() -> None:
    pol = policy(holdout={"share": 0.5, "salt": "s"})
    inside = next(c for c in (f"c{i}" for i in range(100)) if in_holdout(pol, "shopify", "acme", c))
    outside = next(
        c for c in (f"c{i}" for i in range(100)) if not in_holdout(pol, "shopify", "acme", c)
    )
    result = plan_frames(shop(customer=inside), pol, AT)
    assert len(result) == 0 and {rule for _, rule in held(result)} == {"holdout"}
    assert kinds(plan_frames(shop(customer=outside), pol, AT)) == ["replenishment"]


def test_quiet_hours_defer_marketing() -> None:
    result = plan_frames(shop(), policy(quiet={"hours": [11, 13], "timezone": "UTC"}), AT)
    assert len(result) == 0 and {rule for _, rule in held(result)} == {"quiet"}
    overnight = policy(quiet={"hours": [13, 11], "timezone": "UTC"})  # 12:00 is outside
    assert kinds(plan_frames(shop(), overnight, AT)) == ["replenishment"]


def test_a_delivery_in_the_outbox_counts_against_the_cap() -> None:
    an_hour_ago = to_micros(AT) - 3_600_000_000
    result = plan_frames(shop(sent=[("c1", "winback:earlier", an_hour_ago)]), policy(), AT)
    assert len(result) == 0
    assert held(result) == [("replenishment", "frequency_cap"), ("winback", "frequency_cap")]


def test_loyalty_notices_are_passed_in_and_the_caller_notes_kept() -> None:
    notice = LoyaltyAward(
        platform="shopify",
        shop="acme",
        customer_id="c1",
        idempotency_key="loyalty_award:acme:o1",
        due_at=AT,
        reason="earned 36 points on o1",
        points=36,
        order_id="o1",
    )
    off = plan_frames(shop(), policy(), AT, loyalty=[notice], notes=["ledger stale"])
    assert "loyalty_award" not in kinds(off) and off.notes[-1] == "ledger stale"
    on = plan_frames(
        shop(consent="unsubscribed"), policy(loyalty={"enabled": True}), AT, loyalty=[notice]
    )
    assert kinds(on) == ["loyalty_award"]  # transactional: no consent needed
