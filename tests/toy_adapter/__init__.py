"""A third adapter, "toyshop", written from docs/adapters/writing.md alone, with a tiny
emulator; it passes the same contract suite as the built-in two."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def registered() -> Iterator[None]:
    """Register the toy adapter and emulator as an installed distribution would (an
    ``entry_points.txt`` on sys.path), for as long as the context lasts."""
    with tempfile.TemporaryDirectory() as where:
        info = Path(where) / "shopsync_toyshop-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: shopsync-toyshop\n")
        (info / "entry_points.txt").write_text(
            "[shopsync.adapters]\ntoyshop = tests.toy_adapter.adapter:ToyAdapter\n\n"
            "[shopsync.emulators]\ntoyshop = tests.toy_adapter.emulator:ToyEmulator\n"
        )
        sys.path.insert(0, where)
        try:
            yield
        finally:
            sys.path.remove(where)
