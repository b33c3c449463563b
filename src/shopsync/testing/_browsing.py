"""Storefront browse events for an emulated shop (issue 22), as a shop's relay posts them.

Rate: every cart starts with an add to cart, and about 70 % of carts are abandoned (Baymard
Institute's documented average, https://baymard.com/lists/cart-abandonment-rate), so a shop
sees about 1 / (1 - 0.70) = 3.3 carts per order. Each cart here is a ``product_viewed``
followed within minutes by a ``product_added_to_cart`` (Shopify web pixel standard events,
https://shopify.dev/docs/api/web-pixels-api/standard-events), by a customer of the shop, or
by an anonymous visitor as often as the shop's recent orders are guest orders.

The bodies are what :func:`shopsync.events.events_app` takes; sign them with
:func:`shopsync.events.sign`, or let :func:`post_bodies` post them as a shop's relay does
(one signed POST per cart, over HTTP to 127.0.0.1). A separate random stream leaves the
shop's own draws alone.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shopsync.testing._checkouts import ABANDONMENT_RATE

if TYPE_CHECKING:
    from shopsync.testing.state import ShopState

__all__ = ["Posted", "browse_bodies", "post_bodies"]


def browse_bodies(
    state: ShopState,
    *,
    seed: int = 1,
    now: dt.datetime | None = None,
    days: int = 7,
    rate: float = ABANDONMENT_RATE,
) -> list[dict[str, Any]]:
    """One body per cart of the last ``days`` days before ``now`` (default: the state's
    clock), oldest first."""
    if not 0 <= rate < 1:
        raise ValueError("rate must be in [0, 1)")
    rng = random.Random(f"browse:{seed}")
    end = (now or state.clock()).astimezone(dt.timezone.utc)
    start = end - dt.timedelta(days=days)
    with state.lock:
        recent = [o for o in state.orders.values() if start <= o.created_at <= end]
        customers = sorted(state.customers)
        products = sorted(state.products)
    if not recent or not products:
        return []
    guests = sum(o.customer_id is None for o in recent) / len(recent)
    carts = round(len(recent) / (1 - rate))
    span = (end - start).total_seconds()
    bodies: list[dict[str, Any]] = []
    for n in range(carts):
        at = start + dt.timedelta(seconds=int(rng.uniform(0, span - 600)))
        anonymous = not customers or rng.random() < guests
        customer = None if anonymous else rng.choice(customers)
        visitor = f"anon-{n}" if customer is None else f"c-{customer}"
        product = rng.choice(products)
        data = {"productVariant": {"product": {"id": product}}}
        added = at + dt.timedelta(seconds=rng.randint(20, 600))
        bodies.append(
            {
                "shop": state.shop,
                "customer_id": customer,
                "events": [
                    {
                        "id": f"view-{seed}-{n}",
                        "name": "product_viewed",
                        "timestamp": at.isoformat(),
                        "clientId": visitor,
                        "data": data,
                    },
                    {
                        "id": f"add-{seed}-{n}",
                        "name": "product_added_to_cart",
                        "timestamp": added.isoformat(),
                        "clientId": visitor,
                        "data": {"cartLine": {"merchandise": {"product": {"id": product}}}},
                    },
                ],
            }
        )
    bodies.sort(key=lambda b: b["events"][0]["timestamp"])
    return bodies


@dataclass(frozen=True)
class Posted:
    """What a relay's posts came to: bodies sent, events the endpoint stored, already held
    or capped, bodies it refused (any 4xx but a 429), and bodies of identified visitors."""

    bodies: int = 0
    stored: int = 0
    duplicates: int = 0
    capped: int = 0
    refused: int = 0
    identified: int = 0


def post_bodies(
    bodies: Sequence[dict[str, Any]], url: str, secret: str, *, timeout: float = 10
) -> Posted:
    """POST each body to the event endpoint at ``url`` (loopback only), signed with
    ``secret`` as :mod:`shopsync.events` expects, one request per cart as a web pixel's
    relay sends them."""
    from shopsync.events import sign

    if urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("browse events are posted to a loopback endpoint only")
    stored = duplicates = capped = refused = 0
    for body in bodies:
        raw = json.dumps(body).encode()
        request = urllib.request.Request(
            url,
            data=raw,
            method="POST",
            headers={"Content-Type": "application/json", "X-Shopsync-Signature": sign(secret, raw)},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                counts = json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            if exc.code != 429:
                refused += 1
                continue
            counts = json.loads(exc.read())
        stored += int(counts.get("stored", 0))
        duplicates += int(counts.get("duplicates", 0))
        capped += int(counts.get("capped", 0))
    identified = sum(b.get("customer_id") is not None for b in bodies)
    return Posted(len(bodies), stored, duplicates, capped, refused, identified)
