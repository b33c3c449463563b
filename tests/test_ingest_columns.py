"""The columnar ingest path's helpers (issue 20): the collector's pause nests, spans threads
and leaves the collector as it found it; a record kept as compact JSON reads back equal."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from shopsync._collector import collector_paused
from shopsync.ingest_columns import OrderRows, compact


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
