"""``_emu_rest._Window``: the emulator's view of a run of sorted records reads as the slice
(reversed for ``order=desc``) it stands for."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from shopsync_woocommerce._emu_rest import _Window

bounds = st.integers(min_value=-25, max_value=25) | st.none()


@given(
    size=st.integers(min_value=0, max_value=20),
    lo=st.integers(min_value=0, max_value=20),
    width=st.integers(min_value=0, max_value=20),
    desc=st.booleans(),
    start=bounds,
    stop=bounds,
    step=st.sampled_from([None, 1, 2, 3, -1, -2]),
)
def test_a_window_reads_as_its_slice(
    size: int,
    lo: int,
    width: int,
    desc: bool,
    start: int | None,
    stop: int | None,
    step: int | None,
) -> None:
    rows = [f"r{i}" for i in range(size)]
    lo = min(lo, size)
    hi = min(size, lo + width)
    expected = rows[lo:hi][::-1] if desc else rows[lo:hi]
    window = _Window(rows, lo, hi, desc)
    assert len(window) == len(expected)
    assert window[start:stop:step] == expected[start:stop:step]
    assert list(window) == expected
    for index in range(-len(expected), len(expected)):
        assert window[index] == expected[index]
    for index in (len(expected), -len(expected) - 1):
        with pytest.raises(IndexError):
            window[index]
