"""Shop-wide statistics the per-customer rules lean on.

The one-time buyers' win-back delay (the shop's typical gap between a first and a second
order), the P(alive) model, the learned usage periods of consumables and the "also bought"
table describe the shop, not one customer. They are computed from the shop **as of 00:00 UTC
of a day** (:func:`shop_models`) and stored between plans, rebuilt on a schedule or when
enough changed (:mod:`shopsync.core.shop_models`), so every plan and every one-customer
re-plan uses the same numbers until the next rebuild. The catalogue beside them
(:func:`with_catalogue`) is always the current one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import polars as pl

from shopsync import clv
from shopsync._quantity import QUANTITY_DECIMALS
from shopsync.core._data import DAY_US, FEW_ROWS, Frames, column_rows, paid_orders
from shopsync.core.policy import Policy
from shopsync.core.recommend import AlsoBought, also_bought
from shopsync.core.shop_models import ShopModels
from shopsync.errors import FitError

__all__ = [
    "MODEL_COLUMNS",
    "ShopModels",
    "ShopStats",
    "day_start",
    "purchases",
    "shop_models",
    "shop_stats",
    "with_catalogue",
]

QUANTITY_SCALE = QUANTITY_DECIMALS
_QUANTITY_UNIT = 10**QUANTITY_SCALE
"""Frames keep quantities as integer ten-thousandths (see :attr:`Frames.lines`)."""


MODEL_COLUMNS = ("id", "customer_id", "created_at")
"""What :func:`shop_models` reads of :func:`paid_orders` (the gaps, the model's purchase
days, :func:`purchases`): at 10M orders the thirteen columns were 824 MB, alive through the
models' peak."""


def day_start(at: int) -> int:
    return at - at % DAY_US


@dataclass(frozen=True)
class ShopStats(ShopModels):
    """The shop's models beside its current catalogue, as the rules read them; ``as_of`` is
    00:00 UTC of the plan's day (the models' own day may be earlier: see the module docstring)."""

    available: frozenset[str] | None = None
    """Products still in the catalogue and not archived or draft; None when the store holds
    no catalogue (products not synced), in which case nothing is filtered."""
    product_tags: dict[str, tuple[str, ...]] = field(default_factory=dict)
    product_types: dict[str, str] = field(default_factory=dict)


