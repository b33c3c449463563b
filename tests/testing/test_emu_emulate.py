"""emulate(): entry-point discovery, the running shop, webhooks, the fixture and the CLI."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import requests

from shopsync.errors import ConfigurationError
from shopsync.testing import EmulatedShop, Faults, available_emulators, emulate

END = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)


def get(url: str, **params: Any) -> requests.Response:
    with requests.Session() as s:
        s.trust_env = False
        return s.get(url, params=params, timeout=5)


def test_emulate_finds_the_platform_through_entry_points(fake_platform: str) -> None:
    assert "fake" in available_emulators()
    with emulate(fake_platform, seed=4, customers=30, orders=90, end=END, flavour="x") as shop:
        assert isinstance(shop, EmulatedShop)
        assert shop.state.shop == "fake-4.example" and shop.platform == "fake"
        assert shop.settings == {"url": shop.url, "token": "fake-token"}
        page = get(f"{shop.url}/customers", page=1, limit=20)
        assert page.status_code == 200 and len(page.json()) == 20
        assert page.headers["X-Total"] == "30"
        assert get(f"{shop.url}/options").json() == {"flavour": "x"}
        url = shop.url
    with pytest.raises(requests.exceptions.ConnectionError):
        get(f"{url}/customers")


def test_same_seed_same_shop(fake_platform: str) -> None:
    with (
        emulate(fake_platform, seed=9, customers=20, orders=50, end=END) as a,
        emulate(fake_platform, seed=9, customers=20, orders=50, end=END) as b,
    ):
        assert a.url != b.url and a.state == b.state


def test_faults_argument(fake_platform: str) -> None:
    with emulate(
        fake_platform, customers=5, orders=5, end=END, faults={"rate_429": 1.0, "retry_after": 0.25}
    ) as shop:
        r = get(f"{shop.url}/customers")
        assert r.status_code == 429 and r.headers["Retry-After"] == "0.25"
        assert shop.state.faults is shop.faults and shop.faults.counts["429"] == 1
    faults = Faults(rate_5xx=1.0)
    with emulate(fake_platform, customers=5, orders=5, end=END, faults=faults) as shop:
        assert shop.faults is faults and get(f"{shop.url}/customers").status_code >= 500


def test_unknown_platform_lists_installed(fake_platform: str) -> None:
    with pytest.raises(ConfigurationError, match=r"'nope'.*fake"), emulate("nope"):
        pass


def test_webhooks_are_signed_delivered_and_retried(fake_platform: str, receiver: Any) -> None:
    with emulate(
        fake_platform, customers=10, orders=20, end=END, webhook_backoff=0.01, webhook_attempts=4
    ) as shop:
        (sub,) = shop.subscribe(receiver.url, "customers/update", secret="s3cret")
        shop.subscribe(receiver.url, ["orders/create"])  # does not concern customer updates
        receiver.statuses = [500, 503]  # two failures, then accepted
        cid = next(iter(shop.state.customers))
        shop.state.update_customer(cid, first_name="Webhook")
        assert shop.flush_webhooks(5)
        statuses = [a.status for a in shop.state.deliveries]
        assert statuses == [500, 503, 200]
        assert {a.subscription_id for a in shop.state.deliveries} == {sub.id}
        assert len({a.delivery_id for a in shop.state.deliveries}) == 1  # one delivery, retried
        headers, body = receiver.received[-1]
        assert json.loads(body) == {"id": cid, "topic": "customers/update"}
        expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        assert headers["x-fake-signature"] == expected
        assert headers["x-fake-topic"] == "customers/update"


def test_webhook_gives_up_after_max_attempts(fake_platform: str, receiver: Any) -> None:
    with emulate(
        fake_platform, customers=3, orders=3, end=END, webhook_backoff=0.01, webhook_attempts=3
    ) as shop:
        shop.subscribe(receiver.url, "customers/update")
        receiver.statuses = [500] * 10
        shop.state.update_customer(next(iter(shop.state.customers)), last_name="X")
        assert shop.flush_webhooks(5)
        assert [a.status for a in shop.state.deliveries] == [500, 500, 500]
        assert shop.dispatcher is not None and len(shop.dispatcher.failed) == 1


def test_webhook_connection_error_is_retried(fake_platform: str, receiver: Any) -> None:
    with emulate(
        fake_platform, customers=3, orders=3, end=END, webhook_backoff=0.01, webhook_attempts=2
    ) as shop:
        dead = receiver.url
        receiver.close()  # nobody listens there any more
        shop.subscribe(dead, "customers/update")
        shop.state.update_customer(next(iter(shop.state.customers)), last_name="X")
        assert shop.flush_webhooks(10)
        assert [a.status for a in shop.state.deliveries] == [None, None]


def test_pytest_fixture(fake_platform: str, emulated_shop: Callable[..., EmulatedShop]) -> None:
    first = emulated_shop("fake", customers=5, orders=10, end=END)
    second = emulated_shop("fake", seed=2, customers=6, orders=10, end=END)
    assert len(first.state.customers) == 5 and len(second.state.customers) == 6
    assert get(f"{first.url}/customers").status_code == 200
    assert get(f"{second.url}/customers").status_code == 200


def test_plugin_works_as_a_pytest_plugin(tmp_path: Path, fake_platform: str) -> None:
    """In a separate pytest run, loaded as the pytest11 entry point (or with -p until that
    is declared): the fixture starts shops and stops them at teardown."""
    (tmp_path / "test_inner.py").write_text(
        textwrap.dedent(
            """
        import datetime as dt
        import requests
        URLS = []

        def test_uses_shop(emulated_shop):
            shop = emulated_shop("fake", customers=4, orders=4,
                                 end=dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc))
            URLS.append(shop.url)
            assert len(shop.state.customers) == 4

        def test_stopped_after_teardown():
            s = requests.Session()
            s.trust_env = False
            try:
                s.get(URLS[0] + "/customers", timeout=2)
            except requests.exceptions.ConnectionError:
                return
            raise AssertionError("the shop is still running")
        """
        )
    )
    declared = any(
        ep.value == "shopsync.testing.pytest_plugin" for ep in entry_points(group="pytest11")
    )
    plugin = [] if declared else ["-p", "shopsync.testing.pytest_plugin"]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(tmp_path / "site"), os.environ.get("PYTHONPATH")) if p
        ),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *plugin,
            "-q",
            "-p",
            "no:cacheprovider",
            "-c",
            os.devnull,
            "--rootdir",
            str(tmp_path),
            str(tmp_path / "test_inner.py"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


def test_cli_emulate_prints_url_and_settings(
    fake_platform: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from typer.testing import CliRunner

    from shopsync.cli import app

    served: list[str] = []

    def ctrl_c(seconds: float) -> None:
        served.append("serving")
        raise KeyboardInterrupt

    monkeypatch.setattr(time, "sleep", ctrl_c)
    result = CliRunner().invoke(
        app, ["emulate", "fake", "--seed", "3", "--customers", "4", "--orders", "6"]
    )
    assert result.exit_code == 0, result.output
    assert served == ["serving"]
    assert "fake-3.example" in result.output and "http://127.0.0.1:" in result.output
    assert "token = 'fake-token'" in result.output and "stopped" in result.output
