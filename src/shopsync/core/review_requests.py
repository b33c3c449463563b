"""Review requests: ask a customer to review what they received, once, at the right time.

The rule, as the review apps run it (research retention §3 and §8):

- **when**: ``days_after_delivery`` after delivery when every shipment of the order has a
  delivery date, else ``days_after_fulfillment`` after the last shipment; orders shipped
  outside ``home_country`` wait ``international_extra_days`` more;
- **which orders**: fully fulfilled (``fulfillment_status`` fulfilled, at least one
  successful shipment by ``as_of``), not cancelled, not voided, not fully refunded by
  ``as_of``; guest orders have no customer to ask;
- **which products**: lines with a product that were not fully returned, at most
  ``max_products``, most expensive first; a product is left out when the customer bought it
  in another order whose request asked about it within the previous ``same_product_months``
  (so a product is asked about at most once per that period, however often it is bought)
  or reviewed it within that period.
  An order with nothing left gets no request (Klaviyo's "Excluded");
- **one request and one reminder per order**: keys ``review_request:{shop}:{order}`` and
  ``review_reminder:{shop}:{order}``; the reminder comes ``reminder_days`` after the
  outbox *delivered* the request (its message stage, read as ``requests_delivered`` of
  :class:`shopsync.store.read.ShopRead`), never for a request that was not sent (a first
  plan on a fresh store, a request held by consent or the frequency cap, an email that
  keeps failing), and only if none of the requested products was reviewed since;
- **not late**: a request (or reminder) more than ``max_late_days`` past its due date is
  dropped, so the first plan on an old store does not ask about old orders; and once the
  reminder is due the request itself is no longer planned (like win-back stages, only the
  current step of an order's sequence is).

Review requests are marketing by default (BGH VI ZR 225/17); the planner checks consent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl

from shopsync.core._candidates import Candidates, key_column, key_expr, short_keys, soonest
from shopsync.core._data import DAY_US, FEW_ROWS, Frames, refunded_by_order, shipments_by_order
from shopsync.core._review_rows import months_before, months_before_value, review_rows
from shopsync.core.actions import Action, ReviewReminder, ReviewRequest
from shopsync.core.loyalty import from_micros
from shopsync.core.policy import Policy

__all__ = ["review_candidates", "review_next_due", "review_requests"]


def review_requests(frames: Frames, policy: Policy) -> list[Action]:
    """Review requests and reminders due at ``frames.as_of``."""
    return review_candidates(frames, policy).actions()


def review_candidates(frames: Frames, policy: Policy) -> Candidates:
    """:func:`review_requests` as candidates (built into actions only when kept)."""
    s = policy.reviews
    if not s.enabled:
        return _none(frames, policy)
    at = frames.as_of
    reminder = s.reminder_days
    late = s.max_late_days * DAY_US
    # a request is planned until ``late`` after its due date and may be delivered up to
    # ``late`` after that (backoff, held rows): its reminder can come that much later
    oldest_due = at - 2 * late - (reminder or 0) * DAY_US
    if _nothing_due_since(frames, policy, oldest_due):  # most one-customer plans stop here
        return _none(frames, policy)
    # history reaches back one product period further, for the once-per-period rule
    horizon = months_before_value(oldest_due, s.same_product_months)
    if _few(frames):  # one customer's: in Python, no query (~0.3 ms each)
        few = review_rows(frames, policy, oldest_due, horizon)
        return _none(frames, policy) if few is None else Candidates(few, _builder(frames, policy))

    shipments = shipments_by_order(frames, at)
    refunded = refunded_by_order(frames, at)
    extra = pl.lit(0, dtype=pl.Int64)
    if s.home_country:
        abroad = pl.col("ship_country").is_not_null() & (pl.col("ship_country") != "")
        abroad = abroad & (pl.col("ship_country") != s.home_country)
        extra = pl.when(abroad).then(s.international_extra_days * DAY_US).otherwise(0)
    orders = (
        frames.orders.lazy()
        .filter(
            (pl.col("fulfillment_status") == "fulfilled")
            & (pl.col("cancelled_at").is_null() | (pl.col("cancelled_at") > at))
            & ~pl.col("financial_status").is_in(["voided", "cancelled"])
        )
        .join(shipments, left_on="id", right_on="order_id", maintain_order="left")
        .join(refunded, left_on="id", right_on="order_id", how="left", maintain_order="left")
        .filter((pl.col("total") == 0) | (pl.col("refunded").fill_null(0) < pl.col("total")))
        .with_columns(
            (
                pl.when(pl.col("delivered") == pl.col("shipments"))
                .then(pl.col("delivered_at") + s.days_after_delivery * DAY_US)
                .otherwise(pl.col("fulfilled_at") + s.days_after_fulfillment * DAY_US)
                + extra
            ).alias("due"),
            (pl.col("delivered") == pl.col("shipments")).alias("after_delivery"),
        )
        .filter((pl.col("due") >= horizon) & (pl.col("due") <= at))
        .select("id", "customer_id", "due", "after_delivery")
        # the streaming engine: at 10M orders the shipments grouped by order and joined held
        # 2.1 GB in memory, 1.5 GB streamed (the orders' order kept: the joins keep the left's)
        .collect(engine="streaming")
        .lazy()
    )
    # orders first: the lines of orders outside the horizon never need grouping
    bought = (
        frames.lines.lazy()
        .filter(
            pl.col("product_id").is_not_null()
            & (pl.col("quantity") - pl.col("refunded_quantity") > 0)
        )
        .select("order_id", "product_id", "unit_price")
        .join(orders, left_on="order_id", right_on="id")
        .collect(engine="in-memory")
    )
    # and only the history of products bought recently: the walk goes product by product,
    # and a product with no purchase due since ``oldest_due`` has nothing left to ask about
    recent = bought.lazy().filter(pl.col("due") >= oldest_due).select("customer_id", "product_id")
    lines = (
        bought.lazy()
        .join(recent, on=["customer_id", "product_id"], how="semi", nulls_equal=True)
        .group_by("order_id", "product_id")
        .agg(
            pl.col("unit_price").max(),
            pl.col("customer_id").first(),
            pl.col("due").first(),
            pl.col("after_delivery").first(),
        )
        .sort(["customer_id", "product_id", "due", "order_id"])
        .with_columns(months_before("due", s.same_product_months).alias("period_start"))
        .collect(engine="in-memory")
    )
    lines = _once_per_period(lines)
    if not (lines["due"] >= oldest_due).any():  # a Series' comparison: no query
        return _none(frames, policy)
    reviews = frames.reviews.lazy().select("customer_id", "product_id", pl.col("reviewed_at"))
    # one collect for the chain below: a one-customer plan pays Polars' per-query cost once
    checked = (
        lines.lazy()
        .filter(pl.col("due") >= oldest_due)
        .join(reviews, on=["customer_id", "product_id"], how="left")
        .group_by(
            "customer_id",
            "order_id",
            "product_id",
            "due",
            "after_delivery",
            "unit_price",
            "period_start",
        )
        .agg(
            # reviewed in the period before the request: never asked about
            (
                (pl.col("reviewed_at") > pl.col("period_start"))
                & (pl.col("reviewed_at") <= pl.col("due"))
            )
            .any()
            .alias("reviewed_before"),
            (pl.col("reviewed_at") > pl.col("due")).any().alias("reviewed_since"),
        )
        .filter(~pl.col("reviewed_before").fill_null(False))
        .sort(["order_id", "unit_price", "product_id"], descending=[False, True, False])
        .group_by("order_id", maintain_order=True)
        .head(s.max_products)
        .with_columns(pl.col("reviewed_since").fill_null(False))
        .group_by("order_id", maintain_order=True)
        .agg(
            pl.col("customer_id").first(),
            pl.col("due").first().alias("request_due"),
            pl.col("after_delivery").first(),
            pl.col("product_id").alias("products"),
            pl.col("product_id").filter(~pl.col("reviewed_since")).alias("ask"),
            pl.col("reviewed_since").any().alias("any_since"),
        )
        .with_columns(key_expr("review_request", frames.shop, pl.col("order_id")))
        .collect(engine="in-memory")
    )
    checked = short_keys(checked, "review_request")
    delivered = pl.DataFrame(
        {
            "key": list(frames.requests_delivered),
            "sent": list(frames.requests_delivered.values()),
        },
        schema={"key": pl.String, "sent": pl.Int64},
    )
    reminder_due = (
        pl.lit(None, dtype=pl.Int64) if reminder is None else pl.col("sent") + reminder * DAY_US
    )
    table = (
        checked.lazy()
        .join(delivered.lazy(), on="key", how="left", maintain_order="left")
        .with_columns(reminder_due.alias("reminder_due"))
    )
    columns = [*checked.columns, "sent", "reminder_due", "kind", "due"]
    due, due_r = pl.col("request_due"), pl.col("reminder_due")
    requests = table.filter(
        (due >= at - late)
        & (due <= at)
        & (due_r.is_null() | (due_r > at))
        & (pl.col("ask").list.len() > 0)
    ).with_columns(pl.lit("review_request").alias("kind"), due.alias("due"))
    reminders = (
        table.filter(
            due_r.is_not_null() & ~pl.col("any_since") & (due_r >= at - late) & (due_r <= at)
        )
        .with_columns(pl.lit("review_reminder").alias("kind"), due_r.alias("due"))
        .with_columns(key_expr("review_reminder", frames.shop, pl.col("order_id")))
        .select(columns)
    )
    both = (  # the requests, then the reminders: one query
        pl.concat([requests.select(columns), reminders], how="vertical")
        .with_columns(pl.lit(True).alias("marketing"))
        .collect(engine="in-memory")
    )
    return Candidates(short_keys(both), _builder(frames, policy))


def review_next_due(frames: Frames, policy: Policy) -> pl.DataFrame:
    """``customer_id, due``: the earliest moment after ``as_of`` at which time alone can make
    a new request or reminder due (issue 19): a shipment's or delivery's date plus the delay
    (with and without the international extra), a delivered request's date plus
    ``reminder_days``. Never later than the truth; a delivery not recorded yet is a change
    the caller accounts for (the request is planned now, or waits in the outbox)."""
    s = policy.reviews
    at = frames.as_of
    if not s.enabled:
        return soonest([], at)
    extras = {0, s.international_extra_days * DAY_US} if s.home_country else {0}
    ships = frames.fulfillments.lazy().join(
        frames.orders.lazy().select(pl.col("id").alias("order_id"), "customer_id"), on="order_id"
    )
    moments = [
        ships.select("customer_id", (pl.col(col) + days * DAY_US + extra).alias("moment"))
        for extra in extras
        for col, days in (
            ("created_at", s.days_after_fulfillment),
            ("delivered_at", s.days_after_delivery),
        )
    ]
    if s.reminder_days is not None and frames.requests_delivered:
        sent = pl.DataFrame(
            {
                "key": list(frames.requests_delivered),
                "sent": list(frames.requests_delivered.values()),
            },
            schema={"key": pl.String, "sent": pl.Int64},
        )
        owners = key_column(
            frames.orders.select("customer_id", pl.col("id").alias("order_id")),
            "review_request",
            frames.shop,
            pl.col("order_id"),
        )
        moments.append(
            owners.lazy()
            .join(sent.lazy(), on="key")
            .select("customer_id", (pl.col("sent") + s.reminder_days * DAY_US).alias("moment"))
        )
    return soonest(moments, at)


def _nothing_due_since(frames: Frames, policy: Policy, since: int) -> bool:
    """Whether no shipment can make a request (or reminder) due at or after ``since``: every
    order's due moment is at most its last shipment's or delivery's plus the delay (and the
    abroad extra), so this bound, two column maxima, skips the pipeline for a customer with
    no recent shipment (a one-customer plan's usual case)."""
    s = policy.reviews
    shipped = frames.fulfillments
    extra = s.international_extra_days * DAY_US if s.home_country else 0
    bounds = [
        int(moment) + days * DAY_US + extra
        for moment, days in (
            (shipped["created_at"].max(), s.days_after_fulfillment),
            (shipped["delivered_at"].max(), s.days_after_delivery),
        )
        if isinstance(moment, int)
    ]
    return not bounds or max(bounds) < since


def _few(frames: Frames) -> bool:
    """Whether the frames review requests read hold one customer's few rows."""
    return all(
        frame.height <= FEW_ROWS
        for frame in (
            frames.orders,
            frames.lines,
            frames.fulfillments,
            frames.refunds,
            frames.reviews,
        )
    )


def _none(frames: Frames, policy: Policy) -> Candidates:
    empty = pl.DataFrame(
        schema={
            "customer_id": pl.String,
            "kind": pl.String,
            "due": pl.Int64,
            "key": pl.String,
            "marketing": pl.Boolean,
        }
    )
    return Candidates(empty, _builder(frames, policy))


def _builder(frames: Frames, policy: Policy) -> Callable[[dict[str, Any]], Action]:
    s = policy.reviews
    reminder = s.reminder_days
    base = {"platform": frames.platform, "shop": frames.shop}

    def build(row: dict[str, Any]) -> Action:
        order_id = row["order_id"]
        if row["kind"] == "review_request":
            after = row["after_delivery"]
            when = "delivery" if after else "fulfilment"
            delay = s.days_after_delivery if after else s.days_after_fulfillment
            ask = tuple(row["ask"])
            return ReviewRequest(
                **base,
                customer_id=row["customer_id"],
                due_at=from_micros(row["due"]),
                reason=(
                    f"order {order_id} was received: {delay} days after {when}, ask "
                    f"for a review of {len(ask)} product(s)"
                ),
                facts={
                    "order_id": order_id,
                    "after": when,
                    "delay_days": delay,
                    "product_ids": list(ask),
                },
                idempotency_key=row["key"],
                order_id=order_id,
                product_ids=ask,
            )
        products = tuple(row["products"])
        return ReviewReminder(
            **base,
            customer_id=row["customer_id"],
            due_at=from_micros(row["due"]),
            reason=(
                f"no review of order {order_id}'s products {reminder} days after "
                f"the request was delivered"
            ),
            facts={
                "order_id": order_id,
                "request_due": from_micros(row["request_due"]).isoformat(),
                "request_delivered": from_micros(row["sent"] or 0).isoformat(),
                "product_ids": list(products),
            },
            idempotency_key=row["key"],
            order_id=order_id,
            product_ids=products,
        )

    return build


def _once_per_period(lines: pl.DataFrame) -> pl.DataFrame:
    """The purchases of a product whose request may ask about it: the first one, then each one
    whose due date is a whole period (``period_start``) after the last one kept.

    Each keep restarts the clock, so this is a walk per customer and product, not a
    comparison with the previous purchase: measured from the previous purchase, someone who
    buys a product every few months would be asked about it once, ever. Each round decides the
    first open purchase of every product exactly and drops the later ones within its period;
    the horizon is about one period long, so two or three rounds decide everything.
    A purchase kept here may still go unasked (reviewed, or past ``max_products``), and one
    before the horizon is not seen: both can only withhold a later request, never repeat one.
    Takes ``lines`` sorted by customer, product and due date, and keeps that order.

    A purchase alone in its group is kept without a walk: at 1M orders nine in ten are, and
    the rounds over the rest group by an integer (the run number of the sorted keys), not by
    two strings (6.5 s of CPU down to well under one).
    """
    if lines.height <= FEW_ROWS:  # a customer's few lines: in Python, not a query (~0.3 ms)
        runs = _runs(lines["customer_id"].to_list(), lines["product_id"].to_list())
    else:
        first = pl.col("customer_id").ne_missing(pl.col("customer_id").shift(1)) | pl.col(
            "product_id"
        ).ne_missing(pl.col("product_id").shift(1))
        runs = lines.select(
            first.fill_null(True).alias("_first"),
            first.shift(-1).fill_null(True).alias("_last"),
        )
    alone = runs["_first"] & runs["_last"]
    if alone.all():
        return lines
    repeats = (
        lines.select("due", "period_start")
        .with_columns(
            runs["_first"].cum_sum().alias("_g"), pl.int_range(pl.len(), dtype=pl.Int64).alias("_i")
        )
        .filter(~alone)
    )
    kept = _walk(repeats)["_i"]
    at = pl.int_range(pl.len(), dtype=pl.Int64)
    return lines.filter(alone | at.is_in(kept.implode()))


def _runs(customers: list[Any], products: list[Any]) -> pl.DataFrame:
    """``_first``, ``_last``: whether each row starts or ends its run of one (customer,
    product) pair (None equal to None, as ``ne_missing`` has it)."""
    pairs = list(zip(customers, products, strict=True))
    first = [p != q for p, q in zip(pairs, [(None, None), *pairs], strict=False)]
    last = [*first[1:], True][: len(first)]
    return pl.DataFrame(
        {"_first": first, "_last": last}, schema={"_first": pl.Boolean, "_last": pl.Boolean}
    )


def _walk(rows: pl.DataFrame) -> pl.DataFrame:
    """The kept rows of :func:`_once_per_period`'s walk over ``rows`` (``_g``: the group,
    rows of a group together and in due order)."""
    keep = pl.col("_keep")
    open_ = keep.is_null().cast(pl.Int32)
    last_kept = pl.when(keep.fill_null(False)).then(pl.col("due")).forward_fill().shift(1)
    found = rows.with_columns(pl.lit(None, dtype=pl.Boolean).alias("_keep"))
    while found["_keep"].null_count():
        found = found.with_columns(
            last_kept.over("_g").alias("_last"),
            (open_.cum_sum() - open_).over("_g").alias("_before"),
        ).with_columns(
            pl.when(keep.is_not_null())
            .then(keep)
            .when(pl.col("_last") > pl.col("period_start"))
            .then(pl.lit(False))
            .when(pl.col("_before") == 0)
            .then(pl.lit(True))
            .otherwise(None)
            .alias("_keep")
        )
    return found.filter(keep)
