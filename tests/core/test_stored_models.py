"""Shop-level models stored between plans (issue 19, item 3): fresh ones are reused, stale
ones (by time, by changed share, by settings, by format) rebuilt with the next version, the
plan names the version it used, a crash mid-rebuild leaves the previous version whole, and
two processes rebuilding at once end with one version. Both engines (the ``store`` fixture)."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from typer.testing import CliRunner

import shopsync.stored_models as stored_models
from shopsync import clv
from shopsync.cli import app
from shopsync.core.policy import Policy
from shopsync.core.recommend import AlsoBought, Neighbour
from shopsync.core.shop_models import (
    FORMAT,
    ModelHeader,
    ModelsUsed,
    ShopModels,
    decode,
    encode,
    stale_reason,
)
from shopsync.models import Customer, Order, Refund
from shopsync.planning import plan, plan_customer
from shopsync.store import Store
from shopsync.store import shop_models as rows
from shopsync.testing.generator import generate_shop
from tests.core.retention_helpers import order

P = "shopify"
T0 = dt.datetime(2025, 1, 1, 6, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)
DAY0 = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)


def _policy(**models: Any) -> Policy:
    return Policy.from_dict(
        {
            "replenishment": {"usage_days_by_type": {"Coffee": 21}},
            "loyalty": {"enabled": False},
            "winback": {"model_min_customers": 5, "model_min_history_days": 30},
            "models": models,
        }
    )


RUN = uuid.uuid4().hex[:8]
"""In the shop names: a PostgreSQL test database outlives a run (see test_incremental_plan)."""
_names = itertools.count()


def _shop(store: Store, customers: int = 30) -> str:
    shop = f"m{RUN}-{next(_names)}.example"
    state = generate_shop(
        platform=P, shop=shop, seed=5, customers=customers, orders=150, end=T0 - DAY, years=1.0
    )
    store.upsert([*state.products.values(), *state.customers.values(), *state.orders.values()])
    return shop


def _builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the builds of the models (the expensive pass over every order)."""
    made: list[int] = []
    real = stored_models.shop_models

    def counted(frames: Any, policy: Policy) -> ShopModels:
        made.append(frames.as_of)
        return real(frames, policy)

    monkeypatch.setattr(stored_models, "shop_models", counted)
    return made


def _used(result: Any) -> ModelsUsed:
    (used,) = result.models
    assert isinstance(used, ModelsUsed)
    return used


def _head(store: Store, shop: str) -> ModelHeader | None:
    return rows.header(store, store.shop_id(P, shop, create=False))


def _keys(result: Any) -> list[str]:
    return [a.idempotency_key for a in result]


