from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from shopsync.cli import app
from shopsync.store import Store


def test_demo_creates_the_store_and_prints_its_version(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    result = CliRunner().invoke(app, ["demo", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert db.exists()
    assert f"schema version {Store.head_version()}" in result.output
