"""Kill a sync (SIGKILL) at random pages, run it again, and compare with an uninterrupted sync."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import shopsync
from shopsync.sync import sync
from tests.sync.compare import differences, snapshot
from tests.sync.emulated import emulated

ROOT = Path(__file__).resolve().parents[2]
PAGE_SIZES = {"shopify": {"page_size": 10}, "woocommerce": {"per_page": 10}}
KILLS = int(os.environ.get("SHOPSYNC_CRASH_KILLS", "6"))


def run_until_killed(job: dict[str, object], kill_after_pages: int | None) -> bool:
    """Run the child; SIGKILL it after that many committed pages. True if it finished."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.sync.child", json.dumps(job)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    for pages, line in enumerate(child.stdout, start=1):
        if line.strip() == "done":
            break
        if kill_after_pages is not None and pages >= kill_after_pages:
            child.send_signal(signal.SIGKILL)
            break
    child.stdout.close()
    code = child.wait(timeout=120)
    return code == 0


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_sigkill_at_random_pages_then_rerun_equals_an_uninterrupted_sync(
    platform: str, tmp_path: Path
) -> None:
    rng = random.Random(f"crash-{platform}")
    with emulated(platform, seed=3, customers=40, orders=160, products=20) as shop:
        settings = {**shop.settings, **PAGE_SIZES[platform]}
        reference = shopsync.Store(f"sqlite:///{tmp_path / 'reference.db'}")
        adapter = shopsync.connect(platform, **settings)
        sync(adapter, reference)
        expected = snapshot(reference, platform, adapter.shop)
        assert len(expected["orders"]) == 160

        job = {
            "platform": platform,
            "settings": settings,
            "store": f"sqlite:///{tmp_path / 'crashed.db'}",
        }
        kills = 0
        for _ in range(KILLS):
            if not run_until_killed(job, kill_after_pages=rng.randint(1, 8)):
                kills += 1
        assert run_until_killed(job, kill_after_pages=None)
        crashed = shopsync.Store(job["store"])  # type: ignore[arg-type]
        assert differences(snapshot(crashed, platform, adapter.shop), expected) == []
        assert kills >= 1
