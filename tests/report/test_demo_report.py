"""``shopsync demo`` writes the report beside its store and says where."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from shopsync.demo import run_demo
from shopsync.report import CHARTS


def test_the_demo_writes_the_report(tmp_path: Path) -> None:
    console = Console(record=True, width=200)
    result = run_demo(tmp_path / "demo.db", console, scale=0.04)
    assert result.report == tmp_path / "demo.html"
    html = result.report.read_text(encoding="utf-8")
    for n in (1, 2):
        for name in CHARTS:
            assert f'id="shop{n}-{name}"' in html
    assert f"report: {result.report}" in console.export_text()
