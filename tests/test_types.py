"""The tree stays ``mypy --strict`` clean: CI fails on a type error like on a failing test.

The strictness and the plugin come from ``[tool.mypy]`` in pyproject.toml. The cache lives in
``.mypy_cache`` at the root (git-ignored), so a run after the first checks only what changed.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_strict_finds_nothing() -> None:
    if importlib.util.find_spec("mypy") is None:
        raise AssertionError("mypy is part of the test extra: pip install -e '.[test]'")
    command = [sys.executable, "-m", "mypy", "--cache-dir", str(ROOT / ".mypy_cache")]
    result = subprocess.run(
        [*command, "src", "adapters"], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert result.stdout.startswith("Success: no issues found"), result.stdout


def test_the_configuration_is_strict() -> None:
    """A relaxed pyproject would pass the test above without checking much."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert config["strict"] is True
    assert "pydantic.mypy" in config["plugins"]
    assert not config.get("ignore_missing_imports") and not config.get("ignore_errors")
