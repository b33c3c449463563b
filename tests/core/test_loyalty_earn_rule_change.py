"""An earn-rule change is not retroactive: points an order earned are a fact.

The ledger keeps each order's earn entry (append-only by source key); a derivation under a
changed earn rule (amounts counted, points per unit) takes those points as they are, and
everything that follows from them (claw-backs, approval, balances) follows from the ledger's
points. Orders not earned yet earn under the current rule. On a real store (SQLite and
PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from shopsync import loyalty
from shopsync.core.policy import Policy
from shopsync.models import Customer, FinancialStatus, Money, Order, Refund
from shopsync.store import Store, ledger

T0 = dt.datetime(2024, 1, 10, 12, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)
P, S = "shopify", "acme"
NARROW = Policy.from_dict({"currency": "USD"})
"""5 points per unit of merchandise: shipping and tax not counted."""
WIDE = Policy.from_dict(
    {
        "currency": "USD",
        "loyalty": {"earn": {"include_shipping": True, "include_tax": True, "points_per_unit": 10}},
    }
)
"""Twice the points per unit, shipping and tax counted."""
WITH_TAX = Policy.from_dict({"currency": "USD", "loyalty": {"earn": {"include_tax": True}}})
WITH_CATEGORY = Policy.from_dict({"currency": "USD", "loyalty": {"category_bonus": {"points": 50}}})
"""The rules derive every customer (the columns do not cover category bonuses)."""


def _customer(cid: str) -> Customer:
    return Customer(
        platform=P,
        shop=S,
        id=cid,
        email=f"{cid}@example.com",
        created_at=T0 - 30 * DAY,
        updated_at=T0 - 30 * DAY,
    )


def _order(
    oid: str, cid: str, at: dt.datetime, subtotal: str, shipping: str = "5", tax: str = "1"
) -> Order:
    m = lambda a: Money.of(a, "USD")  # noqa: E731
    total = Money.of(subtotal, "USD").amount + m(shipping).amount + m(tax).amount
    return Order(
        platform=P,
        shop=S,
        id=oid,
        customer_id=cid,
        created_at=at,
        updated_at=at,
        paid_at=at,
        financial_status=FinancialStatus.PAID,
        currency="USD",
        subtotal=m(subtotal),
        total_discounts=m("0"),
        total_shipping=m(shipping),
        total_tax=m(tax),
        total=m(str(total)),
        total_refunded=m("0"),
    )


def _refunded(order: Order, at: dt.datetime, amount: str) -> Order:
    refund = Refund(id=f"r-{order.id}", created_at=at, amount=Money.of(amount, "USD"))
    return order.model_copy(update={"refunds": (refund,), "updated_at": at})


def _lines(store: Store, cid: str) -> list[tuple[str, str | None, int, int]]:
    return [
        (ln.kind, ln.order_id, ln.pending, ln.approved)
        for ln in loyalty.statement(store, (P, S, cid))
    ]


def _earned(store: Store, policy: Policy, at: dt.datetime) -> Any:
    """The ledger brought up to date under ``policy`` as of ``at``; marked current."""
    loyalty.update_ledger(store, P, S, as_of=at, policy=policy)
    assert loyalty.ledger_status(store, P, S, at, policy=policy) is None
    return loyalty.balance(store, (P, S, "1"), at)


def test_a_refund_after_a_rule_change_takes_back_a_share_of_the_ledger_points(
    store: Store,
) -> None:
    """Half the total refunded takes back half of the 500 points the ledger holds (not half
    of the 1,060 the wider rule would give); the full total, all 500: never below zero."""
    first = _order("o1", "1", T0, "100")  # total 106
    second = _order("o2", "1", T0, "100")
    store.upsert([_customer("1"), first, second])
    assert _earned(store, NARROW, T0 + DAY).pending == 1000
    store.upsert([_refunded(first, T0 + 2 * DAY, "53"), _refunded(second, T0 + 2 * DAY, "106")])
    after = _earned(store, WIDE, T0 + 3 * DAY)
    assert _lines(store, "1") == [
        ("earn", "o1", 500, 0),
        ("earn", "o2", 500, 0),
        ("clawback", "o1", -250, 0),
        ("clawback", "o2", -500, 0),
    ]
    assert (after.pending, after.approved) == (250, 0)
    # the derivation, its balances and its actions agree with the ledger they marked current
    dry = loyalty.update_ledger(store, P, S, as_of=T0 + 3 * DAY, policy=WIDE, dry_run=True)
    assert [a.points for a in dry.actions if a.kind == "loyalty_award"] == [500, 500]


def test_approval_after_a_rule_change_moves_the_ledger_points(store: Store) -> None:
    """Past the return window the rest approved is the ledger's earn, and an order paid
    after the change earns under the new rule."""
    store.upsert([_customer("1"), _order("o1", "1", T0, "100")])
    _earned(store, NARROW, T0 + DAY)
    store.upsert([_order("o2", "1", T0 + 2 * DAY, "100")])
    after = _earned(store, WIDE, T0 + 20 * DAY)
    assert _lines(store, "1") == [
        ("earn", "o1", 500, 0),
        ("earn", "o2", 1060, 0),
        ("approve", "o1", -500, 500),
        ("approve", "o2", -1060, 1060),
    ]
    assert (after.pending, after.approved) == (0, 1560)


def test_a_narrower_rule_takes_no_points_back(store: Store) -> None:
    """Tax no longer counted: the orders earned with it keep their points (one earned on its
    tax alone included) and are approved in full; a new order earns without the tax."""
    store.upsert(
        [
            _customer("1"),
            _order("o1", "1", T0, "100", shipping="0", tax="20"),
            _order("o2", "1", T0, "0", shipping="0", tax="4"),  # its tax alone earns
        ]
    )
    assert _earned(store, WITH_TAX, T0 + DAY).pending == 620
    store.upsert([_order("o3", "1", T0 + 2 * DAY, "10", shipping="0", tax="2")])
    after = _earned(store, NARROW, T0 + 20 * DAY)
    assert _lines(store, "1") == [
        ("earn", "o1", 600, 0),
        ("earn", "o2", 20, 0),
        ("earn", "o3", 50, 0),
        ("approve", "o1", -600, 600),
        ("approve", "o2", -20, 20),
        ("approve", "o3", -50, 50),
    ]
    assert (after.pending, after.approved) == (0, 670)
    # the customer's own derivation (a re-plan after a webhook) reads the same points
    one = loyalty.customer_actions(
        store, P, S, "1", as_of=T0 + 2 * DAY, policy=NARROW, currency="USD"
    )
    assert sorted(a.points for a in one if a.kind == "loyalty_award") == [20, 50, 600]


def test_an_order_that_moved_away_and_back_earns_again_under_the_rule_of_the_day(
    store: Store,
) -> None:
    """Its earlier points were reversed when it left: back with its customer it earns under
    the rule then (the earn of its current generation), and keeps those points after."""
    store.upsert([_customer("1"), _customer("2"), _order("o1", "1", T0, "100")])
    _earned(store, NARROW, T0 + DAY)

    def move(owner: str, day: int, policy: Policy) -> None:
        moved = _order("o1", owner, T0, "100").model_copy(update={"updated_at": T0 + day * DAY})
        store.upsert([moved])
        loyalty.update_ledger(store, P, S, as_of=T0 + (day + 1) * DAY, policy=policy)

    move("2", 2, WIDE)
    assert loyalty.balance(store, (P, S, "2")).pending == 1060  # not earned by "2" before
    move("1", 4, WIDE)
    assert loyalty.balance(store, (P, S, "1")).pending == 1060
    after = _earned(store, NARROW, T0 + 20 * DAY)  # the wide earn stays, and is approved
    assert (after.pending, after.approved) == (0, 1060)
    assert loyalty.balance(store, (P, S, "2")).total == 0
    assert [ln[2] + ln[3] for ln in _lines(store, "1") if ln[0] == "earn"] == [500, 1060]


def test_two_earn_entries_of_one_order_count_once(store: Store) -> None:
    """An order whose customer holds two earn entries (one written under another key: an
    import, a hand repair) earns once, the newest entry's points: the columns, the rules and
    the customer's own derivation announce one award, not one per entry (or per pair)."""
    store.upsert([_customer("1"), _order("o1", "1", T0, "100")])
    _earned(store, NARROW, T0 + DAY)
    shop_id = store.shop_id(P, S)
    extra = {
        "shop_id": shop_id,
        "customer_id": "1",
        "source_key": "earn:imported:1:o1",
        "kind": "earn",
        "pending": 300,
        "approved": 0,
        "effective_at": 1,
        "recorded_at": 1,
        "order_id": "o1",
        "reason": "imported",
        "detail": {},
    }
    with store.transaction() as conn:
        ledger.add_entries(conn, [extra])
    assert ledger.earned_points(store, shop_id).rows() == [("1", "o1", 300, True)]
    for policy in (NARROW, WITH_CATEGORY):  # the columns, then the rules
        dry = loyalty.update_ledger(store, P, S, as_of=T0 + DAY, policy=policy, dry_run=True)
        assert [a.points for a in dry.actions if a.kind == "loyalty_award"] == [300]
    one = loyalty.customer_actions(store, P, S, "1", as_of=T0 + DAY, policy=NARROW, currency="USD")
    assert [a.points for a in one if a.kind == "loyalty_award"] == [300]


