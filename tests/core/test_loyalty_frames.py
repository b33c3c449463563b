"""The loyalty ledger derived from the frames a plan read (issue 18, item 2): a whole-shop
plan reads the shop once, and the ledger it derives equals the one read from the store."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import polars as pl
import pytest

import shopsync
from shopsync import loyalty, planning
from shopsync.core.loyalty_blocks import notes_of
from shopsync.core.loyalty_shop import ShopLedger, derive_shop
from shopsync.core.policy import Policy
from shopsync.frames import load
from shopsync.loyalty import _derivation
from shopsync.models import Money, Refund
from shopsync.store import Store, ledger_mark
from shopsync.testing.generator import generate_shop

END = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
P, S = "shopify", "acme"
DAY = dt.timedelta(days=1)
POLICY = Policy.from_dict({"currency": "USD"})


@pytest.fixture
def shop(store: Store) -> Store:
    state = generate_shop(platform=P, shop=S, seed=11, customers=30, orders=150, end=END)
    first = sorted(state.orders.values(), key=lambda o: o.created_at)[5]
    refund = Refund(
        id="r-1", created_at=first.created_at + dt.timedelta(days=2), amount=Money.of("5", "USD")
    )
    refunded = first.model_copy(update={"refunds": (refund,), "updated_at": refund.created_at})
    store.upsert([*state.customers.values(), *state.orders.values()])
    store.upsert([refunded])
    return store


def _no_second_read(*args: object, **kwargs: object) -> object:
    raise AssertionError("the loyalty derivation read the shop's orders a second time")


def test_a_whole_shop_plan_reads_the_orders_once(
    shop: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_of = END - dt.timedelta(days=100)
    monkeypatch.setattr(_derivation, "loyalty_tables", _no_second_read)
    shopsync.plan(shop, POLICY, as_of)  # brings the ledger up to date from the plan's frames
    assert loyalty.ledger_status(shop, P, S, as_of, policy=POLICY) is None
    shopsync.plan(shop, POLICY, as_of)  # current ledger: the notices from the same frames


def test_a_whole_shop_plan_reads_the_data_version_once(
    shop: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The version read before the frames also says whether the ledger is current: at 10M
    orders each read counts and scans the shop's tables (3 s)."""
    as_of = END - dt.timedelta(days=100)
    calls: list[object] = []
    read = ledger_mark.data_version

    def counting(*args: Any, **kwargs: Any) -> list[Any]:
        calls.append(args)
        return read(*args, **kwargs)

    monkeypatch.setattr(ledger_mark, "data_version", counting)
    stale = shopsync.plan(shop, POLICY, as_of)  # writes the ledger, marks it current
    assert len(calls) == 1
    assert loyalty.ledger_status(shop, P, S, as_of, policy=POLICY) is None
    calls.clear()
    current = shopsync.plan(shop, POLICY, as_of)
    assert len(calls) == 1
    assert current.actions == stale.actions
    assert not any("not written back" in note for note in current.notes)


@pytest.mark.parametrize(
    "policy", [POLICY, Policy.from_dict({"loyalty": {"earn": {"include_tax": True}}})]
)
def test_a_whole_shop_plan_reads_the_loyalty_amounts_with_its_frames(
    shop: Store, monkeypatch: pytest.MonkeyPatch, policy: Policy
) -> None:
    """The plan's one read carries the order amounts the earn rule counts and the refunds'
    ids: the derivation reads no second pass over the orders (1.2 s at 1M orders)."""
    as_of = END - dt.timedelta(days=100)
    extras = _derivation.loyalty_extras
    read: list[set[str]] = []

    def recording(*args: Any, **kwargs: Any) -> dict[str, Any]:
        found = extras(*args, **kwargs)
        read.append(set(found))
        return found

    monkeypatch.setattr(_derivation, "loyalty_extras", recording)
    written = shopsync.plan(shop, policy, as_of)  # brings the ledger up to date
    planned = shopsync.plan(shop, policy, as_of)  # a dry run: the notices
    assert read == [{"later_orders", "customers"}] * 2
    monkeypatch.setattr(_derivation, "loyalty_extras", extras)
    frames = load(shop, P, S, as_of, currency="USD", advocates=False)
    alone = loyalty.update_ledger(
        shop, P, S, as_of=as_of, policy=policy, dry_run=True, frames=frames
    )
    assert written.actions == planned.actions
    keys = {a.idempotency_key for a in alone.actions}
    assert {a.idempotency_key for a in planned.actions if a.kind.startswith("loyalty")} <= keys


