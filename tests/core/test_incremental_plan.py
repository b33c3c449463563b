"""``plan(..., only_changed=True)`` (issue 19, item 2): the changed customers and those whose
time-based rules fire, planned alone, give exactly the full plan restricted to them; and a
customer left out has nothing new to send. A property test over random change sets on both
engines: ``SHOPSYNC_INCREMENTAL_EXAMPLES`` (default 5) sets how many change sets it tries."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from shopsync import incremental, loyalty
from shopsync.adapter import CustomerChange
from shopsync.core.incremental import DELIVERY_STARTS
from shopsync.core.policy import Policy
from shopsync.incremental import IncrementalPlan
from shopsync.loyalty import adjust
from shopsync.models import ConsentState, Customer, MarketingConsent, Order, Refund
from shopsync.outbox import apply
from shopsync.planning import plan
from shopsync.sinks import JsonLines
from shopsync.store import Store, changes, facts, read_set
from shopsync.store import incremental as marks
from shopsync.store.incremental import recorded_keys
from shopsync.store.times import to_micros
from shopsync.testing.generator import generate_shop
from tests.core.retention_helpers import customer, order
from tests.pg_schema import own_schema, shared_url

P = "shopify"
END = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
T0 = END - dt.timedelta(days=20)
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
EXAMPLES = int(os.environ.get("SHOPSYNC_INCREMENTAL_EXAMPLES", "5"))
PHASES = [p for p in Phase if p != Phase.shrink or not os.environ.get("SHOPSYNC_NO_SHRINK")]
POLICY = Policy.from_dict(
    {
        "replenishment": {"usage_days_by_type": {"Coffee": 21, "Tea": 45, "Pet Food": 28}},
        "warranty": {"days_by_type": {"Electronics": 730, "Kitchen": 365}},
        "loyalty": {"enabled": True},
        "consent": {"allow_soft_opt_in": True},
        "holdout": {"share": 0.2},
    }
)
_NIGHTS = {"quiet": {"hours": [19, 7], "timezone": "Asia/Kolkata"}}
QUIET = POLICY.model_copy(update={"quiet": Policy.from_dict(_NIGHTS).quiet})
"""Quiet hours in a time zone half an hour off UTC: a held message is due when they end."""
_names = itertools.count()
RUN = uuid.uuid4().hex[:8]
"""In the shop names: a PostgreSQL test database outlives a run, and a shop of the same name
left by an earlier run would mix its orders into this one's (CI saw the plans differ)."""


def _store(kind: str, tmp: Path) -> Store:
    if kind == "sqlite":
        return Store(f"sqlite:///{tmp / 'inc.db'}")
    base = shared_url()
    if not base:
        pytest.skip("SHOPSYNC_TEST_POSTGRES_URL not set")
    return Store(_SCHEMAS.enter_context(own_schema(base, "inc")))


_STORES: dict[str, Store] = {}
"""One store per engine for the module; each example plans a shop of its own in it."""
_SCHEMAS = ExitStack()
"""The PostgreSQL store's schema, dropped once the module is done (:func:`_drop_stores`)."""


@pytest.fixture(scope="module", autouse=True)
def _drop_stores() -> Iterator[None]:
    yield
    while _STORES:
        _STORES.popitem()[1].close()
    _SCHEMAS.close()


def store_for(kind: str, tmp_path_factory: pytest.TempPathFactory) -> Store:
    if kind not in _STORES:
        _STORES[kind] = _store(kind, tmp_path_factory.mktemp(f"inc-{kind}"))
    return _STORES[kind]


OPS = st.sampled_from(
    ["order", "refund", "consent", "tags", "delete_order", "delete_customer", "erase", "points"]
)
CHANGES = st.lists(st.tuples(OPS, st.integers(0, 10**6), st.integers(0, 30)), max_size=8)