def _window(days: int, rules: bool) -> Policy:
    """The return window of ``days`` days; ``rules``: the rules derive (a category bonus)."""
    bonus = {"category_bonus": {"points": 50}} if rules else {}
    return Policy.from_dict(
        {"currency": "USD", "loyalty": {"earn": {"pending_days": days}, **bonus}}
    )


@pytest.mark.parametrize("rules", [False, True], ids=["columns", "rules"])
def test_a_return_window_switched_off_approves_what_earned_pending(
    store: Store, rules: bool
) -> None:
    """Earned pending (a 14-day window), then the window is switched off: the pending points
    are approved (at payment, the window now being none), not left pending for ever; an
    order paid since earns approved at once."""
    store.upsert([_customer("1"), _order("o1", "1", T0, "100")])
    assert _earned(store, _window(14, rules), T0 + DAY).pending == 500
    store.upsert([_order("o2", "1", T0 + 2 * DAY, "100")])
    after = _earned(store, _window(0, rules), T0 + 3 * DAY)
    assert _lines(store, "1") == [
        ("earn", "o1", 500, 0),
        ("approve", "o1", -500, 500),
        ("earn", "o2", 0, 500),
    ]
    assert (after.pending, after.approved) == (0, 1000)


@pytest.mark.parametrize("rules", [False, True], ids=["columns", "rules"])
def test_a_return_window_switched_on_does_not_approve_twice(store: Store, rules: bool) -> None:
    """Earned approved at payment (no window), then a 14-day window: that order is not
    approved again (twice its points spendable) and a refund takes back approved points;
    an order paid since is pending for the window."""
    first = _order("o1", "1", T0, "100")
    store.upsert([_customer("1"), first])
    assert _earned(store, _window(0, rules), T0 + DAY).approved == 500
    store.upsert([_order("o2", "1", T0 + 2 * DAY, "100"), _refunded(first, T0 + 3 * DAY, "53")])
    after = _earned(store, _window(14, rules), T0 + 20 * DAY)
    assert _lines(store, "1") == [
        ("earn", "o1", 0, 500),
        ("earn", "o2", 500, 0),
        ("clawback", "o1", 0, -250),
        ("approve", "o2", -500, 500),
    ]
    assert (after.pending, after.approved) == (0, 750)


