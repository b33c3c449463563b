from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from shopsync.cli import app
from shopsync.store import Store


def test_sync_and_the_quarantine_from_the_shell(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from shopsync.models import Order
    from shopsync.testing import emulate

    db = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    with emulate("woocommerce", seed=5, customers=20, orders=60, products=10) as shop:
        bad_id = sorted(shop.state.orders)[0]
        shop.faults.invalid_records.add(("orders", bad_id))
        settings = dict(shop.settings)
        monkeypatch.setenv("WOO_SECRET", settings.pop("consumer_secret"))
        args = ["sync", "woocommerce", "--db", db, "-s", "consumer_secret=env:WOO_SECRET"]
        args += [arg for key, value in settings.items() for arg in ("-s", f"{key}={value}")]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert "orders" in result.output and "bad" in result.output
        assert str(shop.settings["consumer_secret"]) not in result.output
        store = Store(db)
        assert store.count(Order, "woocommerce", shop.state.shop) == 59

        listed = runner.invoke(app, ["quarantine", "list", "--db", db])
        assert bad_id in listed.output
        entry = str(store.quarantined()[0].id)
        shown = runner.invoke(app, ["quarantine", "show", entry, "--db", db])
        assert shown.exit_code == 0 and bad_id in shown.output

        shop.faults.invalid_records.clear()  # the record was fixed on the platform...
        fixed_raw = runner.invoke(app, ["quarantine", "retry", "--db", db])
        assert "still failing 1" in fixed_raw.output  # ...but the stored raw payload is still bad
        again = runner.invoke(app, [*args, "--full"])
        assert again.exit_code == 0
        assert store.count(Order, "woocommerce", shop.state.shop) == 60
        store.close()


def test_a_missing_env_setting_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "sync",
            "woocommerce",
            "--db",
            f"sqlite:///{tmp_path / 'x.db'}",
            "-s",
            "consumer_secret=env:NOPE_NOT_SET",
        ],
    )
    assert result.exit_code != 0
    assert "NOPE_NOT_SET" in str(result.exception) or "NOPE_NOT_SET" in result.output


# -- shopsync.toml, check, and bad input -------------------------------------------------------

END = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)
SMALL = {"customers": 30, "orders": 120, "products": 8, "end": END}
FAST = {"plan": "plus"}  # Shopify's biggest cost bucket: a page is not paced for seconds


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _configure(folder: Path, shopify: Any = None, woo: Any = None, extra: str = "") -> Path:
    """A shopsync.toml for the emulated shops, credentials by environment variable."""
    text = '[store]\nurl = "sqlite:///shop.db"\n'
    if shopify is not None:
        text += (
            f'[shops.main]\nplatform = "shopify"\nshop = "{shopify.state.shop}"\n'
            f'base_url = "{shopify.url}"\naccess_token = "env:TEST_CLI_TOKEN"\n'
        )
    if woo is not None:
        text += (
            f'[shops.outlet]\nplatform = "woocommerce"\nurl = "{woo.settings["url"]}"\n'
            'consumer_key = "env:TEST_CLI_KEY"\nconsumer_secret = "env:TEST_CLI_SECRET"\n'
        )
    path = folder / "shopsync.toml"
    path.write_text(text + extra, encoding="utf-8")
    return path


def _credentials(monkeypatch: pytest.MonkeyPatch, shopify: Any = None, woo: Any = None) -> None:
    if shopify is not None:
        monkeypatch.setenv("TEST_CLI_TOKEN", str(shopify.settings["access_token"]))
    if woo is not None:
        monkeypatch.setenv("TEST_CLI_KEY", str(woo.settings["consumer_key"]))
        monkeypatch.setenv("TEST_CLI_SECRET", str(woo.settings["consumer_secret"]))


