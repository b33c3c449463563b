"""The Flask recipe's worker: intake notes changed customers durably; a separate pass plans
them with the nightly job's policy file and delivers each action once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import shopsync
from shopsync.core.planner import in_holdout
from shopsync.models import Customer, Order
from shopsync.store.changes import changed, clear_changes
from shopsync.testing import EmulatedShop, emulate
from tests.test_docs import COOKBOOK, SECRET, _order_delivery, _script

POLICY = """
[holdout]
share = 0.5
salt = "spring-2026"

[consent]
allow_soft_opt_in = true
"""


@pytest.fixture
def shop() -> Iterator[EmulatedShop]:
    with emulate("shopify", seed=21, customers=40, orders=160, products=10, plan="plus") as s:
        yield s


@pytest.fixture
def policy_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "retention.toml"
    path.write_text(POLICY, encoding="utf-8")
    monkeypatch.setenv("SHOPSYNC_POLICY", str(path))
    monkeypatch.setenv("SHOPSYNC_OUT", str(tmp_path / "out"))
    return path


def synced(shop: EmulatedShop, url: str) -> shopsync.Store:
    store = shopsync.Store(url)
    adapter = shopsync.connect("shopify", **shop.settings)
    shopsync.sync(adapter, store)
    adapter.close()
    # the sync noted every customer it wrote (issue 19); a nightly plan settles those notes
    clear_changes(store, changed(store, limit=10**6))
    return store


def deliver_all(client: Any, shop: EmulatedShop, customers: int) -> list[str]:
    """Signed orders/updated deliveries for the first order of ``customers`` customers."""
    seen: dict[str, str] = {}
    for order in sorted(shop.state.orders.values(), key=lambda o: o.id):
        if order.customer_id and order.customer_id not in seen:
            seen[order.customer_id] = order.id
    noted = []
    for customer_id, order_id in list(seen.items())[:customers]:
        headers, body = _order_delivery(shop, order_id, tags=("webhook",))
        answer = client.post("/webhooks/shopify", data=body, headers=headers)
        assert answer.status_code == 200, answer.get_json()
        noted.append(customer_id)
    return noted


def test_the_worker_plans_with_the_nightly_policy_file(
    tmp_path: Path, shop: EmulatedShop, policy_file: Path
) -> None:
    webhook_flask, nightly = _script("webhook_flask"), _script("nightly")
    assert webhook_flask.POLICY_FILE == nightly.POLICY_FILE == policy_file
    policy = webhook_flask.load_policy()
    assert policy == nightly.load_policy() == shopsync.Policy.from_toml(policy_file)
    store = synced(shop, f"sqlite:///{tmp_path / 'shop.db'}")
    app = webhook_flask.create_app(store, {"shopify": SECRET})
    noted = deliver_all(app.test_client(), shop, 40)
    assert sorted(c.customer_id for c in changed(store)) == sorted(noted)
    out = tmp_path / "out"
    out.mkdir()
    sinks = [shopsync.sinks.JsonLines("actions.jsonl", root=out)]
    assert webhook_flask.work(store, policy, sinks) == len(noted)
    assert changed(store) == []
    lines = [json.loads(x) for x in (out / "actions.jsonl").read_text().splitlines()]
    marketing = [a for a in lines if a["marketing"]]
    assert marketing, "the shop's plan has marketing actions to check the holdout on"
    sh = shop.state.shop
    assert not [a for a in marketing if in_holdout(policy, "shopify", sh, a["customer_id"])]
    # planning with the defaults (what the recipe used to do) holds out other customers
    held = {c for c in noted if in_holdout(policy, "shopify", sh, c)}
    assert held != {c for c in noted if in_holdout(shopsync.Policy(), "shopify", sh, c)}
    store.close()


def test_a_missing_policy_file_stops_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPSYNC_POLICY", str(tmp_path / "nowhere.toml"))
    with pytest.raises(SystemExit, match="no policy file"):
        _script("webhook_flask").load_policy()


def test_a_worker_killed_before_clearing_sends_nothing_twice(
    tmp_path: Path, shop: EmulatedShop, policy_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    webhook_flask = _script("webhook_flask")
    store = synced(shop, f"sqlite:///{tmp_path / 'shop.db'}")
    app = webhook_flask.create_app(store, {"shopify": SECRET})
    noted = deliver_all(app.test_client(), shop, 40)
    out = tmp_path / "out"
    out.mkdir()
    sinks = [shopsync.sinks.JsonLines("actions.jsonl", root=out)]
    policy = webhook_flask.load_policy()

    def killed(*args: Any) -> int:
        raise KeyboardInterrupt  # the process dies after delivering, before clearing

    monkeypatch.setattr(webhook_flask, "clear_changes", killed)
    with pytest.raises(KeyboardInterrupt):
        webhook_flask.work(store, policy, sinks)
    first = (out / "actions.jsonl").read_text().splitlines()
    assert sorted(c.customer_id for c in changed(store)) == sorted(noted)  # not lost
    monkeypatch.undo()
    assert webhook_flask.work(store, policy, sinks) == len(noted)
    again = (out / "actions.jsonl").read_text().splitlines()
    assert again == first and len({json.loads(x)["idempotency_key"] for x in again}) == len(first)
    assert changed(store) == []
    store.close()


def test_a_change_during_a_pass_stays_noted(
    tmp_path: Path, shop: EmulatedShop, policy_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    webhook_flask = _script("webhook_flask")
    store = synced(shop, f"sqlite:///{tmp_path / 'shop.db'}")
    client = webhook_flask.create_app(store, {"shopify": SECRET}).test_client()
    (customer_id,) = deliver_all(client, shop, 1)
    (read,) = changed(store)  # what the pass reads
    real_apply = shopsync.apply
    order_id = next(
        o.id for o in store.iter(Order, "shopify", shop.state.shop) if o.customer_id == customer_id
    )

    def apply_while_another_delivery_arrives(*args: Any, **kwargs: Any) -> Any:
        headers, body = _order_delivery(shop, order_id, tags=("second",))
        assert client.post("/webhooks/shopify", data=body, headers=headers).status_code == 200
        return real_apply(*args, **kwargs)

    monkeypatch.setattr(shopsync, "apply", apply_while_another_delivery_arrives)
    assert webhook_flask.work(store, webhook_flask.load_policy(), []) == 1
    monkeypatch.undo()
    (left,) = changed(store)
    assert left.customer_id == customer_id and left.seq > read.seq
    assert store.get(Customer, "shopify", shop.state.shop, customer_id) is not None
    store.close()


def test_the_worker_runs_as_a_script(tmp_path: Path, shop: EmulatedShop, policy_file: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    store = synced(shop, url)
    client = _script("webhook_flask").create_app(store, {"shopify": SECRET}).test_client()
    noted = deliver_all(client, shop, 40)
    store.close()
    env = {**os.environ, "SHOPSYNC_STORE": url}
    result = subprocess.run(
        [sys.executable, str(COOKBOOK / "webhook_flask.py"), "--once"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"planned {len(noted)} changed customers"
    assert len((tmp_path / "out" / "actions.jsonl").read_text().splitlines()) > 0
    with shopsync.Store(url) as again:
        assert changed(again) == []


def test_the_worker_loop_outlives_a_retryable_failure(
    tmp_path: Path, policy_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass that fails for a reason that passes (another apply holds the store, the
    database restarts) is tried again; the notes stay until a pass finishes."""
    from shopsync.errors import TransportError

    webhook_flask = _script("webhook_flask")
    monkeypatch.setattr(webhook_flask, "STORE_URL", f"sqlite:///{tmp_path / 'shop.db'}")
    passes: list[str] = []

    def work(*args: Any) -> int:
        passes.append("pass")
        if len(passes) == 1:
            raise TransportError("connection reset")
        return 0

    class Stop(Exception):
        pass

    def sleep(seconds: float) -> None:
        if len(passes) >= 2:
            raise Stop

    monkeypatch.setattr(webhook_flask, "work", work)
    monkeypatch.setattr(webhook_flask.time, "sleep", sleep)
    with pytest.raises(Stop):
        webhook_flask.main([])
    assert passes == ["pass", "pass"]
    with pytest.raises(TransportError):  # --once reports it (cron mails the failure)
        passes.clear()
        webhook_flask.main(["--once"])


