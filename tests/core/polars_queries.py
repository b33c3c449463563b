"""Counting the Polars queries a piece of the core runs (issue 18, item 4.3: a one-customer plan
pays a fixed cost, ~0.3 ms, for each): the patch goes where every query passes, which moved
between the Polars versions pyproject.toml allows."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest


def count_queries(monkeypatch: pytest.MonkeyPatch, *, refuse: bool = False) -> list[int]:
    """A one-item list counting the queries run from now on (``refuse``: each raises)."""
    try:  # Polars 2: lazy and eager queries alike go through the local engine
        from polars.lazyframe import engine

        owner: Any = engine._LocalEngine
    except ImportError:  # Polars 1: eager methods run ``self.lazy()...collect()``
        owner = pl.LazyFrame
    real = owner.collect
    ran = [0]

    def counted(*args: Any, **kwargs: Any) -> Any:
        if refuse:
            raise AssertionError("a Polars query ran")
        ran[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, "collect", counted)
    return ran
