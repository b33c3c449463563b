"""The loyalty program on a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from shopsync import loyalty
from shopsync.core.actions import LoyaltyAward, PointsExpiryWarning, RewardCode, TierChange
from shopsync.core.loyalty import LoyaltyError
from shopsync.core.policy import Policy
from shopsync.models import Address, Customer, FinancialStatus, Money, Order, Refund
from shopsync.store import Store
from shopsync.testing.generator import generate_shop

T0 = dt.datetime(2024, 1, 10, 12, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)
P, S = "shopify", "acme"


def customer(cid: str, **kw: Any) -> Customer:
    fields: dict[str, Any] = dict(
        platform=P,
        shop=S,
        id=cid,
        email=f"{cid}@example.com",
        created_at=T0 - 30 * DAY,
        updated_at=T0 - 30 * DAY,
        first_name=f"First{cid}",
        last_name="Last",
    )
    fields.update(kw)
    return Customer(**fields)


def order(
    oid: str, cid: str, at: dt.datetime, amount: str, currency: str = "USD", **kw: Any
) -> Order:
    m = lambda a: Money.of(a, currency)  # noqa: E731
    fields: dict[str, Any] = dict(
        platform=P,
        shop=S,
        id=oid,
        customer_id=cid,
        created_at=at,
        updated_at=at,
        paid_at=at,
        financial_status=FinancialStatus.PAID,
        currency=currency,
        subtotal=m(amount),
        total_discounts=m("0"),
        total_shipping=m("5"),
        total_tax=m("1"),
        total=m(str(float(amount) + 6)),
        total_refunded=m("0"),
    )
    fields.update(kw)
    return Order(**fields)


def test_sync_is_idempotent_and_balances_add_up(store: Store) -> None:
    store.upsert(
        [customer("1"), order("o1", "1", T0, "100"), order("o2", "1", T0 + 20 * DAY, "20")]
    )
    first = loyalty.update_ledger(store, P, S, as_of=T0 + 25 * DAY)
    again = loyalty.update_ledger(store, P, S, as_of=T0 + 25 * DAY)
    assert first.added == first.derived == 3  # o1 earned and approved, o2 still pending
    assert again.added == 0 and again.derived == 3
    b = loyalty.balance(store, (P, S, "1"))
    assert (b.approved, b.pending, b.spent, b.expired) == (500, 100, 0, 0)
    assert b.lifetime == 600 and b.total == 600
    lines = loyalty.statement(store, customer("1"))
    assert [ln.kind for ln in lines] == ["earn", "approve", "earn"]
    assert lines[-1].approved_balance == 500 and lines[-1].pending_balance == 100
    assert all(ln.reason for ln in lines)
    # as_of in the past reads the ledger as it was
    assert loyalty.balance(store, (P, S, "1"), T0 + DAY).pending == 500


def test_redeem_spends_points_and_issues_one_code(store: Store) -> None:
    store.upsert([customer("1"), order("o1", "1", T0, "150")])
    at = T0 + 30 * DAY
    with pytest.raises(LoyaltyError, match="not a reward step"):
        loyalty.redeem(store, (P, S, "1"), 700, as_of=at)
    with pytest.raises(LoyaltyError, match="approved points"):
        loyalty.redeem(store, (P, S, "1"), 500, as_of=T0 + DAY)  # still pending
    code = loyalty.redeem(store, (P, S, "1"), 500, as_of=at, key="ticket-1")
    assert isinstance(code, RewardCode)
    assert code.value == Money.of("5.00", "USD") and code.points == 500
    assert code.idempotency_key == "loyalty_reward_code:acme:ticket-1"
    same = loyalty.redeem(store, (P, S, "1"), 500, as_of=at, key="ticket-1")
    assert same.code == code.code
    b = loyalty.balance(store, (P, S, "1"))
    assert (b.approved, b.spent) == (250, 500)
    assert loyalty.update_ledger(store, P, S, as_of=at).added == 0


def test_other_currency_orders_are_quarantined_visibly(store: Store) -> None:
    store.upsert(
        [
            customer("1"),
            order("o1", "1", T0, "10"),
            order("o2", "1", T0, "10"),
            order("o3", "1", T0, "80", currency="EUR"),
        ]
    )
    result = loyalty.update_ledger(store, P, S, as_of=T0 + 30 * DAY)
    assert result.quarantined == 1
    [item] = [q for q in store.quarantined() if q.resource == "loyalty"]
    assert "EUR" in item.reason and "o3" in item.raw
    assert loyalty.balance(store, (P, S, "1")).approved == 100


def test_referral_rewards_both_sides_once(store: Store) -> None:
    home = Address(address1="1 Oak St", zip="97201", country_code="US")
    store.upsert(
        [
            customer("adv", default_address=home),
            customer("fr", first_name="Bob"),
            customer("cheat", first_name="Carl", default_address=home),
        ]
    )
    loyalty.record_referral(store, P, S, advocate_id="adv", friend_email="FR@example.com", at=T0)
    loyalty.record_referral(store, P, S, advocate_id="adv", friend_id="cheat", at=T0)
    store.upsert([order("f1", "fr", T0 + DAY, "30"), order("c1", "cheat", T0 + DAY, "30")])
    waiting = loyalty.update_ledger(store, P, S, as_of=T0 + 5 * DAY)
    assert sorted(o.status for o in waiting.referrals) == ["blocked", "waiting"]
    done = loyalty.update_ledger(store, P, S, as_of=T0 + 20 * DAY)
    statuses = {o.friend_id: (o.status, o.reason) for o in done.referrals}
    assert statuses["fr"] == ("rewarded", "")
    assert statuses["cheat"][0] == "blocked" and "address" in statuses["cheat"][1]
    advocate = loyalty.statement(store, (P, S, "adv"))
    assert [(ln.kind, ln.approved) for ln in advocate] == [("bonus", 450)]
    assert any(ln.kind == "bonus" for ln in loyalty.statement(store, (P, S, "fr")))
    assert loyalty.update_ledger(store, P, S, as_of=T0 + 40 * DAY).added == 0


def test_actions_have_deterministic_keys(store: Store) -> None:
    store.upsert([customer("1"), order("o1", "1", T0, "600")])
    result = loyalty.update_ledger(store, P, S, as_of=T0 + DAY)
    award = next(a for a in result.actions if isinstance(a, LoyaltyAward))
    assert award.idempotency_key == "loyalty_award:acme:o1" and award.points == 3000
    tier = next(a for a in result.actions if isinstance(a, TierChange))
    assert (tier.from_tier, tier.to_tier) == ("Bronze", "Silver")
    assert tier.idempotency_key == f"loyalty_tier_change:acme:1:Silver:{T0.date().isoformat()}"
    assert result.actions == loyalty.update_ledger(store, P, S, as_of=T0 + DAY).actions
    expiry = T0.replace(year=2025) - 10 * DAY
    warned = loyalty.update_ledger(store, P, S, as_of=expiry)
    [warning] = [a for a in warned.actions if isinstance(a, PointsExpiryWarning)]
    assert warning.days_before == 30 and warning.points == 3000 and warning.marketing


def test_merged_order_moves_points_and_deleted_customer_is_frozen(store: Store) -> None:
    store.upsert([customer("a"), customer("b"), order("o1", "a", T0, "10")])
    loyalty.update_ledger(store, P, S, as_of=T0 + 20 * DAY)
    # the platform merges a into b: the order now belongs to b and a is deleted
    moved = order("o1", "b", T0, "10").model_copy(update={"updated_at": T0 + 21 * DAY})
    store.upsert([moved])
    store.delete(Customer, P, S, "a")
    loyalty.update_ledger(store, P, S, as_of=T0 + 22 * DAY)
    assert loyalty.balance(store, (P, S, "a")).approved == 0
    assert loyalty.statement(store, (P, S, "a"))[-1].kind == "adjust"
    assert loyalty.balance(store, (P, S, "b")).approved == 50
    assert loyalty.update_ledger(store, P, S, as_of=T0 + 23 * DAY).added == 0


def test_refund_larger_than_the_order_and_adjustment(store: Store) -> None:
    big = order("o1", "1", T0, "10").model_copy(
        update={
            "refunds": (
                Refund(id="r1", created_at=T0 + DAY, amount=Money.of("10", "USD")),
                Refund(id="r2", created_at=T0 + 2 * DAY, amount=Money.of("10", "USD")),
            ),
            "total_refunded": Money.of("16", "USD"),
        }
    )
    store.upsert([customer("1"), big])
    loyalty.adjust(store, (P, S, "1"), 75, at=T0 + 3 * DAY, reason="late delivery", key="t-9")
    assert not loyalty.adjust(store, (P, S, "1"), 75, at=T0, reason="again", key="t-9")
    loyalty.update_ledger(store, P, S, as_of=T0 + 30 * DAY)
    b = loyalty.balance(store, (P, S, "1"))
    assert (b.approved, b.pending) == (75, 0)
    assert any("exceed" in q.reason for q in store.quarantined())


def test_birthday_is_recorded_when_first_seen(store: Store) -> None:
    seen = T0 - 60 * DAY
    store.upsert([customer("1", birthday=dt.date(1990, 2, 20), updated_at=seen)])
    loyalty.update_ledger(store, P, S, as_of=T0 + 60 * DAY)
    keys = [ln.source_key for ln in loyalty.statement(store, (P, S, "1"))]
    assert keys == ["bonus:birthday:1:2024-02-20"]


def test_disabled_program_does_nothing(store: Store) -> None:
    store.upsert([customer("1"), order("o1", "1", T0, "10")])
    off = Policy.from_dict({"loyalty": {"enabled": False}})
    assert loyalty.update_ledger(store, P, S, as_of=T0, policy=off).derived == 0


def test_generated_shop_syncs_like_the_pure_rules(store: Store) -> None:
    end = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    state = generate_shop(platform=P, shop=S, seed=7, customers=40, orders=200, end=end)
    store.upsert([*state.customers.values(), *state.orders.values()])
    step = loyalty.update_ledger(store, P, S, as_of=end - 200 * DAY)
    full = loyalty.update_ledger(store, P, S, as_of=end)
    assert step.added <= full.derived
    rows = loyalty.ledger_entries(store, P, S)
    assert len(rows) == full.derived == len({r.source_key for r in rows})


# -- issue 16 item 2: redemption is atomic, never back-dated, never ahead of time ----------


def _funded(store: Store) -> dt.datetime:
    """Customer 1 with 500 approved points at the returned moment."""
    store.upsert([customer("1"), order("o1", "1", T0, "100")])
    at = T0 + 40 * DAY
    loyalty.update_ledger(store, P, S, as_of=at)
    assert loyalty.balance(store, (P, S, "1")).approved == 500
    return at


def _try_redeem(store: Store, at: dt.datetime, key: str) -> str:
    try:
        loyalty.redeem(store, (P, S, "1"), 500, as_of=at, key=key)
        return "ok"
    except LoyaltyError:
        return "refused"


def test_two_threads_redeeming_the_same_points_spend_them_once(store: Store) -> None:
    import threading

    at = _funded(store)
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def go(key: str) -> None:
        barrier.wait()
        outcomes.append(_try_redeem(store, at, key))

    threads = [threading.Thread(target=go, args=(k,)) for k in ("t1", "t2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(outcomes) == ["ok", "refused"]
    loyalty.update_ledger(store, P, S, as_of=at)
    b = loyalty.balance(store, (P, S, "1"))
    assert (b.approved, b.spent) == (0, 500)


def _redeem_in_child(url: str, at: dt.datetime, key: str, start: Any, out: Any) -> None:
    try:
        child_store = Store(url, migrate=False)
        start.wait()
        out.put(_try_redeem(child_store, at, key))
    except BaseException as exc:  # the parent shows it
        out.put(f"{type(exc).__name__}: {exc}")


def test_two_processes_redeeming_the_same_points_spend_them_once(
    store: Store, store_url: str
) -> None:
    import multiprocessing as mp

    at = _funded(store)
    store.engine.dispose()
    spawn = mp.get_context("spawn")  # not fork: Polars' thread pool does not survive a fork
    start, out = spawn.Event(), spawn.Queue()
    children = [
        spawn.Process(target=_redeem_in_child, args=(store_url, at, k, start, out))
        for k in ("p1", "p2", "p3")
    ]
    for c in children:
        c.start()
    start.set()
    outcomes = sorted(out.get(timeout=180) for _ in children)
    for c in children:
        c.join(60)
    assert outcomes == ["ok", "refused", "refused"]
    loyalty.update_ledger(store, P, S, as_of=at)
    assert loyalty.balance(store, (P, S, "1")).approved == 0


@pytest.mark.postgres
@pytest.mark.parametrize("after", range(6))
def test_a_first_redemption_landing_between_the_checks_reads_is_still_counted(
    postgres_url: str, after: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL reads committed data afresh at each statement. While a second redemption
    checks the balance under its lock, the first one's follow-up sync may commit its ledger
    entry after any of the check's statements (or wait for the lock, if it takes one):
    whichever gap it lands in, the points are spent once. (Three processes did spend twice
    in CI when the check read the ledger and the redemptions in two statements.)"""
    import threading

    from sqlalchemy import event

    from shopsync.store import ledger, redemptions
    from shopsync.store.times import to_micros
    from tests.reliability.interleave import Interleave

    store = Store(postgres_url)
    at = _funded(store)
    shop_id = store.shop_id(P, S)
    checker = threading.get_ident()
    first = {"shop_id": shop_id, "key": "first", "kind": "redeem", "customer_id": "1"}
    first.update(occurred_at=to_micros(at), data={"points": 500})

    def first_redemption_recorded() -> None:  # what redeem commits before its follow-up sync
        with store.transaction() as conn:
            ledger.add_inputs(conn, [first])

    def first_follow_up_sync() -> None:
        loyalty.update_ledger(store, P, S, as_of=at, customer_ids=["1"])

    locked = {"seen": -1}  # the check's statements since it took its lock
    take_lock = redemptions.lock_customer

    def lock_customer(conn: Any, shop_id: int, customer_id: str) -> None:
        recorder = threading.Thread(target=first_redemption_recorded)
        recorder.start()  # the first redemption won the lock just before us
        recorder.join(30)
        take_lock(conn, shop_id, customer_id)
        locked["seen"] = 0
        if after == 0:
            gap.run_now()
        locked["seen"] = 1

    def after_statement(*args: Any) -> None:
        if threading.get_ident() == checker and locked["seen"] > 0:
            if locked["seen"] == after:
                gap.run_now()
            locked["seen"] += 1

    monkeypatch.setattr(redemptions, "lock_customer", lock_customer)
    with Interleave(store.engine, first_follow_up_sync, after=None) as gap:
        event.listen(store.engine, "after_cursor_execute", after_statement)
        try:
            with pytest.raises(LoyaltyError, match="approved points"):
                loyalty.redeem(store, (P, S, "1"), 500, as_of=at, key="second")
        finally:
            event.remove(store.engine, "after_cursor_execute", after_statement)
    loyalty.update_ledger(store, P, S, as_of=at)
    assert loyalty.balance(store, (P, S, "1")).approved == 0
    store.close()


