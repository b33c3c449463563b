"""The tree stays ruff-clean: CI fails on a lint finding like on a failing test."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing() -> None:
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is part of the test extra; install it with pip install -e '.[test]'")
    result = subprocess.run(
        [ruff, "check", "--output-format", "concise", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert sys.version_info >= (3, 10)


def test_python_files_are_ruff_formatted() -> None:
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is part of the test extra; install it with pip install -e '.[test]'")
    # Markdown is left out: its code blocks are laid out for reading, not by the formatter.
    command = [ruff, "format", "--check", "--extend-exclude", "*.md", "."]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
