"""The cyclic garbage collector paused for a block of work that makes no reference cycles, and
the heap alive when a long read begins kept out of its passes."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused", "heap_frozen"]

_pauses = 0
_paused_from_enabled = False
_pause_lock = threading.Lock()
_freezes = 0
_froze = False


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


@contextmanager
def heap_frozen() -> Iterator[None]:
    """The objects alive when the block begins left out of the collector's passes until it
    ends (:func:`gc.freeze`, then :func:`gc.unfreeze`), for a read of many pages.

    A page read ahead and the page being written outlive a young collection or two, so the
    oldest generation grows by a page every few pages and the collector walks the whole heap
    (the program's modules, the store's engine: some 100,000 objects) every twenty pages or
    so: about a tenth of a WooCommerce first sync's CPU (benchmarks/woocommerce_read.py).
    Frozen, those passes walk only what the read made. Nothing is lost: objects made within
    the block are collected as ever, and a cycle among the frozen ones that becomes garbage
    meanwhile is collected after the block. Blocks nest and may run in several threads at
    once: the heap is thawed when the last one ends. A heap the program froze itself (before
    a fork) is left as it is."""
    global _freezes, _froze
    with _pause_lock:
        if _freezes == 0:
            _froze = gc.get_freeze_count() == 0
            if _froze:
                gc.freeze()
        _freezes += 1
    try:
        yield
    finally:
        with _pause_lock:
            _freezes -= 1
            if _freezes == 0 and _froze:
                _froze = False
                gc.unfreeze()