def test_a_back_dated_redemption_is_refused(store: Store) -> None:
    at = _funded(store)
    loyalty.redeem(store, (P, S, "1"), 500, as_of=at + DAY, key="now")
    with pytest.raises(LoyaltyError, match="before"):
        loyalty.redeem(store, (P, S, "1"), 500, as_of=at - DAY, key="earlier")
    loyalty.update_ledger(store, P, S, as_of=at + DAY)
    assert loyalty.balance(store, (P, S, "1")).approved == 0


def test_a_loyalty_sync_ahead_of_the_clock_is_refused_unless_dry_run(store: Store) -> None:
    store.upsert([customer("1"), order("o1", "1", T0, "100")])
    ahead = dt.datetime.now(dt.timezone.utc) + 2 * DAY
    with pytest.raises(LoyaltyError, match="future"):
        loyalty.update_ledger(store, P, S, as_of=ahead)
    assert loyalty.update_ledger(store, P, S, as_of=ahead, dry_run=True).derived > 0
    assert loyalty.balance(store, (P, S, "1")).lifetime == 0
    with pytest.raises(LoyaltyError, match="future"):
        loyalty.redeem(store, (P, S, "1"), 500, as_of=ahead)


def test_an_order_moved_away_and_back_or_trashed_and_restored_earns_again(
    store: Store,
) -> None:
    store.upsert([customer("a"), customer("b"), order("o1", "a", T0, "10")])
    loyalty.update_ledger(store, P, S, as_of=T0 + 20 * DAY)
    assert loyalty.balance(store, (P, S, "a")).approved == 50

    def move(owner: str, day: int) -> None:
        moved = order("o1", owner, T0, "10").model_copy(update={"updated_at": T0 + day * DAY})
        store.upsert([moved])
        loyalty.update_ledger(store, P, S, as_of=T0 + (day + 1) * DAY)

    move("b", 21)
    assert loyalty.balance(store, (P, S, "a")).total == 0
    assert loyalty.balance(store, (P, S, "b")).total == 50
    move("a", 23)
    assert loyalty.balance(store, (P, S, "a")).total == 50
    assert loyalty.balance(store, (P, S, "b")).total == 0
    store.delete(Order, P, S, "o1", deleted_at=T0 + 25 * DAY)  # trashed
    loyalty.update_ledger(store, P, S, as_of=T0 + 26 * DAY)
    assert loyalty.balance(store, (P, S, "a")).total == 0
    move("a", 27)  # restored
    assert loyalty.balance(store, (P, S, "a")).total == 50
    assert loyalty.update_ledger(store, P, S, as_of=T0 + 29 * DAY).added == 0


