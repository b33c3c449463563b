"""Hand-built customers and orders for the retention program tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from shopsync.models import (
    Address,
    Consent,
    ConsentState,
    Customer,
    FinancialStatus,
    Fulfillment,
    FulfillmentStatus,
    LineItem,
    MarketingConsent,
    Money,
    Order,
    Product,
    Refund,
)

P, S = "shopify", "acme"
T0 = dt.datetime(2024, 3, 1, 12, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)


def customer(cid: str, consent: str = "subscribed", created: dt.datetime | None = None) -> Customer:
    at = created or T0 - 400 * DAY
    return Customer(
        platform=P,
        shop=S,
        id=cid,
        email=f"{cid}@example.com",
        created_at=at,
        updated_at=at,
        consent=Consent(email=MarketingConsent(state=ConsentState(consent))),
    )


def product(pid: str, ptype: str | None = None, tags: tuple[str, ...] = ()) -> Product:
    return Product(
        platform=P,
        shop=S,
        id=pid,
        title=f"Product {pid}",
        product_type=ptype,
        tags=tags,
        status="active",
        created_at=T0 - 900 * DAY,
        updated_at=T0 - 900 * DAY,
    )


def order(
    oid: str,
    cid: str | None,
    at: dt.datetime,
    lines: list[tuple[str, int, str]] | None = None,
    *,
    ptype: str | None = None,
    sku: str | None = None,
    fulfilled: dt.datetime | bool | None = True,
    delivered: dt.datetime | None = None,
    cancelled: dt.datetime | None = None,
    refund: tuple[dt.datetime, str] | None = None,
    returned: dict[str, int] | None = None,
    country: str | None = None,
    status: FinancialStatus = FinancialStatus.PAID,
) -> Order:
    """``lines``: (product_id, quantity, unit price)."""
    lines = lines or [("p1", 1, "20")]
    m = lambda a: Money.of(Decimal(a), "USD")  # noqa: E731
    items = []
    total = Decimal(0)
    for i, (pid, qty, price) in enumerate(lines):
        line_total = Decimal(price) * qty
        total += line_total
        items.append(
            LineItem(
                id=f"{oid}-{i}",
                product_id=pid,
                sku=sku,
                title=pid,
                product_type=ptype,
                quantity=qty,
                unit_price=m(price),
                total=m(str(line_total)),
                refunded_quantity=(returned or {}).get(pid, 0),
            )
        )
    fulfillments = ()
    fstatus = FulfillmentStatus.UNFULFILLED
    if fulfilled:
        when = at + DAY if fulfilled is True else fulfilled
        assert isinstance(when, dt.datetime)
        fulfillments = (Fulfillment(id=f"f{oid}", created_at=when, delivered_at=delivered),)
        fstatus = FulfillmentStatus.FULFILLED
    refunds = ()
    refunded = Decimal(0)
    if refund is not None:
        refunds = (Refund(id=f"r{oid}", created_at=refund[0], amount=m(refund[1])),)
        refunded = Decimal(refund[1])
    fields: dict[str, Any] = dict(
        platform=P,
        shop=S,
        id=oid,
        customer_id=cid,
        created_at=at,
        updated_at=max(
            [at, *(f.created_at for f in fulfillments), *(r.created_at for r in refunds)]
        ),
        paid_at=at,
        cancelled_at=cancelled,
        financial_status=status,
        fulfillment_status=fstatus,
        currency="USD",
        subtotal=m(str(total)),
        total_discounts=m("0"),
        total_shipping=m("0"),
        total_tax=m("0"),
        total=m(str(total)),
        total_refunded=m(str(refunded)),
        line_items=tuple(items),
        fulfillments=fulfillments,
        refunds=refunds,
        shipping_address=Address(country_code=country) if country else None,
    )
    return Order(**fields)


def kinds(plan: Any, customer_id: str | None = None) -> list[str]:
    return sorted(a.kind for a in plan if customer_id is None or a.customer_id == customer_id)


def policy(**sections: Any) -> Any:
    """A policy with loyalty and the holdout off, so a test sees one program at a time."""
    from shopsync.core.policy import Policy

    data: dict[str, Any] = {"loyalty": {"enabled": False}, "holdout": {"share": 0}}
    for name, value in sections.items():
        data[name] = {**data.get(name, {}), **value}
    return Policy.from_dict(data)
