"""Two pages ahead, an error of the request for page k+2 is raised only once the caller has
page k+1 (its checkpoint written first), never while it is still on page k."""

from __future__ import annotations

import time

import pytest
from shopsync_woocommerce._paging import one_ahead

import shopsync.errors
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
