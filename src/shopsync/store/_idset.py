"""A set of ids bound as one JSON array: ``x IN (the set)`` on SQLite and PostgreSQL alike,
with one parameter however many ids (no statement grows with the set, no limit is reached)."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, bindparam, cast, func, select
from sqlalchemy.dialects.postgresql import JSONB

if TYPE_CHECKING:
    from sqlalchemy.sql.elements import ColumnElement
    from sqlalchemy.sql.selectable import Subquery

__all__ = ["id_array", "id_table", "in_set", "set_sql"]


def id_array(ids: Collection[str]) -> str:
    """The ids as the JSON array :func:`set_sql` and :func:`in_set` bind."""
    return json.dumps(sorted(set(ids)))


def set_sql(dialect: str, param: str = "ids") -> str:
    """A subquery of the ids bound (as :func:`id_array`) to ``:param``, for ``x IN (...)``."""
    if dialect == "postgresql":
        return f"SELECT jsonb_array_elements_text(CAST(:{param} AS jsonb))"
    return f"SELECT value FROM json_each(:{param})"


def in_set(column: Any, ids: Collection[str], dialect: str) -> ColumnElement[bool]:
    """``column IN ids`` for a Core query, the ids bound as one JSON array."""
    array = bindparam(None, id_array(ids), type_=String)
    if dialect == "postgresql":
        values = func.jsonb_array_elements_text(cast(array, JSONB))
        return column.in_(select(values))  # type: ignore[no-any-return]
    each = func.json_each(array).table_valued("value")
    return column.in_(select(each.c.value))  # type: ignore[no-any-return]


def id_table(ids: Collection[str], dialect: str, column: str) -> Subquery:
    """The ids as a subquery ``p`` of one ``column``, a row an id: a query can probe indexes
    id by id (``p.c.<column>`` in a correlated subquery)."""
    array = bindparam(None, id_array(ids), type_=String)
    if dialect == "postgresql":
        values = func.jsonb_array_elements_text(cast(array, JSONB)).label(column)
        return select(values).subquery("p")
    each = func.json_each(array).table_valued("value")
    return select(each.c.value.label(column)).subquery("p")
