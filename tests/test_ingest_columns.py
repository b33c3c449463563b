"""The columnar ingest path's helpers (issue 20): the collector's pause nests, spans threads
and leaves the collector as it found it; so does its easing for a read; a record kept as
compact JSON reads back equal."""

from __future__ import annotations

import gc
import os
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from shopsync._collector import YOUNG_THRESHOLD, collector_eased, collector_paused
from shopsync.adapter_kit import RawPage
from shopsync.ingest_columns import ColumnarLoop, OrderRows, compact


@pytest.fixture
def collector() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_the_pause_nests_and_the_collector_runs_again_after_the_last(collector: None) -> None:
    gc.enable()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_pause_ending_in_an_error_still_lets_the_collector_run(collector: None) -> None:
    gc.enable()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("mid-page")
    assert gc.isenabled()


def test_a_collector_the_program_turned_off_stays_off(collector: None) -> None:
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_overlapping_pauses_in_two_threads(collector: None) -> None:
    gc.enable()
    first_in, second_done = threading.Event(), threading.Event()
    seen: list[bool] = []

    def first() -> None:
        with collector_paused():
            first_in.set()
            second_done.wait(5)
            seen.append(gc.isenabled())  # the other thread's end did not turn it back on

    thread = threading.Thread(target=first)
    thread.start()
    first_in.wait(5)
    with collector_paused():
        pass
    second_done.set()
    thread.join(5)
    assert seen == [False]
    assert gc.isenabled()


def test_the_collector_is_eased_within_the_block_and_put_back_after_the_last(
    collector: None,
) -> None:
    thresholds = gc.get_threshold()
    with collector_eased():
        assert gc.get_threshold() == (max(thresholds[0], YOUNG_THRESHOLD), *thresholds[1:])
        with collector_eased():
            pass
        # the inner block's end did not put it back
        assert gc.get_threshold()[0] == max(thresholds[0], YOUNG_THRESHOLD)
    assert gc.get_threshold() == thresholds
    assert gc.get_freeze_count() == 0  # nothing frozen: a cycle alive before is collectable


def test_thresholds_the_program_set_meanwhile_stay(collector: None) -> None:
    thresholds = gc.get_threshold()
    try:
        with collector_eased():
            gc.set_threshold(50_000, 20, 20)
        assert gc.get_threshold() == (50_000, 20, 20)
    finally:
        gc.set_threshold(*thresholds)


def test_the_collector_is_put_back_when_the_block_fails(collector: None) -> None:
    thresholds = gc.get_threshold()
    with pytest.raises(RuntimeError), collector_eased():
        raise RuntimeError("mid-read")
    assert gc.get_threshold() == thresholds


def test_a_heap_the_program_froze_is_left_frozen(collector: None) -> None:
    before = [object()]
    gc.freeze()
    try:
        with collector_eased():
            pass
        assert not any(x is before for x in gc.get_objects(2))  # its freeze (for a fork) stays
    finally:
        gc.unfreeze()


def test_garbage_cycles_made_during_a_read_are_collected(collector: None) -> None:
    """Only what was alive when the read began is left out of the passes."""
    import weakref

    class Node:
        pass

    with collector_eased():
        node = Node()
        node.self = node  # type: ignore[attr-defined]
        gone = weakref.ref(node)
        del node
        gc.collect()
        assert gone() is None


def test_a_columnar_read_eases_the_collector_while_it_runs(collector: None) -> None:
    thresholds = gc.get_threshold()
    seen: list[int] = []

    def rows(raw: Any) -> OrderRows:
        seen.append(gc.get_threshold()[0])
        return OrderRows(str(raw), None, 0, {}, {})

    pages = [RawPage([1, 2], cursor="a"), RawPage([3], cursor="b", last=True)]
    loop = ColumnarLoop("orders", lambda raw: None, rows)
    for _ in loop.run(iter(pages)):
        seen.append(gc.get_threshold()[0])
    assert seen == [max(thresholds[0], YOUNG_THRESHOLD)] * 5
    assert gc.get_threshold() == thresholds


def test_a_compact_record_reads_back_equal() -> None:
    record = {"id": "gid://shopify/Order/1", "n": [1, 2.5, None, True], "t": "M\u00fcnchen"}
    packed = compact(record)
    assert isinstance(packed, bytes)
    assert OrderRows("1", None, 0, {}, packed).raw == record
    odd = {"big": 2**70, "s": "\ud800"}  # what orjson does not write stays as it is
    assert compact(odd) is odd
    assert OrderRows("1", None, 0, {}, odd).raw is odd


