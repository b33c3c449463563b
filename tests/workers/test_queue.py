"""The jobs table: joining, claiming one job per lock key, taking over a dead worker's job,
and refusing malformed jobs (issue 21, items 1 and the bad input)."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from shopsync.store import Store, jobs
from shopsync.worker import JobRefused, enqueue
from tests.workers.helpers import config, shop_config


def test_a_second_enqueue_joins_the_queued_job(store: Store) -> None:
    first, made = enqueue(store, "sync", "main")
    again, made_again = enqueue(store, "sync", "main")
    other, _ = enqueue(store, "sync", "outlet")
    assert made and not made_again and again == first and other != first
    assert jobs.counts(store) == {"queued": 2}


def test_one_running_job_per_shop_sync_and_one_apply_per_store(store: Store) -> None:
    enqueue(store, "sync", "main")
    job = jobs.claim(store, "w1", ttl=60)
    assert job is not None and job.shop == "main"
    enqueue(store, "sync", "main")  # queued while the first runs
    assert jobs.claim(store, "w2", ttl=60) is None  # same shop: waits for the first
    enqueue(store, "apply", "main")
    enqueue(store, "apply", "outlet")
    applying = jobs.claim(store, "w2", ttl=60)
    assert applying is not None and applying.kind == "apply"
    assert jobs.claim(store, "w3", ttl=60) is None  # the other apply waits: one per store
    assert jobs.finish(store, job)
    again = jobs.claim(store, "w3", ttl=60)
    assert again is not None and (again.kind, again.shop) == ("sync", "main")


def test_a_dead_workers_job_is_taken_over_after_its_ttl(store: Store) -> None:
    enqueue(store, "sync", "main")
    claimed = time.monotonic()
    dead = jobs.claim(store, "w1", ttl=3.0)  # long enough for the next claim on a loaded
    assert dead is not None  # machine (CI saw 0.5 s pass between the two)
    assert jobs.claim(store, "w2", ttl=60) is None  # still locked
    time.sleep(max(0.0, claimed + 3.3 - time.monotonic()))
    taken = jobs.claim(store, "w2", ttl=60)
    assert taken is not None and taken.id == dead.id and taken.attempts == 2
    assert not jobs.heartbeat(store, dead, 60)  # the dead one cannot renew or settle it
    assert not jobs.finish(store, dead)
    assert jobs.finish(store, taken)
    assert jobs.counts(store) == {"done": 1}


def test_a_job_whose_worker_keeps_dying_fails_with_the_reason(store: Store) -> None:
    jobs.enqueue(store, "sync", "main", "{}", "sync:main", max_attempts=2)
    for worker in ("w1", "w2"):
        assert jobs.claim(store, worker, ttl=0.2) is not None
        time.sleep(0.3)
    assert jobs.claim(store, "w3", ttl=60) is None
    [(_, kind, shop, status, error)] = jobs.failed_jobs(store)
    assert (kind, shop, status) == ("sync", "main", "failed")
    assert "stopped 2 times" in error and "w2" in error


def test_retry_goes_back_to_the_queue_with_a_delay_then_gives_up(store: Store) -> None:
    jobs.enqueue(store, "sync", "main", "{}", "sync:main", max_attempts=2)
    job = jobs.claim(store, "w1", ttl=60)
    assert job is not None and jobs.release_for_retry(store, job, "429", delay=60)
    assert jobs.claim(store, "w1", ttl=60) is None  # not due for a minute
    assert jobs.counts(store) == {"queued": 1}


@pytest.mark.parametrize(
    ("kind", "payload", "reason"),
    [
        ("sync", '{"full": "yes please"}', "malformed sync job payload: full"),
        ("sync", '{"fulll": true}', "malformed sync job payload: fulll"),
        ("sync", "[1, 2", "malformed sync job payload"),
        ("resync", "{}", "unknown job kind 'resync'"),
    ],
)
def test_a_malformed_job_is_refused_and_recorded(
    store: Store, kind: str, payload: str, reason: str
) -> None:
    with pytest.raises(JobRefused, match=reason.split(":")[0]):
        enqueue(store, kind, "main", payload)
    [(_, got_kind, shop, status, error)] = jobs.failed_jobs(store)
    assert (got_kind, shop, status) == (kind, "main", "refused") and reason in error
    assert jobs.claim(store, "w1", ttl=60) is None  # never run


def test_a_job_for_a_shop_not_configured_is_refused(store: Store) -> None:
    settings = {"shop": "a.myshopify.com", "access_token": "t"}
    cfg = config("sqlite://", [shop_config("main", "shopify", settings)])
    with pytest.raises(JobRefused, match=r"no shop named 'gone'.*configured: main"):
        enqueue(store, "sync", "gone", config=cfg)
    assert jobs.failed_jobs(store)[0][3] == "refused"


def test_prune_drops_finished_jobs_and_keeps_failed_ones(store: Store) -> None:
    for shop in ("a", "b"):
        enqueue(store, "sync", shop)
    done, failed = jobs.claim(store, "w", 60), jobs.claim(store, "w", 60)
    assert done is not None and failed is not None
    jobs.finish(store, done)
    jobs.finish(store, failed, error="revoked")
    assert jobs.prune(store, dt.timedelta(days=7)) == 0  # too recent
    time.sleep(0.01)
    assert jobs.prune(store, dt.timedelta(0)) == 1
    assert jobs.counts(store) == {"failed": 1}


def test_a_worker_whose_job_was_taken_over_knows_it(store: Store) -> None:
    import dataclasses

    from shopsync.worker import _Heartbeat

    enqueue(store, "sync", "main")
    job = jobs.claim(store, "w1", ttl=60)
    assert job is not None
    with _Heartbeat(store, job, ttl=2.0, fence=False) as mine:
        time.sleep(0.9)
    assert not mine.lost
    stranger = dataclasses.replace(job, worker="w2")  # as if w2 had taken it over
    with _Heartbeat(store, stranger, ttl=2.0, fence=False) as theirs:
        time.sleep(0.9)
    assert theirs.lost