def _change(store: Store, shop: str, op: str, pick: int, days: int, tmp: Path) -> str | None:
    """Make one change through the store's write paths; returns the customer it changed."""
    ids = sorted(c.id for c in store.iter(Customer, P, shop))
    cid = ids[pick % len(ids)]
    at = T0 + dt.timedelta(days=days, hours=pick % 24)
    mine = sorted(
        (o for o in store.iter(Order, P, shop) if o.customer_id == cid), key=lambda o: o.id
    )
    if op == "order":
        made = order(f"n{pick}-{days}", cid, at, ptype="Coffee").model_copy(update={"shop": shop})
        if any(o.id == made.id for o in mine):
            return None  # the same order again: nothing changed
        store.upsert([made])
    elif op == "refund" and mine:
        o = mine[pick % len(mine)]
        made_refund = Refund(id=f"r{pick}", created_at=at, amount=o.total)
        if o.refunds == (made_refund,):
            return None  # the same refund again: a newer stamp alone changes nothing
        store.upsert(
            [
                o.model_copy(
                    update={
                        "updated_at": max(o.updated_at, at) + dt.timedelta(seconds=1),
                        "refunds": (made_refund,),
                    }
                )
            ]
        )
    elif op == "consent":
        state = [ConsentState.SUBSCRIBED, ConsentState.UNSUBSCRIBED][pick % 2]
        store.apply_customer_changes(
            P, shop, [CustomerChange(cid, email_consent=MarketingConsent(state=state))], now=at
        )
    elif op == "tags":
        store.apply_customer_changes(P, shop, [CustomerChange(cid, tags_added=(f"t{pick}",))])
    elif op == "delete_order" and mine:
        store.delete(Order, P, shop, mine[pick % len(mine)].id, deleted_at=at)
    elif op == "delete_customer":
        store.delete(Customer, P, shop, cid, deleted_at=at)
    elif op == "erase":
        store.redact_customer(P, shop, cid)
    elif op == "points":
        if not adjust(store, (P, shop, cid), 50 + pick, at=at, reason="goodwill", key=f"k{pick}"):
            return None  # recorded before: nothing changed
    else:
        return None  # no order to refund or delete
    return cid


def _keys(items: Any) -> list[str]:
    return [a.idempotency_key for a in items]


@pytest.mark.slow(seconds=60)
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
@settings(max_examples=EXAMPLES, deadline=None, phases=PHASES)
@given(first=CHANGES, later=CHANGES, step=st.integers(0, 45), seed=st.integers(1, 1000))
def test_incremental_plan_is_the_full_plan_of_its_customers(
    kind: str,
    tmp_path_factory: pytest.TempPathFactory,
    first: list[tuple[str, int, int]],
    later: list[tuple[str, int, int]],
    step: int,
    seed: int,
) -> None:
    store = store_for(kind, tmp_path_factory)
    tmp = tmp_path_factory.mktemp("sink")
    shop = f"inc{RUN}-{next(_names)}.example"
    state = generate_shop(
        platform=P, shop=shop, seed=seed, customers=40, orders=160, end=T0, years=1.0
    )
    store.upsert([*state.products.values(), *state.customers.values(), *state.orders.values()])
    _snapshot(store, shop)
    for op, pick, days in first:
        _change(store, shop, op, pick, days % 5, tmp)
    # the first incremental plan of a shop plans every customer, and is applied
    at0 = T0 + 5 * DAY
    start = plan(store, POLICY, at0, platform=P, shop=shop, only_changed=True)
    full0 = plan(store, POLICY, at0, platform=P, shop=shop, update_ledger=False)
    assert _keys(start) == _keys(full0)
    apply(start, store, [JsonLines("out.jsonl", root=tmp)], now=at0)
    # the notes are cleared but for the deliveries' own: a review request or browse reminder
    # delivered starts a clock, and notes its customer (planned again after it happened; one
    # not delivered, as to a customer deleted meanwhile, notes nothing)
    left = {c.customer_id for c in changes.changed(store, limit=10**6) if c.shop == shop}
    assert left <= {a.customer_id for a in start if a.kind in DELIVERY_STARTS}
    # then a random change set, some time, and both plans again
    touched = {_change(store, shop, op, pick, 5 + days, tmp) for op, pick, days in later} - {None}
    at1 = at0 + step * DAY
    inc, live = _equal_to_the_full_plan(store, shop, at1, touched)
    gone = (touched - live) & {
        c.customer_id for c in changes.changed(store, limit=10**6) if c.shop == shop
    }
    assert inc.skipped >= len(gone)


