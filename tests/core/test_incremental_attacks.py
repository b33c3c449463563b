"""Review of issue 19's stored program moments: sequences an unlucky operator can run, each
checked against the contract (the incremental plan is the full plan restricted to its
customers, and a customer left out has nothing new: what the full plan sends them is in the
outbox already)."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any
from unittest import mock

from sqlalchemy import select

from shopsync.core.actions import Action
from shopsync.core.policy import Policy
from shopsync.models import Customer
from shopsync.outbox import apply, retry_parked
from shopsync.planning import plan
from shopsync.sinks import DeliveryContext, DeliveryError, JsonLines
from shopsync.store import Store
from shopsync.store.checkout_rows import upsert_checkouts
from shopsync.store.event_rows import record_events
from shopsync.store.incremental import recorded_keys
from shopsync.store.schema import loyalty_due, program_due
from shopsync.testing.generator import generate_shop
from tests.core.frames_kit import DAY as KDAY
from tests.core.frames_kit import T0 as KT0
from tests.core.frames_kit import Shop
from tests.core.frames_kit import policy as kit_policy
from tests.core.retention_helpers import DAY as RDAY
from tests.core.retention_helpers import T0 as RT0
from tests.core.retention_helpers import S, customer, order, product
from tests.core.test_incremental_plan import DAY, POLICY, T0, P, _small_shop

SHOP = "a.example"
HOUR = dt.timedelta(hours=1)


def _agrees(store: Store, at: dt.datetime, tmp: Path) -> None:
    """The incremental plan at ``at`` against the full one; then applied."""
    inc = plan(store, POLICY, at, platform=P, shop=SHOP, only_changed=True)
    full = plan(store, POLICY, at, platform=P, shop=SHOP, update_ledger=False)
    chosen = set(inc.customers)
    keys = [a.idempotency_key for a in inc]
    assert keys == [a.idempotency_key for a in full if a.customer_id in chosen]
    others = [a.idempotency_key for a in full if a.customer_id not in chosen]
    assert sorted(others) == sorted(recorded_keys(store, store.shop_id(P, SHOP), others))
    apply(inc, store, [JsonLines("out.jsonl", root=tmp)], now=at)


def _apply_inc(store: Store, at: dt.datetime, tmp: Path) -> None:
    inc = plan(store, POLICY, at, platform=P, shop=SHOP, only_changed=True)
    apply(inc, store, [JsonLines("out.jsonl", root=tmp)], now=at)


def test_a_back_dated_plan_does_not_swallow_a_change_a_later_moment_never_saw(
    store: Store, tmp_path: Path
) -> None:
    _small_shop(store, SHOP)
    _apply_inc(store, T0 + 10 * DAY, tmp_path)  # moments derived as of day 10
    ids = sorted(c.id for c in store.iter(Customer, P, SHOP))
    store.upsert(
        [
            order(f"late-{cid}", cid, T0 + 11 * DAY, ptype="Coffee").model_copy(
                update={"shop": SHOP}
            )
            for cid in ids
        ]
    )
    _apply_inc(store, T0 + 5 * DAY, tmp_path)  # an operator re-runs an older day
    _agrees(store, T0 + 12 * DAY, tmp_path)  # the late orders' points
    _agrees(store, T0 + 30 * DAY, tmp_path)  # their review requests


def test_a_back_dated_plan_of_another_policy_does_not_swallow_a_change_either(
    store: Store, tmp_path: Path
) -> None:
    """The change is dated before the back-dated plan (an order synced late), and that
    plan's policy has no review requests: its moments say nothing of the order's request,
    and the later moments never saw the order."""
    reviews, nothing = kit_policy(reviews={}), kit_policy()
    store.upsert(Shop().customer("c1").order("o1", "c1", KT0 - 400 * KDAY).models())
    sinks = [JsonLines("out.jsonl", root=tmp_path)]
    later = KT0 + 10 * KDAY
    apply(plan(store, reviews, later, only_changed=True), store, sinks, now=later)
    store.upsert(Shop().customer("c1").order("o2", "c1", KT0 + 2 * KDAY).models()[1:])
    back = KT0 + 5 * KDAY
    apply(plan(store, nothing, back, only_changed=True), store, sinks, now=back)
    at = KT0 + 20 * KDAY
    inc = plan(store, reviews, at, platform=P, shop="acme", only_changed=True)
    full = plan(store, reviews, at, platform=P, shop="acme", update_ledger=False)
    assert [a.idempotency_key for a in full] == ["review_request:acme:o2"]
    assert [a.idempotency_key for a in inc] == ["review_request:acme:o2"]


class _Refusing(JsonLines):
    """A file sink that refuses review requests for good while ``refusing`` is set."""

    refusing = True

    def deliver(self, action: Action, context: DeliveryContext) -> dict[str, Any]:
        if self.refusing and action.kind == "review_request":
            raise DeliveryError("recipient refused", retryable=False)
        return super().deliver(action, context)


def test_a_parked_review_request_queued_again_gets_its_reminder_planned(
    store: Store, tmp_path: Path
) -> None:
    policy = Policy.from_dict({"reviews": {"reminder_days": 7}})
    store.upsert(
        [
            product("p1"),
            customer("c1"),
            order("o1", "c1", RT0 - 30 * RDAY, fulfilled=RT0 - 20 * RDAY),
        ]
    )
    sink = _Refusing("out.jsonl", root=tmp_path)

    def run(at: dt.datetime) -> tuple[list[str], list[str]]:
        inc = plan(store, policy, at, platform=P, shop=S, only_changed=True)
        full = plan(store, policy, at, platform=P, shop=S, update_ledger=False)
        apply(inc, store, [sink], now=at)
        return [a.idempotency_key for a in inc], [a.idempotency_key for a in full]

    assert run(RT0)[0] == ["review_request:acme:o1"]  # parked: the recipient refused
    run(RT0 + 25 * RDAY)  # the request is past its late days: no longer planned
    sink.refusing = False
    retry_parked(store, now=RT0 + 26 * RDAY)
    apply(None, store, [sink], now=RT0 + 26 * RDAY)  # the operator's retry: it goes out
    planned, full = run(RT0 + 34 * RDAY)
    assert full == ["review_reminder:acme:o1"]
    assert planned == full


def test_an_erasure_leaves_no_stored_moment_of_the_customer(store: Store, tmp_path: Path) -> None:
    """A loyalty moment is personal (a birthday's date, when points expire): it goes with
    the customer's other rows."""
    _small_shop(store, SHOP)
    _apply_inc(store, T0 + DAY, tmp_path)
    shop_id = store.shop_id(P, SHOP)
    with store.engine.connect() as conn:
        held = conn.execute(
            select(loyalty_due.c.customer_id).where(loyalty_due.c.shop_id == shop_id)
        ).scalars()
        victim = sorted(held)[0]
    store.redact_customer(P, SHOP, victim)
    with store.engine.connect() as conn:
        for table in (loyalty_due, program_due):
            mine = (table.c.shop_id == shop_id) & (table.c.customer_id == victim)
            assert conn.execute(select(table.c.due_at).where(mine)).all() == [], table.name


def test_a_plan_of_a_removed_shop_settles_nothing_in_its_successor(
    store: Store, tmp_path: Path
) -> None:
    """SQLite gives a shop created after the last one's removal the same id, and a re-synced
    customer's first note the same ``seq``: a plan made before the removal and applied
    after must not clear the new shop's notes nor record its own moments there."""
    _small_shop(store, SHOP)
    at = T0 + DAY
    stale = plan(store, POLICY, at, platform=P, shop=SHOP, only_changed=True)
    old_id = store.shop_id(P, SHOP)
    store.remove_shop(P, SHOP)
    state = generate_shop(platform=P, shop=SHOP, seed=3, customers=12, orders=40, end=T0)
    more = [  # reinstalled and synced again, with an order more each
        order(f"new-{cid}", cid, at - HOUR, ptype="Coffee").model_copy(update={"shop": SHOP})
        for cid in state.customers
    ]
    store.upsert(
        [*state.products.values(), *state.customers.values(), *state.orders.values(), *more]
    )
    if store.engine.dialect.name == "sqlite":
        assert store.shop_id(P, SHOP) == old_id
    apply(stale, store, [JsonLines("out.jsonl", root=tmp_path)], now=at)
    _agrees(store, at, tmp_path)


def _new_rows_test(store: Store, tmp: Path, write: Any, pol: Any, later: dt.timedelta) -> None:
    """A customer planned and settled, then a row of theirs written (``write(store)``):
    the incremental plan ``later`` offers what the full plan does."""
    store.upsert(Shop().customer("c1").order("o1", "c1", KT0 - 200 * KDAY).models())
    sinks = [JsonLines("out.jsonl", root=tmp)]
    apply(plan(store, pol, KT0, platform=P, shop="acme", only_changed=True), store, sinks, now=KT0)
    write(store)
    at = KT0 + later
    inc = plan(store, pol, at, platform=P, shop="acme", only_changed=True)
    full = plan(store, pol, at, platform=P, shop="acme", update_ledger=False)
    assert [a.kind for a in full] != []
    assert [a.idempotency_key for a in inc] == [a.idempotency_key for a in full]


def test_a_checkout_written_after_a_settle_gets_its_reminder(store: Store, tmp_path: Path) -> None:
    started = Shop().customer("c1").checkout("k1", "c1", KT0 + HOUR)
    _new_rows_test(
        store,
        tmp_path,
        lambda s: upsert_checkouts(s, started.checkout_models()),
        kit_policy(abandoned_checkout={}),
        6 * HOUR,
    )


def test_a_browse_event_recorded_after_a_settle_gets_its_reminder(
    store: Store, tmp_path: Path
) -> None:
    seen = Shop().customer("c1").viewed("c1", "p1", KT0 + HOUR)
    _new_rows_test(
        store,
        tmp_path,
        lambda s: record_events(
            s, P, "acme", seen.event_rows(), received_at=KT0 + HOUR, cap=99, window=KDAY
        ),
        kit_policy(browse_abandonment={}),
        KDAY,
    )


def test_the_loyalty_dry_runs_of_an_incremental_plan_take_no_write_transaction(
    store: Store, tmp_path: Path
) -> None:
    """The plan derives its loyalty notices in two threads (the customers whose loyalty can
    have moved, and those due for a program alone): on SQLite a write transaction held
    through a derivation made the other wait for it, then fail ("database is locked")
    once the first derived for longer than the busy timeout; a dry run writes nothing."""
    _small_shop(store, SHOP)
    _apply_inc(store, T0, tmp_path)
    first = sorted(c.id for c in store.iter(Customer, P, SHOP))[0]
    store.upsert([order("x1", first, T0 + DAY, ptype="Coffee").model_copy(update={"shop": SHOP})])
    opened: list[str] = []
    real = Store.transaction

    def spy(self: Store) -> Any:
        opened.append(threading.current_thread().name)
        return real(self)

    with mock.patch.object(Store, "transaction", spy):
        inc = plan(store, POLICY, T0 + 40 * DAY, platform=P, shop=SHOP, only_changed=True)
    assert first in inc.customers and len(inc.customers) > 1  # both dry runs ran
    assert [name for name in opened if name == "shopsync-loyalty"] == []
