"""The backtest's lift table has the issue-22 programs' rows (it plans with every program)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from shopsync.backtest import backtest
from shopsync.core.policy import Policy
from shopsync.store import Store
from shopsync.store.checkout_rows import upsert_checkouts
from tests.core.frames_kit import DAY, T0, Shop

H = dt.timedelta(hours=1)


def test_abandoned_checkout_reminders_appear_in_the_backtest(tmp_path: Path) -> None:
    shop = (
        Shop()
        .customer("c1")
        .customer("c2")
        .order("o1", "c1", T0 - 30 * DAY)
        .order("o2", "c2", T0 + 20 * DAY)
        .checkout("k1", "c1", T0)
        .checkout("k2", "c2", T0 + H)
    )
    store = Store(f"sqlite:///{tmp_path / 'b.db'}")
    store.upsert(shop.models())
    upsert_checkouts(store, shop.checkout_models())
    policy = Policy.from_dict({"holdout": {"share": 0}, "loyalty": {"enabled": False}})
    result = backtest(store, policy, T0 + 5 * H, T0 + 6 * H, step=H, horizon=14 * DAY)
    row = result.programs["abandoned_checkout"]
    assert result.recipients["abandoned_checkout"] == ["c1", "c2"]
    assert row is not None and "abandoned_checkout" in str(result)