@pytest.mark.slow(seconds=90)
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
@settings(max_examples=EXAMPLES, deadline=None, phases=PHASES)
@given(
    rounds=st.lists(
        st.tuples(CHANGES, st.integers(0, 21), st.integers(0, 23)), min_size=2, max_size=5
    ),
    seed=st.integers(1, 1000),
    policy=st.sampled_from([POLICY, QUIET]),
)
def test_incremental_plans_over_time_are_the_full_plans_of_their_customers(
    kind: str,
    tmp_path_factory: pytest.TempPathFactory,
    rounds: list[tuple[list[tuple[str, int, int]], int, int]],
    seed: int,
    policy: Policy,
) -> None:
    """Plans applied one after another while ``as_of`` moves on by days and hours (past
    review delays, win-back stages, replenishment and warranty dates): each incremental plan
    reads the stored program moments instead of the whole shop, and is still the full plan
    restricted to its customers, with nothing left out that a full plan would send (with
    quiet hours too: what they hold is planned again when they end, not every time)."""
    store = store_for(kind, tmp_path_factory)
    tmp = tmp_path_factory.mktemp("sink")
    shop = f"inc{RUN}-{next(_names)}.example"
    state = generate_shop(
        platform=P, shop=shop, seed=seed, customers=40, orders=160, end=T0, years=1.0
    )
    store.upsert([*state.products.values(), *state.customers.values(), *state.orders.values()])
    _snapshot(store, shop)
    at = T0 + DAY
    apply(
        plan(store, policy, at, platform=P, shop=shop, only_changed=True),
        store,
        [JsonLines("out.jsonl", root=tmp)],
        now=at,
    )
    for changes_made, days, hours in rounds:
        base = (at - T0).days
        touched = {
            _change(store, shop, op, pick, base + days_ahead % 10, tmp)
            for op, pick, days_ahead in changes_made
        } - {None}
        at = at + days * DAY + dt.timedelta(hours=hours)
        inc, _ = _equal_to_the_full_plan(store, shop, at, touched, policy)
        apply(inc, store, [JsonLines("out.jsonl", root=tmp)], now=at)


def _equal_to_the_full_plan(
    store: Store, shop: str, at: dt.datetime, touched: set[str], policy: Policy = POLICY
) -> tuple[IncrementalPlan, set[str]]:
    """Plan ``shop`` incrementally and in full at ``at`` and check the first is the second
    restricted to its customers, the ``touched`` ones among them; the incremental plan and
    the customers the store holds."""
    inc = plan(store, policy, at, platform=P, shop=shop, only_changed=True)
    assert isinstance(inc, IncrementalPlan)
    # the same plan with its customers' rows read alone, however many they are (by default a
    # small shop's plan often reads it whole: most of its customers are chosen): their order
    # facts from the snapshot and the writes since, then through the indexes
    for scan in (10**9, 0):
        with (
            mock.patch.object(incremental, "_WHOLE_SHARE", 0),
            mock.patch.object(read_set, "SCAN_PER_CUSTOMER", scan),
        ):
            one = plan(store, policy, at, platform=P, shop=shop, only_changed=True)
        assert isinstance(one, IncrementalPlan)
        assert (one.customers, _keys(one)) == (inc.customers, _keys(inc))
        assert [(h.action.idempotency_key, h.rule) for h in one.held] == [
            (h.action.idempotency_key, h.rule) for h in inc.held
        ]
    full = plan(store, policy, at, platform=P, shop=shop, update_ledger=False)
    chosen = set(inc.customers)
    live = {c.id for c in store.iter(Customer, P, shop)}
    assert touched & live <= chosen
    assert _keys(inc) == [a.idempotency_key for a in full if a.customer_id in chosen]
    assert [(h.action.idempotency_key, h.rule) for h in inc.held] == [
        (h.action.idempotency_key, h.rule) for h in full.held if h.action.customer_id in chosen
    ]
    # a customer left out has nothing new: what the full plan keeps for them is in the outbox
    # already, and what it holds, only a noted change or time can release (consent, holdout;
    # quiet hours and the cap: were they planned late, a later round's full plan would keep
    # what is not in the outbox)
    others = [a for a in full if a.customer_id not in chosen]
    assert recorded_keys(store, store.shop_id(P, shop), _keys(others)) == set(_keys(others))
    assert {h.rule for h in full.held if h.action.customer_id not in chosen} <= {
        "consent",
        "suppressed",
        "holdout",
        "quiet",
        "frequency_cap",
    }
    return inc, live


