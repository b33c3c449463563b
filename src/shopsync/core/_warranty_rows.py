"""Warranty notices due among a customer's few purchases, in Python (issue 18): the rows
:func:`shopsync.core.replenish.warranty_candidates`' two queries give, built as one frame."""

from __future__ import annotations

from typing import Any

import polars as pl

from shopsync.core._data import DAY_US, column_rows

__all__ = ["warranty_due"]


def warranty_due(
    bought: pl.DataFrame, lengths: pl.DataFrame, since: int, at: int, days_before: int, shop: str
) -> pl.DataFrame:
    """The purchases of ``bought`` (placed from ``since``) whose warranty of ``lengths``
    (``product_id, sku, product_type, days, source``; ``""`` for none) is due at ``at``, by
    order then product, with ``days``, ``source``, ``ends``, ``due`` and the candidate
    columns; sku and type as ``""`` when missing, as the query's join keys leave them."""
    covered: dict[tuple[Any, Any, Any], list[tuple[Any, Any]]] = {}
    for pid, sku, ptype, days, source in column_rows(lengths, *lengths.columns):
        covered.setdefault((pid, sku, ptype), []).append((days, source))
    names = bought.columns
    rows = []
    for row in column_rows(bought, *names):
        purchase = dict(zip(names, row, strict=True))
        sku, ptype = purchase["sku"] or "", purchase["product_type"] or ""
        created = purchase["created_at"]
        if created is None or created < since:
            continue
        for days, source in covered.get((purchase["product_id"], sku, ptype), ()):
            ends = created + days * DAY_US
            due = ends - days_before * DAY_US
            if due <= at < ends:
                oid, pid = purchase["order_id"], purchase["product_id"]
                key = f"warranty_notice:{shop}:{oid}:{pid}"
                kept = {**purchase, "sku": sku, "product_type": ptype}
                rows.append((*kept.values(), days, source, ends, due, "warranty_notice", True, key))
    rows.sort(key=lambda r: (r[names.index("order_id")], r[names.index("product_id")]))
    schema = {
        **bought.schema,
        "days": pl.Int64(),
        "source": pl.String(),
        "ends": pl.Int64(),
        "due": pl.Int64(),
        "kind": pl.String(),
        "marketing": pl.Boolean(),
        "key": pl.String(),
    }
    return pl.DataFrame(rows, schema=schema, orient="row")