def test_fresh_models_are_reused_by_every_kind_of_plan(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _shop(store)
    builds = _builds(monkeypatch)
    policy = _policy()
    first = plan(store, policy, T0, platform=P, shop=name)
    used = _used(first)
    assert (used.version, used.rebuilt, used.why) == (1, True, "no stored models")
    assert used.data_as_of == DAY0
    assert len(builds) == 1
    later = plan(store, policy, T0 + dt.timedelta(hours=5), platform=P, shop=name)
    assert (_used(later).version, _used(later).rebuilt) == (1, False)
    assert _keys(later) == _keys(first)
    inc = plan(store, policy, T0, platform=P, shop=name, only_changed=True)
    assert (_used(inc).version, _used(inc).rebuilt) == (1, False)
    cid = sorted(c.id for c in store.iter(Customer, P, name))[0]
    one = plan_customer(store, policy, T0, P, name, cid)
    assert (_used(one).version, _used(one).rebuilt) == (1, False)
    assert _keys(one) == [a.idempotency_key for a in first if a.customer_id == cid]
    # a new store object (another process) decodes the stored version: still no build
    other = Store(str(store.engine.url.render_as_string(hide_password=False)))
    try:
        again = plan(other, policy, T0, platform=P, shop=name)
    finally:
        other.close()
    assert (_used(again).version, _used(again).rebuilt) == (1, False)
    assert _keys(again) == _keys(first)
    assert len(builds) == 1
    head = _head(store, name)
    assert head is not None and (head.version, head.format) == (1, FORMAT)


def test_models_older_than_refresh_every_days_are_rebuilt(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _shop(store)
    builds = _builds(monkeypatch)
    policy = _policy(refresh_every_days=3)
    assert _used(plan(store, policy, T0, platform=P, shop=name)).version == 1
    kept = _used(plan(store, policy, T0 + 2 * DAY, platform=P, shop=name))
    assert (kept.version, kept.rebuilt, kept.data_as_of) == (1, False, DAY0)
    new = _used(plan(store, policy, T0 + 3 * DAY, platform=P, shop=name))
    assert (new.version, new.rebuilt, new.data_as_of) == (2, True, DAY0 + 3 * DAY)
    assert "refresh_every_days" in new.why
    assert len(builds) == 2


def test_models_are_rebuilt_once_enough_orders_changed(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _shop(store)
    builds = _builds(monkeypatch)
    policy = _policy(refresh_every_days=30, refresh_after_changed_share=0.2)
    assert _used(plan(store, policy, T0, platform=P, shop=name)).version == 1
    head = _head(store, name)
    assert head is not None and head.customers > 10
    ids = sorted(c.id for c in store.iter(Customer, P, name))
    needed = math.ceil(head.customers * 0.2)  # changes that reach the share
    for n in range(needed - 2):  # new orders, then a refund: one change short of it
        made = order(f"x{n}", ids[n], T0 - 9 * DAY, ptype="Coffee")
        store.upsert([made.model_copy(update={"shop": name})])
    old = sorted(
        (o for o in store.iter(Order, P, name) if not o.id.startswith("x")), key=lambda o: o.id
    )
    refund = Refund(id="r-m", created_at=T0 - 2 * DAY, amount=old[0].total)
    later = max(old[0].updated_at, T0 - 2 * DAY) + dt.timedelta(seconds=1)
    store.upsert([old[0].model_copy(update={"updated_at": later, "refunds": (refund,)})])
    kept = _used(plan(store, policy, T0 + DAY, platform=P, shop=name))
    assert (kept.version, kept.rebuilt, kept.changes_since) == (1, False, needed - 1)
    store.delete(Order, P, name, old[1].id, deleted_at=T0)  # a deletion is a change too
    new = _used(plan(store, policy, T0 + DAY, platform=P, shop=name))
    assert (new.version, new.rebuilt, new.changes_since) == (2, True, 0)
    assert "refresh_after_changed_share" in new.why
    assert len(builds) == 2
    assert _used(plan(store, policy, T0 + DAY, platform=P, shop=name)).version == 2


def test_other_model_settings_rebuild_and_other_settings_do_not(store: Store) -> None:
    name = _shop(store)
    plan(store, _policy(), T0, platform=P, shop=name)
    quiet = _policy().model_copy(update={"frequency_cap": _policy().frequency_cap})
    assert _used(plan(store, quiet, T0, platform=P, shop=name)).version == 1
    other = Policy.from_dict(
        {**_policy().model_dump(mode="json"), "replenishment": {"min_repeat_pairs": 17}}
    )
    used = _used(plan(store, other, T0, platform=P, shop=name))
    assert (used.version, used.rebuilt, used.why) == (2, True, "built with other settings")


def test_a_crash_during_a_rebuild_leaves_the_previous_version_usable(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _shop(store)
    policy = _policy()
    first = plan(store, policy, T0, platform=P, shop=name)

    def broken(frames: Any, policy: Policy) -> ShopModels:
        raise MemoryError("killed while building the models")

    monkeypatch.setattr(stored_models, "shop_models", broken)
    with pytest.raises(MemoryError):
        plan(store, policy, T0 + DAY, platform=P, shop=name)
    monkeypatch.undo()

    def killed(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "shop_models" in statement and statement.lstrip().upper().startswith("UPDATE"):
            raise RuntimeError("killed while storing the models")

    event.listen(store.engine, "before_cursor_execute", killed)
    try:
        with pytest.raises(RuntimeError, match="killed"):
            plan(store, policy, T0 + DAY, platform=P, shop=name)  # stale: a rebuild
    finally:
        event.remove(store.engine, "before_cursor_execute", killed)

    head = _head(store, name)
    assert head is not None and head.version == 1
    body = rows.body(store, store.shop_id(P, name), 1)
    assert body is not None and decode(body).as_of == int(DAY0.timestamp() * 1_000_000)
    fresh = Store(str(store.engine.url.render_as_string(hide_password=False)))
    try:  # another process, same day as version 1: uses it as stored
        same = plan(fresh, policy, T0, platform=P, shop=name)
        assert (_used(same).version, _used(same).rebuilt) == (1, False)
        assert _keys(same) == _keys(first)
        assert _used(plan(fresh, policy, T0 + DAY, platform=P, shop=name)).version == 2
    finally:
        fresh.close()


def test_two_processes_rebuilding_at_once_end_with_one_version(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    stores = [Store(store_url), Store(store_url)]
    try:
        name = _shop(stores[0])
        policy = _policy()
        real = stored_models.shop_models
        both = threading.Barrier(2, timeout=60)

        def together(frames: Any, policy: Policy) -> ShopModels:
            built = real(frames, policy)
            both.wait()  # both have built before either stores
            return built

        monkeypatch.setattr(stored_models, "shop_models", together)
        for day, expected in ((0, 1), (1, 2)):  # no models yet, then stale ones
            found: dict[int, Any] = {}

            def run(i: int, day: int = day, found: dict[int, Any] = found) -> None:
                found[i] = plan(stores[i], policy, T0 + day * DAY, platform=P, shop=name)

            threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            assert sorted(found) == [0, 1]
            used = [_used(found[i]) for i in range(2)]
            assert [u.version for u in used] == [expected, expected]
            assert sorted(u.rebuilt for u in used) == [False, True]
            assert _keys(found[0]) == _keys(found[1])
            head = _head(stores[0], name)
            assert head is not None and head.version == expected
    finally:
        for s in stores:
            s.close()


def test_models_stored_in_an_unknown_format_are_rebuilt_not_crashed_on(store: Store) -> None:
    name = _shop(store)
    policy = _policy()
    plan(store, policy, T0, platform=P, shop=name)
    shop_id = store.shop_id(P, name)
    head = _head(store, name)
    assert head is not None
    newer = ModelHeader(7, FORMAT + 1, head.settings, head.data_as_of, 0, head.facts_seq, 5)
    assert rows.save(store, shop_id, 1, newer, b'{"written by": "shopsync 9"}')
    used = _used(plan(store, policy, T0, platform=P, shop=name))
    assert (used.version, used.rebuilt) == (8, True)
    assert f"format {FORMAT + 1}" in used.why
    damaged = ModelHeader(9, FORMAT, head.settings, head.data_as_of, 0, head.facts_seq, 5)
    assert rows.save(store, shop_id, 8, damaged, b"\x78\x9c not zlib")
    used = _used(plan(store, policy, T0, platform=P, shop=name))
    assert (used.version, used.rebuilt, used.why) == (
        10,
        True,
        "the stored body could not be read",
    )
    assert decode(rows.body(store, shop_id, 10) or b"").as_of == head.data_as_of


def test_a_plan_that_writes_nothing_or_looks_back_stores_no_models(store: Store) -> None:
    name = _shop(store)
    policy = _policy()
    quiet = _used(plan(store, policy, T0, platform=P, shop=name, update_ledger=False))
    assert (quiet.version, quiet.rebuilt) == (None, True)
    assert "writes nothing" in quiet.why and _head(store, name) is None
    assert _used(plan(store, policy, T0 + 5 * DAY, platform=P, shop=name)).version == 1
    back = _used(plan(store, policy, T0, platform=P, shop=name))
    assert (back.version, back.data_as_of) == (None, DAY0)  # never a later day's models
    head = _head(store, name)
    assert head is not None and (head.version, head.data_as_of) == (
        1,
        int((DAY0 + 5 * DAY).timestamp() * 1_000_000),
    )


def test_the_cli_plan_names_the_models_it_used(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    store = Store(db)
    try:
        name = _shop(store)
    finally:
        store.close()
    result = CliRunner().invoke(app, ["plan", "--db", db, "--as-of", "2025-01-01T06:00:00Z"])
    assert result.exit_code == 0, result.output
    assert f"models: {name}: models version 1" in result.output
    assert "rebuilt (no stored models)" in result.output
    again = CliRunner().invoke(app, ["plan", "--db", db, "--as-of", "2025-01-01T09:00:00Z"])
    assert "models version 1" in again.output and "; reused" in again.output


def test_models_read_back_exactly_as_built() -> None:
    """A decoded model plans exactly as the one built: floats come back bit for bit."""
    built = ShopModels(
        as_of=1_735_689_600_000_000,
        customers_with_orders=512,
        repeat_customers=77,
        second_gap_median_days=41.5,
        one_time_days=124.49999999999999,
        one_time_basis="the later of 60 days and ...",
        mbg=clv.MbgNbdParams(0.1 + 0.2, 3.3e-7, 1e300, 2.0 / 3.0, -1234.5678, 500),
        model_note="MBG/NBD fitted on 500 customers",
        usage_days={"p1": (1.0 / 3.0, 4), "p2": (30.000000000000004, 9)},
        also_bought=AlsoBought(
            {"p1": (Neighbour("p2", 0.707107, 3.25, 4), Neighbour("p3", 0.1, 1.1, 2))}, 40
        ),
    )
    assert decode(encode(built)) == built
    assert decode(encode(ShopModels(as_of=0))) == ShopModels(as_of=0)
    with pytest.raises(ValueError):
        decode(b"garbage")


def test_the_staleness_boundaries() -> None:
    """Age counts whole days from the models' day; the share counts order changes over the
    customers the models rest on; settings and format decide before either."""
    day = int(DAY0.timestamp() * 1_000_000)
    us_day = 86_400_000_000
    head = ModelHeader(3, FORMAT, "tag", day, day, 10, 100)

    def why(changes: int = 0, days: int = 0, **models: Any) -> str | None:
        return stale_reason(
            head, day=day + days * us_day, settings="tag", changes=changes, policy=_policy(**models)
        )

    assert why() is None
    assert why(days=2, refresh_every_days=3) is None
    assert "refresh_every_days = 3" in (why(days=3, refresh_every_days=3) or "")
    assert "later day" in (why(days=-1) or "")
    assert why(changes=4) is None  # 4 % of 100 customers, under the default 5 %
    assert "5 order change(s)" in (why(changes=5) or "")
    assert why(changes=0, refresh_after_changed_share=0) is None
    assert why(changes=1, refresh_after_changed_share=0) is not None
    assert why(changes=99, refresh_after_changed_share=1) is None
    empty = ModelHeader(1, FORMAT, "tag", day, day, 0, 0)
    assert stale_reason(empty, day=day, settings="tag", changes=0, policy=_policy()) is None
    assert stale_reason(empty, day=day, settings="tag", changes=1, policy=_policy()) is not None
    other = stale_reason(head, day=day, settings="other", changes=0, policy=_policy())
    assert other == "built with other settings"
    old = ModelHeader(3, FORMAT - 1, "tag", day, day, 10, 100)
    found = stale_reason(old, day=day, settings="tag", changes=0, policy=_policy())
    assert found is not None and "format 0" in found


def test_a_shop_id_used_again_never_gets_the_removed_shops_models(tmp_path: Path) -> None:
    """SQLite gives a removed shop's id to the next shop created. A process that still holds
    the removed shop's models decoded must not serve them to the new shop when another
    process has stored the new shop's under the same version number."""
    url = f"sqlite:///{tmp_path / 'reuse.db'}"
    worker, cli = Store(url), Store(url)
    policy = _policy()
    at = int(T0.timestamp() * 1_000_000)
    first = _shop(worker, customers=40)
    gone, _ = stored_models.current(worker, policy, P, first, at, None, persist=True)
    first_id = worker.shop_id(P, first, create=False)
    worker.remove_shop(P, first)
    second = f"m{RUN}-reused.example"
    state = generate_shop(
        platform=P, shop=second, seed=9, customers=12, orders=60, end=T0 - DAY, years=1.0
    )
    cli.upsert([*state.products.values(), *state.customers.values(), *state.orders.values()])
    assert cli.shop_id(P, second, create=False) == first_id
    theirs, made = stored_models.current(cli, policy, P, second, at, None, persist=True)
    assert made.version == 1 and theirs != gone
    mine, used = stored_models.current(worker, policy, P, second, at, None, persist=True)
    assert used.version == 1
    assert mine == theirs
    worker.close()
    cli.close()
