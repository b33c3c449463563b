"""Conversions between the shared models and store rows (and back)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    Text,
    any_,
    cast,
    func,
    literal,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection

from shopsync._currencies import EXPONENTS
from shopsync.models import (
    Address,
    Consent,
    Customer,
    DiscountApplication,
    FeeLine,
    Fulfillment,
    FulfillmentLine,
    LineItem,
    MarketingConsent,
    Money,
    Order,
    Product,
    Refund,
    RefundLine,
    TaxLine,
    Variant,
    quantity_from_units,
)
from shopsync.store import content_hash as _content
from shopsync.store.schema import MONEY_SCALE, QUANTITY_SCALE
from shopsync.store.times import from_micros as from_micros
from shopsync.store.times import opt_micros as opt_micros
from shopsync.store.times import to_micros as to_micros

_UNIT = Decimal(10) ** MONEY_SCALE
_QUANTITY_UNIT = Decimal(10) ** QUANTITY_SCALE


def among(conn: Connection, column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """``column IN (values)``; on PostgreSQL ``column = ANY(one array)``.

    An IN list is one bind per value: SQLAlchemy renders and psycopg parses a new statement
    of hundreds of parameters per page (too long for psycopg's statement cache), which cost
    more than the lookup itself (issue 20: about half of an upsert's reads). One array
    parameter keeps the statement text constant, so psycopg prepares it once per connection.
    """
    if conn.dialect.name == "postgresql":
        return column == any_(text_array(values, column.type))  # type: ignore[no-any-return]
    if conn.dialect.name == "sqlite" and all(type(v) is str for v in values):
        # SQLite: the values as one JSON array (``json_each``), for the same reason: an IN
        # list cost SQLAlchemy about 25 us per value to render (issue 20: a third of a
        # bulk page's write). Only plain ASCII text, so the JSON text holds no escape that
        # SQLite could read otherwise than the driver binds it.
        text = json.dumps(list(values))
        if "\\" not in text:
            found: Select[Any] = select(literal_column("value")).select_from(
                func.json_each(literal(text))
            )
            return column.in_(found)  # type: ignore[no-any-return]
    return column.in_(values)  # type: ignore[no-any-return]


def text_array(values: Sequence[Any], item_type: Any) -> ColumnElement[Any]:
    """A PostgreSQL array of ``item_type`` holding ``values``: strings go as one array literal
    the server parses (psycopg's list dumper checks and quotes each item in Python, about a
    microsecond an id: 4-6 us an order across a page's lookups, issue 20); anything else as
    a list."""
    if isinstance(item_type, String) and item_type.length is not None:
        item_type = String()  # a cast to VARCHAR(255)[] would cut a longer id to match another
    written = array_literal(values)
    if written is None:
        return literal(list(values), ARRAY(item_type))
    return cast(literal(written, Text()), ARRAY(item_type))


def array_literal(values: Sequence[Any]) -> str | None:
    """PostgreSQL's text of an array of the strings ``values`` (``{"a","b"}``), for a
    parameter cast to an array in the statement; None unless every value is a ``str``
    without a NUL (:func:`text_array` and :func:`array_param` then send a list)."""
    if not set(map(type, values)) <= {str}:
        return None
    joined = "\x00".join(values)
    # no PostgreSQL text holds a NUL: a safe separator, unless an id holds one (then psycopg
    # refuses it, as any text parameter holding one, rather than it match two other ids)
    if values and joined.count("\x00") != len(values) - 1:
        return None
    if "\\" in joined or '"' in joined:
        joined = joined.replace("\\", "\\\\").replace('"', '\\"')
    body = '"' + joined.replace("\x00", '","') + '"' if values else ""
    return "{" + body + "}"


def array_param(values: Sequence[Any]) -> str | list[Any]:
    """A plain statement's parameter for an array of ``values`` (cast to one in the
    statement): :func:`array_literal`'s text, else the list (psycopg dumps each item)."""
    written = array_literal(values)
    return list(values) if written is None else written


def digest(record: Customer | Order | Product) -> str:
    """A fingerprint of a record's content: tells two versions with one ``updated_at`` apart.
    An order's is the hash of its store rows (:mod:`shopsync.store.content_hash`)."""
    if isinstance(record, Order):
        return str(order_rows(0, record)["orders"][0]["content_hash"])
    return legacy_digest(record)


def legacy_digest(record: Customer | Order | Product) -> str:
    """The hash of the model's JSON (revision 0005; still that of customers and products)."""
    return hashlib.blake2b(record.model_dump_json().encode(), digest_size=16).hexdigest()


def matches(stored: str | None, record: Customer | Order | Product) -> bool:
    """Whether ``stored`` is the hash of ``record``'s content, in whichever version it was
    written (an order stored by an older shopsync carries the legacy hash)."""
    if isinstance(record, Order) and _content.is_legacy(stored):
        return stored == legacy_digest(record)
    return stored == digest(record)


def to_units(money: Money | None) -> int | None:
    """Ten-thousandths of the currency unit; exact because Money allows 4 places at most."""
    return None if money is None else int(money.amount * _UNIT)


def from_units(value: int | None, currency: str) -> Money | None:
    if value is None:
        return None
    amount = Decimal(value) / _UNIT
    # Show the amount at the currency's own precision when that is exact (19.9900 -> 19.99).
    step = Decimal(1).scaleb(-EXPONENTS[currency])
    if amount == amount.quantize(step):
        amount = amount.quantize(step)
    return Money(amount=amount, currency=currency)


def to_quantity_units(quantity: Decimal) -> int:
    """Ten-thousandths of a unit; exact because a Quantity allows 4 places at most."""
    return int(quantity * _QUANTITY_UNIT)


def from_quantity_units(value: int) -> Decimal:
    """The quantity back, whole ones as whole numbers (20000 -> 2, 15000 -> 1.5)."""
    return quantity_from_units(value)


def _money(value: int, currency: str) -> Money:
    money = from_units(value, currency)
    assert money is not None
    return money


def _address(value: dict[str, Any] | None) -> Address | None:
    return None if value is None else Address.model_validate(value)


def _dump(model: Address | None) -> dict[str, Any] | None:
    return None if model is None else model.model_dump(mode="json")


# -- customers -------------------------------------------------------------------------


def customer_row(shop_id: int, c: Customer) -> dict[str, Any]:
    return {
        "shop_id": shop_id,
        "id": c.id,
        "email": c.email,
        "phone": c.phone,
        "first_name": c.first_name,
        "last_name": c.last_name,
        "created_at": to_micros(c.created_at),
        "updated_at": to_micros(c.updated_at),
        "content_hash": digest(c),
        "tags": list(c.tags),
        "email_consent": c.consent.email.state.value,
        "email_opt_in": c.consent.email.opt_in_level.value,
        "email_consent_at": opt_micros(c.consent.email.updated_at),
        "sms_consent": c.consent.sms.state.value,
        "sms_opt_in": c.consent.sms.opt_in_level.value,
        "sms_consent_at": opt_micros(c.consent.sms.updated_at),
        "birthday": c.birthday.isoformat() if c.birthday else None,
        "default_address": _dump(c.default_address),
        "orders_count": c.orders_count,
        "total_spent": to_units(c.total_spent),
        "total_spent_currency": c.total_spent.currency if c.total_spent else None,
    }


def consent_rows(shop_id: int, c: Customer) -> list[dict[str, Any]]:
    observed = to_micros(c.updated_at)
    return [
        {
            "shop_id": shop_id,
            "customer_id": c.id,
            "channel": channel,
            "observed_at": observed,
            "state": consent.state.value,
            "opt_in_level": consent.opt_in_level.value,
            "consent_updated_at": opt_micros(consent.updated_at),
        }
        for channel, consent in (("email", c.consent.email), ("sms", c.consent.sms))
    ]


def customer_from_row(platform: str, shop: str, r: Any) -> Customer:
    return Customer(
        platform=platform,
        shop=shop,
        id=r.id,
        email=r.email,
        phone=r.phone,
        first_name=r.first_name,
        last_name=r.last_name,
        created_at=from_micros(r.created_at),
        updated_at=from_micros(r.updated_at),
        tags=tuple(r.tags),
        consent=Consent(
            email=MarketingConsent(
                state=r.email_consent,
                opt_in_level=r.email_opt_in,
                updated_at=from_micros(r.email_consent_at),
            ),
            sms=MarketingConsent(
                state=r.sms_consent,
                opt_in_level=r.sms_opt_in,
                updated_at=from_micros(r.sms_consent_at),
            ),
        ),
        birthday=dt.date.fromisoformat(r.birthday) if r.birthday else None,
        default_address=_address(r.default_address),
        orders_count=r.orders_count,
        total_spent=from_units(r.total_spent, r.total_spent_currency)
        if r.total_spent_currency
        else None,
    )


# -- orders ----------------------------------------------------------------------------


def order_rows(shop_id: int, o: Order) -> dict[str, list[dict[str, Any]]]:
    """The order's row and its child rows, keyed by table name."""
    key = {"shop_id": shop_id, "order_id": o.id}
    tables: dict[str, list[dict[str, Any]]] = {
        "orders": [
            {
                "shop_id": shop_id,
                "id": o.id,
                "name": o.name,
                "customer_id": o.customer_id,
                "email": o.email,
                "created_at": to_micros(o.created_at),
                "updated_at": to_micros(o.updated_at),
                "content_hash": None,
                "processed_at": opt_micros(o.processed_at),
                "paid_at": opt_micros(o.paid_at),
                "cancelled_at": opt_micros(o.cancelled_at),
                "closed_at": opt_micros(o.closed_at),
                "financial_status": o.financial_status.value,
                "fulfillment_status": o.fulfillment_status.value,
                "currency": o.currency,
                "subtotal": to_units(o.subtotal),
                "total_discounts": to_units(o.total_discounts),
                "total_shipping": to_units(o.total_shipping),
                "total_tax": to_units(o.total_tax),
                "total": to_units(o.total),
                "total_refunded": to_units(o.total_refunded),
                "discount_codes": list(o.discount_codes),
                "source": o.source,
                "tags": list(o.tags),
                "billing_address": _dump(o.billing_address),
                "shipping_address": _dump(o.shipping_address),
                "test": o.test,
                "taxes_included": o.taxes_included,
                "cancel_reason": o.cancel_reason,
                "total_tip": to_units(o.total_tip),
                "total_duties": to_units(o.total_duties),
                "tax_lines": [x.model_dump(mode="json") for x in o.tax_lines],
                "discount_applications": [
                    x.model_dump(mode="json") for x in o.discount_applications
                ],
                "fee_lines": [x.model_dump(mode="json") for x in o.fee_lines],
                "refunds_complete": o.refunds_complete,
            }
        ],
        "line_items": [
            {
                **key,
                "id": li.id,
                "position": i,
                "product_id": li.product_id,
                "variant_id": li.variant_id,
                "sku": li.sku,
                "title": li.title,
                "product_type": li.product_type,
                "quantity": to_quantity_units(li.quantity),
                "unit_price": to_units(li.unit_price),
                "total_discount": to_units(li.total_discount),
                "total": to_units(li.total),
                "refunded_quantity": to_quantity_units(li.refunded_quantity),
            }
            for i, li in enumerate(o.line_items)
        ],
        "refunds": [
            {
                **key,
                "id": rf.id,
                "position": i,
                "created_at": to_micros(rf.created_at),
                "amount": to_units(rf.amount),
                "note": rf.note,
                "lines": [line.model_dump(mode="json") for line in rf.lines],
            }
            for i, rf in enumerate(o.refunds)
        ],
        "fulfillments": [
            {
                **key,
                "id": f.id,
                "position": i,
                "created_at": to_micros(f.created_at),
                "status": f.status,
                "tracking_company": f.tracking_company,
                "tracking_numbers": list(f.tracking_numbers),
                "tracking_urls": list(f.tracking_urls),
                "delivered_at": opt_micros(f.delivered_at),
                "lines": [line.model_dump(mode="json") for line in f.lines],
            }
            for i, f in enumerate(o.fulfillments)
        ],
    }
    tables["orders"][0]["content_hash"] = _content.order_hash(tables)
    return tables


def order_from_rows(
    platform: str,
    shop: str,
    r: Any,
    lines: list[Any],
    refunds: list[Any],
    fulfillments: list[Any],
) -> Order:
    cur = r.currency
    return Order(
        platform=platform,
        shop=shop,
        id=r.id,
        name=r.name,
        customer_id=r.customer_id,
        email=r.email,
        created_at=from_micros(r.created_at),
        updated_at=from_micros(r.updated_at),
        processed_at=from_micros(r.processed_at),
        paid_at=from_micros(r.paid_at),
        cancelled_at=from_micros(r.cancelled_at),
        closed_at=from_micros(r.closed_at),
        financial_status=r.financial_status,
        fulfillment_status=r.fulfillment_status,
        currency=cur,
        subtotal=_money(r.subtotal, cur),
        total_discounts=_money(r.total_discounts, cur),
        total_shipping=_money(r.total_shipping, cur),
        total_tax=_money(r.total_tax, cur),
        total=_money(r.total, cur),
        total_refunded=_money(r.total_refunded, cur),
        line_items=tuple(
            LineItem(
                id=li.id,
                product_id=li.product_id,
                variant_id=li.variant_id,
                sku=li.sku,
                title=li.title,
                product_type=li.product_type,
                quantity=from_quantity_units(li.quantity),
                unit_price=_money(li.unit_price, cur),
                total_discount=from_units(li.total_discount, cur),
                total=_money(li.total, cur),
                refunded_quantity=from_quantity_units(li.refunded_quantity),
            )
            for li in sorted(lines, key=lambda x: x.position)
        ),
        refunds=tuple(
            Refund(
                id=rf.id,
                created_at=from_micros(rf.created_at),
                amount=_money(rf.amount, cur),
                note=rf.note,
                lines=tuple(RefundLine.model_validate(x) for x in rf.lines),
            )
            for rf in sorted(refunds, key=lambda x: x.position)
        ),
        fulfillments=tuple(
            Fulfillment(
                id=f.id,
                created_at=from_micros(f.created_at),
                status=f.status,
                tracking_company=f.tracking_company,
                tracking_numbers=tuple(f.tracking_numbers),
                tracking_urls=tuple(f.tracking_urls),
                delivered_at=from_micros(f.delivered_at),
                lines=tuple(FulfillmentLine.model_validate(x) for x in f.lines),
            )
            for f in sorted(fulfillments, key=lambda x: x.position)
        ),
        discount_codes=tuple(r.discount_codes),
        source=r.source,
        tags=tuple(r.tags),
        billing_address=_address(r.billing_address),
        shipping_address=_address(r.shipping_address),
        test=bool(r.test),
        taxes_included=None if r.taxes_included is None else bool(r.taxes_included),
        cancel_reason=r.cancel_reason,
        total_tip=from_units(r.total_tip, cur),
        total_duties=from_units(r.total_duties, cur),
        # None: a row stored before revision 0009, which knew of none.
        tax_lines=tuple(TaxLine.model_validate(x) for x in r.tax_lines or ()),
        discount_applications=tuple(
            DiscountApplication.model_validate(x) for x in r.discount_applications or ()
        ),
        fee_lines=tuple(FeeLine.model_validate(x) for x in r.fee_lines or ()),
        refunds_complete=bool(r.refunds_complete),
    )


# -- products --------------------------------------------------------------------------


def product_row(shop_id: int, p: Product) -> dict[str, Any]:
    return {
        "shop_id": shop_id,
        "id": p.id,
        "title": p.title,
        "product_type": p.product_type,
        "vendor": p.vendor,
        "tags": list(p.tags),
        "categories": list(p.categories),
        "status": p.status,
        "created_at": to_micros(p.created_at),
        "updated_at": to_micros(p.updated_at),
        "content_hash": digest(p),
        "variants": [v.model_dump(mode="json") for v in p.variants],
    }


def product_from_row(platform: str, shop: str, r: Any) -> Product:
    return Product(
        platform=platform,
        shop=shop,
        id=r.id,
        title=r.title,
        product_type=r.product_type,
        vendor=r.vendor,
        tags=tuple(r.tags),
        categories=tuple(r.categories),
        status=r.status,
        created_at=from_micros(r.created_at),
        updated_at=from_micros(r.updated_at),
        variants=tuple(Variant.model_validate(v) for v in r.variants),
    )