@pytest.mark.parametrize(
    ("cid", "oid"),
    [
        ("A", "O-1"),  # upper case
        ("a%_", "o_%1"),  # LIKE's wildcards
        ("ä€", "ö€1"),  # not ASCII: above the prefix's bytes
        ("a" * 130, "o" * 120),  # a reversal key longer than the store's 255 characters
    ],
    ids=["upper", "wildcards", "non-ascii", "long"],
)
def test_an_order_with_any_ids_moved_away_and_back_earns_again(
    store: Store, cid: str, oid: str
) -> None:
    """The moved generations (a key range on SQLite, LIKE on PostgreSQL) count every
    reversal of the order, whatever its ids hold: the order that comes back earns again."""
    store.upsert([customer(cid), customer("b"), order(oid, cid, T0, "10")])
    loyalty.update_ledger(store, P, S, as_of=T0 + 20 * DAY)
    for owner, day in (("b", 21), (cid, 23), ("b", 25), (cid, 27)):
        moved = order(oid, owner, T0, "10").model_copy(update={"updated_at": T0 + day * DAY})
        store.upsert([moved])
        loyalty.update_ledger(store, P, S, as_of=T0 + (day + 1) * DAY)
        assert loyalty.balance(store, (P, S, owner)).total == 50
        assert loyalty.balance(store, (P, S, "b" if owner == cid else cid)).total == 0
