"""What a delivery reads and writes beside its row is found by a selective index, so the
cost of a row does not grow with the outbox (the frequency cap, the stages of a key)."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import event, func, insert, select

from shopsync.core.actions import Action
from shopsync.core.policy import Policy
from shopsync.outbox import apply
from shopsync.sinks import DeliveryContext
from shopsync.store import Store, outbox_rows
from shopsync.store.delivery import marketing_sent
from shopsync.store.schema import outbox
from tests.apply.helpers import NOW, customer, nudge, reward

SHOP = "acme.myshopify.com"


class Recorder:
    guarantee: ClassVar[str] = "at_least_once"
    contacts_customer: ClassVar[bool] = True

    def __init__(self, name: str, stage: int) -> None:
        self.name, self.stage = name, stage

    def accepts(self, action: Action) -> bool:
        return True

    def render(self, action: Action, context: DeliveryContext) -> dict[str, Any]:
        return {}

    def deliver(self, action: Action, context: DeliveryContext) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        pass


def test_no_outbox_statement_of_a_delivery_scans_the_shops_rows(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'o.db'}")
    try:
        store.upsert([customer(str(i)) for i in range(1, 5)])
        sinks = [Recorder("esp", 1), Recorder("platform", 0)]
        earlier = NOW - dt.timedelta(days=2)  # delivered marketing the cap counts
        apply([nudge("1", 9, due_at=earlier)], store, sinks, now=earlier, policy=Policy())
        seen: list[tuple[str, Any]] = []

        def record(conn: Any, cursor: Any, sql: str, params: Any, *_: Any) -> None:
            if "outbox" in sql and not sql.lstrip().upper().startswith("INSERT"):
                seen.append((sql, params))

        event.listen(store.engine, "before_cursor_execute", record)
        actions = [nudge(str(i)) for i in range(1, 5)] + [reward("shopify", SHOP, "2")]
        report = apply(actions, store, sinks, now=NOW, policy=Policy())
        event.remove(store.engine, "before_cursor_execute", record)
        assert report.delivered == 10 and report.deferred == 0
        steps: list[str] = []
        with store.engine.connect() as conn:
            for sql, params in seen:
                for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params):
                    if "outbox" in str(row[-1]):
                        steps.append(str(row[-1]))
    finally:
        store.close()
    assert any("(shop_id=? AND customer_id=?" in s for s in steps), steps  # the cap's read
    assert any("(shop_id=? AND idempotency_key=?" in s for s in steps), steps  # the stages'
    wide = [s for s in steps if s.startswith("SCAN") or s.endswith("(shop_id=?)")]
    assert not wide, wide


def _old_marketing_sent(
    store: Store, shop_id: int, customer_id: str, since: int, until: int, exclude_key: str
) -> list[int]:
    """The cap's read as it was grouped in SQL before 35a054d (the reference)."""
    first = func.min(outbox.c.finished_at)
    query = (
        select(first)
        .where(
            outbox.c.shop_id == shop_id,
            outbox.c.customer_id == customer_id,
            outbox.c.status == "done",
            outbox.c.marketing == 1,
            outbox.c.finished_at.is_not(None),
            outbox.c.idempotency_key != exclude_key,
        )
        .group_by(outbox.c.idempotency_key)
        .having(first > since, first <= until)
    )
    with store.engine.connect() as conn:
        return sorted(int(r[0]) for r in conn.execute(query))


def test_the_cap_read_grouped_here_matches_the_sql_grouping(store: Store) -> None:
    # Random outboxes of two shops: keys over several sinks and stages, marketing or not,
    # every status, finished_at null or tied; the new read gives what the SQL grouping gave.
    rnd = random.Random(35)
    shops = [store.shop_id("shopify", SHOP), store.shop_id("shopify", "other.myshopify.com")]
    rows: list[dict[str, Any]] = []
    for shop_id in shops:
        for k in range(60):
            key, cust, marketing = f"k{k}", f"c{rnd.randrange(4)}", rnd.randrange(2)
            for stage, sink in enumerate(
                rnd.sample(["platform", "esp", "file"], rnd.randint(1, 3))
            ):
                done = rnd.random() < 0.7
                finished = None if rnd.random() < 0.15 else rnd.choice([10, 20, 20, 30, 40, 50])
                status = "done" if done else rnd.choice(["pending", "parked", "cancelled"])
                rows.append(
                    {
                        "shop_id": shop_id, "idempotency_key": key, "sink": sink, "stage": stage,
                        "kind": "nudge", "customer_id": cust, "marketing": marketing,
                        "model": "m", "action": {}, "status": status, "attempts": 1,
                        "due_at": 0, "next_attempt_at": 0, "created_at": 0, "updated_at": 0,
                        "finished_at": finished,
                    }
                )  # fmt: skip
    with store.transaction() as conn:
        conn.execute(insert(outbox), rows)
    for shop_id in shops:
        for cust in ["c0", "c1", "c2", "c3", "nobody"]:
            for since, until in [(0, 100), (10, 40), (20, 20), (19, 20), (-1, 10), (50, 60)]:
                for exclude in ["k0", "k1", "k7", "none"]:
                    args = (shop_id, cust, since, until, exclude)
                    new = marketing_sent(
                        store, shop_id, cust, since=since, until=until, exclude_key=exclude
                    )
                    assert new == _old_marketing_sent(store, *args), args
    keys = [(s, f"k{k}") for s in shops for k in range(0, 60, 3)] + [(shops[0], "absent")]
    got = sorted(tuple(r) for r in outbox_rows.key_rows(store, keys))
    with store.engine.connect() as conn:
        columns = [outbox.c[c] for c in ("shop_id", "idempotency_key", "sink", "stage")]
        every = conn.execute(select(*columns, outbox.c.status, outbox.c.reason)).all()
    assert got == sorted(tuple(r) for r in every if (r[0], r[1]) in set(keys))
