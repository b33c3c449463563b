"""The version has one source, pyproject.toml (issue 23, item 5)."""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

import shopsync

ROOT = Path(__file__).resolve().parents[1]


def test_version_is_the_one_in_pyproject() -> None:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert shopsync.__version__ == metadata.version("shopsync") == declared


def test_no_second_version_literal_in_the_code() -> None:
    literal = re.compile(r"""^\s*__version__\s*(:\s*str\s*)?=\s*["']""", re.MULTILINE)
    found = [
        str(path.relative_to(ROOT))
        for folder in ("src", "adapters")
        for path in (ROOT / folder).rglob("*.py")
        if literal.search(path.read_text())
    ]
    assert found == []


def test_the_changelog_has_an_unreleased_section_and_the_current_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in text
    assert f"## [{shopsync.__version__}]" in text