LOW_TIERS = Policy.from_dict(
    {
        "currency": "USD",
        "loyalty": {
            "tiers": {
                "tiers": [
                    {"name": "Bronze", "threshold": 0},
                    {"name": "Silver", "threshold": 100, "multiplier": 1.25},
                    {"name": "Gold", "threshold": 300, "multiplier": 1.5},
                ]
            }
        },
    }
)
RICH = Policy.from_dict(
    {
        "currency": "USD",
        "loyalty": {
            "milestones": {"orders": [{"orders": 2, "points": 50}], "anniversary_points": 20},
        },
    }
)


@pytest.mark.parametrize("policy", [LOW_TIERS, RICH], ids=["columns", "rules"])
def test_a_plans_dry_run_builds_only_the_customers_with_actions(
    shop: Store, monkeypatch: pytest.MonkeyPatch, policy: Policy
) -> None:
    """``actions_only`` (a plan's dry run) gives the same actions, in the same order, from
    the derivations of the customers that have one (a shop's customers are millions), and
    the whole dry run builds the records of those alone too (its blocks say the others'
    tiers and moments); the rules (a policy the columns do not cover) still derive every
    customer."""
    built: list[int] = []

    def counting(*args: Any, **kw: Any) -> ShopLedger:
        found = derive_shop(*args, **kw)
        if kw.get("by_block"):  # the whole dry run: records of some customers, by block
            blocks = list(found.blocks)
            built.append(sum(len(b.ledgers) for b in blocks))
            return dataclasses.replace(found, blocks=iter(blocks))
        ledgers = list(found.customers)
        built.append(len(ledgers))
        return dataclasses.replace(found, customers=iter(ledgers))

    monkeypatch.setattr(_derivation, "derive_shop", counting)
    kinds: set[str] = set()
    for days in (400, 200, 100, 30, 0):
        as_of = END - dt.timedelta(days=days)
        frames = load(shop, P, S, as_of, currency="USD", advocates=False)
        kw: dict[str, Any] = dict(
            as_of=as_of, policy=policy, dry_run=True, frames=frames, lookback=60 * DAY
        )
        built.clear()
        every = loyalty.update_ledger(shop, P, S, **kw)
        few = loyalty.update_ledger(shop, P, S, **kw, actions_only=True)
        assert [a.model_dump() for a in few.actions] == [a.model_dump() for a in every.actions]
        kinds |= {a.kind for a in every.actions}
        with_actions = {a.customer_id for a in every.actions}
        if policy is LOW_TIERS:
            assert every.customers > built[0] == built[1] >= len(with_actions)
        else:
            assert built[0] == built[1] == every.customers
        assert (few.tiers, few.due, few.customers) == ({}, {}, 0)
    if policy is LOW_TIERS:  # every kind of loyalty action was compared
        assert kinds >= {
            "loyalty_award",
            "loyalty_tier_change",
            "loyalty_tier_progress",
            "loyalty_expiry_warning",
        }


def test_actions_only_is_a_dry_run(shop: Store) -> None:
    with pytest.raises(ValueError, match="dry run"):
        loyalty.update_ledger(shop, P, S, as_of=END, policy=POLICY, actions_only=True)


