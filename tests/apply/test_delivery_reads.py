"""What a delivery reads and writes beside its row is found by a selective index, so the
cost of a row does not grow with the outbox (the frequency cap, the stages of a key)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import event

from shopsync.core.actions import Action
from shopsync.core.policy import Policy
from shopsync.outbox import apply
from shopsync.sinks import DeliveryContext
from shopsync.store import Store
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
