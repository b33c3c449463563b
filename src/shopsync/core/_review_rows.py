"""Review requests of one customer's few rows, in plain Python (issue 18).

:func:`shopsync.core.review_requests.review_candidates` as Polars queries costs ~0.3 ms of
fixed overhead each, most of a one-customer plan's review time; over a few rows
(:data:`shopsync.core._data.FEW_ROWS`) the same steps run here over the frames' columns read
as lists, and the candidates' frame is built once. Each step mirrors one of the query path's,
null for null (a null compares as unknown: the row is left out), and the frame has its
columns, dtypes and row order; tests/core/test_plan_shortcuts.py compares the two.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from typing import Any, NamedTuple

import polars as pl

from shopsync._instants import instant, to_micros
from shopsync.core._candidates import short_key
from shopsync.core._data import (
    DAY_US,
    Frames,
    column_rows,
    refunded_by_order_rows,
    shipments_by_order_rows,
)
from shopsync.core.policy import Policy

__all__ = ["CANDIDATES", "months_before", "months_before_value", "review_rows"]

_UTC = pl.Datetime("us", "UTC")

CANDIDATES: dict[str, pl.DataType] = {
    "order_id": pl.String(),
    "customer_id": pl.String(),
    "request_due": pl.Int64(),
    "after_delivery": pl.Boolean(),
    "products": pl.List(pl.String()),
    "ask": pl.List(pl.String()),
    "any_since": pl.Boolean(),
    "key": pl.String(),
    "sent": pl.Int64(),
    "reminder_due": pl.Int64(),
    "kind": pl.String(),
    "due": pl.Int64(),
    "marketing": pl.Boolean(),
}
"""The review candidates' columns, as the query path builds them."""


class _Line(NamedTuple):
    """A product of an order: its price (the line's highest) and the order's due moment."""

    customer_id: str | None
    product_id: str
    due: int
    order_id: str
    unit_price: int | None
    after_delivery: bool
    period_start: int


class _Asked(NamedTuple):
    """An order's request: the products it may ask about and those not reviewed since."""

    order_id: str
    customer_id: str | None
    request_due: int
    after_delivery: bool
    products: list[str]
    ask: list[str]
    any_since: bool
    key: str


def months_before(col: str, months: int) -> pl.Expr:
    """``col`` (micros) moved back ``months`` calendar months, as micros."""
    moment = pl.col(col).cast(_UTC).dt.offset_by(f"-{months}mo")
    return moment.cast(pl.Int64)


def months_before_value(at: int, months: int) -> int:
    """:func:`months_before` of one moment, in Python (a query cost ~0.3 ms): the calendar
    month moved back, its day cut to the month's last, the time of day kept."""
    try:
        moment = instant(at)
        year, month = divmod(moment.year * 12 + moment.month - 1 - months, 12)
        day = min(moment.day, calendar.monthrange(year, month + 1)[1])
        back = moment.replace(year=year, month=month + 1, day=day)
    except (OverflowError, ValueError):  # outside Python's years: Polars' own reckoning
        frame = pl.DataFrame({"t": [at]}).select(months_before("t", months))
        return int(frame.item())
    return to_micros(back)


def review_rows(
    frames: Frames, policy: Policy, oldest_due: int, horizon: int
) -> pl.DataFrame | None:
    """The candidates' frame of ``review_candidates`` over few rows (no Polars query), or
    None when no purchase is due since ``oldest_due`` (no candidates)."""
    s = policy.reviews
    orders = _orders_due(frames, policy, horizon)
    if not any(due >= oldest_due for _, due, _ in orders.values()):
        return None
    lines = _once_per_period(_lines(frames, orders, oldest_due, s.same_product_months))
    if not any(line.due >= oldest_due for line in lines):
        return None
    recent = [line for line in lines if line.due >= oldest_due]
    return _candidates(frames, policy, _asked(frames, recent, s.max_products))


def _orders_due(
    frames: Frames, policy: Policy, horizon: int
) -> dict[str, tuple[str | None, int, bool]]:
    """Fulfilled orders, neither cancelled, voided nor refunded in full, whose request falls
    due between ``horizon`` and ``as_of``: order -> (customer, due, after delivery)."""
    s, at = policy.reviews, frames.as_of
    shipped, refunded = shipments_by_order_rows(frames, at), refunded_by_order_rows(frames, at)
    found: dict[str, tuple[str | None, int, bool]] = {}
    columns = ("id", "customer_id", "fulfillment_status", "cancelled_at", "financial_status")
    for oid, cid, fulfilment, cancelled, financial, total, country in column_rows(
        frames.orders, *columns, "total", "ship_country"
    ):
        if fulfilment != "fulfilled" or financial is None or financial in ("voided", "cancelled"):
            continue
        if (cancelled is not None and cancelled <= at) or oid not in shipped or total is None:
            continue
        if total != 0 and refunded.get(oid, 0) >= total:
            continue
        last, delivery, count, delivered = shipped[oid]
        after = delivered == count
        if after and delivery is not None:  # every shipment delivered (so one delivery)
            due = delivery + s.days_after_delivery * DAY_US
        else:
            due = last + s.days_after_fulfillment * DAY_US
        if s.home_country and country and country != s.home_country:
            due += s.international_extra_days * DAY_US
        if horizon <= due <= at:
            found[oid] = (cid, due, after)
    return found


