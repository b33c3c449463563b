"""Modules stay under 600 lines: the emulators split by protocol, the adapters by what each
part holds (transport, paging, reads, access, write-back, webhooks, mapping).

A 1,400-line emulator behind an if-chain is where a platform fact goes unreviewed; one
module per protocol (GraphQL, REST, bulk, OAuth, webhooks) keeps each readable beside the
page it cites. Counted: ``emulator.py``, ``_emu*.py`` and ``_render*.py`` of every adapter,
and the same names in ``shopsync.testing``; and every module of every adapter package, with
the adapter toolkit a third-party adapter is built from.
"""

from __future__ import annotations

from collections.abc import Iterable
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


def adapter_modules() -> list[Path]:
    toolkit = ROOT / "src" / "shopsync" / "adapter_kit.py"
    return [*sorted((ROOT / "adapters").rglob("*.py")), toolkit]


def _over(paths: Iterable[Path]) -> dict[str, int]:
    return {
        path.relative_to(ROOT).as_posix(): count
        for path in paths
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > LIMIT
    }


def test_the_modules_are_found() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in emulator_modules()}
    for expected in (
        "adapters/shopsync_shopify/emulator.py",
        "adapters/shopsync_shopify/_render.py",
        "adapters/shopsync_woocommerce/emulator.py",
        "adapters/shopsync_woocommerce/_render.py",
    ):
        assert expected in names
    adapters = {path.relative_to(ROOT).as_posix() for path in adapter_modules()}
    for expected in (
        "adapters/shopsync_shopify/adapter.py",
        "adapters/shopsync_woocommerce/adapter.py",
        "src/shopsync/adapter_kit.py",
    ):
        assert expected in adapters


def test_no_emulator_module_is_over_600_lines() -> None:
    over = _over(emulator_modules())
    assert not over, f"split these by protocol (limit {LIMIT} lines): {over}"


def test_no_adapter_module_is_over_600_lines() -> None:
    over = _over(adapter_modules())
    assert not over, f"split these by what each part holds (limit {LIMIT} lines): {over}"
