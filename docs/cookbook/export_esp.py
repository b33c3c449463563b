"""Export the customers who may receive marketing email, for an email service provider.

    python export_esp.py sqlite:///shop.db shopify acme.myshopify.com contacts.csv

One row per customer with an email address whose email consent is "subscribed" and who has
not unsubscribed through shopsync's one-click link, with their lifecycle stage, RFM group
and loyalty points for segmenting in the ESP. Nobody else is written.
"""

from __future__ import annotations

import csv
import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import select

import shopsync
from shopsync.models import Customer
from shopsync.store.schema import suppressions

COLUMNS = ["email", "first_name", "last_name", "stage", "rfm_group", "points"]


def reachable(store: shopsync.Store, platform: str, shop: str) -> Iterator[Customer]:
    """Customers whose consent allows marketing email, unsubscribes through shopsync removed."""
    shop_id = store.shop_id(platform, shop, create=False)
    with store.engine.connect() as conn:
        unsubscribed = set(
            conn.execute(
                select(suppressions.c.customer_id).where(
                    suppressions.c.shop_id == shop_id, suppressions.c.channel == "email"
                )
            ).scalars()
        )
    for customer in store.iter(Customer, platform, shop):
        allowed = customer.email and customer.consent.email.allows_marketing
        if allowed and customer.id not in unsubscribed:
            yield customer


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text  # no formulas in Excel


def export(store: shopsync.Store, platform: str, shop: str, path: Path, as_of: dt.datetime) -> int:
    segments = shopsync.metrics.segments(store, platform, shop, as_of)
    by_id = {row["customer_id"]: row for row in segments.iter_rows(named=True)}
    written = 0
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        for customer in reachable(store, platform, shop):
            segment = by_id.get(customer.id, {})
            points = shopsync.loyalty.balance(store, customer).approved
            row = [
                customer.email,
                customer.first_name,
                customer.last_name,
                segment.get("stage"),
                segment.get("rfm_group"),
                points,
            ]
            writer.writerow([_cell(v) for v in row])
            written += 1
    return written


if __name__ == "__main__":
    url, platform, shop, out = sys.argv[1:5]
    with shopsync.Store(url) as store:
        count = export(store, platform, shop, Path(out), dt.datetime.now(dt.timezone.utc))
    print(f"{count} contacts written to {out}")
