"""The planner's safety rules over a few candidates in Python (one customer's re-plan, issue
18): the same table as the planner's one query (:func:`shopsync.core.planner._decide`), built
as one frame, where that query's fixed cost (~1.8 ms) was most of the work.

The wording of the held rows' details and the programs' ranks live here, for both paths."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from decimal import Decimal
from typing import Any

import polars as pl

from shopsync.core._candidates import COMMON, Candidates
from shopsync.core._data import Frames, column_rows, nulls_first
from shopsync.core.policy import Policy

__all__ = [
    "SUPPRESSED",
    "consent_detail",
    "decide_rows",
    "holdout_detail",
    "open_rows",
    "ranks",
    "with_verdicts",
]

SUPPRESSED = "unsubscribed through shopsync"
"""The detail of a row the ``suppressed`` rule holds."""
_SOFT_OPT_IN = ("not_subscribed", "unknown")


def consent_detail(state: str) -> str:
    return f"email consent is {state!r} at as_of"


def holdout_detail(share: Decimal) -> str:
    return f"in the {share} holdout group"


def ranks(policy: Policy) -> dict[str, int]:
    """Each kind's place in ``messaging.priority`` (its first); a kind not listed comes after."""
    found: dict[str, int] = {}
    for i, kind in enumerate(policy.messaging.priority):
        found.setdefault(kind, i)
    return found


def _last_email_states(frames: Frames) -> dict[str, str]:
    """Each customer's last email consent state by ``observed_at`` ("unknown": none)."""
    seen = [
        (cid, at, state)
        for cid, channel, at, state in column_rows(
            frames.consent, "customer_id", "channel", "observed_at", "state"
        )
        if channel == "email"
    ]
    last: dict[str, str | None] = {}
    for cid, _, state in sorted(seen, key=lambda r: nulls_first(r[1])):
        last[cid] = state
    found = {cid: last.get(cid) for cid in frames.customers["id"].to_list()}
    return {cid: "unknown" if state is None else state for cid, state in found.items()}


def decide_rows(
    found: Sequence[Candidates],
    frames: Frames,
    policy: Policy,
    paid: pl.DataFrame,
    held_back: Collection[str],
    quiet: str | None,
) -> pl.DataFrame:
    """``_decide``'s table before the cap, in Python: ``held_back`` the customers in the
    holdout, ``quiet`` the quiet period's reason (None: none)."""
    overrides = policy.messaging.marketing
    order, default = ranks(policy), len(policy.messaging.priority)
    erased = set(frames.erased["customer_id"].to_list())
    suppressed = set(frames.suppressed["customer_id"].to_list())
    buyers = set(paid["customer_id"].to_list()) if policy.consent.allow_soft_opt_in else set()
    states = _last_email_states(frames)
    rows: list[tuple[Any, ...]] = []
    for src, candidates in enumerate(found):
        for row, (cid, kind, due, key, marketing) in enumerate(
            column_rows(candidates.frame, *COMMON)
        ):
            if cid is None or cid in erased:  # an erased customer gets nothing, not even held
                continue
            if kind is not None:
                marketing = overrides.get(kind, marketing)
            state = states.get(cid, "unknown")
            rule = _rule(cid, marketing, state, suppressed, buyers, held_back, quiet)
            rank = order.get(kind, default) if kind is not None else default
            rows.append((cid, kind, due, key, marketing, src, row, rank, state, rule))
    rows.sort(key=lambda r: (r[0], r[7], nulls_first(r[1]), nulls_first(r[2]), nulls_first(r[3])))
    share = policy.holdout.share
    details = {"suppressed": SUPPRESSED, "holdout": holdout_detail(share), "quiet": quiet or ""}
    schema = {
        **{name: found[0].frame.schema[name] for name in COMMON},
        "src": pl.Int64(),
        "row": pl.Int64(),
        "rank": pl.Int64(),
        "email_consent": pl.String(),
        "rule": pl.String(),
        "detail": pl.String(),
    }
    table = [(*r, consent_detail(r[8]) if r[9] == "consent" else details.get(r[9])) for r in rows]
    return pl.DataFrame(table, schema=schema, orient="row")


def _rule(
    cid: str,
    marketing: bool | None,
    state: str,
    suppressed: Collection[str],
    buyers: Collection[str],
    held_back: Collection[str],
    quiet: str | None,
) -> str | None:
    """The first rule that holds the row (None: kept), as the query's when-chain reads."""
    if marketing is False:
        return None
    if cid in suppressed:
        return "suppressed"
    if state != "subscribed" and not (cid in buyers and state in _SOFT_OPT_IN):
        return "consent"
    if cid in held_back:
        return "holdout"
    return "quiet" if quiet is not None else None


def open_rows(table: pl.DataFrame) -> list[tuple[int, Any, Any]]:
    """(position, customer_id, key) of the marketing rows no rule holds yet (the cap's)."""
    rows = column_rows(table, "marketing", "rule", "customer_id", "key")
    return [(at, cid, key) for at, (m, rule, cid, key) in enumerate(rows) if m and rule is None]


def with_verdicts(
    table: pl.DataFrame, at: Sequence[int], rules: Sequence[str | None], details: Sequence[Any]
) -> pl.DataFrame:
    """``table`` with the cap's ``rules`` and ``details`` set at its open rows ``at``: one
    frame of its columns, no query."""
    rule, detail = table["rule"].to_list(), table["detail"].to_list()
    for i, r, d in zip(at, rules, details, strict=True):
        rule[i] = r if rule[i] is None else rule[i]
        detail[i] = d if detail[i] is None else detail[i]
    new = {
        "rule": pl.Series("rule", rule, pl.String),
        "detail": pl.Series("detail", detail, pl.String),
    }
    return pl.DataFrame([new.get(name, table[name]) for name in table.columns])
