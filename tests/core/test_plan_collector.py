"""A whole-shop plan runs with the cyclic garbage collector eased (issue 18, item 4.2).

Its read, loyalty derivation and actions keep some hundred thousand Python objects alive
while they allocate millions of short-lived ones: at Python's threshold (700) the collector
walked the whole heap five times a 1M-order plan (0.6 CPU-s of 12.5), for no cycle. Eased,
young objects are collected after :data:`~shopsync._collector.YOUNG_THRESHOLD` allocations,
and the threshold is put back after the plan, also when it fails.
"""

from __future__ import annotations

import datetime as dt
import gc
import threading
from typing import Any

import pytest

from shopsync import planning
from shopsync._collector import YOUNG_THRESHOLD
from shopsync.core.planner import plan_frames
from shopsync.core.policy import Policy
from shopsync.store import Store
from shopsync.testing.generator import generate_shop

AS_OF = dt.datetime(2025, 1, 1, 6, tzinfo=dt.timezone.utc)


def _store(tmp_path: Any) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    state = generate_shop(
        platform="shopify", shop="c.example", seed=3, customers=8, orders=30, end=AS_OF, years=1.0
    )
    store.upsert([*state.products.values(), *state.customers.values(), *state.orders.values()])
    return store


@pytest.mark.parametrize("loyalty", [False, True])
def test_a_whole_shop_plan_runs_with_the_collector_eased(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, loyalty: bool
) -> None:
    store = _store(tmp_path)
    before = gc.get_threshold()
    seen: list[int] = []
    real_frames, real_draft, real_loyalty = plan_frames, planning.draft, planning._loyalty

    def frames_seen(*args: Any, **kwargs: Any) -> Any:
        seen.append(gc.get_threshold()[0])
        return real_frames(*args, **kwargs)

    def draft_seen(*args: Any, **kwargs: Any) -> Any:  # loyalty on: the programs' part
        seen.append(gc.get_threshold()[0])
        return real_draft(*args, **kwargs)

    def loyalty_seen(*args: Any, **kwargs: Any) -> Any:
        seen.append(gc.get_threshold()[0])
        return real_loyalty(*args, **kwargs)

    monkeypatch.setattr(planning, "plan_frames", frames_seen)
    monkeypatch.setattr(planning, "draft", draft_seen)
    monkeypatch.setattr(planning, "_loyalty", loyalty_seen)
    policy = Policy.from_dict({"loyalty": {"enabled": loyalty}})
    try:
        planning.plan(store, policy, AS_OF)
    finally:
        store.close()
    assert seen == [max(before[0], YOUNG_THRESHOLD)] * (2 if loyalty else 1)
    assert gc.get_threshold() == before


@pytest.mark.parametrize("where", ["plan_frames", "draft", "_loyalty"])
def test_the_threshold_is_put_back_when_a_plan_fails(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """The programs' part and the loyalty derivation beside it: each one's error is the
    plan's."""
    store = _store(tmp_path)
    before = gc.get_threshold()

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("mid-plan")

    monkeypatch.setattr(planning, where, failing)
    policy = Policy.from_dict({"loyalty": {"enabled": where != "plan_frames"}})
    try:
        with pytest.raises(RuntimeError, match="mid-plan"):
            planning.plan(store, policy, AS_OF)
    finally:
        store.close()
    assert gc.get_threshold() == before


def test_an_interrupted_plan_does_not_wait_for_the_loyalty_derivation_beside_it(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while the programs' candidates are built reaches the caller at once, not after
    the derivation beside them (some 40 s at 10M orders) ends."""
    store = _store(tmp_path)
    release, finished = threading.Event(), threading.Event()
    real = planning._loyalty

    def slow(*args: Any, **kwargs: Any) -> Any:
        release.wait(timeout=60)
        try:
            return real(*args, **kwargs)
        finally:
            finished.set()

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(planning, "_loyalty", slow)
    monkeypatch.setattr(planning, "draft", interrupted)
    try:
        with pytest.raises(KeyboardInterrupt):
            planning.plan(store, Policy.from_dict({"loyalty": {"enabled": True}}), AS_OF)
        assert not finished.is_set()  # the caller did not wait for it
    finally:
        release.set()
        finished.wait(timeout=60)
        store.close()