def _fails(result: Any, *phrases: str) -> str:
    """The one-paragraph error of a failed run, checked for ``phrases``."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    message = result.stderr.strip()
    assert message.startswith("error: ") and "\n" not in message, message
    assert "Traceback" not in result.output
    for phrase in phrases:
        assert phrase in message, message
    return message


def test_a_configured_shop_from_check_to_backtest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shopsync.testing import emulate

    runner = CliRunner()
    monkeypatch.chdir(tmp_path)  # ./shopsync.toml is found without --config
    with (
        emulate("shopify", seed=3, **FAST, **SMALL) as shopify,
        emulate("woocommerce", **SMALL) as woo,
    ):
        _configure(tmp_path, shopify, woo)
        _credentials(monkeypatch, shopify, woo)
        checked = runner.invoke(app, ["check"])
        assert checked.exit_code == 0, checked.output
        assert "main (shopify emulated-3.myshopify.com): reached" in checked.output
        assert "apply needs write_customers, write_discounts: granted" in checked.output
        assert (
            "outlet (woocommerce" in checked.output
            and "apply needs write: granted" in checked.output
        )

        synced = runner.invoke(app, ["sync"])  # every configured shop
        assert synced.exit_code == 0, synced.output
        assert (
            "shopify emulated-3.myshopify.com" in synced.output and "woocommerce" in synced.output
        )
        for secret in (shopify.settings["access_token"], woo.settings["consumer_secret"]):
            assert str(secret) not in synced.output
        store = Store(f"sqlite:///{tmp_path / 'shop.db'}")
        assert len(store.shops()) == 2
        store.close()

        planned = runner.invoke(app, ["plan", "main", "--as-of", "2026-06-01"])
        assert planned.exit_code == 0, planned.output
        assert "planned" in planned.output and "127.0.0.1" not in planned.output

        out = tmp_path / "actions.jsonl"
        applied = runner.invoke(
            app, ["apply", "outlet", "--as-of", "2026-06-01", "--jsonl", str(out), "--dry-run"]
        )
        assert applied.exit_code == 0, applied.output
        assert "dry run" in applied.output
        assert woo.emulator.writes == {}  # type: ignore[union-attr]

    report = tmp_path / "out" / "report.html"
    report.parent.mkdir()
    written = runner.invoke(app, ["report", "--out", str(report), "--as-of", "2026-06-01"])
    assert written.exit_code == 0, written.output
    assert report.stat().st_size > 0 and str(report) in written.output.replace("\n", "")

    replay = runner.invoke(
        app,
        ["backtest", "--from", "2026-03-01", "--to", "2026-05-01", "--step", "4w"],
    )
    assert replay.exit_code == 0, replay.output
    assert "holdout lift" in replay.output


def test_check_names_missing_access_and_unreachable_shops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shopsync.testing import emulate

    scopes = "read_customers,read_orders,read_products,write_customers"
    dead = (
        f'[shops.dead]\nplatform = "shopify"\nshop = "dead.myshopify.com"\n'
        f'base_url = "http://127.0.0.1:{_closed_port()}"\naccess_token = "env:TEST_CLI_TOKEN"\n'
    )
    with (
        emulate("shopify", scopes=scopes, **SMALL) as shopify,
        emulate("woocommerce", permissions="read", **SMALL) as woo,
    ):
        stale = (
            f'[shops.stale]\nplatform = "shopify"\nshop = "{shopify.state.shop}"\n'
            f'base_url = "{shopify.url}"\naccess_token = "env:TEST_CLI_STALE"\n'
        )
        config = _configure(tmp_path, shopify, woo, extra=dead + stale)
        _credentials(monkeypatch, shopify, woo)
        monkeypatch.setenv("TEST_CLI_STALE", "shpat_revoked_0123456789")
        result = CliRunner().invoke(app, ["--config", str(config), "check"])
    assert result.exit_code == 1
    out = result.stdout
    assert (
        "sync needs read_customers, read_orders, read_all_orders, read_products: "
        "MISSING read_all_orders" in out
    )
    assert "apply needs write_customers, write_discounts: MISSING write_discounts" in out
    assert "Admin API access scopes" in out  # how to grant them
    assert "apply needs write: MISSING write" in out and "Read/Write" in out
    assert "dead (shopify dead.myshopify.com): FAILED: connection failed" in out
    assert "stale (shopify emulated-1.myshopify.com): FAILED: credentials refused" in out
    assert (
        '  refused credentials: shops.stale.access_token = "env:TEST_CLI_STALE", '
        "read from $TEST_CLI_STALE" in out
    )
    assert "shpat_revoked_0123456789" not in result.output
    assert "4 of 4 shops cannot be used" in result.stderr

    with emulate("woocommerce", permissions="read", **SMALL) as woo:
        config = _configure(tmp_path, woo=woo)  # a sync-only shop needs no write access
        config.write_text(config.read_text() + "write_back = false\n")
        _credentials(monkeypatch, woo=woo)
        result = CliRunner().invoke(app, ["--config", str(config), "check", "outlet"])
    assert result.exit_code == 0, result.output
    assert "sync needs read: granted" in result.stdout and "apply" not in result.stdout


def test_config_mistakes_are_one_paragraph(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    monkeypatch.chdir(tmp_path)
    _fails(runner.invoke(app, ["--config", "nope.toml", "plan"]), "nope.toml", "does not exist")
    _fails(runner.invoke(app, ["check"]), "no shopsync.toml in this folder", "--config")
    _fails(runner.invoke(app, ["sync"]), "name a shop of shopsync.toml")

    broken = tmp_path / "shopsync.toml"
    broken.write_text('[store]\nurl = "sqlite:///x.db"\n[shops.main\nplatform = "shopify"\n')
    _fails(runner.invoke(app, ["sync", "main"]), "not valid TOML", "line 3")
    broken.write_text('[shops.main]\nplatform = "magento"\nurl = "https://m.example"\n')
    _fails(runner.invoke(app, ["check"]), "shops.main.platform", "'magento'", "shopify")
    broken.write_text(
        '[shops.main]\nplatform = "shopify"\nshop = "a.myshopify.com"\n'
        'access_token = "env:TEST_CLI_UNSET"\n'
    )
    monkeypatch.delenv("TEST_CLI_UNSET", raising=False)
    _fails(runner.invoke(app, ["sync", "main"]), "shops.main.access_token", "$TEST_CLI_UNSET")
    _fails(runner.invoke(app, ["sync", "other"]), "'other' is neither", "configured: main")
    _fails(runner.invoke(app, ["plan", "--as-of", "yesterday"]), "--as-of 'yesterday'")
    _fails(
        runner.invoke(
            app, ["backtest", "--from", "2026-01-01", "--to", "2026-02-01", "--step", "weekly"]
        ),
        "--step 'weekly'",
    )


def test_an_empty_or_missing_store_says_to_sync_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    monkeypatch.setenv("TEST_CLI_TOKEN", "x")
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    for args in (["plan"], ["report"], ["outbox", "list"], ["quarantine", "list"]):
        _fails(
            runner.invoke(app, [*args, "--db", missing]), "there is no store at", "shopsync sync"
        )
    assert not (tmp_path / "none.db").exists()  # reading never creates a store

    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    Store(empty).close()
    commands = (
        ["plan"],
        ["apply", "--jsonl", str(tmp_path / "a.jsonl")],
        ["report", "--out", str(tmp_path / "r.html")],
        ["backtest", "--from", "2026-01-01", "--to", "2026-03-01"],
    )
    for args in commands:
        _fails(runner.invoke(app, [*args, "--db", empty]), "holds no shop yet", "shopsync sync")
    _fails(runner.invoke(app, ["apply", "--db", empty]), "at least one sink")
    settings = ["-s", "shop=a.myshopify.com", "-s", "access_token=env:TEST_CLI_TOKEN"]
    nowhere = f"sqlite:///{tmp_path}/no/dir/x.db"
    _fails(runner.invoke(app, ["sync", "shopify", *settings, "--db", nowhere]), "does not exist")


def test_unreachable_shops_and_refused_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shopsync.testing import emulate

    runner = CliRunner()
    wrong = "shpat_wrong_but_secret_0123456789"
    with emulate("shopify", **SMALL) as shopify:
        config = _configure(tmp_path, shopify)
        monkeypatch.setenv("TEST_CLI_TOKEN", wrong)
        refused = runner.invoke(app, ["--config", str(config), "sync", "main"])
        message = _fails(refused, "refused the credentials of shop 'main'", "env:TEST_CLI_TOKEN")
        assert "shopsync check main" in message and "status=401" in message
        assert wrong not in refused.output and str(shopify.settings["access_token"]) not in message

        text = config.read_text().replace(shopify.url, f"http://127.0.0.1:{_closed_port()}")
        config.write_text(text + "[shops.main.retry]\nattempts = 1\n")
        unreachable = runner.invoke(app, ["--config", str(config), "sync", "main"])
        _fails(unreachable, "could not reach the shop of shop 'main'", "connection failed")
        assert wrong not in unreachable.output


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    run = [sys.executable, "-c", "from shopsync.cli import main; main()"]
    args = ["--config", str(tmp_path / "missing.toml"), "plan"]
    plain = subprocess.run([*run, *args], capture_output=True, text=True, timeout=120)
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    assert plain.stderr.startswith("error: configuration file")
    debug = subprocess.run([*run, "--debug", *args], capture_output=True, text=True, timeout=120)
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr and "ConfigurationError" in debug.stderr


# -- the CLI says what it did (issue 17 item 6) ---------------------------------------------------


@pytest.fixture(scope="module")
def synced_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store filled from a small emulated Shopify shop (no configuration file)."""
    from shopsync import sync
    from shopsync.adapter import connect
    from shopsync.testing import emulate

    db = f"sqlite:///{tmp_path_factory.mktemp('synced') / 'shop.db'}"
    small = {"customers": 80, "orders": 400, "products": 10, "end": END}
    with emulate("shopify", seed=7, **FAST, **small) as shop:
        adapter = connect("shopify", **shop.settings)
        store = Store(db)
        try:
            sync(adapter, store)
        finally:
            adapter.close()
            store.close()
    return db