def _snapshot(store: Store, shop: str) -> None:
    """Write the shop's order facts snapshot (small shops have none by default), so that the
    changes made after it are read from the database and merged in."""
    with mock.patch.object(facts, "MIN_ORDERS", 0):
        facts.order_facts(store, store.shop_id(P, shop))


def _small_shop(store: Store, shop: str) -> None:
    state = generate_shop(platform=P, shop=shop, seed=3, customers=12, orders=40, end=T0, years=1.0)
    store.upsert([*state.products.values(), *state.customers.values(), *state.orders.values()])


def _notes(store: Store, shop: str) -> dict[str, int]:
    return {c.customer_id: c.seq for c in changes.changed(store, limit=10**6) if c.shop == shop}


def _clocks(planned: Any, shop: str) -> set[str]:
    """The customers whose delivered action starts a clock: the delivery notes them."""
    return {a.customer_id for a in planned if a.kind in DELIVERY_STARTS and a.shop == shop}


def test_notes_are_cleared_by_a_successful_apply_only(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _small_shop(store, "a.example")
    at = T0 + DAY
    first = plan(store, POLICY, at, only_changed=True)
    assert len(_notes(store, "a.example")) == 12  # planning clears nothing
    sinks = [JsonLines("out.jsonl", root=tmp_path)]

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("killed while delivering")

    import shopsync.outbox as outbox_module

    monkeypatch.setattr(outbox_module, "deliver", crash)
    with pytest.raises(RuntimeError):
        apply(first, store, sinks, now=at)
    monkeypatch.undo()
    assert len(_notes(store, "a.example")) == 12  # the next plan plans them again
    again = plan(store, POLICY, at, only_changed=True)
    assert _keys(again) == _keys(first)
    # a change that lands between the plan and its apply stays noted for the next plan
    cid = sorted(_notes(store, "a.example"))[0]
    store.upsert([order("late", cid, at, ptype="Coffee").model_copy(update={"shop": "a.example"})])
    apply(again, store, sinks, now=at)
    assert set(_notes(store, "a.example")) == {cid} | _clocks(again, "a.example")
    assert apply(again, store, sinks, now=at).recorded == 0  # nothing twice


def test_notes_of_erased_customers_and_removed_shops_are_skipped_and_counted(
    store: Store, tmp_path: Path
) -> None:
    _small_shop(store, "b.example")
    _small_shop(store, "c.example")
    at = T0 + DAY
    first = plan(store, POLICY, at, only_changed=True)
    apply(first, store, [JsonLines("o.jsonl", root=tmp_path)])
    assert set(_notes(store, "b.example")) == _clocks(first, "b.example")
    apply(plan(store, POLICY, at, only_changed=True), store, [JsonLines("o.jsonl", root=tmp_path)])
    assert _notes(store, "b.example") == {}  # planned again after their deliveries: settled
    victim = sorted(c.id for c in store.iter(Customer, P, "b.example"))[0]
    store.upsert([order("x1", victim, at).model_copy(update={"shop": "b.example"})])
    store.redact_customer(P, "b.example", victim)
    gone = sorted(c.id for c in store.iter(Customer, P, "b.example"))[1]
    store.upsert([order("x2", gone, at).model_copy(update={"shop": "b.example"})])
    store.delete(Customer, P, "b.example", gone, deleted_at=at)
    result = plan(store, POLICY, at + DAY, platform=P, shop="b.example", only_changed=True)
    assert result.skipped == 2
    assert any("2 change note(s) of customers since erased or deleted" in n for n in result.notes)
    # a shop removed while its notes waited: counted, and settling leaves nothing of it
    shop_id = store.shop_id(P, "c.example")
    with store.transaction() as conn:
        changes.note(conn, shop_id, ["ghost"], T0)
    store.remove_shop(P, "c.example")
    with store.transaction() as conn:  # (as a crash between the two would leave it)
        changes.note(conn, shop_id, ["ghost"], T0)
    result = plan(store, POLICY, at + DAY, only_changed=True)
    assert result.skipped == 3
    apply(result, store, [JsonLines("o.jsonl", root=tmp_path)], now=at + DAY)
    left = {(c.shop, c.customer_id) for c in changes.changed(store, limit=10**6)}
    assert left == {(a.shop, a.customer_id) for a in result if a.kind in DELIVERY_STARTS}
    assert plan(store, POLICY, at + DAY, only_changed=True).skipped == 0


def test_customers_without_their_row_are_planned_when_noted_or_due_not_every_time(
    store: Store, tmp_path: Path
) -> None:
    """A customer deleted on the platform keeps their orders, and their program moments:
    planned when the deletion is noted, then like anyone else (not by every plan)."""
    _small_shop(store, "d.example")
    sinks = [JsonLines("out.jsonl", root=tmp_path)]
    at = T0 + DAY
    for hours in (0, 1, 2):  # settle the first plan and the deliveries' own clocks
        apply(plan(store, POLICY, at + hours * HOUR, only_changed=True), store, sinks, now=at)
    gone = sorted({o.customer_id for o in store.iter(Order, P, "d.example")} - {None})
    quiet = set(gone) - set(plan(store, POLICY, at + 3 * HOUR, only_changed=True).customers)
    cid = sorted(quiet)[0]
    store.delete(Customer, P, "d.example", cid, deleted_at=at + 3 * HOUR)
    noted = plan(store, POLICY, at + 4 * HOUR, only_changed=True)
    assert cid in noted.customers
    apply(noted, store, sinks, now=at + 4 * HOUR)
    later = _equal_to_the_full_plan(store, "d.example", at + 5 * HOUR, set())[0]
    assert cid not in later.customers


def test_an_incremental_plan_after_an_earn_rule_change_is_the_full_plan(
    store: Store, tmp_path: Path
) -> None:
    """The earn rule changes (8 points per unit, not 5) after a plan wrote the ledger: the
    incremental plan is still the full plan of its customers, and both announce the points
    the ledger holds for the orders earned before the change, the new rule's for those paid
    since (points an order earned are a fact)."""
    shop = "e.example"
    _small_shop(store, shop)
    sinks = [JsonLines("out.jsonl", root=tmp_path)]
    cids = sorted(c.id for c in store.iter(Customer, P, shop))[:3]

    def add(oid: str, cid: str, at: dt.datetime) -> None:
        store.upsert([order(oid, cid, at, ptype="Coffee").model_copy(update={"shop": shop})])

    at0 = T0 + 3 * DAY
    for n, cid in enumerate(cids):
        add(f"early{n}", cid, T0 + DAY + n * HOUR)
    plan(store, POLICY, at0, platform=P, shop=shop)  # a full plan: writes the ledger
    assert loyalty.ledger_status(store, P, shop, at0, policy=POLICY) is None
    apply(plan(store, POLICY, at0, platform=P, shop=shop, only_changed=True), store, sinks)
    for n, cid in enumerate(cids):
        add(f"late{n}", cid, at0 + DAY + n * HOUR)
    richer = POLICY.model_copy(
        update={"loyalty": Policy.from_dict({"loyalty": {"earn": {"points_per_unit": 8}}}).loyalty}
    )
    inc, _ = _equal_to_the_full_plan(store, shop, at0 + 2 * DAY, set(cids), richer)
    actions = [*inc, *(h.action for h in inc.held)]
    awards = {a.order_id: a.points for a in actions if a.kind == "loyalty_award"}
    for n, cid in enumerate(cids):
        held = [
            ln.pending + ln.approved
            for ln in loyalty.statement(store, (P, shop, cid))
            if ln.kind == "earn" and ln.order_id == f"early{n}"
        ]
        assert held and [awards[f"early{n}"]] == held
        assert awards[f"late{n}"] > awards[f"early{n}"]  # 20 USD: 160 points, times its tier's


def test_an_advocate_created_after_as_of_gets_the_full_plans_award(
    store: Store, tmp_path: Path
) -> None:
    """A plan as of a day before the advocate's customer row was created (a back-dated
    plan): the full plan's loyalty derivation awards the advocate when the friend's order is
    approved, so the incremental plan, which plans referral parties, must derive them too (it
    once derived only the customers whose rows it read as of ``as_of``)."""
    shop = "f.example"
    at = T0 - 44 * DAY  # the friend's order approved within the awards' lookback
    people = [customer("friend"), customer("advocate", created=at + 30 * DAY)]
    store.upsert([c.model_copy(update={"shop": shop}) for c in people])
    store.upsert([order("f1", "friend", T0 - 60 * DAY).model_copy(update={"shop": shop})])
    loyalty.record_referral(
        store, P, shop, advocate_id="advocate", friend_id="friend", at=T0 - 70 * DAY
    )
    full = plan(store, POLICY, at, platform=P, shop=shop, update_ledger=False)
    assert ("advocate", "loyalty_award") in {(a.customer_id, a.kind) for a in full}
    inc, _ = _equal_to_the_full_plan(store, shop, at, set())
    assert "advocate" in inc.customers


def test_a_customer_due_for_a_program_alone_keeps_the_loyalty_notices_of_the_window(
    store: Store, tmp_path: Path
) -> None:
    """A day after an order, its shipment makes the customer due for a program moment alone
    (no change noted, the loyalty moment not due): the incremental plan derives only their
    loyalty notices then, and must still plan the award of that order, which the full plan
    keeps while it is inside the awards' lookback (once, only changed or loyalty-due
    customers were derived, and the award went missing from the plan)."""
    shop = "g.example"
    store.upsert([customer("c").model_copy(update={"shop": shop})])
    sinks = [JsonLines("out.jsonl", root=tmp_path)]
    store.upsert([order("o1", "c", T0, ptype="Coffee").model_copy(update={"shop": shop})])
    at = T0 + HOUR
    first = plan(store, POLICY, at, platform=P, shop=shop, only_changed=True)
    award = [a.idempotency_key for a in first if a.kind == "loyalty_award"]
    assert award
    apply(first, store, sinks, now=at)
    shop_id = store.shop_id(P, shop)
    later = T0 + DAY + HOUR  # the shipment (a day after the order) is a program moment
    assert "c" not in _notes(store, shop) and "c" in marks.not_due(
        store, shop_id, to_micros(later), incremental.settings_tag(POLICY)
    )
    inc, _ = _equal_to_the_full_plan(store, shop, later, set())
    assert "c" in inc.customers and award[0] in _keys(inc)
