"""``shopsync enqueue`` and ``shopsync worker`` from the shell; the webhook app queueing
its re-plans instead of running them in the request (issue 21, items 1 and 2)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shopsync.cli import app
from shopsync.store import Store, jobs
from shopsync.store.changes import changed, clear_changes
from shopsync.testing.state import Event
from shopsync.webhooks import wsgi_app
from shopsync.worker import enqueue_on_result, run
from tests.sync.emulated import emulated
from tests.workers.helpers import config, shop_config


def test_enqueue_then_a_worker_runs_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with emulated("shopify", customers=5, orders=10) as shop:
        monkeypatch.setenv("MAIN_TOKEN", shop.settings["access_token"])
        settings = "\n".join(
            f'{k} = "{v}"' for k, v in shop.settings.items() if k != "access_token"
        )
        (tmp_path / "shopsync.toml").write_text(
            f'[store]\nurl = "sqlite:///store.db"\n\n[shops.main]\nplatform = "shopify"\n'
            f'{settings}\naccess_token = "env:MAIN_TOKEN"\n\n[worker]\napply_hour = 0\n'
        )
        cli = ["--config", str(tmp_path / "shopsync.toml")]
        runner = CliRunner()
        bad = runner.invoke(app, [*cli, "enqueue", "sync", "main", "--payload", '{"ful": 1}'])
        assert bad.exit_code == 1 and "malformed sync job payload: ful" in bad.output
        gone = runner.invoke(app, [*cli, "enqueue", "sync", "outlet"])
        assert gone.exit_code == 1 and "no shop named 'outlet'" in gone.output
        queued = runner.invoke(app, [*cli, "enqueue", "sync", "main"])
        assert queued.exit_code == 0 and "sync main queued" in queued.output
        again = runner.invoke(app, [*cli, "enqueue", "sync", "main"])
        assert "already queued" in again.output
        worked = runner.invoke(app, [*cli, "worker", "--until-idle", "--no-schedule"])
        assert worked.exit_code == 0, worked.output
        assert "single-process" in worked.output and "1 done, 0 failed" in worked.output
        store = Store(f"sqlite:///{tmp_path / 'store.db'}")
        try:
            assert jobs.counts(store) == {"done": 1, "refused": 2}
            assert store.shops() == [("shopify", shop.state.shop)]
        finally:
            store.close()


NOON = dt.datetime(2026, 12, 3, 12, tzinfo=dt.timezone.utc)


def test_the_webhook_app_queues_the_replan_instead_of_running_it(store_url: str) -> None:
    with emulated("shopify", customers=5, orders=10) as shop:
        cfg = config(store_url, [shop_config("main", "shopify", shop.settings)])
        store = Store(store_url)
        try:
            run(cfg, store, until_idle=True, schedule=False, fence=False)
            from shopsync.worker import enqueue

            enqueue(store, "sync", "main")
            run(cfg, store, until_idle=True, schedule=False, fence=False)
            # the sync noted every customer it wrote (issue 19); a nightly plan settles them
            clear_changes(store, changed(store, limit=10**6))
            secret = "hush"
            hook = wsgi_app(store, {"shopify": secret}, on_result=enqueue_on_result(store, cfg))
            customer = next(iter(shop.state.customers.values()))
            event = Event("customers/update", "customers", customer.id, customer, NOON)
            payload = shop.emulator.webhook_payload("customers/update", event)  # type: ignore[attr-defined]
            body = json.dumps(payload).encode()
            for delivery in ("d1", "d2"):  # two deliveries, one queued job
                environ = _post(body, secret, shop.state.shop, delivery)
                answer = b"".join(hook(environ, lambda status, headers: None))
                assert json.loads(answer) == {"status": "applied"}
            assert jobs.counts(store) == {"done": 1, "queued": 1}
            assert [(c.shop, c.customer_id) for c in changed(store)] == [
                (shop.state.shop, customer.id)
            ]
            report = run(cfg, store, until_idle=True, schedule=False, fence=False)
            assert report.done == 1 and jobs.counts(store) == {"done": 2}
            assert changed(store) == []  # planned and applied on the worker, then cleared
        finally:
            store.close()


def _post(body: bytes, secret: str, domain: str, delivery: str) -> dict[str, object]:
    digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/webhooks/shopify",
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json",
        "wsgi.input": io.BytesIO(body),
        "HTTP_X_SHOPIFY_HMAC_SHA256": digest,
        "HTTP_X_SHOPIFY_TOPIC": "customers/update",
        "HTTP_X_SHOPIFY_SHOP_DOMAIN": domain,
        "HTTP_X_SHOPIFY_WEBHOOK_ID": delivery,
    }


def test_a_store_error_while_queueing_does_not_fail_the_delivery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    import shopsync.worker as worker

    settings = {"shop": "a.myshopify.com", "access_token": "t"}
    cfg = config("sqlite://", [shop_config("main", "shopify", settings)])
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")

    def down(*args: object, **kwargs: object) -> None:
        raise OperationalError("INSERT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(worker, "enqueue", down)
    result = type("R", (), {"status": "applied", "customer_ids": ("1",), "shop": settings["shop"]})
    try:
        worker.enqueue_on_result(store, cfg)(result)  # logged; the schedule sweeps the notes
    finally:
        store.close()