def test_a_customer_that_cannot_be_planned_now_stays_noted(
    tmp_path: Path, shop: EmulatedShop, policy_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure that may pass (the database restarting) keeps the note for the next pass;
    one that will not (a shop removed since) drops it with a log line; neither stops the
    others."""
    from shopsync.errors import ConfigurationError, TransportError

    webhook_flask = _script("webhook_flask")
    store = synced(shop, f"sqlite:///{tmp_path / 'shop.db'}")
    client = webhook_flask.create_app(store, {"shopify": SECRET}).test_client()
    noted = deliver_all(client, shop, 6)
    flaky, gone = noted[0], noted[1]
    real = shopsync.plan_customer

    def plan_customer(*args: Any) -> Any:
        if args[-1] == flaky:
            raise TransportError("connection reset")
        if args[-1] == gone:
            raise ConfigurationError("shop removed")
        if args[-1] == noted[2]:
            raise RuntimeError("a bug in a rule")
        return real(*args)

    monkeypatch.setattr(shopsync, "plan_customer", plan_customer)
    assert webhook_flask.work(store, webhook_flask.load_policy(), []) == 4
    assert sorted(c.customer_id for c in changed(store)) == sorted([flaky, noted[2]])
    monkeypatch.undo()
    assert webhook_flask.work(store, webhook_flask.load_policy(), []) == 2
    assert changed(store) == []
    store.close()
