"""The cyclic garbage collector paused for a block of work that makes no reference cycles."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused"]

_pauses = 0
_paused_from_enabled = False
_pause_lock = threading.Lock()


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused within the block (process-wide, as the collector
    is), for CPU-bound work that makes no reference cycles: parsing records and building
    their rows.

    A bulk read allocates some 60 containers per order and keeps a page's rows alive until
    the page is written, so the collector ran every few orders and walked the whole heap
    every few pages, for nothing (a JSON record holds no cycle): 14% of a fast-path bulk
    backfill's CPU (benchmarks/ingest.py). Nothing is lost: memory is still freed by
    reference counting, and cycles made meanwhile elsewhere are collected after the block.
    Blocks nest and may run in several threads at once: the collector runs again when the
    last one ends, and only if it ran when the first began. Keep blocks short (a page's
    work), never across a ``yield`` to code that is not this work."""
    global _pauses, _paused_from_enabled
    with _pause_lock:
        if _pauses == 0:
            _paused_from_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _paused_from_enabled:
                gc.enable()
