"""An apply in its own process, for the crash test.

The crash test runs :func:`apply_job` in a child forked from the chaos tests' fork server
(:func:`tests.reliability.chaos.run_child`), which imported shopsync once, so a run costs a
fork instead of a fresh interpreter; it reports each settled row, so the parent can kill it
at a chosen point. ``python -m tests.apply.child JOB_JSON`` runs the same apply in a fresh
interpreter, printing one line per settled row.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import sys
import time
from collections.abc import Callable
from typing import Any

import shopsync
from shopsync.http import RetryPolicy
from shopsync.outbox import Delivery, apply
from shopsync.sinks import Brand, Email, JsonLines, Webhook
from tests.apply.helpers import NOW, nudge, reward, tier


def actions(platform: str, shop: str, customers: list[str], subscribed: list[str]) -> list:  # type: ignore[type-arg]
    found = []
    for cid in customers:
        found.append(reward(platform, shop, cid))
        found.append(tier(platform, shop, cid))
    for cid in subscribed:
        found.append(nudge(cid, shop=shop, platform=platform))
    return found


def apply_job(emit: Callable[[Any], None], job: dict[str, Any]) -> None:
    """Apply the crash test's plan through all four sinks; an event per settled row."""
    fast = RetryPolicy(attempts=5, max_elapsed=10, initial_wait=0.01, max_wait=0.05)
    adapter = shopsync.connect(job["platform"], **job["settings"], retry_policy=fast)
    store = shopsync.Store(job["store"])
    sinks = [
        adapter,
        JsonLines("actions.jsonl", root=job["dir"]),
        Webhook(job["webhook"], "webhook-secret-0123456789", retry_policy=fast),
        Email(
            "127.0.0.1",
            job["smtp_port"],
            sender="shop@acme.example",
            security="none",
            brand=Brand(name="Acme", address="1 Main St, Springfield"),
            unsubscribe_url="https://acme.example/unsubscribe",
            unsubscribe_secret="unsubscribe-secret-0123456789",
        ),
    ]
    plan = actions(job["platform"], adapter.shop, job["customers"], job["subscribed"])
    jitter = random.Random()

    def settled(delivery: Delivery) -> None:
        emit(delivery.status)
        # the parent kills after reading a line: a short random pause lets the kill land in
        # the pause or anywhere inside the next delivery, not always at the same spot
        time.sleep(jitter.uniform(0, 0.01))

    try:
        apply(plan, store, sinks, now=NOW + dt.timedelta(minutes=1), on_delivery=settled)
    finally:
        for sink in sinks[1:]:
            sink.close()
        store.close()


def main() -> None:
    apply_job(lambda status: print(status, flush=True), json.loads(sys.argv[1]))
    print("finished", flush=True)


if __name__ == "__main__":
    main()
