"""The pure loyalty rules: one customer's history in, ledger entries out."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction
from typing import ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shopsync.core.loyalty import (
    DAY,
    UNIT,
    Adjustment,
    BirthdayInput,
    Bonus,
    Derivation,
    History,
    OrderFacts,
    Person,
    Redemption,
    Referral,
    add_months,
    derive,
    judge_referrals,
    round_half_up,
    source_key,
    to_micros,
)
from shopsync.core.policy import LoyaltySettings, Policy

T0 = to_micros(dt.datetime(2024, 1, 10, tzinfo=dt.timezone.utc))
DEFAULT = Policy().loyalty
NO_TIERS = Policy.from_dict({"loyalty": {"tiers": {"tiers": []}}}).loyalty


def order(
    oid: str,
    at: int,
    value: str = "10",
    *,
    total: str | None = None,
    currency: str = "USD",
    refunds: tuple[tuple[str, int, str], ...] = (),
    cancelled: int | None = None,
    paid: bool = True,
    categories: tuple[str, ...] = (),
) -> OrderFacts:
    units = int(Decimal(value) * UNIT)
    return OrderFacts(
        oid,
        at,
        at if paid else None,
        cancelled,
        currency,
        units,
        int(Decimal(total) * UNIT) if total is not None else units,
        tuple((rid, when, int(Decimal(amount) * UNIT)) for rid, when, amount in refunds),
        categories,
    )


def run(history: History, as_of: int, rules: LoyaltySettings = NO_TIERS) -> Derivation:
    return derive(history, rules, as_of, currency="USD")


def kinds(d: Derivation) -> list[tuple[str, int, int]]:
    return [(e.kind, e.pending, e.approved) for e in d.entries]


class TestEarning:
    def test_points_per_unit_rounded_half_up(self) -> None:
        # 10.10 * 5 = 50.5 -> 51; 10.09 * 5 = 50.45 -> 50
        d = run(History("c", (order("1", T0, "10.10"), order("2", T0 + 1, "10.09"))), T0 + 1)
        assert [e.pending for e in d.entries] == [51, 50]

    def test_shipping_and_tax_are_configurable(self) -> None:
        facts = order("1", T0, "10")
        assert run(History("c", (facts,)), T0).entries[0].pending == 50

    def test_pending_for_the_return_window_then_approved(self) -> None:
        h = History("c", (order("1", T0, "10"),))
        assert kinds(run(h, T0 + 14 * DAY - 1)) == [("earn", 50, 0)]
        d = run(h, T0 + 14 * DAY)
        assert kinds(d) == [("earn", 50, 0), ("approve", -50, 50)]
        assert (d.pending, d.approved) == (0, 50)

    def test_no_pending_window(self) -> None:
        rules = NO_TIERS.model_copy(
            update={"earn": NO_TIERS.earn.model_copy(update={"pending_days": 0})}
        )
        assert kinds(run(History("c", (order("1", T0),)), T0, rules)) == [("earn", 0, 50)]

    def test_zero_value_earns_nothing_and_negative_is_a_note(self) -> None:
        d = run(History("c", (order("1", T0, "0"), order("2", T0, "-5"))), T0 + 30 * DAY)
        assert d.entries == []
        assert [n.order_id for n in d.notes] == ["2"]

    def test_other_currency_is_quarantined_with_a_reason(self) -> None:
        d = run(History("c", (order("1", T0, "10", currency="EUR"),)), T0 + 30 * DAY)
        assert d.entries == []
        assert "EUR" in d.notes[0].reason and "USD" in d.notes[0].reason

    def test_unpaid_and_cancelled_before_payment_earn_nothing(self) -> None:
        d = run(
            History("c", (order("1", T0, paid=False), order("2", T0, cancelled=T0 - 1))),
            T0 + 30 * DAY,
        )
        assert d.entries == []


class TestClawBack:
    def test_refund_inside_window_takes_pending_points_proportionally(self) -> None:
        h = History("c", (order("1", T0, "20", total="25", refunds=(("r", T0 + DAY, "5"),)),))
        d = run(h, T0 + 20 * DAY)
        # 100 points; 5 of 25 refunded = 20 points back, 80 approved
        assert kinds(d) == [("earn", 100, 0), ("clawback", -20, 0), ("approve", -80, 80)]

    def test_refund_after_approval_takes_approved_points(self) -> None:
        h = History("c", (order("1", T0, "20", refunds=(("r", T0 + 20 * DAY, "20"),)),))
        assert kinds(run(h, T0 + 30 * DAY))[-1] == ("clawback", 0, -100)

    def test_refunds_beyond_the_total_take_back_everything_once(self) -> None:
        h = History(
            "c",
            (order("1", T0, "10", refunds=(("a", T0 + DAY, "8"), ("b", T0 + 2 * DAY, "8"))),),
        )
        d = run(h, T0 + 30 * DAY)
        assert kinds(d) == [("earn", 50, 0), ("clawback", -40, 0), ("clawback", -10, 0)]
        assert "exceed" in d.notes[0].reason

    def test_cancellation_voids_what_is_left(self) -> None:
        h = History(
            "c",
            (order("1", T0, "10", refunds=(("a", T0 + DAY, "2"),), cancelled=T0 + 2 * DAY),),
        )
        d = run(h, T0 + 30 * DAY)
        assert kinds(d) == [("earn", 50, 0), ("clawback", -10, 0), ("clawback", -40, 0)]
        assert d.entries[-1].key == "clawback:c:1:cancel"


class TestExpiryAndSpending:
    def test_expiry_after_twelve_months_without_activity(self) -> None:
        h = History("c", (order("1", T0, "100"),))
        expiry = add_months(T0, 12)
        assert run(h, expiry - 1).approved == 500
        d = run(h, expiry)
        assert kinds(d)[-1] == ("expire", 0, -500)
        assert d.entries[-1].key == f"expire:c:{expiry}"

    def test_spending_restarts_the_clock(self) -> None:
        redemption = Redemption("r1", T0 + 200 * DAY, 500)
        h = History("c", (order("1", T0, "200"),), redemptions=(redemption,))
        d = run(h, add_months(T0, 12) + DAY)
        assert [e.kind for e in d.entries] == ["earn", "approve", "redeem"]
        assert d.expires_at == add_months(redemption.at, 12)

    def test_spending_takes_the_oldest_points_first(self) -> None:
        h = History(
            "c",
            (order("1", T0, "100"), order("2", T0 + DAY, "100")),
            redemptions=(Redemption("r1", T0 + 30 * DAY, 600),),
        )
        redeem = run(h, T0 + 30 * DAY).entries[-1]
        assert redeem.detail["from"] == [["approve:c:1", 500], ["approve:c:2", 100]]

    def test_adjustments_and_bonuses(self) -> None:
        h = History(
            "c",
            adjustments=(Adjustment("t-1", T0, -30, "goodwill reversed"),),
            bonuses=(Bonus("bonus:referral:x:friend", T0, 100, "referral"),),
        )
        d = run(h, T0)
        assert kinds(d) == [("bonus", 0, 100), ("adjust", 0, -30)]


class TestTiers:
    RULES = Policy.from_dict(
        {
            "loyalty": {
                "tiers": {
                    "tiers": [
                        {"name": "Member", "threshold": 0},
                        {"name": "Gold", "threshold": 100, "multiplier": "2"},
                    ]
                }
            }
        }
    ).loyalty

    def test_promotion_then_multiplier_then_silent_demotion(self) -> None:
        h = History("c", (order("1", T0, "100"), order("2", T0 + 30 * DAY, "10")))
        d = run(h, add_months(T0, 13), self.RULES)
        earn = [e.pending for e in d.entries if e.kind == "earn"]
        assert earn == [500, 100]  # the promoting order at 1x, the next one at 2x
        assert [(c.to_tier, c.promoted) for c in d.tier_changes] == [
            ("Gold", True),
            ("Member", False),
        ]
        assert d.tier_changes[1].at == add_months(T0, 12)  # kept 12 months from entry
        assert d.tier == "Member"

    def test_requalifying_at_expiry_keeps_the_tier(self) -> None:
        h = History("c", (order("1", T0, "100"), order("2", T0 + 300 * DAY, "100")))
        d = run(h, add_months(T0, 13), self.RULES)
        assert [c.to_tier for c in d.tier_changes] == ["Gold"]
        assert d.tier == "Gold" and d.tier_until == add_months(add_months(T0, 12), 12)


class TestBirthday:
    def test_paid_on_the_day_once_a_year(self) -> None:
        entered = to_micros(dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc))
        h = History("c", birthdays=(BirthdayInput(entered, 6, 15),))
        d = run(h, to_micros(dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)))
        assert [e.key for e in d.entries if e.kind == "bonus"] == [
            "bonus:birthday:c:2023-06-15",
            "bonus:birthday:c:2024-06-15",
        ]

    def test_entered_within_30_days_pays_next_year(self) -> None:
        entered = to_micros(dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc))
        h = History("c", birthdays=(BirthdayInput(entered, 6, 15),))
        d = run(h, to_micros(dt.datetime(2025, 7, 1, tzinfo=dt.timezone.utc)))
        assert [e.key for e in d.entries] == ["bonus:birthday:c:2025-06-15"]

    def test_changing_the_date_does_not_pay_twice_in_365_days(self) -> None:
        first = to_micros(dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc))
        moved = to_micros(dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc))
        h = History("c", birthdays=(BirthdayInput(first, 2, 1), BirthdayInput(moved, 9, 1)))
        d = run(h, to_micros(dt.datetime(2024, 12, 31, tzinfo=dt.timezone.utc)))
        assert [e.key for e in d.entries if e.kind == "bonus"] == [
            "bonus:birthday:c:2023-02-01",
            "bonus:birthday:c:2024-02-01",
        ]

    def test_leap_day(self) -> None:
        entered = to_micros(dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc))
        h = History("c", birthdays=(BirthdayInput(entered, 2, 29),))
        d = run(h, to_micros(dt.datetime(2021, 12, 1, tzinfo=dt.timezone.utc)))
        assert [e.key for e in d.entries][-1] == "bonus:birthday:c:2021-02-28"


class TestReferrals:
    PEOPLE: ClassVar[dict[str, Person]] = {
        "adv": Person("adv", "ann.lee@example.com", "ann lee", "1 oak st 97201 us"),
        "fr": Person("fr", "bob@example.com", "bob day", "2 elm st 10001 us"),
        "twin": Person("twin", "annlee+x@example.com", "someone", None),
        "same": Person("same", "c@example.com", "ann lee", None),
    }

    def judge(
        self, refs: list[Referral], orders: dict[str, tuple[OrderFacts, ...]], as_of: int
    ) -> tuple[list[str], dict[str, list[Bonus]]]:
        outcomes, bonuses = judge_referrals(
            refs, self.PEOPLE, orders, {"bob@example.com": "fr"}, DEFAULT, as_of, currency="USD"
        )
        return [f"{o.status}: {o.reason}" for o in outcomes], bonuses

    def test_rewarded_after_the_friends_first_order_is_approved(self) -> None:
        ref = Referral("r1", "adv", T0, friend_email="Bob@example.com")
        orders = {"fr": (order("9", T0 + DAY, "30"),)}
        status, _ = self.judge([ref], orders, T0 + 10 * DAY)
        assert status == ["waiting: order in its return window"]
        status, bonuses = self.judge([ref], orders, T0 + 15 * DAY)
        assert status == ["rewarded: "]
        # 15 % of 30.00 = 4.50 = 450 points each
        assert [(b.points, b.at) for b in bonuses["adv"]] == [(450, T0 + 15 * DAY)]
        assert bonuses["fr"][0].key == "bonus:referral:r1:friend"

    @pytest.mark.parametrize(
        ("friend", "reason"),
        [
            ("adv", "the friend is the advocate"),
            ("twin", "same email"),
            ("same", "same name"),
        ],
    )
    def test_self_referral_is_blocked(self, friend: str, reason: str) -> None:
        status, bonuses = self.judge(
            [Referral("r1", "adv", T0, friend_id=friend)],
            {friend: (order("9", T0 + DAY),)},
            T0 + 30 * DAY,
        )
        assert status[0].startswith("blocked") and reason in status[0]
        assert bonuses == {}

    def test_not_the_friends_first_order(self) -> None:
        status, _ = self.judge(
            [Referral("r1", "adv", T0, friend_id="fr")],
            {"fr": (order("8", T0 - DAY), order("9", T0 + DAY))},
            T0 + 30 * DAY,
        )
        assert status == ["blocked: not the friend's first order"]

    def test_too_many_referrals_in_a_week(self) -> None:
        refs = [Referral(f"r{i}", "adv", T0 + i, friend_email=f"f{i}@x.io") for i in range(11)]
        status, _ = self.judge(refs, {}, T0 + DAY)
        assert status[:9] == ["blocked: the friend has no customer account to credit"] * 9
        assert all("too many referrals" in s for s in status[9:])

    def test_refunded_first_order_earns_nothing(self) -> None:
        ref = Referral("r1", "adv", T0, friend_id="fr")
        orders = {"fr": (order("9", T0 + DAY, "30", refunds=(("x", T0 + 2 * DAY, "30"),)),)}
        status, bonuses = self.judge([ref], orders, T0 + 30 * DAY)
        assert status == ["blocked: order refunded"] and bonuses == {}


def test_category_bonus_for_a_first_order_in_a_category() -> None:
    rules = Policy.from_dict(
        {"loyalty": {"category_bonus": {"points": 25}, "tiers": {"tiers": []}}}
    )
    h = History(
        "c",
        (
            order("1", T0, categories=("Tea",)),
            order("2", T0 + DAY, categories=("Tea",)),
            order("3", T0 + 2 * DAY, categories=("Tea", "Coffee")),
        ),
    )
    d = run(h, T0 + 30 * DAY, rules.loyalty)
    assert [e.key for e in d.entries if e.kind == "bonus"] == [
        "bonus:category:c:1",
        "bonus:category:c:3",
    ]


def test_helpers() -> None:
    assert round_half_up(Fraction(5, 2)) == 3
    assert round_half_up(Fraction(-5, 2)) == -3
    assert round_half_up(Fraction(249, 100)) == 2
    jan31 = to_micros(dt.datetime(2023, 1, 31, tzinfo=dt.timezone.utc))
    assert add_months(jan31, 1) == to_micros(dt.datetime(2023, 2, 28, tzinfo=dt.timezone.utc))
    assert len(source_key("earn", "x" * 300)) <= 255


# -- recomputing from scratch equals building event by event --------------------------------

instants = st.integers(min_value=0, max_value=900).map(lambda d: T0 + d * DAY // 3)


@st.composite
def histories(draw: st.DrawFn) -> History:
    orders = []
    for i in range(draw(st.integers(0, 6))):
        at = draw(instants)
        value = draw(st.integers(0, 300_00))
        refunds = tuple(
            (f"r{i}{j}", at + draw(st.integers(0, 40)) * DAY, str(Decimal(amount) / 100))
            for j, amount in enumerate(draw(st.lists(st.integers(1, 200_00), max_size=2)))
        )
        cancelled = draw(st.none() | st.integers(-1, 60).map(lambda d, at=at: at + d * DAY))
        currency = draw(st.sampled_from(["USD", "USD", "USD", "EUR"]))
        categories = tuple(draw(st.lists(st.sampled_from(["Tea", "Coffee", "Home"]), max_size=2)))
        orders.append(
            order(
                f"o{i}",
                at,
                str(Decimal(value) / 100),
                total=str(Decimal(value + draw(st.integers(0, 20_00))) / 100),
                currency=currency,
                refunds=refunds,
                cancelled=cancelled,
                paid=draw(st.integers(0, 4)) > 0,
                categories=categories,
            )
        )
    redemptions = tuple(
        Redemption(f"x{i}", draw(instants), draw(st.sampled_from([500, 1000])))
        for i in range(draw(st.integers(0, 2)))
    )
    adjustments = tuple(
        Adjustment(f"a{i}", draw(instants), draw(st.integers(-300, 300)), "support")
        for i in range(draw(st.integers(0, 2)))
    )
    bonuses = tuple(
        Bonus(f"bonus:referral:b{i}:friend", draw(instants), draw(st.integers(1, 500)), "ref")
        for i in range(draw(st.integers(0, 2)))
    )
    birthdays = tuple(
        BirthdayInput(draw(instants), draw(st.integers(1, 12)), draw(st.integers(1, 28)))
        for _ in range(draw(st.integers(0, 2)))
    )
    return History("c", tuple(orders), birthdays, redemptions, adjustments, bonuses)


def _truncate(history: History, at: int) -> History:
    """The history as a store synced at ``at`` would hold it."""
    orders = []
    for o in history.orders:
        if o.created_at > at:
            continue
        orders.append(
            OrderFacts(
                o.order_id,
                o.created_at,
                o.paid_at if o.paid_at is not None and o.paid_at <= at else None,
                o.cancelled_at if o.cancelled_at is not None and o.cancelled_at <= at else None,
                o.currency,
                o.value,
                o.total,
                tuple(r for r in o.refunds if r[1] <= at),
                o.categories,
            )
        )
    return History(
        history.customer_id,
        tuple(orders),
        tuple(b for b in history.birthdays if b.entered_at <= at),
        tuple(r for r in history.redemptions if r.at <= at),
        tuple(a for a in history.adjustments if a.at <= at),
        tuple(b for b in history.bonuses if b.at <= at),
    )


RULE_SETS = [
    DEFAULT,
    Policy.from_dict(
        {
            "loyalty": {
                "expiry": {"inactivity_months": 3},
                "category_bonus": {"points": 40},
                "tiers": {
                    "metric": "points",
                    "hold_months": 2,
                    "tiers": [
                        {"name": "A", "threshold": 0},
                        {"name": "B", "threshold": 300, "multiplier": "1.5"},
                        {"name": "C", "threshold": 2000, "multiplier": "3"},
                    ],
                },
            }
        }
    ).loyalty,
    Policy.from_dict({"loyalty": {"tiers": {"window": "calendar_year"}}}).loyalty,
    Policy.from_dict(  # VIP milestones: order counts, anniversaries, progress notices
        {
            "loyalty": {
                "expiry": {"inactivity_months": 6},
                "milestones": {
                    "orders": [{"orders": 1, "points": 100}, {"orders": 3, "points": 300}],
                    "anniversary_points": 200,
                    "progress_within_percent": 50,
                },
                "tiers": {
                    "metric": "points",
                    "hold_months": 3,
                    "tiers": [{"name": "A", "threshold": 0}, {"name": "B", "threshold": 400}],
                },
            }
        }
    ).loyalty,
    Policy.from_dict(  # approved at payment: category and order milestones paid then
        {
            "loyalty": {
                "earn": {"pending_days": 0},
                "category_bonus": {"points": 30},
                "milestones": {"orders": [{"orders": 2, "points": 50}]},
            }
        }
    ).loyalty,
]


@settings(max_examples=150)
@given(history=histories(), rules=st.sampled_from(RULE_SETS), extra=st.lists(instants, max_size=4))
def test_recompute_equals_incremental(
    history: History, rules: LoyaltySettings, extra: list[int]
) -> None:
    final = T0 + 1200 * DAY
    moments = {final, *extra}
    for o in history.orders:
        moments.update(t for t in (o.paid_at, o.cancelled_at) if t is not None)
        moments.update(r[1] for r in o.refunds)
        if o.paid_at is not None:
            moments.add(o.paid_at + 14 * DAY)
    for group in (history.redemptions, history.adjustments, history.bonuses):
        moments.update(item.at for item in group)
    ledger: dict[str, object] = {}
    for at in sorted(moments):
        for entry in derive(_truncate(history, at), rules, at, currency="USD").entries:
            seen = ledger.setdefault(entry.key, entry)
            assert seen == entry, "an entry changed after it was written"
    scratch = derive(history, rules, final, currency="USD").entries
    assert {e.key: e for e in scratch} == ledger
    assert len(scratch) == len(ledger)  # keys are unique


@settings(max_examples=150)
@given(
    history=histories(),
    rules=st.sampled_from(RULE_SETS),
    at=instants,
    later=st.integers(1, 800 * DAY),
)
def test_a_ledger_stays_current_until_its_next_change(
    history: History, rules: LoyaltySettings, at: int, later: int
) -> None:
    """Nothing enters the ledger between ``as_of`` and ``next_change``: a ledger derived at
    ``as_of`` from unchanged data is what a derivation at any moment before then gives."""
    first = derive(history, rules, at, currency="USD")
    moment = at + later
    if first.next_change is not None:
        assert first.next_change > at
        moment = min(moment, first.next_change - 1)
    again = derive(history, rules, moment, currency="USD")
    assert again.entries == first.entries
    assert (again.approved, again.pending) == (first.approved, first.pending)
    assert again.tier == first.tier


def test_next_change_names_the_approval_expiry_and_birthday() -> None:
    paid = order("1", T0, "10")
    d = run(History("c", (paid,)), T0 + DAY)
    assert d.next_change == T0 + 14 * DAY  # the approval at the end of the return window
    d = run(History("c", (paid,)), T0 + 20 * DAY)
    assert d.next_change == add_months(T0, 12)  # the expiry of the approved points
    birthday = BirthdayInput(T0 - 400 * DAY, 3, 1)
    d = run(History("c", birthdays=(birthday,)), T0)
    assert d.next_change == to_micros(dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc))
    assert run(History("c"), T0).next_change is None


def test_category_bonus_without_a_return_window() -> None:
    """With ``pending_days = 0`` points are approved at payment: the bonus is paid then."""
    rules = Policy.from_dict(
        {
            "loyalty": {
                "earn": {"pending_days": 0},
                "category_bonus": {"points": 25},
                "tiers": {"tiers": []},
            }
        }
    )
    h = History(
        "c",
        (order("1", T0, categories=("Tea",)), order("2", T0 + DAY, categories=("Tea", "Cups"))),
    )
    d = run(h, T0 + 2 * DAY, rules.loyalty)
    assert [(e.key, e.at) for e in d.entries if e.kind == "bonus"] == [
        ("bonus:category:c:1", T0),
        ("bonus:category:c:2", T0 + DAY),
    ]
