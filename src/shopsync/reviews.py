"""Reviews customers wrote, recorded in the store so review requests can respect them.

Shopify and WooCommerce keep product reviews in apps (Judge.me, Yotpo, the WooCommerce
product reviews), not in the records shopsync syncs, so they come in through this module:
:func:`record` one at a time (say, from a review app's webhook) or :func:`import_rows` /
:func:`import_csv` in bulk. A review stops the reminder of the request that asked for it
and keeps the product out of that customer's requests for ``reviews.same_product_months``;
writing or referring a friend also makes the customer an *ambassador* in the lifecycle
stages. Recording the same review twice (same ``review_id``, or the same customer, product
and time) changes nothing.

Example::

    shopsync.reviews.record(store, "shopify", "acme.myshopify.com", customer_id="123",
                            product_id="456", reviewed_at=when, rating=5, review_id="jm-991")
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shopsync.core.loyalty import source_key
from shopsync.store import Store, times
from shopsync.store.review_rows import insert_reviews, review_rows

__all__ = ["Review", "import_csv", "import_rows", "list_reviews", "record"]


@dataclass(frozen=True)
class Review:
    customer_id: str
    product_id: str
    reviewed_at: dt.datetime
    order_id: str | None
    rating: int | None
    source: str
    key: str


def _row(
    shop_id: int,
    customer_id: Any,
    product_id: Any,
    reviewed_at: Any,
    order_id: Any = None,
    rating: Any = None,
    review_id: Any = None,
    source: Any = "manual",
) -> dict[str, Any]:
    if not customer_id or not str(customer_id).strip():
        raise ValueError("a review needs a customer_id")
    if not product_id or not str(product_id).strip():
        raise ValueError("a review needs a product_id")
    if isinstance(reviewed_at, str):
        reviewed_at = dt.datetime.fromisoformat(reviewed_at.replace("Z", "+00:00"))
    if not isinstance(reviewed_at, dt.datetime) or reviewed_at.utcoffset() is None:
        raise ValueError("reviewed_at must be a timezone-aware datetime (or ISO text with offset)")
    if rating not in (None, ""):
        rating = int(rating)
        if not 1 <= rating <= 5:
            raise ValueError(f"rating must be 1 to 5, got {rating}")
    else:
        rating = None
    at = times.to_micros(reviewed_at.astimezone(dt.timezone.utc))
    cid, pid = str(customer_id).strip(), str(product_id).strip()
    key = source_key("review", review_id) if review_id else source_key("review", cid, pid, at)
    return {
        "shop_id": shop_id,
        "key": key,
        "customer_id": cid,
        "product_id": pid,
        "order_id": str(order_id) if order_id not in (None, "") else None,
        "rating": rating,
        "reviewed_at": at,
        "source": str(source or "manual")[:64],
    }


def record(
    store: Store,
    platform: str,
    shop: str,
    customer_id: str,
    product_id: str,
    reviewed_at: dt.datetime,
    *,
    order_id: str | None = None,
    rating: int | None = None,
    review_id: str | None = None,
    source: str = "manual",
) -> bool:
    """Record one review; True if it was new. Raises ValueError on a malformed review."""
    shop_id = store.shop_id(platform, shop)
    row = _row(shop_id, customer_id, product_id, reviewed_at, order_id, rating, review_id, source)
    return insert_reviews(store, [row]) == 1


def import_rows(
    store: Store,
    platform: str,
    shop: str,
    rows: Iterable[Mapping[str, Any]],
    *,
    source: str = "import",
) -> int:
    """Record many reviews (mappings with customer_id, product_id, reviewed_at and optionally
    order_id, rating, review_id); returns how many were new. A malformed row raises
    ValueError naming its position, and nothing is written."""
    shop_id = store.shop_id(platform, shop)
    prepared = []
    for number, item in enumerate(rows, start=1):
        try:
            prepared.append(
                _row(
                    shop_id,
                    item.get("customer_id"),
                    item.get("product_id"),
                    item.get("reviewed_at"),
                    item.get("order_id"),
                    item.get("rating"),
                    item.get("review_id"),
                    item.get("source") or source,
                )
            )
        except (ValueError, TypeError) as exc:
            raise ValueError(f"review row {number}: {exc}") from None
    return insert_reviews(store, prepared)


def import_csv(store: Store, platform: str, shop: str, path: str | Path) -> int:
    """:func:`import_rows` from a CSV file with a header row naming those columns."""
    with open(path, newline="", encoding="utf-8") as handle:
        return import_rows(store, platform, shop, list(csv.DictReader(handle)), source="csv")


def list_reviews(
    store: Store, platform: str, shop: str, customer_id: str | None = None
) -> list[Review]:
    rows = review_rows(store, store.shop_id(platform, shop), customer_id)
    return [Review(*row) for row in rows]
