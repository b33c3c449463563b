"""Browse abandonment: remind an identified customer of products they looked at.

The rule (research retention §1.2 and §8, as agencies build Klaviyo's browse flows):

- **who**: customers the storefront identified (the event endpoint keeps anonymous visitors'
  events out of the frame), with marketing consent (the planner's guard: the kind is
  marketing, and :attr:`Frames.browse` holds identified customers only);
- **when**: ``delay_hours`` after the customer's last ``product_viewed`` or
  ``product_added_to_cart``; not more than ``late_hours`` after that;
- **not**: when the customer ordered in the ``recent_order_days`` before (or since the
  session began), or started a checkout since the session began (the abandoned-checkout
  program speaks then), or got a browse reminder in the last ``cooldown_days`` (the cap);
- **what**: the products of the session (views within ``session_hours`` before the last),
  most recent first, at most ``max_products``.

One key per session (``browse_abandonment:{shop}:{customer}:{last event, micros}``): planning
again sends nothing twice; a later session is a new key, held back by the cool-down.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import polars as pl

from shopsync.core._candidates import Candidates, key_column, soonest
from shopsync.core._data import DAY_US, Frames
from shopsync.core.actions import Action
from shopsync.core.loyalty import from_micros
from shopsync.core.policy import Policy

__all__ = ["BrowseReminder", "browse_candidates", "browse_next_due"]

HOUR_US = 3_600_000_000
KIND = "browse_abandonment"
_LOOKS = ("product_viewed", "product_added_to_cart")


class BrowseReminder(Action):
    """Products the customer looked at and did not buy."""

    kind: Literal["browse_abandonment"] = "browse_abandonment"
    marketing: bool = True
    product_ids: tuple[str, ...]
    recommendations: tuple[str, ...] = ()


def browse_candidates(frames: Frames, paid: pl.DataFrame, policy: Policy) -> Candidates:
    """The browse reminders due at ``frames.as_of``, as candidates."""
    s = policy.browse_abandonment
    at = frames.as_of
    if not s.enabled or frames.browse.height == 0:  # no filter's query (~0.3 ms) for nothing
        return _none(frames, policy)
    events = frames.browse.filter(
        pl.col("customer_id").is_not_null() & (pl.col("occurred_at") <= at)
    )
    if events.height == 0:
        return _none(frames, policy)
    looks = events.filter(pl.col("kind").is_in(_LOOKS) & pl.col("product_id").is_not_null())
    last = looks.group_by("customer_id").agg(pl.col("occurred_at").max().alias("last"))
    session = (
        looks.join(last, on="customer_id")
        .filter(pl.col("occurred_at") > pl.col("last") - s.session_hours * HOUR_US)
        .sort(["customer_id", "occurred_at"], descending=[False, True])
        .group_by("customer_id", maintain_order=True)
        .agg(
            pl.col("last").first(),
            pl.col("occurred_at").min().alias("began"),
            pl.col("product_id").unique(maintain_order=True).head(s.max_products).alias("products"),
        )
        .with_columns((pl.col("last") + s.delay_hours * HOUR_US).alias("due"))
        .filter((pl.col("due") <= at) & (at - pl.col("due") <= s.late_hours * HOUR_US))
    )
    if session.height == 0:
        return _none(frames, policy)
    # ordered lately or since, started a checkout since: not this program's turn
    recent = at - s.recent_order_days * DAY_US

    def at_col(frame: pl.DataFrame, column: str, order: bool) -> pl.DataFrame:
        return frame.filter(pl.col(column) <= at).select(
            "customer_id", pl.col(column).alias("then"), pl.lit(order).alias("order")
        )

    activity = pl.concat(
        [
            at_col(frames.orders, "created_at", True),
            at_col(frames.checkouts, "created_at", False),
            at_col(events.filter(pl.col("kind") == "checkout_started"), "occurred_at", False),
        ]
    )
    busy = (
        session.select("customer_id", "began")
        .join(activity, on="customer_id")
        .filter((pl.col("then") >= pl.col("began")) | (pl.col("order") & (pl.col("then") > recent)))
        .get_column("customer_id")
        .unique()
        .implode()
    )
    found = session.filter(~pl.col("customer_id").is_in(busy))
    if found.height == 0:
        return _none(frames, policy)
    found = key_column(found, KIND, frames.shop, pl.col("customer_id"), pl.col("last"))
    if frames.sent is not None and frames.sent.height:
        # another session's reminder holds the customer back; this one's own delivery (a
        # replay at the date it went out) does not
        capped = (
            frames.sent.filter(
                pl.col("key").str.starts_with(f"{KIND}:{frames.shop}:")
                & (pl.col("at") > at - s.cooldown_days * DAY_US)
            )
            .join(found.select("customer_id", pl.col("key").alias("own")), on="customer_id")
            .filter(pl.col("key") != pl.col("own"))
            .get_column("customer_id")
            .unique()
            .implode()
        )
        found = found.filter(~pl.col("customer_id").is_in(capped))
    if found.height == 0:
        return _none(frames, policy)
    frame = found.with_columns(pl.lit(KIND).alias("kind"), pl.lit(True).alias("marketing"))
    return Candidates(frame.sort("customer_id"), _builder(frames, policy))


def browse_next_due(frames: Frames, policy: Policy) -> pl.DataFrame:
    """``customer_id, due``: the earliest moment after ``as_of`` at which time alone can make
    a new browse reminder due (issue 19): the last look plus ``delay_hours``, and the moments
    a rule that holds one lifts (an order older than ``recent_order_days``, a reminder older
    than ``cooldown_days``)."""
    s = policy.browse_abandonment
    at = frames.as_of
    if not s.enabled:
        return soonest([], at)
    looks = frames.browse.lazy().filter(
        pl.col("customer_id").is_not_null()
        & pl.col("kind").is_in(_LOOKS)
        & pl.col("product_id").is_not_null()
    )
    moments = [
        looks.select(
            "customer_id", (pl.col("occurred_at") + s.delay_hours * HOUR_US).alias("moment")
        ),
        frames.orders.lazy().select(
            "customer_id", (pl.col("created_at") + s.recent_order_days * DAY_US).alias("moment")
        ),
    ]
    if frames.sent is not None:
        moments.append(
            frames.sent.lazy()
            .filter(pl.col("key").str.starts_with(f"{KIND}:{frames.shop}:"))
            .select("customer_id", (pl.col("at") + s.cooldown_days * DAY_US).alias("moment"))
        )
    return soonest(moments, at)


def _builder(frames: Frames, policy: Policy) -> Callable[[dict[str, Any]], Action]:
    # the names, not the frames: held actions, built when first read, keep their builder
    platform, shop = frames.platform, frames.shop
    s = policy.browse_abandonment

    def build(row: dict[str, Any]) -> Action:
        last = from_micros(row["last"])
        products = tuple(row["products"])
        return BrowseReminder(
            platform=platform,
            shop=shop,
            customer_id=row["customer_id"],
            due_at=from_micros(row["due"]),
            reason=(
                f"looked at {len(products)} product(s) until {last:%Y-%m-%d %H:%M} UTC and did "
                f"not buy: reminder {s.delay_hours} h later"
            ),
            facts={"last_viewed_at": last.isoformat(), "products": len(products)},
            idempotency_key=row["key"],
            product_ids=products,
        )

    return build


def _none(frames: Frames, policy: Policy) -> Candidates:
    frame = pl.DataFrame(
        schema={
            "customer_id": pl.String,
            "kind": pl.String,
            "due": pl.Int64,
            "key": pl.String,
            "marketing": pl.Boolean,
        }
    )
    return Candidates(frame, _builder(frames, policy))
