"""Abandoned checkouts for an emulated shop (issue 22), at a realistic rate.

Rate: Baymard Institute's documented average online cart abandonment rate is about 70 %
(70.19 % over 49 studies, https://baymard.com/lists/cart-abandonment-rate): for every checkout
that ends in an order about 0.70 / 0.30 = 2.3 are left. The shop's orders of the last
``days`` days set the volume; each abandoned checkout belongs to a customer of the shop (a
sign-up who never ordered as well as a buyer) and holds one to three products at their
catalogue prices. A checkout followed by an order of the same customer within three days is
"recovered" (Shopify lists recovered checkouts too, with ``completedAt``).

Shopify keeps them as :class:`~shopsync.checkouts.Checkout` records with a recovery link of
today's form, ``https://<shop>/<shop number>/checkouts/ac/<cart token>/recover?key=<hex>``,
whose path names the checkout's **cart token**, not its token (see :func:`cart_token`; the
token is :func:`shopsync_shopify._checkouts.emulated_token`); WooCommerce
keeps them as unpaid orders (``pending``, source ``checkout``), which is what its REST API
lists under ``status=pending`` (:mod:`shopsync_woocommerce._checkouts`).

A separate random stream (seeded from ``seed``) leaves the generated shop's own draws as they
were, so adding checkouts changes nothing else.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import random
from decimal import Decimal
from typing import TYPE_CHECKING

from shopsync.checkouts import Checkout, CheckoutLine
from shopsync.models import FinancialStatus, LineItem, Money, Order

if TYPE_CHECKING:
    from shopsync.testing.state import ShopState

__all__ = ["ABANDONMENT_RATE", "add_checkouts", "cart_token", "recovery_url", "shop_number"]

ABANDONMENT_RATE = 0.70
"""Share of started checkouts that are abandoned (Baymard, see the module docstring)."""
_RECOVERY_WINDOW = dt.timedelta(days=3)


def add_checkouts(
    state: ShopState,
    *,
    seed: int = 1,
    rate: float = ABANDONMENT_RATE,
    days: int = 30,
    now: dt.datetime | None = None,
) -> list[str]:
    """Add the abandoned checkouts of the last ``days`` days before ``now`` (default: the
    state's clock) to ``state``; returns their ids (Shopify) or order ids (WooCommerce)."""
    if not 0 <= rate < 1:
        raise ValueError("rate must be in [0, 1)")
    rng = random.Random(f"checkouts:{seed}")
    end = (now or state.clock()).astimezone(dt.timezone.utc)
    start = end - dt.timedelta(days=days)
    with state.lock:
        orders = sorted(state.orders.values(), key=lambda o: (o.created_at, o.id))
        customers = sorted(state.customers.values(), key=lambda c: c.id)
        products = [
            p
            for p in sorted(state.products.values(), key=lambda p: p.id)
            if any(v.price is not None for v in p.variants)
        ]
    recent = [o for o in orders if start <= o.created_at <= end]
    if not customers or not products or not recent:
        return []
    count = round(len(recent) * rate / (1 - rate))
    by_customer: dict[str, list[Order]] = {}
    for o in orders:
        if o.customer_id is not None:
            by_customer.setdefault(o.customer_id, []).append(o)
    made: list[str] = []
    span = (end - start).total_seconds()
    for _ in range(count):
        customer = rng.choice(customers)
        at = start + dt.timedelta(seconds=int(rng.uniform(0, span)))
        picks = rng.sample(products, k=min(len(products), rng.choice((1, 1, 2, 3))))
        lines = []
        for product in picks:
            variant = rng.choice([v for v in product.variants if v.price is not None])
            assert variant.price is not None
            lines.append((product.id, variant.id, product.title, variant.price))
        later = [
            o
            for o in by_customer.get(customer.id, ())
            if at <= o.created_at <= at + _RECOVERY_WINDOW
        ]
        first = min(later, key=lambda o: (o.created_at, o.id)) if later else None
        completed = first.created_at if first is not None else None
        if state.platform == "woocommerce":
            if completed is None:  # a recovered cart is the paid order itself
                made.append(_pending_order(state, customer.id, customer.email, at, lines).id)
            continue
        made.append(_checkout(state, rng, customer.id, customer.email, at, completed, lines).id)
        if first is not None:  # the order names the checkout it came from (checkout_token)
            with state.lock:
                state.order_checkouts.setdefault(first.id, made[-1])
    return made


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_REGIONS = ("gcp-us-east1", "gcp-us-central1")
"""The regions the published cart tokens name (see :func:`cart_token`)."""


def shop_number(shop: str) -> int:
    """The shop's numeric id, as the recovery link's first path segment shows it (eleven
    digits in the published payloads: 59026964593, 68875616470); fixed per shop."""
    return 10**10 + int(hashlib.sha256(shop.encode()).hexdigest(), 16) % (9 * 10**10)


def cart_token(at: dt.datetime, bits: int, region: str = "gcp-us-east1") -> str:
    """A cart token of today's shape: base64 of ``<region>:<ULID>``.

    Evidence: two published ``checkouts/create`` bodies (public test fixtures of two analytics
    connectors, from a pixel-testing store in 2024-11 and a quickstart store in 2024-01) carry
    a 32-hex ``token`` and a distinct ``cart_token`` of 52 and 56 characters that decode to
    ``gcp-us-east1:01JBZ...`` and ``gcp-us-central1:01HKY...`` (a region and a ULID), and
    their ``abandoned_checkout_url`` is ``https://<shop>/<11 digits>/checkouts/ac/<cart_token>
    /recover?key=<hex>&locale=en-US``: the link names the cart token. The ULID here is the
    instant ``at`` (48 bits of milliseconds) and ``bits`` (80 random bits)."""
    value = (int(at.timestamp() * 1000) << 80) | (bits & ((1 << 80) - 1))
    ulid = "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))
    return base64.b64encode(f"{region}:{ulid}".encode()).decode()


def recovery_url(shop: str, cart: str, key: str) -> str:
    """The recovery link of a checkout of ``shop`` with cart token ``cart`` (today's form,
    see :func:`cart_token`; the REST resource's older form was ``/checkouts/<token>/recover``)."""
    return f"https://{shop}/{shop_number(shop)}/checkouts/ac/{cart}/recover?key={key}"


def _money(amount: Decimal, currency: str) -> Money:
    return Money.of(amount, currency)


def _checkout(
    state: ShopState,
    rng: random.Random,
    customer_id: str,
    email: str | None,
    at: dt.datetime,
    completed: dt.datetime | None,
    lines: list[tuple[str, str, str, Money]],
) -> Checkout:
    cur = state.currency
    subtotal = sum((price.amount for *_, price in lines), Decimal(0))
    cid = state.new_id("checkouts")
    # three draws, as before the link named the cart token: every emulated shop keeps its
    # checkouts (and the demo its figures) as they were
    bits = rng.getrandbits(128)
    key = f"{rng.getrandbits(128):032x}"
    cart = cart_token(at, bits, _REGIONS[rng.randrange(10**7, 10**8) % len(_REGIONS)])
    checkout = Checkout(
        platform=state.platform,
        shop=state.shop,
        id=cid,
        customer_id=customer_id,
        email=email,
        created_at=at,
        updated_at=completed or at,
        completed_at=completed,
        recovery_url=recovery_url(state.shop, cart, key),
        currency=cur,
        subtotal=_money(subtotal, cur),
        total=_money(subtotal, cur),
        line_items=tuple(
            CheckoutLine(
                product_id=pid, variant_id=vid, title=title, quantity=Decimal(1), unit_price=price
            )
            for pid, vid, title, price in lines
        ),
    )
    return state.put_checkout(checkout)


def _pending_order(
    state: ShopState,
    customer_id: str,
    email: str | None,
    at: dt.datetime,
    lines: list[tuple[str, str, str, Money]],
) -> Order:
    cur = state.currency
    subtotal = sum((price.amount for *_, price in lines), Decimal(0))
    zero = _money(Decimal(0), cur)
    return state.add_order(
        customer_id=customer_id,
        email=email,
        created_at=at,
        updated_at=at,
        financial_status=FinancialStatus.PENDING,
        currency=cur,
        subtotal=_money(subtotal, cur),
        total_discounts=zero,
        total_shipping=zero,
        total_tax=zero,
        total=_money(subtotal, cur),
        total_refunded=zero,
        source="checkout",
        line_items=tuple(
            LineItem(
                id=state.new_id("line_items"),
                product_id=pid,
                variant_id=vid,
                title=title,
                quantity=Decimal(1),
                unit_price=price,
                total=price,
            )
            for pid, vid, title, price in lines
        ),
    )