def _planned(db: str) -> list[Any]:
    from shopsync.core.policy import Policy
    from shopsync.planning import plan

    store = Store(db)
    try:
        return list(plan(store, Policy(), END))
    finally:
        store.close()


def test_a_dry_run_lists_what_would_be_sent(synced_db: str, tmp_path: Path) -> None:
    import json

    actions = _planned(synced_db)
    assert actions, "the test needs a plan with actions"
    out, csv = tmp_path / "a.jsonl", tmp_path / "a.csv"
    base = ["apply", "--db", synced_db, "--as-of", "2026-06-01", "--jsonl", str(out)]
    dry = CliRunner().invoke(app, [*base, "--csv", str(csv), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert not out.exists() and not csv.exists()
    lines = dry.output.splitlines()
    header = next(line for line in lines if "customer" in line and "sink" in line)
    assert "action" in header and "would" in header and "why" in header
    for action in actions:  # one row per action and sink: the customer, and why
        rows = [line for line in lines if action.kind in line and f" {action.customer_id} " in line]
        assert len(rows) >= 2 and all(action.reason in row for row in rows), rows
    n = len(actions)
    assert f"dry run: {n:,} action{'s' * (n > 1)}, {2 * n:,} deliveries to 2 sinks" in dry.output

    scripted = CliRunner().invoke(app, [*base, "--dry-run", "--json"])
    assert scripted.exit_code == 0, scripted.output
    listed = json.loads(scripted.stdout)
    assert len(listed) == n
    first = listed[0]
    assert {"kind", "customer_id", "sink", "status", "reason", "payload"} <= set(first)
    assert {(d["kind"], d["customer_id"], d["why"]) for d in listed} == {
        (a.kind, a.customer_id, a.reason) for a in actions
    }
    assert all(d["status"] == "send" and d["payload"]["line"] for d in listed)
    json_alone = CliRunner().invoke(app, [*base, "--json"])
    _fails(json_alone, "--json", "--dry-run")


def test_apply_counts_actions_and_deliveries(synced_db: str, tmp_path: Path) -> None:
    import shutil

    db_file = tmp_path / "copy.db"
    shutil.copy(synced_db.removeprefix("sqlite:///"), db_file)
    db = f"sqlite:///{db_file}"
    n = len(_planned(db))
    args = ["apply", "--db", db, "--as-of", "2026-06-01"]
    args += ["--jsonl", str(tmp_path / "a.jsonl"), "--csv", str(tmp_path / "a.csv")]
    applied = CliRunner().invoke(app, args)
    assert applied.exit_code == 0, applied.output
    assert f"{n:,} action{'s' * (n > 1)}, {2 * n:,} deliveries to 2 sinks" in applied.output
    assert f"{2 * n:,} delivered" in applied.output
    assert f"{2 * n} recorded" not in applied.output

    again = CliRunner().invoke(app, args)  # everything already delivered: nothing twice
    assert again.exit_code == 0, again.output
    assert "0 delivered" in again.output and f"{2 * n:,} already delivered" in again.output

    parked = CliRunner().invoke(app, ["outbox", "list", "--db", db, "--status", "parked"])
    assert parked.exit_code == 0, parked.output
    assert "empty" not in parked.output
    assert f"no parked rows; the outbox holds {2 * n:,}: {2 * n:,} done" in parked.output
    done = CliRunner().invoke(
        app, ["outbox", "list", "--db", db, "--status", "done", "--limit", "5"]
    )
    assert done.exit_code == 0 and done.output.count("│ done ") == 5, done.output
    assert f"5 of {2 * n:,} done rows shown" in done.output
    _fails(
        CliRunner().invoke(app, ["outbox", "list", "--db", db, "--status", "sent"]),
        "unknown outbox status",
    )


def test_backtest_output_does_not_wrap_when_piped(synced_db: str) -> None:
    from shopsync.backtest import backtest
    from shopsync.core.policy import Policy

    start = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
    end = dt.datetime(2026, 5, 1, tzinfo=dt.timezone.utc)
    store = Store(synced_db)
    try:
        expected = str(backtest(store, Policy(), start, end, step=dt.timedelta(weeks=4)))
    finally:
        store.close()
    assert max(len(line) for line in expected.splitlines()) > 80  # else the test proves nothing
    args = ["backtest", "--db", synced_db, "--from", "2026-03-01", "--to", "2026-05-01"]
    replay = CliRunner().invoke(app, [*args, "--step", "4w"])
    assert replay.exit_code == 0, replay.output
    for line in expected.splitlines():
        assert line.rstrip() in replay.stdout.splitlines() or not line.strip(), line


def test_the_files_the_demo_and_report_write_are_ignored_by_git() -> None:
    from shopsync.demo import output_files

    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    written = [*output_files(Path("shopsync-demo.db")), Path("shopsync-report.html")]
    for path in written:
        ignored = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=root, check=False)
        assert ignored.returncode == 0, f"{path} is not in .gitignore"


# -- errors point to the fix (issue 17 item 7) ---------------------------------------------------


def test_a_refused_token_names_the_setting_and_variable_it_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shopsync.testing import emulate

    runner = CliRunner()
    wrong = "shpat_wrong_but_secret_0123456789"
    db = f"sqlite:///{tmp_path / 'x.db'}"
    with emulate("shopify", **SMALL) as shopify:
        config = _configure(tmp_path, shopify)
        monkeypatch.setenv("TEST_CLI_TOKEN", wrong)
        from_file = runner.invoke(app, ["--config", str(config), "sync", "main", "--db", db])
        message = _fails(from_file, "shops.main.access_token", "$TEST_CLI_TOKEN")
        assert wrong not in from_file.output

        where = ["-s", f"shop={shopify.state.shop}", "-s", f"base_url={shopify.url}"]
        monkeypatch.setenv("TEST_CLI_OTHER", wrong)
        by_env = runner.invoke(
            app, ["sync", "shopify", *where, "-s", "access_token=env:TEST_CLI_OTHER", "--db", db]
        )
        message = _fails(by_env, "--setting access_token", "$TEST_CLI_OTHER")
        assert "shopsync check" in message and wrong not in by_env.output

        literal = runner.invoke(
            app, ["sync", "shopify", *where, "-s", f"access_token={wrong}", "--db", db]
        )
    assert literal.exit_code == 1 and wrong not in literal.output
    warning, error = literal.stderr.strip().splitlines()
    # the same advice as a literal credential in shopsync.toml gets
    assert warning.startswith("warning: --setting access_token: credentials are never written")
    assert "access_token=env:ACCESS_TOKEN" in warning
    assert error.startswith("error: ") and "--setting access_token" in error
    assert "written on the command line" in error


def test_a_postgresql_url_without_the_driver_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the extra were not installed
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    runner = CliRunner()
    url = "postgresql+psycopg://shopsync@127.0.0.1:5432/shopsync"
    _fails(runner.invoke(app, ["plan", "--db", url]), 'pip install "shopsync[postgres]"')
    plain = runner.invoke(app, ["plan", "--db", "postgresql://shopsync@127.0.0.1:5432/shopsync"])
    _fails(plain, 'pip install "shopsync[postgres]"', "postgresql+psycopg://")


def test_the_sync_report_counts_shopify_retries(tmp_path: Path) -> None:
    from shopsync.testing import emulate

    db = f"sqlite:///{tmp_path / 'x.db'}"
    counted = {}
    for platform in ("shopify", "woocommerce"):
        extra = FAST if platform == "shopify" else {}
        with emulate(platform, faults={"retry_after": 0.05}, **extra, **SMALL) as shop:
            shop.faults.inject("429")
            shop.faults.inject("5xx")
            settings = [
                f"{k}={getattr(v, 'get_secret_value', lambda v=v: v)()}"
                for k, v in shop.settings.items()
            ]
            args = ["sync", platform, "--db", db]
            args += [arg for pair in settings for arg in ("-s", pair)]
            synced = CliRunner().invoke(app, args)
            assert synced.exit_code == 0, synced.output
            assert dict(shop.faults.counts) == {"429": 1, "5xx": 1}
        rows = [line for line in synced.stdout.splitlines() if line.startswith("│ ")]
        header = next(line for line in synced.stdout.splitlines() if "retries" in line)
        assert header.rstrip(" ┃").endswith("retries")
        counted[platform] = sum(int(row.strip("│ ").rsplit("│", 1)[1].strip()) for row in rows)
    assert counted == {"shopify": 2, "woocommerce": 2}


def test_emulate_prints_a_shell_line_that_keeps_the_secret_in_the_environment(
    tmp_path: Path,
) -> None:
    import os
    import signal

    code = "from shopsync.cli import main; main()"
    args = [sys.executable, "-c", code, "emulate", "woocommerce", "--customers", "5"]
    child = subprocess.Popen(
        [*args, "--orders", "10"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
    )
    lines: list[str] = []
    try:
        assert child.stdout is not None
        for line in child.stdout:
            lines.append(line.strip())
            if "Ctrl-C stops it" in line:
                break
        exports = [line for line in lines if line.startswith("export ")]
        command = next(line for line in lines if line.startswith("shopsync sync"))
        environment = {}
        for export in exports:
            name, _, value = export.removeprefix("export ").partition("=")
            environment[name] = value.strip("'")
        assert environment and all(f"=env:{name}" in command for name in environment)
        assert all(value not in command for value in environment.values())
        # the line works as printed, with no warning about a literal credential
        db = ["--db", f"sqlite:///{tmp_path / 'x.db'}"]
        done = subprocess.run(
            [sys.executable, "-c", code, *command.split()[1:], *db],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **environment},
        )
    finally:
        child.send_signal(signal.SIGINT)
        child.wait(timeout=30)
    assert done.returncode == 0 and "warning" not in done.stderr, done.stderr
    assert "orders" in done.stdout


def test_the_apply_summary_names_every_outcome() -> None:
    from shopsync._cli_output import apply_summary
    from shopsync.outbox import ApplyResult

    class Takes:
        def __init__(self, kinds: set[str]) -> None:
            self.kinds = kinds

        def accepts(self, action: Any) -> bool:
            return str(action) in self.kinds

    report = ApplyResult(recorded=3, delivered=1, failed=1, parked=0, deferred=1)
    line = apply_summary(report, ["a", "b"], [Takes({"a", "b"}), Takes({"a"})])
    assert line.startswith("2 actions, 3 deliveries to 2 sinks: 3 new in the outbox, 1 delivered")
    assert "1 to retry" in line and "1 deferred by a delivery rule" in line
    assert "parked" not in line and "already" not in line
