"""Kill apply (SIGKILL) at random points, run it again and again: nothing delivered twice to the
platform or the file, nothing lost anywhere.

Each apply runs in a child forked from the chaos tests' fork server
(:mod:`tests.reliability.chaos`): a process of its own, killed as abruptly as a fresh
interpreter, without paying for one every run. ``SHOPSYNC_CRASH_KILLS`` sets the kills of the
long variants (default 8).
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from pathlib import Path

import pytest

import shopsync
from shopsync.outbox import list_outbox
from tests.apply.child import actions, apply_job
from tests.apply.helpers import NOW, Receiver, smtp_server
from tests.reliability.chaos import Kill, run_child
from tests.sync.emulated import emulated

KILLS = int(os.environ.get("SHOPSYNC_CRASH_KILLS", "8"))


def run_until_killed(job: dict[str, object], kill_after: int | None) -> bool:
    """Run the child; SIGKILL it after that many settled rows. True if it finished."""
    outcome = run_child(apply_job, (job,), None if kill_after is None else Kill(events=kill_after))
    if outcome.error is not None:
        raise AssertionError(f"the run failed:\n{outcome.error}")
    return outcome.finished


@pytest.mark.parametrize(
    ("platform", "kills"),
    [
        ("shopify", 2),
        pytest.param("shopify", KILLS, marks=pytest.mark.slow(seconds=20)),
        pytest.param("woocommerce", KILLS, marks=pytest.mark.slow(seconds=20)),
    ],
)
def test_sigkill_during_apply_then_rerun_delivers_everything_once(
    platform: str, kills: int, tmp_path: Path
) -> None:
    rng = random.Random(f"apply-crash-{platform}-{kills}")
    with (
        emulated(platform, seed=4, customers=14, orders=20, products=4) as shop,
        Receiver() as receiver,
        smtp_server() as smtp,
    ):
        adapter = shopsync.connect(platform, **shop.settings)
        store_url = f"sqlite:///{tmp_path / 'store.db'}"
        store = shopsync.Store(store_url)
        shopsync.sync(adapter, store)
        # balances are written back only from a current ledger (issue 17.1)
        shopsync.loyalty.update_ledger(store, platform, adapter.shop, as_of=NOW)
        people = list(store.iter(shopsync.Customer, platform, adapter.shop))
        customers = [c.id for c in people if c.email][:8]
        subscribed = [c.id for c in people if c.email and c.consent.email.allows_marketing][:4]
        assert len(customers) == 8 and subscribed
        job = {
            "platform": platform,
            "settings": shop.settings,
            "store": store_url,
            "dir": str(tmp_path),
            "webhook": receiver.url,
            "smtp_port": smtp.port,
            "customers": customers,
            "subscribed": subscribed,
        }
        plan = actions(platform, adapter.shop, customers, subscribed)
        rows = len(plan) * 4
        killed = sum(
            not run_until_killed(job, kill_after=rng.randint(1, rows // 3)) for _ in range(kills)
        )
        assert run_until_killed(job, kill_after=None)
        assert killed >= 1

        consenting = {c.id for c in people if c.consent.email.allows_marketing}
        withheld = {  # marketing to customers without consent: not for email and webhook
            a.idempotency_key for a in plan if a.marketing and a.customer_id not in consenting
        }
        entries = list_outbox(store)
        assert len(entries) == rows
        contacting = ("email", "webhook")
        expected = {
            (e.idempotency_key, e.sink): "cancelled"
            if e.idempotency_key in withheld and e.sink.startswith(contacting)
            else "done"
            for e in entries
        }
        assert {(e.idempotency_key, e.sink): e.status for e in entries} == expected
        writes = shop.emulator.writes  # type: ignore[union-attr]
        created = writes["discount_created"] + writes["coupon_created"]
        assert created == len(customers)  # one code per reward, never a second one
        assert writes["discount_taken"] + writes["coupon_exists"] == 0
        codes = [a.code for a in plan if hasattr(a, "code")]
        if platform == "shopify":
            assert sorted(d.code for d in shop.emulator.discounts.values()) == sorted(codes)  # type: ignore[union-attr]
        else:
            made = [c["code"] for c in shop.emulator.coupons.values()]  # type: ignore[union-attr]
            assert sorted(made) == sorted(c.lower() for c in codes)

        keys = {a.idempotency_key for a in plan}
        lines = (tmp_path / "actions.jsonl").read_text().splitlines()
        written = []
        for line in lines:
            try:
                written.append(json.loads(line)["idempotency_key"])
            except ValueError:
                continue  # a line cut by a kill; its action was written again whole
        assert sorted(written) == sorted(keys)  # exactly once in the file
        hooked = Counter(r.headers["Idempotency-Key"] for r in receiver.received)
        assert set(hooked) == keys - withheld  # at least once, de-duplicable by the key
        mailed = {m["Message-ID"] for m in smtp.messages}
        assert len(mailed) == len(keys - withheld)
        customer = shop.state.customers[customers[0]]
        assert "shopsync-tier-gold" in customer.tags
