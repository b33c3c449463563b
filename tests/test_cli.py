from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from shopsync.cli import app
from shopsync.store import Store


def test_demo_runs_from_the_shell(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    result = CliRunner().invoke(app, ["demo", "--db", str(db), "--scale", "0.1"])
    assert result.exit_code == 0, result.output
    assert "shopsync demo" in result.output and "woocommerce" in result.output
    assert Store(f"sqlite:///{db}").schema_version() == Store.head_version()
    planned = CliRunner().invoke(app, ["plan", "--db", f"sqlite:///{db}"])
    assert planned.exit_code == 0, planned.output
    assert "planned" in planned.output and "held back" in planned.output
    bad = CliRunner().invoke(app, ["plan", "--db", f"sqlite:///{db}", "--as-of", "yesterday"])
    assert bad.exit_code != 0
    out = tmp_path / "again.jsonl"
    dry = CliRunner().invoke(
        app, ["apply", "--db", f"sqlite:///{db}", "--jsonl", str(out), "--dry-run"]
    )
    assert dry.exit_code == 0 and "dry run" in dry.output and not out.exists()
    listed = CliRunner().invoke(
        app, ["outbox", "list", "--db", f"sqlite:///{db}", "--status", "done"]
    )
    assert listed.exit_code == 0 and "done" in listed.output


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