def purchases(paid: pl.DataFrame, lines: pl.DataFrame, *, amounts: bool = True) -> pl.DataFrame:
    """Kept quantity per (customer, order, product): lines of ``paid`` orders minus refunded
    quantities, lines without a product left out. ``kept_units`` is in ten-thousandths (exact
    integer arithmetic downstream), ``kept`` the same as a decimal (1.5 kg stays 1.5).

    ``amounts=False`` leaves out ``kept`` and ``unit_price``, which no program reads (at 10M
    orders they are 24 bytes a purchase, about 400 MB)."""
    if not amounts and lines.height <= FEW_ROWS and paid.height <= FEW_ROWS:
        return _few_purchases(paid, lines)
    # grouped by integers, the order's row in ``paid`` and the product's in ``ids``: the three
    # text keys (customer, order, product) took 4.2 GB beside a 675 MB answer at 16M lines,
    # these 2.7 GB; the texts are gathered back for the groups alone
    orders = paid.select(pl.col("id").alias("order_id"), "customer_id", "created_at")
    if orders["order_id"].n_unique() == orders.height:  # the orders' key: each id one row
        orders = orders.with_row_index("_o")
    else:  # an id twice (frames built by hand): one group per order and customer, as before
        first = pl.col("_o").first().over("order_id", "customer_id")
        orders = orders.with_row_index("_o").with_columns(first)
    named = lines.lazy().filter(pl.col("product_id").is_not_null())
    seen = named.select(pl.col("product_id").unique().sort()).collect(engine="in-memory")
    ids = seen["product_id"]
    # the product's index by an Enum of the products seen, not a join on the text (16M lines:
    # 850 MB), and the group one integer, not two (2.1 GB, now 0.8)
    product = pl.col("product_id").cast(pl.Enum(ids)).to_physical().cast(pl.Int64)
    groups = (
        named.join(orders.lazy().select("order_id", "_o"), on="order_id")
        .select(
            (pl.col("_o").cast(pl.Int64) * len(ids) + product).alias("_g"),
            "quantity",
            "refunded_quantity",
            "sku",
            "product_type",
            *(["unit_price"] if amounts else []),
        )
        .group_by("_g")
        .agg(
            (pl.col("quantity") - pl.col("refunded_quantity")).sum().alias("kept_units"),
            pl.col("sku").drop_nulls().first(),
            pl.col("product_type").drop_nulls().first(),
            *([pl.col("unit_price").max()] if amounts else []),
        )
        .filter(pl.col("kept_units") > 0)
    )
    found = groups.collect(engine="in-memory").with_columns(
        (pl.col("_g") // len(ids)).alias("_o"), (pl.col("_g") % len(ids)).alias("_p")
    )
    order = orders[found["_o"]]
    return pl.DataFrame(
        [
            order["customer_id"],
            order["order_id"],
            ids.gather(found["_p"]),
            found["kept_units"],
            order["created_at"],
            found["sku"],
            found["product_type"],
            *(
                [
                    found["unit_price"],
                    (
                        found["kept_units"].cast(pl.Decimal(38, QUANTITY_SCALE)) / _QUANTITY_UNIT
                    ).alias("kept"),
                ]
                if amounts
                else []
            ),
        ]
    )


def _few_purchases(paid: pl.DataFrame, lines: pl.DataFrame) -> pl.DataFrame:
    """:func:`purchases` without amounts of a few lines, in Python: one frame built, no
    query; groups in the order their first line comes."""
    buyers: dict[str, list[tuple[Any, Any]]] = {}
    for oid, cid, created in column_rows(paid, "id", "customer_id", "created_at"):
        buyers.setdefault(oid, []).append((cid, created))
    groups: dict[tuple[Any, Any, Any], list[Any]] = {}  # kept, created_at, sku, product_type
    named = ("order_id", "product_id", "sku", "product_type", "quantity", "refunded_quantity")
    for oid, pid, sku, ptype, quantity, back in column_rows(lines, *named):
        if pid is None or oid is None:
            continue
        kept = None if quantity is None or back is None else quantity - back
        for cid, created in buyers.get(oid, ()):
            group = groups.get((cid, oid, pid))
            if group is None:
                groups[(cid, oid, pid)] = [kept or 0, created, sku, ptype]
                continue
            group[0] += kept or 0
            group[2] = sku if group[2] is None else group[2]
            group[3] = ptype if group[3] is None else group[3]
    rows = [(*key, *group) for key, group in groups.items() if group[0] > 0]
    schema = {
        "customer_id": paid.schema["customer_id"],
        "order_id": lines.schema["order_id"],
        "product_id": lines.schema["product_id"],
        "kept_units": lines.schema["quantity"],
        "created_at": paid.schema["created_at"],
        "sku": lines.schema["sku"],
        "product_type": lines.schema["product_type"],
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def shop_models(frames: Frames, policy: Policy) -> ShopModels:
    """The shop-level models as of the start of ``frames.as_of``'s day (UTC): what
    :mod:`shopsync.core.shop_models` stores between plans."""
    at = day_start(frames.as_of)
    paid = paid_orders(frames, at, columns=MODEL_COLUMNS)
    wb = policy.winback
    buyers, repeat, median = _second_gaps(paid)
    if repeat >= wb.min_repeat_customers and median is not None:
        scaled = float(wb.gap_multiple) * median
        one_time = max(float(wb.min_days), scaled)
        basis = (
            f"the later of {wb.min_days} days and {wb.gap_multiple} x the shop's median "
            f"{median:.0f}-day gap to a second order"
        )
    else:
        one_time = float(wb.fallback_days)
        basis = (
            f"{wb.fallback_days} days: only {repeat} customers have a second order "
            f"(fewer than {wb.min_repeat_customers})"
        )
    mbg, note = _fit_model(paid, at, policy)
    wanted = policy.replenishment.learn or policy.recommendations.enabled
    bought = purchases(paid, frames.lines, amounts=False) if wanted else None
    usage = (
        _learned_usage(bought, policy.replenishment.min_repeat_pairs)
        if bought is not None and policy.replenishment.learn
        else {}
    )
    table = AlsoBought()
    if bought is not None and policy.recommendations.enabled:
        table = also_bought(bought.select("customer_id", "product_id"), policy.recommendations)
    return ShopModels(
        as_of=at,
        customers_with_orders=buyers,
        repeat_customers=repeat,
        second_gap_median_days=median,
        one_time_days=one_time,
        one_time_basis=basis,
        mbg=mbg,
        model_note=note,
        usage_days=usage,
        also_bought=table,
    )


def _second_gaps(paid: pl.DataFrame) -> tuple[int, int, float | None]:
    """Customers with a paid order, those with a second, and the median days between a
    first and a second order; the sorted copy of the orders is gone once they are counted
    (at 10M orders it would stay alive through :func:`purchases`, the models' peak)."""
    ordered = paid.select("customer_id", "created_at", "id").sort(
        ["customer_id", "created_at", "id"]
    )
    ranked = ordered.with_columns(pl.int_range(pl.len()).over("customer_id").alias("n"))
    firsts = ranked.filter(pl.col("n") == 0).select("customer_id", pl.col("created_at").alias("c0"))
    seconds = ranked.filter(pl.col("n") == 1).select(
        "customer_id", pl.col("created_at").alias("c1")
    )
    gaps = firsts.join(seconds, on="customer_id").select(
        ((pl.col("c1") - pl.col("c0")) / DAY_US).alias("gap")
    )
    repeat = gaps.height
    median = float(gaps["gap"].median()) if repeat else None  # type: ignore[arg-type]
    return firsts.height, repeat, median


def shop_stats(frames: Frames, policy: Policy, models: ShopModels | None = None) -> ShopStats:
    """The statistics as of the start of ``frames.as_of``'s day (UTC), or, given stored
    ``models``, those models beside the catalogue of ``frames``."""
    if models is None:
        models = shop_models(frames, policy)
    return with_catalogue(models, frames.products, frames.as_of)


def with_catalogue(models: ShopModels, catalogue: pl.DataFrame, at: int) -> ShopStats:
    """``models`` beside the ``catalogue`` (:attr:`Frames.products`), for a plan at ``at``.

    The catalogue is always the current one, never stored with the models: a product
    archived today is recommended no more, whatever the age of the models."""
    live = catalogue.filter(
        pl.col("status").is_null() | ~pl.col("status").is_in(["archived", "draft", "deleted"])
    )
    kept = {f.name: getattr(models, f.name) for f in fields(ShopModels)}
    return ShopStats(
        **{**kept, "as_of": day_start(at)},
        available=frozenset(live["id"].to_list()) if catalogue.height else None,
        product_tags={
            pid: tuple(tags or ()) for pid, tags in catalogue.select("id", "tags").iter_rows()
        },
        product_types={
            pid: t for pid, t in catalogue.select("id", "product_type").iter_rows() if t
        },
    )


def _fit_model(paid: pl.DataFrame, at: int, policy: Policy) -> tuple[clv.MbgNbdParams | None, str]:
    """MBG/NBD on daily purchase data, behind Klaviyo's data-sufficiency gate."""
    wb = policy.winback
    if wb.alive_threshold <= 0:
        return None, "model trigger switched off"
    days = paid.select("customer_id", (pl.col("created_at") // DAY_US).alias("day")).unique()
    if days.height == 0:
        return None, "no orders"
    summary = days.group_by("customer_id").agg(
        (pl.len() - 1).alias("x"),
        (pl.col("day").max() - pl.col("day").min()).alias("t_x"),
        ((at // DAY_US) - pl.col("day").min()).alias("T"),
    )
    history = int(at // DAY_US - days["day"].min())  # type: ignore[operator]
    if summary.height < wb.model_min_customers:
        return (
            None,
            f"too few customers for the model ({summary.height} < {wb.model_min_customers})",
        )
    if history < wb.model_min_history_days:
        return (
            None,
            f"too little history for the model ({history} < {wb.model_min_history_days} days)",
        )
    if int(summary["x"].max() or 0) < 2:  # type: ignore[arg-type]
        return None, "no customer with three or more orders: the model cannot be fitted"
    summary = summary.filter(pl.col("T") > 0)
    try:
        params = clv.fit_mbgnbd(summary["x"], summary["t_x"], summary["T"], penalizer=0.001)
    except (FitError, ValueError) as exc:
        return None, f"the model did not fit: {exc}"
    return params, f"MBG/NBD fitted on {summary.height} customers"


def model_lapse_day(
    params: clv.MbgNbdParams, x: np.ndarray, t_x: np.ndarray, p: float
) -> np.ndarray:
    """Days after the first purchase day at which P(alive) falls to ``p`` under MBG/NBD.

    P(alive) = 1 / (1 + a/(b+x) * ((alpha+T)/(alpha+t_x))^(r+x)) falls as T grows, so the
    crossing has a closed form.
    """
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    ratio = (1.0 / p - 1.0) * (b + x) / a
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        crossing = (alpha + t_x) * np.power(np.maximum(ratio, 1e-300), 1.0 / (r + x)) - alpha
    later: np.ndarray = np.maximum(crossing, t_x)
    return later


def _learned_usage(bought: pl.DataFrame, min_pairs: int) -> dict[str, tuple[float, int]]:
    """Median days per unit between consecutive purchases of a product by one customer
    (``bought``: :func:`purchases`)."""
    bought = bought.sort(["customer_id", "product_id", "created_at", "order_id"])
    same = (pl.col("customer_id") == pl.col("customer_id").shift(1)) & (
        pl.col("product_id") == pl.col("product_id").shift(1)
    )
    pairs = (
        bought.with_columns(
            pl.when(same).then(pl.col("created_at").shift(1)).alias("prev_at"),
            pl.when(same).then(pl.col("kept_units").shift(1)).alias("prev_kept"),
        )
        .filter(pl.col("prev_at").is_not_null())
        .with_columns(
            # days per unit: the gap over the quantity kept, in ten-thousandths
            (
                (pl.col("created_at") - pl.col("prev_at")).cast(pl.Float64)
                * _QUANTITY_UNIT
                / (DAY_US * pl.col("prev_kept").cast(pl.Float64))
            ).alias("per_unit")
        )
        .group_by("product_id")
        .agg(pl.col("per_unit").median().alias("days"), pl.len().alias("pairs"))
        .filter(pl.col("pairs") >= min_pairs)
    )
    return {
        pid: (float(days), int(n))
        for pid, days, n in pairs.iter_rows()
        if days is not None and math.isfinite(days) and days > 0
    }
