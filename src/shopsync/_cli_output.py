"""What the command line prints after doing something: counts that say actions and
deliveries, the dry run as a table or JSON, and output fitted to a pipe."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = [
    "PIPED_WIDTH",
    "apply_summary",
    "deliveries_json",
    "deliveries_table",
    "fit_to_output",
    "status_counts",
]

PIPED_WIDTH = 4096
"""Columns when the output is not a terminal. Rich assumes 80 then and breaks every longer
line, so ``shopsync backtest | tee log`` or ``grep`` saw sentences cut in two."""


def fit_to_output(console: Console) -> None:
    """Wrap at the terminal's width on a terminal; on a pipe or file, do not wrap at all
    (``COLUMNS`` still wins when set, as rich honours it)."""
    if console.is_terminal or os.environ.get("COLUMNS"):
        return
    console.width = PIPED_WIDTH
    console.soft_wrap = True


def _times(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _deliveries(pairs: int, actions: int, sinks: int) -> str:
    return f"{_times(actions, 'action')}, {pairs:,} deliveries to {_times(sinks, 'sink')}"


def apply_summary(report: Any, actions: Sequence[Any], sinks: Sequence[Any]) -> str:
    """One line for :class:`shopsync.outbox.ApplyResult`: how many actions, how many
    deliveries (an action and a sink that takes it) to how many sinks, then what became of
    the deliveries; 408 actions to two sinks read as 816 deliveries, not "816 recorded"."""
    pairs = sum(1 for action in actions for sink in sinks if _takes(sink, action))
    head = _deliveries(pairs, len(actions), len(sinks))
    if report.dry_run:
        counts = Counter(d.status for d in report.deliveries)
        sends = counts.pop("send", 0)
        rest = ", ".join(f"{n:,} {status}" for status, n in sorted(counts.items()))
        return (
            f"dry run: {head}: {sends:,} would be sent"
            + (f", {rest}" if rest else "")
            + "; nothing was sent"
        )
    parts = [
        f"{report.recorded:,} new in the outbox",
        f"{report.delivered:,} delivered",
    ]
    already = pairs - report.recorded
    if already > 0:
        parts.append(f"{already:,} already delivered or recorded before")
    for count, label in (
        (report.failed, "to retry"),
        (report.parked, "parked (see `shopsync outbox list --status parked`)"),
        (report.cancelled, "cancelled"),
        (report.waiting, "waiting (not due yet or in backoff)"),
        (getattr(report, "deferred", 0), "deferred by a delivery rule (see the outbox)"),
    ):
        if count:
            parts.append(f"{count:,} {label}")
    return f"{head}: " + ", ".join(parts)


def _takes(sink: Any, action: Any) -> bool:
    accepts = getattr(sink, "accepts", None)
    return bool(accepts(action)) if accepts is not None else True


def _what(delivery: Any) -> str:
    """A short description of what a sink would send, or why it would not."""
    if delivery.status != "send" or not delivery.payload:
        return delivery.reason or ""
    payload: dict[str, Any] = delivery.payload
    if payload.get("subject"):
        return f"email to {payload.get('to', '?')}: {payload['subject']}"
    if payload.get("operations") is not None:
        ops = [str(op.get("op", "?")) for op in payload["operations"]]
        return "platform: " + (", ".join(ops) or "nothing to write")
    if payload.get("path"):
        return f"a line in {payload['path']}"
    return ", ".join(sorted(payload))


def deliveries_table(
    deliveries: Sequence[Any], title: str, reasons: dict[str, str] | None = None
) -> Table:
    """The dry run's deliveries, one row per action and sink; ``reasons`` maps an
    idempotency key to its action's reason (why the customer gets it)."""
    table = Table(title=title)
    for column in ("action", "customer", "sink", "would", "what", "why"):
        table.add_column(column)
    for d in deliveries:
        why = (reasons or {}).get(d.idempotency_key, "")
        table.add_row(d.kind, d.customer_id, d.sink, d.status, _what(d), why)
    return table


def deliveries_json(deliveries: Sequence[Any], reasons: dict[str, str] | None = None) -> str:
    """The dry run's deliveries as a JSON array, for scripts: ``why`` is the action's
    reason, ``reason`` why it would not be sent (None when it would)."""
    rows = [
        {
            "idempotency_key": d.idempotency_key,
            "kind": d.kind,
            "customer_id": d.customer_id,
            "sink": d.sink,
            "status": d.status,
            "why": (reasons or {}).get(d.idempotency_key),
            "reason": d.reason,
            "payload": d.payload,
        }
        for d in deliveries
    ]
    return json.dumps(rows, indent=2, default=str, ensure_ascii=False)


def status_counts(entries: Sequence[Any]) -> str:
    """``816: 800 done, 16 parked`` for the rows of an outbox."""
    counts = Counter(e.status for e in entries)
    detail = ", ".join(f"{n:,} {status}" for status, n in sorted(counts.items()))
    return f"{len(entries):,}: {detail}" if entries else "0"
