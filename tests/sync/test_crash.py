"""Kill a sync (SIGKILL) at random points, run it again, and compare with an uninterrupted sync.

Each trial starts from an empty store, kills the sync after a random number of committed
pages plus a random few milliseconds (so some kills land inside the next page's
transaction), runs it again to the end, and compares every record with the reference. One
more trial kills the same store several times in a row before letting it finish.
``SHOPSYNC_CRASH_KILLS`` sets the number of trials per platform (default 6);
``SHOPSYNC_CRASH_POSTGRES=1`` runs them on PostgreSQL too (its pages go in by COPY). Each sync
runs in a child forked from the chaos tests' fork server (:mod:`tests.reliability.chaos`): a
process of its own, killed as abruptly as a fresh interpreter, without paying for one every run.
"""

from __future__ import annotations

import os
import random
import uuid
from pathlib import Path

import pytest

import shopsync
from shopsync.sync import sync
from tests.reliability.chaos import Kill, run_child
from tests.sync.child import sync_job
from tests.sync.compare import differences, snapshot
from tests.sync.emulated import emulated

PAGE_SIZES = {"shopify": {"page_size": 10}, "woocommerce": {"per_page": 10}}
TRIALS = int(os.environ.get("SHOPSYNC_CRASH_KILLS", "6"))
ON_POSTGRES = pytest.mark.skipif(
    not os.environ.get("SHOPSYNC_CRASH_POSTGRES"), reason="SHOPSYNC_CRASH_POSTGRES is not set"
)


def run(job: dict[str, object], kill_after_pages: int | None = None, delay: float = 0.0) -> bool:
    """Run the sync in a child; SIGKILL it ``delay`` seconds after that many committed
    pages. True if it ran to the end."""
    kill = None if kill_after_pages is None else Kill(events=kill_after_pages, pause=delay)
    outcome = run_child(sync_job, (job,), kill)
    assert outcome.error is None, outcome.error
    return outcome.finished


def _schema(request: pytest.FixtureRequest) -> str:
    """A URL whose search_path is a fresh PostgreSQL schema, dropped after the test."""
    from urllib.parse import quote

    from sqlalchemy import create_engine, text

    base = os.environ["SHOPSYNC_TEST_POSTGRES_URL"]
    name = f"crash_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()

    request.addfinalizer(drop)
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options={quote(f'-csearch_path={name}')}"


@pytest.mark.slow(seconds=40)
@pytest.mark.parametrize(
    "engine", ["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, ON_POSTGRES])]
)
@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_sigkill_at_random_points_then_rerun_equals_an_uninterrupted_sync(
    platform: str, engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    rng = random.Random(f"crash-{platform}")
    with emulated(platform, seed=3, customers=30, orders=100, products=20) as shop:
        settings = {**shop.settings, **PAGE_SIZES[platform]}
        reference = shopsync.Store(f"sqlite:///{tmp_path / 'reference.db'}")
        adapter = shopsync.connect(platform, **settings)
        pages = sync(adapter, reference).total("pages")
        expected = snapshot(reference, platform, adapter.shop)
        assert len(expected["orders"]) == 100 and pages > 10

        urls: dict[str, str] = {}

        def job(name: str) -> dict[str, object]:
            store = f"sqlite:///{tmp_path / name}"
            if engine == "postgres":  # a fresh schema per store name
                store = urls.get(name) or urls.setdefault(name, _schema(request))
            return {"platform": platform, "settings": settings, "store": store}

        kills = 0
        for trial in range(TRIALS):
            killed = not run(job(f"t{trial}.db"), rng.randint(1, pages), rng.uniform(0, 0.02))
            kills += killed
            assert run(job(f"t{trial}.db"))
            crashed = shopsync.Store(str(job(f"t{trial}.db")["store"]))
            assert differences(snapshot(crashed, platform, adapter.shop), expected) == []
            crashed.close()
        for _ in range(4):  # crash after crash on one store, then finish
            kills += not run(job("repeat.db"), rng.randint(1, 6), rng.uniform(0, 0.02))
        assert run(job("repeat.db"))
        repeated = shopsync.Store(str(job("repeat.db")["store"]))
        assert differences(snapshot(repeated, platform, adapter.shop), expected) == []
        print(f"{platform}: {TRIALS + 4} kills attempted, {kills} landed, 0 differences")
        assert kills >= TRIALS // 2


@pytest.mark.slow(seconds=40)
def test_sigkill_among_the_refetches_of_refused_woocommerce_orders(tmp_path: Path) -> None:
    """A quarter of the orders refused: each is asked for again whole (``_fields`` reads) in
    the page's mapping, so kills land among those requests; the rerun holds what an
    uninterrupted sync holds, the quarantine's whole records included."""
    rng = random.Random("crash-refetch")
    with emulated("woocommerce", seed=3, customers=30, orders=100, products=20) as shop:
        ids = sorted(shop.state.orders, key=int)
        shop.faults.invalid_records |= {("orders", i) for i in ids[::4]}
        settings = {**shop.settings, **PAGE_SIZES["woocommerce"]}
        reference = shopsync.Store(f"sqlite:///{tmp_path / 'reference.db'}")
        adapter = shopsync.connect("woocommerce", **settings)
        pages = sync(adapter, reference).total("pages")
        expected = snapshot(reference, "woocommerce", adapter.shop)
        held = sorted((q.record_id, q.raw) for q in reference.quarantined())
        assert len(held) == 25 and all('"payment_url"' in raw for _, raw in held)

        def job(name: str) -> dict[str, object]:
            return {
                "platform": "woocommerce",
                "settings": settings,
                "store": f"sqlite:///{tmp_path / name}",
            }

        kills = 0
        for trial in range(TRIALS):
            kills += not run(job(f"t{trial}.db"), rng.randint(1, pages), rng.uniform(0, 0.02))
            assert run(job(f"t{trial}.db"))
            crashed = shopsync.Store(str(job(f"t{trial}.db")["store"]))
            assert differences(snapshot(crashed, "woocommerce", adapter.shop), expected) == []
            assert sorted((q.record_id, q.raw) for q in crashed.quarantined()) == held
            crashed.close()
        assert kills >= TRIALS // 2
