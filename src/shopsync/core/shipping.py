"""The shipping notice: "thank you, your order has shipped", with the parcel's tracking link.

The rule (docs/programs.md, "Shipping notice"; settings ``[shipping]``):

- **off where the platform already sends one**: Shopify sends its Shipping confirmation and
  WooCommerce its Completed order email, so ``shipping.platform_sends`` lists both and no
  notice is planned for their shops until the merchant says the platform does not;
- **which shipments**: each successful fulfilment (not cancelled, failed or in error) of an
  order of a known customer, not cancelled by ``as_of``, not delivered yet (a parcel that has
  arrived needs no tracking link), one notice each: key
  ``shipping_notice:{shop}:{order}:{fulfillment}``;
- **the link** (:func:`shopsync.core.carriers.tracking_links`): the platform's URL, else one
  built from the carrier and the number, else none;
- **when**: ``delay_hours`` after the shipment; a shipment without a link waits up to
  ``tracking_wait_hours`` for one (the sync brings a number added later), then is sent saying
  plainly that there is no tracking link (``without_link = "send"``) or dropped (``"skip"``);
  a notice more than ``max_late_hours`` past its due date is dropped. A notice sent without a
  link is not sent again when a link arrives later (its key is done).

Transactional (:class:`~shopsync.core.aftercare_actions.ShippingNotice`): consent, the holdout,
quiet hours and the frequency cap do not hold it, and an unsubscribe from marketing does not
stop it (docs/programs.md says why).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import polars as pl

from shopsync.core._candidates import Candidates, key_column, soonest
from shopsync.core._data import Frames
from shopsync.core.actions import Action
from shopsync.core.aftercare_actions import ShippingNotice
from shopsync.core.carriers import tracking_links
from shopsync.core.loyalty import from_micros
from shopsync.core.policy import Policy
from shopsync.core.policy_shipping import ShippingSettings

__all__ = [
    "lookback_hours",
    "runs_for",
    "shipping_candidates",
    "shipping_next_due",
    "shipping_notices",
]

HOUR_US = 3_600_000_000
_FAILED = ("cancelled", "canceled", "failure", "error")
_SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.String(),
    "kind": pl.String(),
    "due": pl.Int64(),
    "key": pl.String(),
    "marketing": pl.Boolean(),
    "order_id": pl.String(),
    "fulfillment_id": pl.String(),
    "carrier": pl.String(),
    "numbers": pl.List(pl.String()),
    "links": pl.List(pl.String()),
    "source": pl.String(),
}


def lookback_hours(settings: ShippingSettings) -> int:
    """How far back a shipment can still be announced: what the plan reads the tracking of."""
    return settings.delay_hours + settings.tracking_wait_hours + settings.max_late_hours + 1


def runs_for(policy: Policy, platform: str) -> bool:
    """Whether the program plans anything for a shop of ``platform``."""
    s = policy.shipping
    return s.enabled and not s.platform_sends.get(platform, False)


def shipments_since(policy: Policy, platform: str, as_of: dt.datetime) -> dt.datetime | None:
    """The ``shipments_since`` a plan of a ``platform`` shop loads its frames with (None: the
    program plans nothing there, so no tracking is read)."""
    if not runs_for(policy, platform):
        return None
    return as_of - dt.timedelta(hours=lookback_hours(policy.shipping))


def shipping_notices(frames: Frames, policy: Policy) -> list[Action]:
    return shipping_candidates(frames, policy).actions()


def shipping_candidates(frames: Frames, policy: Policy) -> Candidates:
    """The shipping notices due at ``frames.as_of``."""
    s = policy.shipping
    build = _builder(frames)
    if not runs_for(policy, frames.platform) or frames.shipments.height == 0:
        return Candidates(pl.DataFrame(schema=_SCHEMA), build)
    at = frames.as_of
    late = s.max_late_hours * HOUR_US
    orders = (
        frames.orders.lazy()
        .select(pl.col("id").alias("order_id"), "customer_id", "cancelled_at")
        .join(frames.shipments.lazy().select("order_id"), on="order_id", how="semi")
        .filter(pl.col("cancelled_at").is_null() | (pl.col("cancelled_at") > at))
        .select("order_id", "customer_id")
        .collect(engine="in-memory")
    )
    ships = (
        frames.shipments.filter(
            (pl.col("created_at") <= at)
            & ~pl.col("status").str.to_lowercase().is_in(_FAILED)
            & (pl.col("delivered_at").is_null() | (pl.col("delivered_at") > at))
        )
        .join(orders, on="order_id")
        .sort(["customer_id", "created_at", "order_id", "id"])
    )
    rows: list[dict[str, Any]] = []
    for r in ships.iter_rows(named=True):
        link = tracking_links(
            r["tracking_company"], r["tracking_numbers"], r["tracking_urls"], s.carrier_urls
        )
        due = r["created_at"] + s.delay_hours * HOUR_US
        if link.source == "none":
            if s.without_link == "skip":
                continue
            due = r["created_at"] + max(s.delay_hours, s.tracking_wait_hours) * HOUR_US
        if due > at or at - due > late:
            continue
        rows.append(
            {
                "customer_id": r["customer_id"],
                "kind": "shipping_notice",
                "due": due,
                "key": "",
                "marketing": False,
                "order_id": r["order_id"],
                "fulfillment_id": r["id"],
                "carrier": r["tracking_company"],
                "numbers": list(r["tracking_numbers"]),
                "links": list(link.urls),
                "source": link.source,
            }
        )
    found = pl.DataFrame(rows, schema=_SCHEMA).drop("key")
    found = key_column(
        found, "shipping_notice", frames.shop, pl.col("order_id"), pl.col("fulfillment_id")
    )
    return Candidates(found.select(list(_SCHEMA)), build)


def shipping_next_due(frames: Frames, policy: Policy) -> pl.DataFrame:
    """``customer_id, due``: the earliest moment after ``as_of`` at which time alone can make
    a new shipping notice due (issue 19): a shipment's date plus ``delay_hours`` (or plus the
    wait for a tracking link). Read from every shipment, not only the recent ones whose
    tracking :attr:`Frames.shipments` holds."""
    s = policy.shipping
    at = frames.as_of
    if not runs_for(policy, frames.platform):
        return soonest([], at)
    ships = frames.fulfillments.lazy().join(
        frames.orders.lazy().select(pl.col("id").alias("order_id"), "customer_id"), on="order_id"
    )
    return soonest(
        [
            ships.select("customer_id", (pl.col("created_at") + hours * HOUR_US).alias("moment"))
            for hours in {s.delay_hours, max(s.delay_hours, s.tracking_wait_hours)}
        ],
        at,
    )


def _builder(frames: Frames) -> Callable[[dict[str, Any]], Action]:
    base = {"platform": frames.platform, "shop": frames.shop}

    def build(row: dict[str, Any]) -> Action:
        links = tuple(row["links"])
        numbers = tuple(row["numbers"])
        carrier = row["carrier"]
        by = f" with {carrier}" if carrier else ""
        said = "here is its tracking link" if links else "no tracking link is known"
        return ShippingNotice(
            **base,
            customer_id=row["customer_id"],
            due_at=from_micros(row["due"]),
            reason=f"order {row['order_id']} has shipped{by}; {said}",
            facts={
                "order_id": row["order_id"],
                "fulfillment_id": row["fulfillment_id"],
                "carrier": carrier or "",
                "tracking_number": numbers[0] if numbers else "",
                "tracking_url": links[0] if links else "",
                "link_source": row["source"],
                "tracking_numbers": list(numbers),
                "tracking_urls": list(links),
            },
            idempotency_key=row["key"],
            order_id=row["order_id"],
            fulfillment_id=row["fulfillment_id"],
            carrier=carrier,
            tracking_numbers=numbers,
            tracking_urls=links,
            link_source=row["source"],
        )

    return build
