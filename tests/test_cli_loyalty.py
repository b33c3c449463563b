"""Issue 17 item 1 through the shell: sync -> plan -> apply keeps the loyalty ledger current.

A new user runs ``shopsync sync``, ``shopsync plan`` and ``shopsync apply`` against emulated
shops configured in ``shopsync.toml`` and never calls ``shopsync.loyalty.update_ledger``. The points
balance written back to each shop must be the one the ledger holds once brought up to date,
not the 0 of a ledger nobody filled.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import shopsync
from shopsync import loyalty
from shopsync.cli import app
from shopsync.store import Store
from tests.test_cli import END, FAST, SMALL, _configure, _credentials


def _written_points(shop: Any) -> dict[str, int]:
    """The points balance written back to each customer, as the platform holds it."""
    emulator: Any = shop.emulator
    if shop.platform == "shopify":
        return {
            cid: int(field["value"])
            for (cid, namespace, key), field in emulator.metafields.items()
            if (namespace, key) == ("loyalty", "points_balance")
        }
    return {
        cid: int(meta["_loyalty_points_balance"])
        for cid, meta in emulator.customer_meta.items()
        if "_loyalty_points_balance" in meta
    }


def test_sync_plan_apply_from_the_shell_writes_the_current_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shopsync.testing import emulate

    runner = CliRunner()
    monkeypatch.chdir(tmp_path)
    with (
        emulate("shopify", seed=5, **FAST, **SMALL) as shopify,
        emulate("woocommerce", seed=4, **SMALL) as woo,
    ):
        _configure(tmp_path, shopify, woo)
        _credentials(monkeypatch, shopify, woo)
        synced = runner.invoke(app, ["sync"])
        assert synced.exit_code == 0, synced.output

        planned = runner.invoke(app, ["plan", "--as-of", "2026-06-01"])
        assert planned.exit_code == 0, planned.output
        for name in ("main", "outlet"):
            applied = runner.invoke(app, ["apply", name, "--as-of", "2026-06-01"])
            assert applied.exit_code == 0, applied.output

        store = Store(f"sqlite:///{tmp_path / 'shop.db'}")
        try:
            every: set[int] = set()
            names = dict(store.shops())  # WooCommerce shops are named by their host
            for shop in (shopify, woo):
                platform, name = shop.platform, names[shop.platform]
                # what the ledger holds once brought up to date, derived afresh for comparison
                fresh = loyalty.update_ledger(store, platform, name, as_of=END, dry_run=True)
                assert fresh.derived > 0
                assert loyalty.update_ledger(store, platform, name, as_of=END).added == 0, (
                    "plan/apply left the ledger behind"
                )
                written = _written_points(shop)
                assert written, f"{platform}: no points balance written back"
                for cid, points in written.items():
                    customer = store.get(shopsync.Customer, platform, name, cid)
                    assert customer is not None
                    assert points == loyalty.balance(store, customer, END).approved, cid
                every.update(written.values())
                assert loyalty.shop_balance(store, platform, name).lifetime > 0
            assert max(every) > 0, "only zero balances were written back"
        finally:
            store.close()


def _quickstart_snippet() -> str:
    """The Python block of the quickstart's "Your own shop", as a new user copies it."""
    text = (Path(__file__).parents[1] / "docs" / "quickstart.md").read_text(encoding="utf-8")
    section = text.split("## Your own shop", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_quickstart_snippet_leaves_a_current_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shopsync.testing import emulate

    code = _quickstart_snippet()
    line = 'shop = shopsync.connect("shopify", shop="acme.myshopify.com", access_token=TOKEN)'
    assert line in code and "shopsync.plan(" in code
    monkeypatch.chdir(tmp_path)
    with emulate("shopify", seed=5, **FAST, customers=30, orders=120, products=8) as shopify:
        # the one line a reader changes: their shop's address and token
        code = code.replace(line, 'shop = shopsync.connect("shopify", **SETTINGS)')
        exec(compile(code, "quickstart.md", "exec"), {"SETTINGS": shopify.settings})
    store = Store("sqlite:///shop.db")
    try:
        platform, name = store.shops()[0]
        assert loyalty.ledger_entries(store, platform, name), "the snippet left the ledger empty"
        mark = store.get_cursor(platform, name, "loyalty_ledger")
        assert mark is not None and mark.high_water is not None
        assert loyalty.ledger_status(store, platform, name, mark.high_water) is None
        assert loyalty.update_ledger(store, platform, name, as_of=mark.high_water).added == 0
    finally:
        store.close()


def test_a_plan_dated_after_the_present_says_the_ledger_is_not_current(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shopsync.testing import emulate

    runner = CliRunner()
    monkeypatch.chdir(tmp_path)
    future = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=400)).date().isoformat()
    with emulate("shopify", seed=5, **FAST, **SMALL) as shopify:
        _configure(tmp_path, shopify)
        _credentials(monkeypatch, shopify)
        assert runner.invoke(app, ["sync"]).exit_code == 0
        planned = runner.invoke(app, ["plan", "--as-of", future])
        assert planned.exit_code == 0, planned.output
        flat = " ".join(planned.output.split())
        assert "was never brought up to date" in flat and "after the present" in flat, flat
        assert "points balances are not written back" in flat
        applied = runner.invoke(app, ["apply", "main", "--as-of", future])
        assert applied.exit_code == 0, applied.output
    assert _written_points(shopify) == {}  # nothing derived ahead of the clock went out
    store = Store(f"sqlite:///{tmp_path / 'shop.db'}")
    try:
        platform, name = store.shops()[0]
        assert loyalty.ledger_entries(store, platform, name) == []
    finally:
        store.close()


def test_the_report_right_after_a_sync_counts_the_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shopsync.testing import emulate

    runner = CliRunner()
    monkeypatch.chdir(tmp_path)
    with emulate("shopify", seed=5, **FAST, **SMALL) as shopify:
        _configure(tmp_path, shopify)
        _credentials(monkeypatch, shopify)
        assert runner.invoke(app, ["sync"]).exit_code == 0
    out = tmp_path / "report.html"
    written = runner.invoke(app, ["report", "--out", str(out), "--as-of", "2026-06-01"])
    assert written.exit_code == 0, written.output
    store = Store(f"sqlite:///{tmp_path / 'shop.db'}")
    try:
        platform, name = store.shops()[0]
        assert loyalty.ledger_status(store, platform, name, END) is None
        assert loyalty.shop_balance(store, platform, name).lifetime > 0  # not the 0 of issue 17
    finally:
        store.close()
