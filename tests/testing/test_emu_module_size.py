"""The emulators stay split by protocol: no emulator or renderer module over 600 lines.

A 1,400-line emulator behind an if-chain is where a platform fact goes unreviewed; one
module per protocol (GraphQL, REST, bulk, OAuth, webhooks) keeps each readable beside the
page it cites. Counted: ``emulator.py``, ``_emu*.py`` and ``_render*.py`` of every adapter,
and the same names in ``shopsync.testing``.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 600


def emulator_modules() -> list[Path]:
    folders = [*sorted((ROOT / "adapters").glob("*/")), ROOT / "src" / "shopsync" / "testing"]
    return sorted(
        path
        for folder in folders
        for path in folder.glob("*.py")
        if path.name == "emulator.py" or path.name.startswith(("_emu", "_render"))
    )


def test_the_modules_are_found() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in emulator_modules()}
    for expected in (
        "adapters/shopsync_shopify/emulator.py",
        "adapters/shopsync_shopify/_render.py",
        "adapters/shopsync_woocommerce/emulator.py",
        "adapters/shopsync_woocommerce/_render.py",
    ):
        assert expected in names


def test_no_emulator_module_is_over_600_lines() -> None:
    over = {
        path.relative_to(ROOT).as_posix(): count
        for path in emulator_modules()
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > LIMIT
    }
    assert not over, f"split these by protocol (limit {LIMIT} lines): {over}"
