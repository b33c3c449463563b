"""The columnar ingest path's helpers (issue 20): the collector's pause nests, spans threads
and leaves the collector as it found it; a record kept as compact JSON reads back equal."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from shopsync._collector import collector_paused
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
