""" "Customers who bought this also bought": item-to-item similarity over who bought what.

The table is built the way Linden, Smith & York (2003) describe Amazon's: each product is a
vector over customers (1 if the customer bought it), and two products are similar by the
cosine of their vectors. Counting distinct customers, not quantities, keeps one heavy buyer
from making a pair. A pair is kept only if

- at least ``min_co_buyers`` customers bought both (support), and
- it is bought together more often than chance predicts: lift = co-buyers x customers /
  (buyers of one x buyers of the other) above ``min_lift`` (Smith & Linden 2017's correction
  for popular items).

Each product keeps its ``top_k`` neighbours (cosine, then product id, so ties are stable). A
customer's recommendations add up the cosines of the neighbours of everything they bought,
and never include a product they already own or one that is gone from the catalogue.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy import sparse

from shopsync.core.actions import Action
from shopsync.core.policy import RecommendationSettings

__all__ = [
    "AlsoBought",
    "Neighbour",
    "also_bought",
    "ranked",
    "recommend",
    "with_recommendations",
]


@dataclass(frozen=True)
class Neighbour:
    product_id: str
    cosine: float
    lift: float
    co_buyers: int


@dataclass(frozen=True)
class AlsoBought:
    """Neighbours per product, best first; ``customers`` is the number of buyers counted."""

    neighbours: dict[str, tuple[Neighbour, ...]] = field(default_factory=dict)
    customers: int = 0

    def of(self, product_id: str) -> tuple[Neighbour, ...]:
        return self.neighbours.get(product_id, ())


def also_bought(purchases: pl.DataFrame, settings: RecommendationSettings) -> AlsoBought:
    """The similarity table from ``purchases`` (columns customer_id, product_id; duplicates
    are fine)."""
    pairs = purchases.select("customer_id", "product_id").drop_nulls().unique()
    if pairs.height == 0:
        return AlsoBought()
    products = pairs["product_id"].unique().sort()
    # a product's index is its position in the sorted unique values; a customer's is any
    # dense number (the co-buyer counts do not depend on the customers' order): joins on
    # the few products and the unique customers, cheaper than ranking strings
    numbered = pairs.join(
        products.to_frame().with_row_index("pidx"), on="product_id", maintain_order="left"
    ).join(
        pairs.select("customer_id").unique().with_row_index("cidx"),
        on="customer_id",
        maintain_order="left",
    )
    pidx = numbered["pidx"].cast(pl.Int64)
    cidx = numbered["cidx"].cast(pl.Int64)
    n_customers = int(cidx.max() or 0) + 1
    x = sparse.csr_matrix(
        (np.ones(pairs.height, dtype=np.int64), (cidx.to_numpy(), pidx.to_numpy())),
        shape=(n_customers, products.len()),
    )
    co = (x.T @ x).tocoo()
    buyers = np.asarray(x.sum(axis=0)).ravel().astype(np.float64)
    i, j, c = co.row, co.col, co.data.astype(np.float64)
    keep = (i != j) & (c >= settings.min_co_buyers)
    i, j, c = i[keep], j[keep], c[keep]
    denom = buyers[i] * buyers[j]
    lift = c * n_customers / denom
    keep = lift > float(settings.min_lift)
    i, j, c, lift, denom = i[keep], j[keep], c[keep], lift[keep], denom[keep]
    cosine = c / np.sqrt(denom)
    if i.size == 0:
        return AlsoBought(customers=n_customers)
    table = (
        pl.DataFrame({"i": i, "j": j, "cosine": cosine, "lift": lift, "co": c.astype(np.int64)})
        .with_columns(
            products.gather(pl.Series(i)).alias("a"),
            products.gather(pl.Series(j)).alias("b"),
        )
        .sort(["a", "cosine", "b"], descending=[False, True, False])
        .group_by("a", maintain_order=True)
        .head(settings.top_k)
    )
    neighbours: dict[str, list[Neighbour]] = {}
    for a, b, cos, lft, n in table.select("a", "b", "cosine", "lift", "co").iter_rows():
        neighbours.setdefault(a, []).append(Neighbour(b, round(cos, 6), round(lft, 4), n))
    return AlsoBought({k: tuple(v) for k, v in neighbours.items()}, n_customers)


def recommend(
    table: AlsoBought,
    seeds: Iterable[str],
    owned: Iterable[str],
    n: int,
    available: frozenset[str] | None = None,
) -> tuple[str, ...]:
    """Up to ``n`` products similar to ``seeds``, none of ``owned``, all in ``available``."""
    if n <= 0:
        return ()
    mine = set(owned)
    return tuple([p for p in ranked(table, seeds, available) if p not in mine][:n])


def ranked(
    table: AlsoBought, seeds: Iterable[str], available: frozenset[str] | None = None
) -> tuple[str, ...]:
    """Every product similar to ``seeds`` and in ``available``, best first.

    A product's score is its own sum of cosines, whatever else is left out, so leaving out
    the owned ones afterwards gives what :func:`recommend` gives: a planner ranks each set of
    seeds once and filters per customer."""
    scores: dict[str, float] = {}
    for seed in sorted(set(seeds)):
        for nb in table.of(seed):
            if available is not None and nb.product_id not in available:
                continue
            scores[nb.product_id] = scores.get(nb.product_id, 0.0) + nb.cosine
    order = sorted(scores.items(), key=lambda kv: (-round(kv[1], 9), kv[0]))
    return tuple(pid for pid, _ in order)


def with_recommendations(
    actions: list[Action],
    bought: pl.DataFrame,
    table: AlsoBought,
    available: frozenset[str] | None,
    per_action: int,
) -> list[Action]:
    """``actions``, those that carry recommendations given up to ``per_action`` products the
    customer does not own (``bought``: the planner's kept quantities), ranked from what the
    action is about, else from everything the customer bought (:func:`ranked`)."""
    # per class, not per action: ``model_fields`` is a costly lookup (45k actions, 0.1 s)
    takes = {kind: "recommendations" in kind.model_fields for kind in {type(a) for a in actions}}
    wanting = {a.customer_id for a in actions if takes[type(a)]}
    if not wanting:
        return actions
    owned: dict[str, set[str]] = {
        cid: set(pids)
        for cid, pids in bought.filter(pl.col("customer_id").is_in(list(wanting)))
        .group_by("customer_id")
        .agg(pl.col("product_id").unique())
        .iter_rows()
    }
    out: list[Action] = []
    known: dict[tuple[str, ...], tuple[str, ...]] = {}  # seeds -> ranked (see ``ranked``)
    for action in actions:
        if not takes[type(action)]:
            out.append(action)
            continue
        mine = owned.get(action.customer_id, set())
        # the fields' values, not hasattr: a missing one raises through pydantic's __getattr__
        fields = vars(action)
        seeds: set[str]
        if "product_ids" in fields:
            seeds = set(fields["product_ids"])
        elif "product_id" in fields:
            seeds = {fields["product_id"]}
        else:
            seeds = mine
        key = tuple(sorted(seeds))
        order = known.get(key)
        if order is None:
            order = known[key] = ranked(table, key, available)
        picks = tuple([p for p in order if p not in mine][:per_action])
        out.append(action.model_copy(update={"recommendations": picks}) if picks else action)
    return out
