"""The report file itself: every chart there, self-contained, user text escaped."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from shopsync.core.policy import Policy
from shopsync.report import CHARTS, write_report
from shopsync.store import Store
from tests.core.retention_helpers import DAY, T0, customer, order
from tests.report.conftest import SHOPS

REMOTE = re.compile(
    r"""(?:src|href|xlink:href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//"""
    r"""|@import|url\(\s*["']?\s*(?:https?:)?//""",
    re.IGNORECASE,
)


def test_every_shop_has_every_chart(report_file: Path) -> None:
    html = report_file.read_text(encoding="utf-8")
    for n in range(1, len(SHOPS) + 1):
        for name in CHARTS:
            assert f'id="shop{n}-{name}"' in html
    assert html.count("<svg ") == len(SHOPS) * len(CHARTS)
    assert "USD" in html and "EUR" in html


def test_the_report_loads_nothing_from_elsewhere(report_file: Path) -> None:
    html = report_file.read_text(encoding="utf-8")
    assert REMOTE.findall(html) == []
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html


def test_the_remote_pattern_catches_what_it_should() -> None:
    for bad in (
        '<img src="https://cdn.example/x.png">',
        "<link href=//fonts.example/css>",
        "@import 'x.css';",
        "background: url( http://x/y.png )",
    ):
        assert REMOTE.search(bad), bad
    assert not REMOTE.search('<a href="#shop1">')


def test_shop_and_tier_names_are_escaped(report_file: Path, tmp_path: Path) -> None:
    html = report_file.read_text(encoding="utf-8")
    assert "north <b>&</b> co" not in html
    assert "north &lt;b&gt;&amp;&lt;/b&gt; co" in html
    store = Store(f"sqlite:///{tmp_path / 'tiers.db'}")
    store.upsert([customer("a"), order("a1", "a", T0 - 5 * DAY)])
    policy = Policy.from_dict(
        {"loyalty": {"tiers": {"tiers": [{"name": "<i>VIP</i>", "threshold": 0}]}}}
    )
    out = write_report(store, tmp_path / "r.html", as_of=T0, policy=policy).read_text()
    store.close()
    assert "<i>VIP</i>" not in out and "&lt;i&gt;VIP&lt;/i&gt;" in out


def test_an_empty_store_gives_a_page_that_says_so(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'empty.db'}")
    html = write_report(store, tmp_path / "r.html", as_of=T0).read_text()
    store.close()
    assert "holds no shop" in html and "<svg" not in html


def test_as_of_must_be_aware(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(ValueError, match="timezone-aware"):
        write_report(store, tmp_path / "r.html", as_of=dt.datetime(2024, 1, 1))
    store.close()