def _lines(
    frames: Frames, orders: dict[str, tuple[str | None, int, bool]], oldest_due: int, months: int
) -> list[_Line]:
    """The products (not returned in full) of ``orders``, one per order at its highest line
    price, with the start of the ``months`` before its due moment, sorted by customer (nulls
    first), product, due moment and order; only those of a (customer, product) with a purchase
    due since ``oldest_due``: the others' are all older, their walk's verdicts never read."""
    prices: dict[tuple[str, str], int | None] = {}
    for oid, pid, quantity, returned, price in column_rows(
        frames.lines, "order_id", "product_id", "quantity", "refunded_quantity", "unit_price"
    ):
        if pid is None or oid not in orders or quantity is None or returned is None:
            continue
        if quantity - returned > 0:  # the highest price; a null one counts only alone
            known = prices.get((oid, pid))
            prices[(oid, pid)] = (
                price if known is None else max(known, known if price is None else price)
            )
    recent = {(orders[oid][0], pid) for oid, pid in prices if orders[oid][1] >= oldest_due}
    starts: dict[int, int] = {}
    lines = []
    for (oid, pid), price in prices.items():
        cid, due, after = orders[oid]
        if (cid, pid) not in recent:
            continue
        start = starts.get(due)
        if start is None:
            start = starts[due] = months_before_value(due, months)
        lines.append(_Line(cid, pid, due, oid, price, after, start))
    lines.sort(key=lambda x: (x.customer_id is not None, x.customer_id or "", *x[1:4]))
    return lines


def _once_per_period(lines: list[_Line]) -> list[_Line]:
    """``review_requests._once_per_period`` of sorted lines: the first purchase of a
    (customer, product), then each one due after the last kept one's period started."""
    last: dict[tuple[str | None, str], int] = {}
    kept = []
    for line in lines:
        pair = (line.customer_id, line.product_id)
        before = last.get(pair)
        if before is None or before <= line.period_start:
            last[pair] = line.due
            kept.append(line)
    return kept


def _reviews(frames: Frames) -> dict[tuple[str | None, str], list[int]]:
    """(customer, product) -> the moments of its reviews (null keys match nothing)."""
    found: dict[tuple[str | None, str], list[int]] = {}
    for cid, pid, at in column_rows(frames.reviews, "customer_id", "product_id", "reviewed_at"):
        if cid is not None and pid is not None and at is not None:
            found.setdefault((cid, pid), []).append(at)
    return found


def _asked(frames: Frames, lines: list[_Line], max_products: int) -> list[_Asked]:
    """Per order (by id), its products not reviewed in the period before its request, at
    most ``max_products`` of them, the most expensive first (a null price first, as Polars
    sorts it), then by product."""
    reviews = _reviews(frames)
    by_order: dict[str, list[tuple[_Line, bool]]] = {}
    for line in lines:
        moments = reviews.get((line.customer_id, line.product_id), ())
        if any(line.period_start < r <= line.due for r in moments):
            continue
        by_order.setdefault(line.order_id, []).append((line, any(r > line.due for r in moments)))
    asked = []
    for oid in sorted(by_order):
        picked = sorted(by_order[oid], key=lambda x: _price_first(x[0]))[:max_products]
        if not picked:
            continue
        first = picked[0][0]
        asked.append(
            _Asked(
                oid,
                first.customer_id,
                first.due,
                first.after_delivery,
                [line.product_id for line, _ in picked],
                [line.product_id for line, since in picked if not since],
                any(since for _, since in picked),
                short_key(f"review_request:{frames.shop}:{oid}", "review_request"),
            )
        )
    return asked


def _price_first(line: _Line) -> tuple[bool, int, str]:
    return (line.unit_price is not None, -(line.unit_price or 0), line.product_id)


def _candidates(frames: Frames, policy: Policy, asked: list[_Asked]) -> pl.DataFrame:
    """The requests due (not late, no reminder due yet, something to ask), then the
    reminders due (``reminder_days`` after the request was delivered, nothing reviewed
    since), as one frame."""
    s, at = policy.reviews, frames.as_of
    late = s.max_late_days * DAY_US
    requests: list[tuple[Any, ...]] = []
    reminders: list[tuple[Any, ...]] = []
    for row in asked:
        sent = frames.requests_delivered.get(row.key)
        remind = (
            None if s.reminder_days is None or sent is None else sent + s.reminder_days * DAY_US
        )
        due = row.request_due
        if at - late <= due <= at and (remind is None or remind > at) and row.ask:
            requests.append((*row, sent, remind, "review_request", due, True))
        if remind is not None and not row.any_since and at - late <= remind <= at:
            key = short_key(f"review_reminder:{frames.shop}:{row.order_id}")
            reminders.append((*row[:-1], key, sent, remind, "review_reminder", remind, True))
    return _frame([*requests, *reminders])


def _frame(rows: Iterable[tuple[Any, ...]]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=CANDIDATES, orient="row")
