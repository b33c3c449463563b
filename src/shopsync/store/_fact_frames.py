"""The frames of a shop's order facts (:mod:`.facts`) and the views a read takes of them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import polars as pl

__all__ = ["FACT_TABLES", "Facts", "categorical", "kept_columns", "project"]

FACT_TABLES = ("orders", "lines", "refunds", "fulfillments")


@dataclass(frozen=True)
class Facts:
    """A shop's order facts, current to ``seq``: every order (test and guest ones too)."""

    orders: pl.DataFrame
    lines: pl.DataFrame
    refunds: pl.DataFrame
    fulfillments: pl.DataFrame
    seq: int
    born: int
    """The shop row's ``created_at``: a removed and re-created shop is another shop."""

    def frame(self, name: str) -> pl.DataFrame:
        return getattr(self, name)  # type: ignore[no-any-return]

    def frames(self) -> dict[str, pl.DataFrame]:
        return {name: self.frame(name) for name in FACT_TABLES}


def kept_columns(
    name: str,
    schema: pl.Schema,
    columns: Mapping[str, Sequence[str]] | None,
    *,
    ordered: bool = True,
) -> list[str]:
    """The columns of table ``name`` a projection keeps (every one without ``columns``), in
    the table's order (``_row`` only when ``ordered``)."""
    if columns is None:
        return schema.names()
    key = "id" if name == "orders" else "order_id"
    wanted = {key, *(["_row"] if ordered else []), *columns.get(name, ())}
    return [c for c in schema.names() if c in wanted]


def project(
    facts: Facts,
    columns: Mapping[str, Sequence[str]] | None,
    where: pl.Expr | None = None,
    codes: Mapping[str, Sequence[str]] | None = None,
    *,
    ordered: bool = True,
) -> Facts:
    """``facts`` as :func:`.facts.order_facts` hands them out for ``columns``, ``where``,
    ``codes``, ``ordered``."""
    if where is not None:
        facts = replace(facts, orders=facts.orders.filter(where))
    if codes:
        coded = {
            n: f.with_columns(categorical(codes.get(n, ()))) for n, f in facts.frames().items()
        }
        facts = Facts(**coded, seq=facts.seq, born=facts.born)
    if columns is None:
        return facts
    frames = {
        name: facts.frame(name).select(
            kept_columns(name, facts.frame(name).schema, columns, ordered=ordered)
        )
        if name in columns
        else facts.frame(name).clear()
        for name in FACT_TABLES
    }
    return Facts(**frames, seq=facts.seq, born=facts.born)


def categorical(texts: Sequence[str]) -> list[pl.Expr]:
    """The cast of each of ``texts`` to ``pl.Categorical``."""
    return [pl.col(text).cast(pl.Categorical) for text in texts]