def test_an_earn_written_while_a_sync_derives_makes_it_derive_again(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync under the wider rule reads the ledger's earns (none yet); before it writes, one
    under the earlier rule (a redemption's, with the policy the ledger was marked with) earns
    the order 500. The first must derive again from those 500: its approval moving the 1,060
    it derived would leave the customer's pending points below zero."""
    store.upsert([_customer("1"), _order("o1", "1", T0, "100")])
    read = ledger.earned_points
    raced = []

    def racing(*args: Any, **kwargs: Any) -> Any:
        found = read(*args, **kwargs)
        if not raced:
            raced.append(True)
            loyalty.update_ledger(store, P, S, as_of=T0 + DAY, policy=NARROW)
        return found

    monkeypatch.setattr(ledger, "earned_points", racing)
    after = _earned(store, WIDE, T0 + 20 * DAY)
    assert raced
    assert _lines(store, "1") == [("earn", "o1", 500, 0), ("approve", "o1", -500, 500)]
    assert (after.pending, after.approved) == (0, 500)


def test_an_order_reversed_while_a_sync_derives_makes_it_derive_again(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync reads the shop (the order still its customer's) and the earns; before it
    writes, the order becomes a guest's and another sync reverses its points. The first must
    derive again: from its stale read it earned the order anew under the next generation's
    key, and its own reversal, at the same moment, was the other's (a duplicate key)."""
    first = _order("o1", "1", T0, "100")
    store.upsert([_customer("1"), first])
    _earned(store, NARROW, T0 + DAY)
    read = ledger.earned_points
    raced = []

    def racing(*args: Any, **kwargs: Any) -> Any:
        found = read(*args, **kwargs)
        if not raced:
            raced.append(True)
            guest = first.model_copy(update={"customer_id": None, "updated_at": T0 + 2 * DAY})
            store.upsert([guest])
            loyalty.update_ledger(store, P, S, as_of=T0 + 3 * DAY, policy=NARROW)
        return found

    monkeypatch.setattr(ledger, "earned_points", racing)
    loyalty.update_ledger(store, P, S, as_of=T0 + 3 * DAY, policy=NARROW)
    assert raced
    assert loyalty.balance(store, (P, S, "1")).total == 0
