"""The report in a real browser: every chart drawn, no console error, nothing fetched."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from shopsync.report import CHARTS
from tests.report.chromium import Chromium, find_chromium
from tests.report.conftest import SHOPS

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

DRAWN = """
Array.from(document.querySelectorAll("svg[data-chart]")).map(svg => {
  const box = svg.getBoundingClientRect();
  const marks = Array.from(svg.querySelectorAll("rect, circle, line, polyline, path"))
    .filter(m => { const b = m.getBBox(); return b.width > 0 || b.height > 0; });
  return {id: svg.id, width: box.width, height: box.height, marks: marks.length,
          words: svg.querySelectorAll("text").length};
})
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    executable = find_chromium()
    if executable is None:
        if IN_CI:
            pytest.fail("CI=true but chromium is not installed: .ci/run must install it")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    with Chromium(executable) as chromium:
        yield chromium


def test_every_chart_is_drawn_without_console_errors(browser: Chromium, report_file: Path) -> None:
    browser.open(report_file)
    charts = browser.evaluate(DRAWN)
    expected = {f"shop{n}-{name}" for n in range(1, len(SHOPS) + 1) for name in CHARTS}
    assert {c["id"] for c in charts} == expected
    for chart in charts:
        assert chart["width"] > 100 and chart["height"] > 20, chart
        assert chart["marks"] > 0, chart
    assert browser.errors() == []
    assert [u for u in browser.requests() if not u.startswith("file://")] == []


def test_shop_names_are_shown_as_text_not_markup(browser: Chromium, report_file: Path) -> None:
    browser.open(report_file)
    headings = browser.evaluate(
        'Array.from(document.querySelectorAll("section.shop h2")).map(h => h.textContent)'
    )
    assert headings == [shop for _, shop, _, _ in SHOPS]
    assert browser.evaluate('document.querySelectorAll("section.shop h2 b").length') == 0


def test_the_screenshot_is_a_real_image(
    browser: Chromium, report_file: Path, tmp_path: Path
) -> None:
    browser.open(report_file)
    shot = browser.screenshot(tmp_path / "report.png")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
