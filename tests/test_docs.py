"""The documentation site: generated pages current, strict build clean, cookbook scripts working.

The cookbook scripts in ``docs/cookbook`` are run here against the emulated shops, so a
script a reader copies is one that passed this suite.
"""

from __future__ import annotations

import csv
import datetime as dt
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import shopsync
from shopsync._docs import PAGES, main, stale_pages
from shopsync.models import ConsentState, Customer, Order
from shopsync.outbox import record_unsubscribe
from shopsync.store.changes import changed, clear_changes
from shopsync.testing import EmulatedShop, Event, Subscription, emulate

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
COOKBOOK = DOCS / "cookbook"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks(language: str) -> Iterator[tuple[str, str]]:
    for page in sorted(DOCS.rglob("*.md")):
        for found in FENCE.finditer(page.read_text(encoding="utf-8")):
            if found.group(1) == language:
                yield str(page.relative_to(DOCS)), found.group(2)


def _script(name: str) -> ModuleType:
    path = COOKBOOK / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"cookbook_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- the site


def test_generated_pages_are_current() -> None:
    assert stale_pages(DOCS) == [], "run: python -m shopsync._docs"


def test_the_generator_writes_and_checks(tmp_path: Path) -> None:
    assert main(["--docs", str(tmp_path), "--check"]) == 1
    assert main(["--docs", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(PAGES)
    assert main(["--docs", str(tmp_path), "--check"]) == 0


def test_policy_reference_lists_every_key_as_a_toml_path() -> None:
    text = (DOCS / "policy.md").read_text(encoding="utf-8")
    for key in ("currency", "winback.min_days", "loyalty.earn.pending_days", "quiet.hours"):
        assert f"| `{key}` |" in text
    assert "| `loyalty.tiers.tiers[].threshold` |" in text


def test_policy_examples_load() -> None:
    examples = [code for page, code in _blocks("toml") if page == "policy.md"]
    assert examples
    for code in examples:
        policy = shopsync.Policy.from_toml(code)
        assert policy != shopsync.Policy()


def test_cli_reference_names_every_command() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    for command in ("demo", "sync", "plan", "apply", "emulate", "outbox list", "quarantine retry"):
        assert f"## `shopsync {command}`" in text


def test_python_examples_are_valid_python() -> None:
    checked = 0
    for page, code in _blocks("python"):
        if code.lstrip().startswith(">>>"):
            continue
        try:
            compile(code, page, "exec")
        except SyntaxError as exc:
            pytest.fail(f"{page}: {exc}")
        checked += 1
    assert checked > 10


def test_every_cookbook_script_is_shown_on_a_page() -> None:
    pages = "".join(p.read_text(encoding="utf-8") for p in COOKBOOK.glob("*.md"))
    scripts = sorted(COOKBOOK.glob("*.py"))
    assert scripts
    for script in scripts:
        assert f'--8<-- "{script.name}"' in pages, script.name


def test_site_builds_in_strict_mode(tmp_path: Path) -> None:
    mkdocs = shutil.which("mkdocs")
    if mkdocs is None:
        pytest.fail("mkdocs is part of the test extra; install it with pip install -e '.[test]'")
    site = tmp_path / "site"
    result = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    assert (site / "policy" / "index.html").exists()
    nightly = (site / "cookbook" / "nightly" / "index.html").read_text(encoding="utf-8")
    assert "SHOPSYNC_STORE" in nightly and "--8&lt;--" not in nightly  # the script is included


# -------------------------------------------------------------------------- the cookbook


SHOP_END = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
"""The emulated shop's last day: the nightly run plans as of two days later, so what it
plans does not depend on the day the suite runs."""


@pytest.fixture
def shopify_shop() -> Iterator[EmulatedShop]:
    with emulate(
        "shopify", seed=21, customers=40, orders=160, products=10, plan="plus", end=SHOP_END
    ) as shop:
        yield shop


def test_nightly_syncs_plans_and_delivers_once(
    tmp_path: Path, shopify_shop: EmulatedShop, monkeypatch: pytest.MonkeyPatch
) -> None:
    nightly = _script("nightly")
    monkeypatch.setenv("TEST_SHOPIFY_TOKEN", shopify_shop.settings["access_token"])
    settings = {**shopify_shop.settings, "access_token": "env:TEST_SHOPIFY_TOKEN"}
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    out = tmp_path / "out"
    out.mkdir()
    as_of = SHOP_END + dt.timedelta(days=2)
    assert nightly.nightly({"shopify": settings}, url, out, shopsync.Policy(), as_of) == 0
    with shopsync.Store(url) as store:
        shop = shopify_shop.state.shop
        assert store.count(Order, "shopify", shop) == len(shopify_shop.state.orders)
        planned = shopsync.plan(store, shopsync.Policy(), as_of)
    lines = (out / "actions.jsonl").read_text(encoding="utf-8").splitlines()
    keys = [json.loads(line)["idempotency_key"] for line in lines]
    assert len(keys) == len(set(keys)) == len(planned) > 0
    assert nightly.nightly({"shopify": settings}, url, out, shopsync.Policy(), as_of) == 0
    assert (out / "actions.jsonl").read_text(encoding="utf-8").splitlines() == lines


def test_nightly_reports_a_shop_it_cannot_sync(tmp_path: Path, shopify_shop: EmulatedShop) -> None:
    nightly = _script("nightly")
    settings = {**shopify_shop.settings, "access_token": "shpat_revoked"}
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    policy = shopsync.Policy()
    assert nightly.nightly({"shopify": settings}, url, tmp_path, policy) == 1


SECRET = "flask-test-secret"


def _order_delivery(
    shop: EmulatedShop, order_id: str, **changes: Any
) -> tuple[dict[str, str], bytes]:
    """The signed orders/updated delivery Shopify would POST after this change."""
    order = shop.state.update_order(order_id, **changes)
    event = Event("order.updated", "orders", order.id, order, order.updated_at)
    subscription = Subscription("1", "orders/updated", "http://127.0.0.1:9/unused", SECRET)
    delivery = shop.emulator.webhook(event, subscription)  # type: ignore[union-attr]
    assert delivery is not None
    return delivery.headers, delivery.body


def test_flask_receiver_applies_signed_deliveries_once_and_refuses_forged_ones(
    tmp_path: Path, shopify_shop: EmulatedShop
) -> None:
    webhook_flask = _script("webhook_flask")
    store = shopsync.Store(f"sqlite:///{tmp_path / 'shop.db'}")
    adapter = shopsync.connect("shopify", **shopify_shop.settings)
    shopsync.sync(adapter, store)
    adapter.close()
    clear_changes(store, changed(store, limit=10**6))  # the sync's notes (issue 19), settled
    shop = shopify_shop.state.shop
    app = webhook_flask.create_app(store, {"shopify": SECRET})
    client = app.test_client()
    order_id = sorted(o.id for o in shopify_shop.state.orders.values() if o.customer_id)[0]

    headers, body = _order_delivery(shopify_shop, order_id, tags=("vip",))
    answer = client.post("/webhooks/shopify", data=body, headers=headers)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["status"] == "applied"
    stored = store.get(Order, "shopify", shop, order_id)
    assert stored is not None and "vip" in stored.tags
    assert answer.get_json()["customers"] == [stored.customer_id]
    # noted for the worker in the delivery's transaction; nothing planned in the request
    assert [c.customer_id for c in changed(store)] == [stored.customer_id]

    again = client.post("/webhooks/shopify", data=body, headers=headers)
    assert again.status_code == 200 and again.get_json()["status"] == "duplicate"

    headers, body = _order_delivery(shopify_shop, order_id, tags=("forged",))
    forged = {**headers, "X-Shopify-Hmac-Sha256": "bm90IHRoZSByaWdodCBzaWduYXR1cmUgYXQgYWxsIQ=="}
    refused = client.post("/webhooks/shopify", data=body, headers=forged)
    assert refused.status_code == 401
    tampered = body.replace(b'"forged"', b'"vip2"')
    assert client.post("/webhooks/shopify", data=tampered, headers=headers).status_code == 401
    stored = store.get(Order, "shopify", shop, order_id)
    assert stored is not None and "forged" not in stored.tags and "vip2" not in stored.tags
    assert client.post("/webhooks/nowhere", data=body, headers=headers).status_code == 404
    store.close()


def test_esp_export_holds_consented_customers_only(
    tmp_path: Path, shopify_shop: EmulatedShop
) -> None:
    export_esp = _script("export_esp")
    store = shopsync.Store(f"sqlite:///{tmp_path / 'shop.db'}")
    adapter = shopsync.connect("shopify", **shopify_shop.settings)
    shopsync.sync(adapter, store)
    adapter.close()
    shop = shopify_shop.state.shop
    as_of = dt.datetime.now(dt.timezone.utc)
    shopsync.loyalty.update_ledger(store, "shopify", shop, as_of=as_of)
    customers = list(store.iter(Customer, "shopify", shop))
    subscribed = sorted(
        c.id for c in customers if c.email and c.consent.email.state is ConsentState.SUBSCRIBED
    )
    assert len(subscribed) >= 2 and len(subscribed) < len(customers)
    record_unsubscribe(store, "shopify", shop, subscribed[0], source="test")

    path = tmp_path / "contacts.csv"
    written = export_esp.export(store, "shopify", shop, path, as_of)
    with path.open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    by_email = {c.email: c for c in customers}
    assert written == len(rows) == len(subscribed) - 1
    assert {by_email[r["email"]].id for r in rows} == set(subscribed[1:])
    assert all(r["stage"] and r["rfm_group"] for r in rows if by_email[r["email"]].orders_count)
    assert all(int(r["points"]) >= 0 for r in rows)
    store.close()


@pytest.mark.slow(seconds=25)
def test_cookbook_scripts_run_as_scripts(tmp_path: Path, shopify_shop: EmulatedShop) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    with shopsync.Store(url) as store:
        adapter = shopsync.connect("shopify", **shopify_shop.settings)
        shopsync.sync(adapter, store)
        adapter.close()
    out = tmp_path / "contacts.csv"
    result = subprocess.run(
        [
            sys.executable,
            str(COOKBOOK / "export_esp.py"),
            url,
            "shopify",
            shopify_shop.state.shop,
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(f"contacts written to {out}")
    assert out.read_text(encoding="utf-8").startswith("email,first_name,last_name")