def test_a_columnar_loop_maps_a_page_with_the_collector_paused_and_yields_with_it_running(
    collector: None,
) -> None:
    """The pause covers a page's mapping, never the reader's handling of the page."""
    gc.enable()
    seen: list[bool] = []

    def rows(raw: Any) -> OrderRows:
        seen.append(gc.isenabled())
        return OrderRows(str(raw), None, raw, {"orders": []}, {})

    loop = ColumnarLoop("orders", lambda raw: None, rows)
    pages = [RawPage([1, 2]), RawPage([3], last=True), RawPage([4])]
    during: list[bool] = []
    got = []
    for page in loop.run(pages):
        during.append(gc.isenabled())
        got.append([r.id for r in page.rows])  # type: ignore[attr-defined]
    assert got == [["1", "2"], ["3"]]  # stops after the page marked last
    assert seen == [False, False, False]
    assert during == [True, True]
    assert gc.isenabled()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_child_forked_while_a_read_eases_the_collector_has_it_back(collector: None) -> None:
    thresholds = gc.get_threshold()
    with collector_eased():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads running
            pid = os.fork()
        if pid == 0:  # the child: no read runs in it
            ok = gc.get_threshold() == thresholds
            with collector_eased():  # a read of its own eases it and puts it back
                ok = ok and gc.get_threshold()[0] == max(thresholds[0], YOUNG_THRESHOLD)
            os._exit(0 if ok and gc.get_threshold() == thresholds else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert gc.get_threshold() == thresholds


def _in_child(check: Any) -> bool:
    """``check()`` in a child forked now (threads running)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads running
        pid = os.fork()
    if pid == 0:
        os._exit(0 if check() else 1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def _in_thread(block: Any) -> tuple[threading.Event, threading.Thread]:
    """A thread inside ``block()`` until the event returned is set."""
    inside, leave = threading.Event(), threading.Event()

    def run() -> None:
        with block():
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=run)
    thread.start()
    assert inside.wait(5)
    return leave, thread


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_child_forked_while_another_thread_maps_a_page_has_the_collector_back(
    collector: None,
) -> None:
    """The mapping thread does not run in the child: nothing would turn the collector on."""
    gc.enable()
    leave, thread = _in_thread(collector_paused)

    def child() -> bool:
        ok = gc.isenabled()
        with collector_paused():  # a pause of its own ends with the collector running
            ok = ok and not gc.isenabled()
        return ok and gc.isenabled()

    try:
        assert _in_child(child)
    finally:
        leave.set()
        thread.join(5)
    assert gc.isenabled()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_heap_the_program_froze_during_a_read_stays_frozen(collector: None) -> None:
    """A program freezing its heap to fork workers while a read runs on another thread: its
    children and itself keep the heap frozen after the read (the count grew meanwhile)."""
    leave, thread = _in_thread(collector_eased)
    try:
        gc.freeze()
        assert _in_child(lambda: gc.get_freeze_count() > 0)
        leave.set()
        thread.join(5)
        assert gc.get_freeze_count() > 0
    finally:
        leave.set()
        thread.join(5)
        gc.unfreeze()


def test_collection_the_program_turned_off_by_threshold_stays_off(collector: None) -> None:
    """A first threshold of 0 turns automatic collection off (Python's gc.set_threshold)."""
    thresholds = gc.get_threshold()
    gc.set_threshold(0, *thresholds[1:])
    try:
        with collector_eased():
            assert gc.get_threshold()[0] == 0
        assert gc.get_threshold()[0] == 0
    finally:
        gc.set_threshold(*thresholds)


def test_a_read_left_unfinished_in_a_garbage_cycle_puts_the_collector_back(
    collector: None,
) -> None:
    import weakref

    class Reader:
        pass

    thresholds = gc.get_threshold()
    pages = [RawPage([1], cursor="a"), RawPage([2], cursor="b", last=True)]
    reader = Reader()
    reader.self = reader  # type: ignore[attr-defined]
    reader.pages = ColumnarLoop(  # type: ignore[attr-defined]
        "orders", lambda raw: None, lambda raw: OrderRows(str(raw), None, 0, {}, {})
    ).run(iter(pages))
    read = weakref.ref(reader.pages)  # type: ignore[attr-defined]
    next(reader.pages)  # type: ignore[attr-defined]
    del reader  # left unfinished, unclosed
    try:
        gc.collect()
        assert read() is None
        assert gc.get_freeze_count() == 0 and gc.get_threshold() == thresholds
    finally:
        left = read()
        if left is not None:
            left.close()
        assert gc.get_freeze_count() == 0 and gc.get_threshold() == thresholds
