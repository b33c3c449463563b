"""Held actions: what a plan's safety rules held back, kept as columns until read.

A large shop's plan holds most of its candidates (1M customers: about a million held by
consent, the holdout and the cap) while it sends a few hundred thousand. The planner
(:mod:`shopsync.core.planner`) keeps them as :class:`HeldRows`: each held row's rule and
customer, and the held candidates' own rows with their programs' builders, so the actions
are built only when someone reads them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import polars as pl

from shopsync.core.actions import Action

__all__ = ["RULES", "Held", "HeldRows", "Rule", "owned", "rows_of"]

Rule = Literal["consent", "suppressed", "holdout", "quiet", "frequency_cap"]


@dataclass(frozen=True)
class Held:
    """An action a safety rule held back, and why."""

    action: Action
    rule: Rule
    detail: str


RULES = pl.Enum(list(get_args(Rule)))
"""The rules as a polars dtype: one small integer per held row."""
_NO_ROWS = pl.DataFrame(schema={"rule": RULES, "customer_id": pl.String})


class HeldRows(Sequence[Held]):
    """The held actions of a plan, built on first look.

    Consent, the holdout and the cap hold most candidates of a large shop (1M customers:
    1M held). Until someone reads the sequence it keeps columns, not objects: :attr:`rows`
    (each held action's rule and customer, enough for :attr:`Plan.held_counts`) and, in
    ``make``, the held candidates' own rows. It compares equal to a tuple of the same items.
    """

    def __init__(self, rows: pl.DataFrame = _NO_ROWS, make: Callable[[], list[Held]] = list):
        rule = rows["rule"]  # Series, not a query: a one-customer plan pays ~0.3 ms a query
        self.rows = pl.DataFrame([rule.cast(RULES), rows["customer_id"]])
        """``rule`` (:data:`RULES`) and ``customer_id`` of each held action, in order."""
        self._make: Callable[[], list[Held]] | None = make
        self._items: tuple[Held, ...] | None = None
        self._lock = threading.Lock()  # one build, if two threads read at once

    @property
    def rules(self) -> tuple[str, ...]:
        """Each held action's rule, without building the actions."""
        return tuple(self.rows["rule"].to_list())

    @property
    def customers(self) -> tuple[str, ...]:
        """Each held action's customer, without building the actions."""
        return tuple(self.rows["customer_id"].to_list())

    def counts(self) -> dict[str, int]:
        """Held actions by rule."""
        counted = self.rows.group_by("rule").len().iter_rows()
        return dict(sorted((str(rule), n) for rule, n in counted))

    def _all(self) -> tuple[Held, ...]:
        if self._items is None:
            with self._lock:
                if self._items is None:
                    assert self._make is not None
                    self._items = tuple(self._make())
                    self._make = None
        return self._items

    def __len__(self) -> int:
        return self.rows.height

    def __getitem__(self, index: Any) -> Any:
        return self._all()[index]

    def __iter__(self) -> Iterator[Held]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return self._all() == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._all())

    def __repr__(self) -> str:
        return repr(self._all())

    def __reduce__(self) -> tuple[Any, ...]:
        return (tuple, (self._all(),))


def rows_of(held: Sequence[Held]) -> pl.DataFrame:
    """``rule`` and ``customer_id`` of each held action (:attr:`HeldRows.rows`), whether
    they are kept as columns or were built."""
    if isinstance(held, HeldRows):
        return held.rows
    table = {"rule": [h.rule for h in held], "customer_id": [h.action.customer_id for h in held]}
    return HeldRows(pl.DataFrame(table, schema={"rule": pl.String, "customer_id": pl.String})).rows


def owned(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with its strings in buffers of their own. A filtered or gathered string
    column shares its source's buffers: a few held rows would keep whole candidate frames,
    and the frames they were read from, alive as long as the plan."""
    copied = []
    for name, dtype in frame.schema.items():
        if dtype == pl.String:
            copied.append(pl.concat_str(pl.col(name), pl.lit("")).alias(name))
        elif dtype == pl.List(pl.String):
            copied.append(pl.col(name).list.eval(pl.concat_str(pl.element(), pl.lit(""))))
    return frame.with_columns(copied) if copied else frame
