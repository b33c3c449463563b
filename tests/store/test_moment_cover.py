"""Revision 0025 (issue 19, item 4): an incremental plan chooses its customers from the
moments' indexes, not from a pass over every customer, once a settle has found that every
customer of the shop has a program and a loyalty moment or a change note (``moment_cover``);
whatever may break that lowers it, and the next plan makes the pass again."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from sqlalchemy import inspect, text

from shopsync.core.policy import Policy
from shopsync.incremental import IncrementalPlan
from shopsync.models import Customer
from shopsync.outbox import apply
from shopsync.planning import plan, plan_customer
from shopsync.sinks import JsonLines
from shopsync.store import Store, _rows, changes
from shopsync.store import incremental as marks
from shopsync.testing.generator import generate_shop
from tests.core.retention_helpers import customer, order
from tests.store.alembic_kit import downgrade, drift, indexes

P, SHOP = "shopify", "cover.example"
T0 = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)
POLICY = Policy.from_dict(
    {
        "replenishment": {"usage_days_by_type": {"Coffee": 21, "Tea": 45}},
        "loyalty": {"enabled": True},
    }
)
INDEXES = {
    "program_due": {
        "ix_program_due_at": ["shop_id", "due_at"],
        "ix_program_due_tag": ["shop_id", "settings", "derived_at"],
    },
    "loyalty_due": {
        "ix_loyalty_due_at": ["shop_id", "due_at"],
        "ix_loyalty_due_tag": ["shop_id", "settings", "derived_at"],
    },
}


def _shop(store: Store) -> int:
    state = generate_shop(platform=P, shop=SHOP, seed=5, customers=10, orders=30, end=T0, years=1)
    store.upsert([*state.products.values(), *state.customers.values(), *state.orders.values()])
    return store.shop_id(P, SHOP)


def _cover(store: Store, shop_id: int) -> tuple[bool, bool] | None:
    with store.engine.connect() as conn:
        row = conn.execute(
            text("SELECT programs, loyalty FROM moment_cover WHERE shop_id = :s"), {"s": shop_id}
        ).first()
    return None if row is None else (bool(row[0]), bool(row[1]))


def _settled(store: Store, tmp: Path, at: dt.datetime, policy: Policy = POLICY) -> Any:
    planned = plan(store, policy, at, platform=P, shop=SHOP, only_changed=True)
    apply(planned, store, [JsonLines("out.jsonl", root=tmp)], now=at)
    return planned


def _spied_plan(
    store: Store, at: dt.datetime, policy: Policy = POLICY, *, platform: str = P, shop: str = SHOP
) -> tuple[Any, list[marks.Candidates]]:
    """The incremental plan at ``at`` and what its :func:`marks.candidates` found."""
    found: list[marks.Candidates] = []
    real = marks.candidates

    def spy(*args: Any, **kwargs: Any) -> marks.Candidates:
        found.append(real(*args, **kwargs))
        return found[-1]

    with mock.patch.object(marks, "candidates", spy):
        result = plan(store, policy, at, platform=platform, shop=shop, only_changed=True)
    return result, found


def test_upgrade_indexes_the_moments_adds_the_cover_and_downgrade_drops_them(
    store_url: str,
) -> None:
    old = Store(store_url, migrate=False)
    old.migrate("0024")
    assert "moment_cover" not in inspect(old.engine).get_table_names()
    old.close()

    store = Store(store_url)
    assert store.schema_version() == Store.head_version()
    assert drift(store.engine) == []
    for table, wanted in INDEXES.items():
        held = indexes(store.engine, table)
        assert {name: held.get(name) for name in wanted} == wanted

    downgrade(store.engine, "0024")
    assert "moment_cover" not in inspect(store.engine).get_table_names()
    for table, wanted in INDEXES.items():
        assert not set(wanted) & set(indexes(store.engine, table))
    store.close()


def test_an_upgrade_to_0025_cut_half_way_is_completed_by_the_next_open(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after the indexes, before the table: nothing of it stays; the next open
    upgrades it whole."""
    from alembic import op

    old = Store(store_url, migrate=False)
    old.migrate("0024")

    def killed(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(op, "create_table", killed)
    with pytest.raises(KeyboardInterrupt):
        old.migrate()
    monkeypatch.undo()
    assert old.schema_version() == "0024"
    assert not set(INDEXES["program_due"]) & set(indexes(old.engine, "program_due"))
    old.close()
    store = Store(store_url)
    assert store.schema_version() == Store.head_version()
    assert drift(store.engine) == []
    store.close()


def test_the_moments_are_read_through_their_indexes(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'plan.db'}")
    for table in INDEXES:
        alias = "program_due pd" if table == "program_due" else table
        sql = marks._MOMENTS.format(current="1", table=alias, tag="tag")
        with store.engine.connect() as conn:
            steps = conn.execute(
                text(f"EXPLAIN QUERY PLAN {sql}"), {"sid": 1, "at": 0, "tag": "x"}
            ).all()
        reads = [str(row[-1]) for row in steps if str(row[-1]).startswith(("SCAN", "SEARCH"))]
        assert len(reads) == 4, reads
        assert all(r.startswith("SEARCH") and f"ix_{table}_" in r for r in reads), reads
    store.close()


def test_a_settled_plan_covers_the_shop_and_the_next_one_chooses_by_index(
    store: Store, tmp_path: Path
) -> None:
    shop_id = _shop(store)
    first = _settled(store, tmp_path, T0)
    assert _cover(store, shop_id) == (True, True)
    _settled(store, tmp_path, T0 + HOUR)  # the deliveries' own clocks
    store.upsert([customer("new-one", created=T0).model_copy(update={"shop": SHOP})])
    later = T0 + 40 * 24 * HOUR  # replenishment moments come
    result, found = _spied_plan(store, later)
    assert [f.by_index for f in found] == [True]
    assert "new-one" in result.customers  # noted: no moment needed
    # the index finds what the pass over every customer finds, but for the noted (planned
    # as noted), and may find more
    with store.transaction() as conn:
        conn.execute(text("DELETE FROM moment_cover"))
    scanned, again = _spied_plan(store, later)
    assert [f.by_index for f in again] == [False]
    noted = {c.customer_id for c in changes.changed(store, limit=10**6)}
    assert "new-one" in noted
    for name in ("stale", "program", "loyalty"):
        assert getattr(again[0], name) <= getattr(found[0], name) | noted, name
    assert scanned.keys == result.keys and scanned.customers == result.customers
    assert len(first.customers) == 10


def test_notes_cleared_without_a_settle_lower_the_cover(store: Store, tmp_path: Path) -> None:
    """A worker's :func:`changes.clear_changes` records no moment: a customer new since the
    settle then has neither, and only the pass over every customer finds them."""
    shop_id = _shop(store)
    _settled(store, tmp_path, T0)
    _settled(store, tmp_path, T0 + HOUR)
    store.upsert([customer("quiet-one", created=T0).model_copy(update={"shop": SHOP})])
    changes.clear_changes(store, changes.changed(store, limit=10**6))
    assert _cover(store, shop_id) == (False, False)
    result, found = _spied_plan(store, T0 + 2 * HOUR)
    assert [f.by_index for f in found] == [False]
    assert "quiet-one" in found[0].stale and "quiet-one" in found[0].loyalty
    assert "quiet-one" in result.customers  # its loyalty moment is absent: planned
    apply(result, store, [JsonLines("out.jsonl", root=tmp_path)], now=T0 + 2 * HOUR)
    assert _cover(store, shop_id) == (True, True)


def _quiet_customer(store: Store, shop_id: int) -> str:
    """A customer with both moments recorded, neither due by +40 days."""
    quiet = "SELECT customer_id FROM {} WHERE shop_id = :s AND (due_at IS NULL OR due_at > :at)"
    with store.engine.connect() as conn:
        params = {"s": shop_id, "at": _rows.to_micros(T0 + 40 * DAY)}
        quiets = [
            set(conn.execute(text(quiet.format(table)), params).scalars())
            for table in ("program_due", "loyalty_due")
        ]
    return min(quiets[0] & quiets[1])


def _rename(store: Store, who: str) -> None:
    """A change that notes ``who`` and touches no moment: a new first name at T0 + 1 h."""
    held = store.get(Customer, P, SHOP, who)
    assert held is not None
    store.upsert([held.model_copy(update={"first_name": "Renamed", "updated_at": T0 + HOUR})])


def test_a_note_cleared_without_a_settle_leaves_its_customer_due(
    store: Store, tmp_path: Path
) -> None:
    """A customer with moments changes (a new order) and a worker clears the note without
    recording moments: their old moments, not derived from the order, must not hide them
    from the incremental plans until they come (the order's review request at +25 days).
    Nor may a plan that read them before the order, settled after the worker, bring those
    old moments back (issue 19: its settle wrote them and the customer had no note left)."""
    shop_id = _shop(store)
    _settled(store, tmp_path, T0)
    who = _quiet_customer(store, shop_id)
    _rename(store, who)  # the nightly plan reads them (noted), before their order
    nightly = plan(store, POLICY, T0 + HOUR, platform=P, shop=SHOP, only_changed=True)
    assert isinstance(nightly, IncrementalPlan) and who in nightly.customers
    made = order("coffee-new", who, T0 + 2 * HOUR, ptype="Coffee")
    store.upsert([made.model_copy(update={"shop": SHOP})])
    # a worker plans the noted customer alone, applies, and clears the note (the Flask recipe)
    alone = plan_customer(store, POLICY, T0 + 2 * HOUR, P, SHOP, who)
    apply(alone.actions, store, [JsonLines("out.jsonl", root=tmp_path)], now=T0 + 2 * HOUR)
    mine = [c for c in changes.changed(store, limit=10**6) if c.customer_id == who]
    assert changes.clear_changes(store, mine) == 1
    apply(nightly, store, [JsonLines("out.jsonl", root=tmp_path)], now=T0 + HOUR)  # settles last
    for days in (1, 25, 30, 40):
        at = T0 + days * DAY
        result = plan(store, POLICY, at, platform=P, shop=SHOP, only_changed=True)
        assert isinstance(result, IncrementalPlan)
        full = plan(store, POLICY, at, platform=P, shop=SHOP, update_ledger=False)
        held_keys = marks.recorded_keys(store, shop_id, [a.idempotency_key for a in full])
        wanted = {a.customer_id for a in full if a.idempotency_key not in held_keys}
        assert wanted <= set(result.customers), (days, wanted - set(result.customers))
        theirs = sorted(a.idempotency_key for a in full if a.customer_id in result.customers)
        assert sorted(result.keys) == theirs  # the full plan restricted to them
        if days == 25:
            assert who in wanted  # the new order's review request: what makes this bite
        apply(result, store, [JsonLines("out.jsonl", root=tmp_path)], now=at)


def test_a_note_settled_twice_keeps_a_change_noted_since(store: Store, tmp_path: Path) -> None:
    """Two incremental plans read a customer's note; one settles, the customer orders (a new
    note), then the other settles: it must not take the new note for the one it read (a note
    removed and noted again must not start again at the ``seq`` a plan read before)."""
    shop_id = _shop(store)
    _settled(store, tmp_path, T0)
    who = _quiet_customer(store, shop_id)
    _rename(store, who)
    late, early = (
        plan(store, POLICY, T0 + HOUR, platform=P, shop=SHOP, only_changed=True) for _ in "ab"
    )
    assert isinstance(late, IncrementalPlan) and who in late.customers
    apply(early, store, [JsonLines("out.jsonl", root=tmp_path)], now=T0 + HOUR)
    made = order("coffee-new", who, T0 + 2 * HOUR, ptype="Coffee")
    store.upsert([made.model_copy(update={"shop": SHOP})])
    apply(late, store, [JsonLines("out.jsonl", root=tmp_path)], now=T0 + HOUR)
    assert who in {c.customer_id for c in changes.changed(store, limit=10**6)}  # the workers'
    at = T0 + 25 * DAY
    result = plan(store, POLICY, at, platform=P, shop=SHOP, only_changed=True)
    assert isinstance(result, IncrementalPlan)
    full = plan(store, POLICY, at, platform=P, shop=SHOP, update_ledger=False)
    assert who in {a.customer_id for a in full}  # the order's review request
    assert who in result.customers


def test_a_plan_without_loyalty_lowers_its_cover_and_a_direct_settle_both(
    store: Store, tmp_path: Path
) -> None:
    shop_id = _shop(store)
    _settled(store, tmp_path, T0)
    store.upsert([customer("plain", created=T0).model_copy(update={"shop": SHOP})])
    no_loyalty = POLICY.model_copy(
        update={"loyalty": Policy.from_dict({"loyalty": {"enabled": False}}).loyalty}
    )
    _settled(store, tmp_path, T0 + HOUR, no_loyalty)  # "plain" settled without a loyalty moment
    assert _cover(store, shop_id) == (True, False)
    result, found = _spied_plan(store, T0 + 2 * HOUR)
    assert [f.by_index for f in found] == [False] and "plain" in result.customers
    marks.settle(store, shop_id, (), {}, 0, "s")  # a caller's own moments: covers nothing
    assert _cover(store, shop_id) == (False, False)


def test_a_customer_without_a_moment_or_a_note_keeps_the_cover_down(
    store: Store, tmp_path: Path
) -> None:
    """A row written without a note (outside the store's write paths) and created after the
    plan's as_of: the pass does not plan it, so its settle must not promise it."""
    shop_id = _shop(store)
    row = customer("bulk", created=T0 + 5 * HOUR).model_copy(update={"shop": SHOP})
    store.upsert([row])
    with store.transaction() as conn:
        conn.execute(text("DELETE FROM changed_customers WHERE customer_id = 'bulk'"))
    _settled(store, tmp_path, T0)
    assert _cover(store, shop_id) in (None, (False, False))
    result, found = _spied_plan(store, T0 + 6 * HOUR)
    assert [f.by_index for f in found] == [False] and "bulk" in result.customers
    assert store.get(Customer, P, SHOP, "bulk") is not None
