"""A signed Shopify webhook delivery handed to :func:`shopsync.webhooks.handle`."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from shopsync_shopify.webhooks import sign

from shopsync import webhooks
from shopsync.store import Store

SECRET = "s3cret"


def deliver(
    store: Store,
    topic: str,
    payload: dict[str, Any],
    n: int,
    *,
    shop: str,
    t0: dt.datetime,
    shops: set[str] | None = None,
) -> Any:
    """Delivery ``n`` of ``topic``: its id ``delivery-n``, triggered and handled ``n`` hours
    after ``t0``."""
    raw = json.dumps(payload).encode()
    at = t0 + dt.timedelta(hours=n)
    headers = {
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-Hmac-Sha256": sign(SECRET, raw),
        "X-Shopify-Webhook-Id": f"delivery-{n}",
        "X-Shopify-Triggered-At": at.isoformat(),
    }
    return webhooks.handle("shopify", headers, raw, store, SECRET, shops=shops, now=at)
