"""``shopsync apply`` hands its policy to the outbox, so a later apply without one (a retry
script) still holds marketing under the same quiet hours and frequency cap."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

import shopsync
from shopsync.cli import app
from shopsync.store.delivery import remembered_policy
from shopsync.testing import emulate


def test_cli_apply_remembers_its_policy_for_later_runs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    with emulate("shopify", seed=3, customers=12, orders=40, products=4) as shop:
        with shopsync.Store(url) as store:
            adapter = shopsync.connect("shopify", **shop.settings)
            shopsync.sync(adapter, store)
            adapter.close()
        name = shop.state.shop
    policy_file = tmp_path / "retention.toml"
    policy_file.write_text('[quiet]\nhours = [21, 8]\ntimezone = "Europe/Berlin"\n')
    out = tmp_path / "actions.jsonl"
    result = CliRunner().invoke(
        app, ["apply", "--db", url, "--jsonl", str(out), "--policy", str(policy_file)]
    )
    assert result.exit_code == 0, result.output
    with shopsync.Store(url) as store:
        shop_id = store.shop_id("shopify", name, create=False)
        text = remembered_policy(store, shop_id)
    assert text is not None
    assert shopsync.Policy.model_validate_json(text) == shopsync.Policy.from_toml(policy_file)
