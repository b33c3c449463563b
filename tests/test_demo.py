from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from shopsync.demo import run_demo
from shopsync.models import Order
from shopsync.store import Store


@pytest.mark.slow(seconds=45)
def test_the_demo_syncs_both_shops_and_prints_their_figures(tmp_path: Path) -> None:
    console = Console(record=True, width=120)
    db = tmp_path / "demo.db"
    result = run_demo(db, console, scale=0.1)
    text = console.export_text()
    assert [s.platform for s in result.shops] == ["shopify", "woocommerce"]
    store = Store(f"sqlite:///{db}")
    for shop in result.shops:
        assert shop.sync.total("quarantined") == 0
        assert (
            store.count(Order, shop.platform, shop.shop) == shop.sync.resources["orders"].seen > 0
        )
        assert 0 < shop.buyers <= shop.customers
        assert shop.points_approved + shop.points_pending > 0
    store.close()
    for label in ("repeat-purchase rate", "average order value", "points pending / approved"):
        assert label in text
    assert len(result.plan) > 0 and result.applied.parked == 0
    lines = result.actions_file.read_text().splitlines()
    assert (
        len(lines)
        == len({json.loads(line)["idempotency_key"] for line in lines})
        == len(result.plan)
    )
