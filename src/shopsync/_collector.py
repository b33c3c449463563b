"""The cyclic garbage collector paused for a block of work that makes no reference cycles, and
eased for a read of many pages or a whole-shop plan."""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["YOUNG_THRESHOLD", "collector_eased", "collector_paused"]

_pauses = 0
_paused_from_enabled = False
_pause_lock = threading.Lock()
_eased = 0
_thresholds: tuple[tuple[int, ...], tuple[int, ...]] = ((), ())


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


YOUNG_THRESHOLD = 10_000
"""The collector's first threshold while :func:`collector_eased` runs (Python's: 700)."""


@contextmanager
def collector_eased() -> Iterator[None]:
    """The collector eased for a read of many pages (or a whole-shop plan): young objects are
    collected after :data:`YOUNG_THRESHOLD` allocations, not 700 (process-wide, as the
    collector is).

    Each page ended two young collections, each walking the pages then alive, and what
    outlived them reached the older generations, whose passes walk the whole heap. Eased, a
    page's records and rows are mostly freed by reference counting before a collection
    comes. Nothing is lost: garbage cycles are collected as ever, a little later.
    (Freezing the heap alive at the read's start as well saved about 0.1 CPU-s more per
    10,000 WooCommerce orders, within noise, and froze for good an unfinished read held in
    a cycle: not done.) Blocks nest and may run in several threads at once: the threshold is
    put back when the last one ends (a read's generator left unfinished ends its block when
    it is closed or collected). A first threshold of 0 (collection off) is left alone, and
    thresholds the program set meanwhile stay."""
    global _eased, _thresholds
    with _pause_lock:
        if _eased == 0:
            before = gc.get_threshold()
            if before[0]:
                gc.set_threshold(max(before[0], YOUNG_THRESHOLD), *before[1:])
            _thresholds = (before, gc.get_threshold())
        _eased += 1
    try:
        yield
    finally:
        with _pause_lock:
            _eased -= 1
            if _eased == 0:
                _put_back()


def _put_back() -> None:
    """The threshold as the first read found it, unless the program changed it since."""
    kept, ours = _thresholds
    if gc.get_threshold() == ours:
        gc.set_threshold(*kept)


def _forked() -> None:
    """In a child forked while a read eased the collector or a page's mapping paused it: no
    read or mapping runs there (the lock is the forking thread's, taken before the fork)."""
    global _eased, _pauses
    if _pauses:
        _pauses = 0
        if _paused_from_enabled:
            gc.enable()
    if _eased:
        _eased = 0
        _put_back()
    _pause_lock.release()


if hasattr(os, "register_at_fork"):  # (POSIX)
    os.register_at_fork(
        before=_pause_lock.acquire, after_in_parent=_pause_lock.release, after_in_child=_forked
    )
