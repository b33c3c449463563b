"""Two pages ahead, an error of the request for page k+2 is raised only once the caller has
page k+1 (its checkpoint written first), never while it is still on page k."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from shopsync_woocommerce._paging import one_ahead

import shopsync.errors
from shopsync.adapter_kit import RawPage
from tests.woocommerce.test_fast_ingest import _source


def test_an_error_two_pages_ahead_waits_for_the_page_before_it() -> None:
    asked: list[int] = []
    pages = one_ahead(_source(asked, fail_at=3, pages=5))
    assert next(pages).rows == [1]
    deadline = time.monotonic() + 5
    while 0 not in asked and time.monotonic() < deadline:
        time.sleep(0.005)
    assert asked == [1, 2, 3, 0]  # page 3 failed while the caller held page 1
    assert next(pages).rows == [2]
    with pytest.raises(shopsync.errors.AuthenticationError):
        next(pages)


def test_the_switch_interval_is_short_while_pages_are_read_ahead_and_put_back_after() -> None:
    """The read-ahead thread waits on the store for every page, and wakes with its answer
    needing the GIL back from the caller's thread, busy mapping: at Python's 5 ms interval
    it waited that long at each wake-up (issue 20, ``page_commit.SWITCH_INTERVAL``)."""
    import sys

    from shopsync.store import page_commit

    before = sys.getswitchinterval()
    seen: list[float] = []

    def source() -> Iterator[RawPage]:
        for n in (1, 2):
            seen.append(sys.getswitchinterval())
            yield RawPage([n], cursor=str(n), last=n == 2)

    assert [p.rows[0] for p in one_ahead(source())] == [1, 2]
    assert seen == pytest.approx([page_commit.SWITCH_INTERVAL] * 2)
    assert sys.getswitchinterval() == before
    failing = one_ahead(_source([], fail_at=1))
    with pytest.raises(shopsync.errors.AuthenticationError):
        next(failing)
    assert sys.getswitchinterval() == before


def test_a_read_stopped_by_its_mapping_ends_the_read_ahead_even_with_its_error_kept() -> None:
    """A KeyboardInterrupt (or a bug) in a page's mapping, its traceback kept (a REPL's last
    error, a worker's ``last_error``): the traceback holds the read's frame and its read-ahead
    generator, whose thread would wait for the caller for good, the switch interval short."""
    import sys
    import threading

    from shopsync.ingest_columns import ColumnarLoop

    before = sys.getswitchinterval()

    def source() -> Iterator[RawPage]:
        for n in range(1, 10):
            yield RawPage([n], cursor=str(n), last=n == 9)

    def rows(raw: object) -> None:
        if raw == 2:
            raise KeyboardInterrupt

    loop = ColumnarLoop("orders", lambda raw: None, rows)  # type: ignore[arg-type]
    kept: list[BaseException] = []
    try:
        for _ in loop.run(one_ahead(source())):
            pass
    except KeyboardInterrupt as exc:
        kept.append(exc)
    assert kept
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(
        t.name == "shopsync-woocommerce-pages" for t in threading.enumerate()
    ):
        time.sleep(0.01)
    assert sys.getswitchinterval() == before
    assert not any(t.name == "shopsync-woocommerce-pages" for t in threading.enumerate())