def _derived(shop: Store, monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> list[Any]:
    """Every entry, action and note a dry-run sync derives (by block)."""
    seen: list[Any] = []

    def keeping(*args: Any, **kw: Any) -> ShopLedger:
        found = derive_shop(*args, **{**kw, "all_entries": True})  # a dry run keeps a few
        blocks = list(found.blocks)  # every entry: each customer's record holds theirs
        for block in blocks:
            seen.extend(("record", c.derivation.entries, c.actions) for c in block.ledgers)
            seen.append(("notes", notes_of(block.notes), []))
        return ShopLedger(iter(()), found.referrals, blocks=iter(blocks))

    monkeypatch.setattr(_derivation, "derive_shop", keeping)
    loyalty.update_ledger(shop, P, S, policy=POLICY, dry_run=True, **kwargs)
    return seen


def test_the_ledger_from_frames_equals_the_ledger_from_the_store(
    shop: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_of = END - dt.timedelta(days=100)  # orders placed later exist: they still count
    frames = load(shop, P, S, as_of, currency="USD", advocates=False)
    read = _derived(shop, monkeypatch, as_of=as_of)
    given = _derived(shop, monkeypatch, as_of=as_of, frames=frames)
    entries = [e for what, found, _ in read if what == "record" for e in found]
    assert entries
    assert any(e.kind == "clawback" for e in entries)
    assert given == read


def test_frames_without_the_version_read_before_them_leave_the_ledger_unmarked(
    shop: Store,
) -> None:
    as_of = END - dt.timedelta(days=100)
    frames = load(shop, P, S, as_of, currency="USD", advocates=False)
    written = loyalty.update_ledger(shop, P, S, as_of=as_of, policy=POLICY, frames=frames)
    assert written.added > 0
    assert loyalty.ledger_status(shop, P, S, as_of, policy=POLICY) is not None
    version = ledger_mark.data_version(shop, shop.shop_id(P, S))
    frames = load(shop, P, S, as_of, currency="USD", advocates=False)
    loyalty.update_ledger(
        shop, P, S, as_of=as_of, policy=POLICY, frames=frames, frames_version=version
    )
    assert loyalty.ledger_status(shop, P, S, as_of, policy=POLICY) is None


def test_frames_of_another_moment_are_refused(shop: Store) -> None:
    frames = load(shop, P, S, END - dt.timedelta(days=100), currency="USD", advocates=False)
    with pytest.raises(ValueError, match="same as_of"):
        loyalty.update_ledger(shop, P, S, as_of=END, policy=POLICY, dry_run=True, frames=frames)


def test_frames_with_some_of_the_earn_amounts_take_the_rest_from_the_store(shop: Store) -> None:
    """Frames read for one policy's earn rule (the subtotal) derive under another that also
    counts shipping and tax: the amounts they lack come from the store, the same actions."""
    as_of = END - 100 * DAY
    wider = Policy.from_dict(
        {"currency": "USD", "loyalty": {"earn": {"include_shipping": True, "include_tax": True}}}
    )
    some = load(
        shop,
        P,
        S,
        as_of,
        currency="USD",
        advocates=False,
        columns={"orders": ("subtotal",), "refunds": ("id",)},
    )
    none = load(shop, P, S, as_of, currency="USD", advocates=False)
    kw: dict[str, Any] = dict(as_of=as_of, policy=wider, dry_run=True, lookback=400 * DAY)
    found = loyalty.update_ledger(shop, P, S, frames=some, **kw)
    read = loyalty.update_ledger(shop, P, S, frames=none, **kw)
    assert found.actions and found.actions == read.actions
    assert found.tiers == read.tiers


KINDS = Policy.from_dict(
    {
        "currency": "USD",
        "loyalty": {
            "tiers": LOW_TIERS.loyalty.tiers.model_dump(mode="json"),
            "birthday": {"min_days_after_entry": 0},
        },
    }
)


def _kinds_shop(store: Store) -> tuple[list[str], list[dt.datetime], list[Any]]:
    """A generated shop with a referral, a moved order and its customers' birthdays; the
    customers by first order, the moments to compare at, and the orders."""
    state = generate_shop(platform=P, shop=S, seed=5, customers=40, orders=200, end=END)
    store.upsert([*state.customers.values(), *state.orders.values()])
    first: dict[str, dt.datetime] = {}
    for o in sorted(state.orders.values(), key=lambda o: o.created_at):
        if o.customer_id is not None:
            first.setdefault(o.customer_id, o.created_at)
    ids = sorted(first, key=first.__getitem__)
    friend = ids[-1]
    loyalty.record_referral(
        store, P, S, advocate_id=ids[0], friend_id=friend, at=first[friend] - DAY
    )
    moments = [first[friend] + d * DAY for d in (1, 15, 16, 20)]
    moments += [END - d * DAY for d in (300, 200, 120, 60, 30, 10, 0)]
    return ids, sorted(moments), list(state.orders.values())


def _plan_dry_run(store: Store, as_of: dt.datetime) -> list[dict[str, Any]]:
    """The loyalty actions of a plan whose ledger is current: its read, ``actions_only``."""
    frames = load(
        store,
        P,
        S,
        as_of,
        currency="USD",
        advocates=False,
        columns={"orders": ("subtotal",), "refunds": ("id",)},
    )
    found = loyalty.update_ledger(
        store, P, S, as_of=as_of, policy=KINDS, dry_run=True, frames=frames, actions_only=True
    )
    return [a.model_dump() for a in found.actions]


def test_a_plans_dry_run_gives_the_actions_the_ledger_writing_run_gives(
    store: Store,
) -> None:
    """At each moment the plan's dry run (the plan's read, ``actions_only``; before the ledger
    is written and after) announces exactly what the run that writes the ledger announces:
    awards, birthday and referral bonuses, tier changes and progress, expiry warnings, with a
    redemption and an order moved between customers in the history."""
    ids, moments, orders = _kinds_shop(store)
    kinds: set[str] = set()
    reasons: set[str] = set()
    moved = False
    for n, as_of in enumerate(moments):
        before = _plan_dry_run(store, as_of)
        written = loyalty.update_ledger(store, P, S, as_of=as_of, policy=KINDS)
        after = _plan_dry_run(store, as_of)
        assert before == [a.model_dump() for a in written.actions] == after, as_of
        kinds |= {a.kind for a in written.actions}
        reasons |= {a.reason for a in written.actions}
        if n == len(moments) // 2 and not moved:  # an order moves, another customer redeems
            rich = max(ids, key=lambda c: loyalty.balance(store, (P, S, c), as_of).approved)
            loyalty.redeem(store, (P, S, rich), 500, as_of=as_of, policy=KINDS)
            away = next(o for o in orders if o.customer_id == ids[1] and o.created_at < as_of)
            store.upsert([away.model_copy(update={"customer_id": ids[2], "updated_at": END + DAY})])
            moved = True
    assert kinds >= {
        "loyalty_award",
        "loyalty_tier_change",
        "loyalty_tier_progress",
        "loyalty_expiry_warning",
    }, kinds
    assert any("birthday" in r for r in reasons) and any("referr" in r for r in reasons), reasons


@pytest.mark.parametrize("current", [True, False], ids=["current", "stale"])
def test_a_write_between_the_version_read_and_the_frames_leaves_the_ledger_stale(
    shop: Store, monkeypatch: pytest.MonkeyPatch, current: bool
) -> None:
    """An order stored after the plan read the data version and before it read its frames:
    the ledger is marked with the older version (or stays as it was), so the next check finds
    it stale, and the balance written back counts the order."""
    as_of = END - 100 * DAY
    if current:
        shopsync.plan(shop, POLICY, as_of)
        assert loyalty.ledger_status(shop, P, S, as_of, policy=POLICY) is None
    some = next(iter(load(shop, P, S, as_of, currency="USD").orders.iter_rows(named=True)))
    owner = str(some["customer_id"])
    before = loyalty.balance(shop, (P, S, owner), as_of).total
    state = generate_shop(platform=P, shop=S, seed=11, customers=30, orders=150, end=END)
    late = next(iter(state.orders.values())).model_copy(
        update={
            "id": "late-1",
            "customer_id": owner,
            "created_at": as_of - DAY,
            "updated_at": as_of - DAY,
            "paid_at": as_of - DAY,
        }
    )
    real = planning.load

    def write_first(*args: Any, **kwargs: Any) -> Any:
        shop.upsert([late])  # lands between the version read and the frames
        return real(*args, **kwargs)

    monkeypatch.setattr(planning, "load", write_first)
    shopsync.plan(shop, POLICY, as_of)
    monkeypatch.setattr(planning, "load", real)
    assert loyalty.ledger_status(shop, P, S, as_of, policy=POLICY) is not None
    loyalty.write_back_balance(shop, (P, S, owner), as_of)
    assert loyalty.ledger_status(shop, P, S, as_of, policy=POLICY) is None
    assert loyalty.balance(shop, (P, S, owner), as_of).total > before


def test_a_plan_under_an_earn_rule_counting_more_amounts_derives_with_them(shop: Store) -> None:
    """The earn rule counts shipping and tax from a moment on: the orders earned before keep
    the points the ledger holds, the orders paid since earn with the new amounts, and the
    plan's awards, its dry run and the ledger it marks current agree."""
    orders = load(shop, P, S, END, currency="USD").orders
    paid = orders.filter(pl.col("paid_at").is_not_null())["paid_at"].sort().to_list()
    hour = 3_600_000_000
    # a gap between two payments, with orders paid just before and after it, within a week
    j = next(
        j
        for j in range(len(paid) - 3, 1, -1)
        if paid[j + 1] - paid[j] > hour and paid[j + 2] - paid[j - 2] < 6 * 24 * hour
    )
    before = dt.datetime.fromtimestamp((paid[j] + paid[j + 1]) // 2 / 1e6, dt.timezone.utc)
    after = dt.datetime.fromtimestamp((paid[j + 2] + hour) / 1e6, dt.timezone.utc)
    wider = Policy.from_dict(
        {"currency": "USD", "loyalty": {"earn": {"include_shipping": True, "include_tax": True}}}
    )

    def awards(actions: Any) -> dict[str, int]:
        return {a.order_id: a.points for a in actions if a.kind == "loyalty_award"}

    def dry(policy: Policy, at: dt.datetime) -> dict[str, int]:
        read = loyalty.update_ledger(shop, P, S, as_of=at, policy=policy, dry_run=True)
        return awards(read.actions)

    shopsync.plan(shop, POLICY, before)  # writes the ledger under the narrow rule
    narrow = dry(POLICY, before)
    narrow_now = dry(POLICY, after)  # what the narrow rule gives the orders paid since
    planned = awards(shopsync.plan(shop, wider, after).actions)
    assert loyalty.ledger_status(shop, P, S, after, policy=wider) is None
    wide = dry(wider, after)
    assert planned and planned.items() <= wide.items()
    kept, since = narrow.keys() & wide.keys(), wide.keys() - narrow.keys()
    assert kept and since
    assert {k: wide[k] for k in kept} == {k: narrow[k] for k in kept}
    assert all(wide[k] > narrow_now[k] for k in since)
    owners = dict(orders.select("id", "customer_id").iter_rows())
    for order_id, points in wide.items():  # what is announced is what the ledger holds
        lines = loyalty.statement(shop, (P, S, owners[order_id]))
        earned = [ln for ln in lines if ln.kind == "earn" and ln.order_id == order_id]
        assert [ln.pending + ln.approved for ln in earned] == [points]


def test_an_award_announced_after_an_earn_rule_change_is_the_points_the_ledger_holds(
    shop: Store,
) -> None:
    """Two plans of the same moment, the second counting shipping and tax: each award it
    announces is the order's earned points in the ledger it marks current."""
    orders = load(shop, P, S, END, currency="USD").orders.sort("created_at")
    placed = orders.filter(pl.col("paid_at").is_not_null())["created_at"][-10]
    as_of = dt.datetime.fromtimestamp(placed / 1e6, dt.timezone.utc) + DAY
    wider = Policy.from_dict(
        {"currency": "USD", "loyalty": {"earn": {"include_shipping": True, "include_tax": True}}}
    )
    shopsync.plan(shop, POLICY, as_of)
    awards = [a for a in shopsync.plan(shop, wider, as_of).actions if a.kind == "loyalty_award"]
    assert awards and loyalty.ledger_status(shop, P, S, as_of, policy=wider) is None
    for award in awards:
        lines = loyalty.statement(shop, (P, S, award.customer_id))
        earned = [ln for ln in lines if ln.kind == "earn" and ln.order_id == award.order_id]
        assert [ln.pending + ln.approved for ln in earned] == [award.points]


def test_a_dry_run_of_some_customers_from_their_frames_derives_what_the_whole_shop_gives_them(
    shop: Store,
) -> None:
    """An incremental plan's read holds some customers; their derivation must be the one the
    whole shop's gives them, orders placed after ``as_of`` included (they move the moment
    their loyalty next changes): those orders are read for them alone."""
    orders = load(shop, P, S, END, currency="USD").orders.sort("created_at")
    placed = orders["created_at"][len(orders) // 2]
    as_of = dt.datetime.fromtimestamp(placed / 1e6, dt.timezone.utc)
    after = orders.filter(pl.col("created_at") > placed)
    some = sorted(set(after["customer_id"].to_list()))[:6]
    assert some
    whole = loyalty.update_ledger(shop, P, S, as_of=as_of, policy=POLICY, dry_run=True)
    frames = load(shop, P, S, as_of, currency="USD", customer_ids=set(some))
    part = loyalty.update_ledger(
        shop, P, S, as_of=as_of, policy=POLICY, dry_run=True, customer_ids=some, frames=frames
    )
    assert part.due == {c: whole.due[c] for c in some}
    assert any(due is not None for due in part.due.values())
    mine = [a.idempotency_key for a in whole.actions if a.customer_id in set(some)]
    assert [a.idempotency_key for a in part.actions] == mine
