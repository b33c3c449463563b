"""``shopsync.worker.run``: the schedule, syncing and applying emulated shops, and jobs that
must fail once with a clear reason (issue 21, items 1 and the bad input)."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pytest

from shopsync.store import Store, jobs
from shopsync.worker import enqueue, run, tick
from tests.sync.compare import differences, snapshot
from tests.sync.emulated import emulated, platform_view
from tests.workers.helpers import config, shop_config

NOON = dt.datetime(2026, 12, 3, 11, 0, tzinfo=dt.timezone.utc)


def test_the_schedule_makes_each_period_once_whoever_ticks(store: Store) -> None:
    settings = {"shop": "a.myshopify.com", "access_token": "t"}
    cfg = config(
        "sqlite://",
        [shop_config("paris", "shopify", settings), shop_config("tokyo", "shopify", settings)],
        sync_every=15,
        apply_hour=12,
        shops={"paris": {"timezone": "Europe/Paris"}, "tokyo": {"timezone": "Asia/Tokyo"}},
    )
    made = tick(store, cfg, NOON)  # 12:00 in Paris, 20:00 in Tokyo: both apply today
    assert len(made) == 4
    assert tick(store, cfg, NOON + dt.timedelta(minutes=5)) == []  # a second worker's tick
    for _ in range(4):  # the two applies one after the other (one apply per store)
        job = jobs.claim(store, "w", 60)
        assert job is not None and jobs.finish(store, job)
    later = tick(store, cfg, NOON + dt.timedelta(minutes=16))  # next sync period, same day
    assert len(later) == 2
    kinds = {
        (j.kind, j.shop) for j in [jobs.claim(store, "w", 60), jobs.claim(store, "w", 60)] if j
    }
    assert kinds == {("sync", "paris"), ("sync", "tokyo")}


def test_apply_waits_for_the_shops_local_hour(store: Store) -> None:
    settings = {"shop": "a.myshopify.com", "access_token": "t"}
    cfg = config(
        "sqlite://",
        [shop_config("ny", "shopify", settings)],
        apply_hour=7,
        timezone="America/New_York",
    )
    assert len(tick(store, cfg, NOON.replace(hour=11))) == 1  # 06:00 in New York: sync only
    assert len(tick(store, cfg, NOON.replace(hour=12))) == 1  # 07:00: the apply


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_a_worker_syncs_plans_and_applies_a_shop(
    store_url: str, tmp_path: Path, platform: str
) -> None:
    with emulated(platform, customers=25, orders=80) as shop:
        cfg = config(
            store_url,
            [shop_config("main", platform, shop.settings)],
            apply_hour=0,
            jsonl=str(tmp_path / "{shop}.jsonl"),
        )
        store = Store(store_url)
        try:
            first = run(cfg, store, until_idle=True, fence=False)
            assert (first.done, first.failed, first.retried) == (2, 0, 0), first.errors
            enqueue(store, "sync", "main")  # apply wrote tags back: the next sync reads them
            assert run(cfg, store, until_idle=True, schedule=False, fence=False).done == 1
            assert not differences(snapshot(store, platform, shop.state.shop), platform_view(shop))
            assert jobs.counts(store) == {"done": 3}
            written = [
                json.loads(line) for line in (tmp_path / "main.jsonl").read_text().splitlines()
            ]
            assert written, "the default policy plans something for a generated shop"
            assert jobs.running(store) == []
        finally:
            store.close()


def test_removed_shop_and_revoked_credentials_fail_once_with_the_reason(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with emulated("shopify", customers=5, orders=10) as shop:
        revoked = {**shop.settings, "access_token": "shpat_revoked"}
        cfg = config(store_url, [shop_config("main", "shopify", revoked)])
        store = Store(store_url)
        try:
            enqueue(store, "sync", "main", config=cfg)
            enqueue(store, "sync", "gone")  # configured when queued, removed since
            with caplog.at_level(logging.WARNING, "shopsync.worker"):
                report = run(cfg, store, until_idle=True, schedule=False, fence=False)
            assert (report.done, report.failed, report.retried) == (0, 2, 0)
            failed = {shop: error for _, _, shop, _, error in jobs.failed_jobs(store)}
            assert "refused the credentials" in failed["main"]
            assert "shpat_revoked" not in failed["main"]
            assert "'gone' is no longer configured" in failed["gone"]
            assert run(cfg, store, until_idle=True, schedule=False, fence=False).failed == 0
        finally:
            store.close()
    single = "single-process" in caplog.text
    assert single == store_url.startswith("sqlite")


def test_a_malformed_payload_in_the_table_fails_once(store: Store) -> None:
    jobs.enqueue(store, "sync", "main", '{"full": 3}', "sync:main")  # written around enqueue()
    cfg = config("sqlite://", [shop_config("main", "shopify", {"shop": "a", "access_token": "t"})])
    report = run(cfg, store, until_idle=True, schedule=False, fence=False)
    assert report.failed == 1 and "malformed sync job payload: full" in report.errors[0]


@pytest.mark.parametrize("enabled", [True, False])
def test_the_worker_reads_checkouts_when_the_policy_reminds_of_them(
    store_url: str, enabled: bool
) -> None:
    """Abandoned-checkout reminders need the checkouts in the store: a worker whose policy
    has the program on (the default) reads them with every sync; one with it off does not."""
    from shopsync.core.policy import Policy
    from shopsync.store.checkout_rows import read_checkouts
    from shopsync.testing._checkouts import add_checkouts

    with emulated("shopify", customers=25, orders=80) as shop:
        add_checkouts(shop.state, seed=3, days=30)
        assert shop.state.checkouts, "the emulator holds checkouts"
        cfg = config(store_url, [shop_config("main", "shopify", shop.settings)])
        cfg = cfg.model_copy(
            update={"policy": Policy.from_dict({"abandoned_checkout": {"enabled": enabled}})}
        )
        store = Store(store_url)
        try:
            enqueue(store, "sync", "main")
            assert run(cfg, store, until_idle=True, schedule=False, fence=False).done == 1
            stored = read_checkouts(store, "shopify", shop.state.shop)
            assert len(stored) == (len(shop.state.checkouts) if enabled else 0)
        finally:
            store.close()
