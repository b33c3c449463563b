"""The worker's ``changes`` job is the library's incremental plan (issue 19): it plans what
``shopsync.plan(store, ..., only_changed=True)`` plans (a webhook-touched customer, and the
customers whose time-based rules fired), and the change notes are cleared only once the
plan's actions are recorded in the outbox: a crash in between leaves every note in place and
the re-run delivers nothing twice."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import pytest

import shopsync.incremental as incremental
from shopsync.core.policy import Policy
from shopsync.models import ConsentState, Customer, Order
from shopsync.outbox import list_outbox
from shopsync.planning import plan
from shopsync.store import Store, jobs
from shopsync.store.changes import changed
from shopsync.store.incremental import recorded_keys
from shopsync.worker import enqueue, run
from tests.core.retention_helpers import order
from tests.sync.emulated import emulated
from tests.workers.helpers import config, shop_config

POLICY = Policy.from_dict({"holdout": {"share": 0}, "consent": {"allow_soft_opt_in": True}})
DAY = dt.timedelta(days=1)


def _lines(folder: Path) -> list[str]:
    return [
        json.loads(line)["idempotency_key"]
        for path in sorted(folder.glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def test_a_changes_job_runs_the_incremental_plan_and_clears_notes_only_once_queued(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with emulated("shopify", customers=12, orders=40) as shop:
        cfg = config(
            store_url,
            [shop_config("main", "shopify", shop.settings, write_back=False)],
            jsonl=str(tmp_path / "{shop}.jsonl"),
        ).model_copy(update={"policy": POLICY})
        store = Store(store_url)
        try:
            enqueue(store, "sync", "main")
            run(cfg, store, until_idle=True, schedule=False, fence=False)
            name = shop.state.shop
            newest = max(o.created_at for o in store.iter(Order, "shopify", name))
            now = newest + DAY
            # the sync noted every customer it wrote: the first changes job plans them all
            assert len(changed(store, limit=10**6)) > 0
            expected = plan(store, POLICY, now, platform="shopify", shop=name, only_changed=True)
            enqueue(store, "changes", "main")
            run(cfg, store, until_idle=True, schedule=False, fence=False, clock=lambda: now)
            assert changed(store, limit=10**6) == []
            shop_id = store.shop_id("shopify", name)
            assert recorded_keys(store, shop_id, expected.keys) == set(expected.keys)
            # later: a webhook-touched customer (an order through the store's upsert, the
            # path webhook intake takes) and customers whose time-based rules fired meanwhile
            later = now + 20 * DAY
            who = sorted(
                c.id
                for c in store.iter(Customer, "shopify", name)
                if c.consent.email is not None and c.consent.email.state is ConsentState.SUBSCRIBED
            )[0]
            bought = order("w1", who, later - 19 * DAY, ptype="Coffee")
            store.upsert([bought.model_copy(update={"shop": name})])
            noted = changed(store, limit=10**6)
            assert [c.customer_id for c in noted] == [who]
            expected = plan(store, POLICY, later, platform="shopify", shop=name, only_changed=True)
            assert who in expected.customers
            assert f"review_request:{name}:w1" in expected.keys
            assert set(expected.customers) - {who}, "time alone fired no rule: a weak example"

            def killed(self: Any, store: Store) -> int:
                raise RuntimeError("killed after the outbox recorded the plan")

            monkeypatch.setattr(incremental.IncrementalPlan, "settle", killed)
            enqueue(store, "changes", "main")
            run(cfg, store, until_idle=True, schedule=False, fence=False, clock=lambda: later)
            # the actions are queued durably, and the note is still there
            assert recorded_keys(store, shop_id, expected.keys) == set(expected.keys)
            assert [c.customer_id for c in changed(store, limit=10**6)] == [who]
            assert jobs.counts(store).get("queued") == 1  # to be retried
            monkeypatch.undo()
            time.sleep(2.2)  # the retry's back-off (2 s after a first failure)
            run(cfg, store, until_idle=True, schedule=False, fence=False, clock=lambda: later)
            assert changed(store, limit=10**6) == []
            sent = _lines(tmp_path)
            assert len(sent) == len(set(sent))  # nothing delivered twice
            assert set(expected.keys) <= set(sent)
        finally:
            store.close()


def test_a_worker_without_a_policy_writes_points_back_from_its_first_changes_job(
    store_url: str, tmp_path: Path
) -> None:
    """A configuration without ``[policy]``: the worker plans with ``Policy()``; its changes
    jobs (incremental plans, which never write the loyalty ledger) deliver a points balance to
    the platform with the same policy, so the never-derived ledger is derived with it instead
    of holding the award for a retry's backoff."""
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    with emulated("shopify", customers=25, orders=200, end=now - DAY) as shop:
        cfg = config(
            store_url,
            [shop_config("main", "shopify", shop.settings, write_back=True)],
            jsonl=str(tmp_path / "{shop}.jsonl"),
        )
        assert cfg.policy is None
        store = Store(store_url)
        try:
            enqueue(store, "sync", "main")
            run(cfg, store, until_idle=True, schedule=False, fence=False)
            enqueue(store, "changes", "main")
            run(cfg, store, until_idle=True, schedule=False, fence=False, clock=lambda: now)
            points = [r for r in list_outbox(store) if r.kind.startswith("loyalty_")]
            assert any(r.sink != "jsonl" for r in points), "no points to the platform: weak"
            held = [(r.status, r.reason) for r in points if r.status != "done"]
            assert held == []
        finally:
            store.close()
