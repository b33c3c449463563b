"""WooCommerce REST (wc/v3) JSON -> shopsync's shared models.

The mapping is strict about what it cannot know and lenient about what WooCommerce is known to
emit. Anything it cannot turn into a model raises :class:`~shopsync.errors.InvalidRecordError`
naming the field, so the adapter can quarantine that one record and read on.

Order statuses (core WooCommerce and block checkout) map to the shared statuses like this:

=================  ====================================  ==========================
WooCommerce        financial_status                      fulfillment_status
=================  ====================================  ==========================
``pending``        pending                               unfulfilled
``checkout-draft`` pending                               unfulfilled
``on-hold``        authorized (payment awaiting          on_hold
                   confirmation, e.g. authorise-only)
``processing``     paid [1]_                             from the shipments [2]_
``completed``      paid [1]_                             fulfilled
``refunded``       refunded                              from the shipments [2]_
``cancelled``      voided if never paid, else paid [1]_  from the shipments [2]_
``trash``          as ``cancelled``                      from the shipments [2]_
``failed``         voided (the payment never went)       unfulfilled
anything else      paid [1]_ if ``date_paid`` is set,    from the shipments [2]_
                   else pending (plugins add statuses
                   such as ``shipped``; their orders
                   are kept, not rejected)
=================  ====================================  ==========================

.. [1] "paid" becomes partially_refunded when the order's refunds add up to more than zero but
   less than the total, and refunded when they reach it. ``FinancialStatus.CANCELLED`` is never
   produced: a cancelled order is voided or (partially) refunded, as the state change API has it.
   A cancelled order's ``cancelled_at`` is its last modification (core keeps no cancellation
   date, only an order note).
.. [2] WooCommerce core has no shipments. The de-facto standard is the WooCommerce Shipment
   Tracking extension, whose ``_wc_shipment_tracking_items`` order meta lists tracking numbers;
   each item becomes a :class:`~shopsync.models.Fulfillment`. Items that name their
   ``line_items`` tell how much was shipped: everything not refunded -> fulfilled, less ->
   partially fulfilled; items without lines count as the whole order. Items sharing a
   ``tracking_id`` form one fulfilment with several tracking numbers.

Bad input, and what happens to it:

- **Dates** are read from the ``*_gmt`` twin (UTC, written without an offset). A value carrying
  its own offset (``...Z`` / ``+02:00``) is taken as written. When only the site-local value
  exists, it is converted with ``site_timezone`` if the caller passed one; otherwise the record
  is rejected, because guessing the zone would silently shift every date by hours. A missing
  ``date_modified`` (WooCommerce leaves it null on some customers) means "never modified":
  ``updated_at = created_at``.
- **Money** strings are decimals (``"29.35"``); JSON numbers are accepted too. An empty string
  means zero, as WooCommerce's own ``wc_format_decimal`` reads it (for a product price it means
  "no price"). Anything else (``"abc"``) rejects the record.
- **null where an object is expected** (``billing: null``, a null line item) is read as an
  empty object / no address; a wrong type (a string for ``line_items``) rejects the record.
- **Unknown statuses** follow the last row of the table above.
- **Deleted products**: a line whose ``product_id`` is 0 keeps its name and money with
  ``product_id=None`` (and ``variation_id`` 0 means no variant).
- **Guests**: ``customer_id`` 0 is a guest checkout, ``customer_id=None``, never customer "0".
- **Fractional quantities** (sold-by-weight plugins write ``1.5``) are kept exactly, and the
  unit price is ``subtotal / quantity`` (the price of one kilogram). A negative quantity, or
  more than four decimal places, rejects the record.
- **Money excludes tax** whatever ``prices_include_tax`` says: WooCommerce's REST line
  ``subtotal``/``total`` are stored without tax (``subtotal_tax``/``total_tax`` beside them),
  which is the shared models' meaning (docs/models.md); ``taxes_included`` records the setting.
- **Fees** (``fee_lines``, negative ones too) become :class:`~shopsync.models.FeeLine`;
  ``tax_lines`` become :class:`~shopsync.models.TaxLine` (tax on items plus tax on shipping,
  the rate from ``rate_percent``); ``coupon_lines`` become discount applications of type
  ``coupon``.
- **Refunds of a webhook body** are only ``{id, reason, total}``: the order is
  ``refunds_complete=False`` until a sync reads its refunds whole (the store keeps the
  refunds it already holds meanwhile).

Fields WooCommerce core has no place for are read from order/customer meta_data when present
(:data:`META`): shopsync's own write-back keeps tags there, and stores that record birthdays
can expose them under these keys. Without them the fields stay empty. Marketing consent comes
from the newsletter plugin's meta named by the shop's ``consent_sources`` (:mod:`.consent`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from shopsync._currencies import EXPONENTS
from shopsync.models import (
    Consent,
    Customer,
    Order,
    Product,
    Variant,
)
from shopsync_woocommerce._map_common import (
    META,
    _address,
    _Ctx,
    _date,
    _meta,
    _plain,
    _tags,
    _text,
    _wrap,
    parse_date,
)
from shopsync_woocommerce._map_orders import (
    ORDER_PARTS,
    ORDER_STATUSES,
    _coupons,
    _fees,
    _flag,
    _fulfillments,
    _refunds,
    _taxes,
    _unit_price,
    derive_statuses,
)
from shopsync_woocommerce.consent import DEFAULT_SOURCES, ConsentMetaError, consent_from_meta

__all__ = [
    "META",
    "ORDER_FIELDS",
    "ORDER_PARTS",
    "ORDER_STATUSES",
    "PLATFORM",
    "PRODUCT_STATUSES",
    "customer_from_rest",
    "derive_statuses",
    "order_from_rest",
    "parse_date",
    "product_from_rest",
]

PLATFORM = "woocommerce"


PRODUCT_STATUSES: Mapping[str, str] = {
    "publish": "active",
    "future": "draft",
    "draft": "draft",
    "pending": "draft",
    "private": "archived",
    "trash": "archived",
}
"""WooCommerce post status -> the shared product status (``active``/``draft``/``archived``);
other statuses are kept as written."""


# --- customers ------------------------------------------------------------------------------


def _consent(ctx: _Ctx, meta: Mapping[str, Any], sources: Sequence[str]) -> Consent:
    try:
        return consent_from_meta(meta, sources)
    except ConsentMetaError as exc:
        ctx.fail(f"meta_data.{exc.key}", str(exc))


def customer_from_rest(
    payload: Mapping[str, Any],
    *,
    shop: str,
    currency: str | None = None,
    site_timezone: dt.tzinfo | None = None,
    consent_sources: Sequence[str] = DEFAULT_SOURCES,
) -> Customer:
    """A ``GET /wc/v3/customers/<id>`` record (or a customer.* webhook body) as a Customer.

    ``orders_count`` and ``total_spent`` only exist in wc/v2 records; the amount is kept when
    the caller knows the store's ``currency``. Marketing consent is read from the meta of
    ``consent_sources`` (:mod:`.consent`: WooCommerce core has no consent field).
    """

    def build(ctx: _Ctx) -> Customer:
        meta = _meta(ctx, payload, "")
        billing = ctx.obj(payload.get("billing"), "billing")
        created = _date(ctx, payload, "date_created", "", site_timezone, required=True)
        updated = _date(ctx, payload, "date_modified", "", site_timezone, required=False) or created
        spent = payload.get("total_spent")  # wc/v2 only; v3 dropped it
        count = payload.get("orders_count")
        return Customer(
            platform=PLATFORM,
            shop=shop,
            id=ctx.id(payload.get("id"), "id"),
            email=_plain(payload.get("email")) or _plain(billing.get("email")),
            phone=_plain(billing.get("phone")),
            first_name=_plain(payload.get("first_name")),
            last_name=_plain(payload.get("last_name")),
            created_at=created,
            updated_at=updated,
            tags=_tags(ctx, meta.get(META["tags"])),
            consent=_consent(ctx, meta, consent_sources),
            birthday=ctx.date(meta.get(META["birthday"]), "meta_data." + META["birthday"]),
            default_address=_address(ctx, payload.get("shipping"), "shipping")
            or _address(
                ctx, {k: v for k, v in billing.items() if k not in ("email", "phone")}, "billing"
            ),
            orders_count=int(count) if count is not None else None,
            total_spent=None
            if spent is None or currency is None
            else {"amount": ctx.number(spent, "total_spent"), "currency": currency},
        )

    return _wrap(payload, build)


# --- orders ---------------------------------------------------------------------------------

ORDER_FIELDS: tuple[str, ...] = (
    "id",
    "number",
    "status",
    "currency",
    "created_via",
    "date_created",
    "date_created_gmt",
    "date_modified",
    "date_modified_gmt",
    "date_paid",
    "date_paid_gmt",
    "date_completed",
    "date_completed_gmt",
    "discount_total",
    "shipping_total",
    "total",
    "total_tax",
    "prices_include_tax",
    *ORDER_PARTS,  # the parts every order carries (refused without one)
)
"""Every top-level key of an order record that :func:`order_from_rest`, the fast path
(:mod:`._fast_orders`) and the reader's paging read: the order pages ask for these only
(WordPress's ``_fields``). Nested keys cannot be narrowed (a dot path does not reach into a
list), so ``meta_data`` comes whole. tests/woocommerce/test_order_fields.py fails when a
mapper reads a key missing here."""


def order_from_rest(
    payload: Mapping[str, Any],
    *,
    shop: str,
    refunds: list[Mapping[str, Any]] | None = None,
    site_timezone: dt.tzinfo | None = None,
) -> Order:
    """A ``GET /wc/v3/orders/<id>`` record (or an order.* webhook body) as an Order.

    ``refunds`` is the order's ``GET /orders/<id>/refunds`` list, which carries the refund dates
    and refunded lines that the order record itself leaves out.
    """

    def build(ctx: _Ctx) -> Order:
        for key in ORDER_PARTS:
            if key not in payload:
                ctx.fail(key, "missing: stored without it, the order would lose what it holds")
        currency = payload.get("currency")
        if not isinstance(currency, str) or not currency.strip():
            ctx.fail("currency", "missing")
        currency = currency.strip().upper()
        if currency not in EXPONENTS:
            ctx.fail("currency", f"{currency!r} is not a currency WooCommerce offers")

        def money(amount: Decimal) -> dict[str, Any]:
            return {"amount": amount, "currency": currency}

        meta = _meta(ctx, payload, "")
        billing = ctx.obj(payload.get("billing"), "billing")
        created = _date(ctx, payload, "date_created", "", site_timezone, required=True)
        assert created is not None
        updated = _date(ctx, payload, "date_modified", "", site_timezone, required=False) or created

        refund_list = _refunds(ctx, payload, refunds, currency, updated, site_timezone)
        refunded_units: dict[str, Decimal] = {}
        for refund in refund_list:
            for rl in refund.get("lines", ()):
                key = rl["line_item_id"]
                refunded_units[key] = refunded_units.get(key, Decimal(0)) + rl["quantity"]

        lines: list[dict[str, Any]] = []
        subtotal_sum = Decimal(0)
        for i, raw in enumerate(ctx.items(payload.get("line_items"), "line_items")):
            if raw is None:
                continue
            path = f"line_items[{i}]."
            item = ctx.obj(raw, f"line_items[{i}]")
            units = ctx.quantity(item.get("quantity"), f"{path}quantity")
            subtotal = ctx.number(item.get("subtotal"), f"{path}subtotal")
            line_total = ctx.number(item.get("total"), f"{path}total")
            subtotal_sum += line_total
            line_id = ctx.id(item.get("id"), f"{path}id")
            assert line_id is not None
            lines.append(
                {
                    "id": line_id,
                    "product_id": ctx.ref(item.get("product_id") or 0, f"{path}product_id"),
                    "variant_id": ctx.ref(item.get("variation_id") or 0, f"{path}variation_id"),
                    "sku": _plain(item.get("sku")),
                    "title": _text(item.get("name")) or "",
                    "quantity": units,
                    "unit_price": money(_unit_price(subtotal, units)),
                    "total_discount": money(subtotal - line_total)
                    if subtotal >= line_total
                    else None,
                    "total": money(line_total),
                    "refunded_quantity": min(refunded_units.get(line_id, Decimal(0)), units),
                }
            )

        status = payload.get("status")
        if not isinstance(status, str):
            ctx.fail("status", f"{status!r} is not a status")
        status = status.removeprefix("wc-")
        total = ctx.number(payload.get("total"), "total")
        refunded = sum((r["amount"]["amount"] for r in refund_list), Decimal(0))
        fulfillments = _fulfillments(ctx, meta.get(META["tracking"]))
        financial, fulfillment = derive_statuses(
            status,
            paid=bool(payload.get("date_paid_gmt") or payload.get("date_paid")),
            total=total,
            refunded=refunded,
            lines=[(li["id"], li["quantity"], li["refunded_quantity"]) for li in lines],
            fulfillments=[
                (f["status"], [(x["line_item_id"], x["quantity"]) for x in f["lines"]])
                for f in fulfillments
            ],
        )

        codes, discounts = _coupons(ctx, payload.get("coupon_lines"))
        summary = ctx.items(payload.get("refunds"), "refunds")

        number = _plain(payload.get("number")) or str(payload.get("id"))
        return Order.model_validate(
            {
                "platform": PLATFORM,
                "shop": shop,
                "id": ctx.id(payload.get("id"), "id"),
                "name": number if number.startswith("#") else f"#{number}",
                "customer_id": ctx.ref(payload.get("customer_id") or 0, "customer_id"),
                "email": _plain(billing.get("email")),
                "created_at": created,
                "updated_at": updated,
                "processed_at": created,
                "paid_at": _date(ctx, payload, "date_paid", "", site_timezone, required=False),
                "cancelled_at": updated if status == "cancelled" else None,
                "closed_at": _date(
                    ctx, payload, "date_completed", "", site_timezone, required=False
                ),
                "financial_status": financial,
                "fulfillment_status": fulfillment,
                "currency": currency,
                "subtotal": money(subtotal_sum),
                "total_discounts": money(
                    ctx.number(payload.get("discount_total"), "discount_total")
                ),
                "total_shipping": money(
                    ctx.number(payload.get("shipping_total"), "shipping_total")
                ),
                "total_tax": money(ctx.number(payload.get("total_tax"), "total_tax")),
                "total": money(total),
                "total_refunded": money(refunded),
                "line_items": lines,
                "refunds": refund_list,
                "fulfillments": fulfillments,
                "discount_codes": tuple(codes),
                "discount_applications": discounts,
                "fee_lines": _fees(ctx, payload.get("fee_lines"), currency),
                "tax_lines": _taxes(ctx, payload.get("tax_lines"), currency),
                "taxes_included": _flag(
                    ctx, payload.get("prices_include_tax"), "prices_include_tax"
                ),
                # a webhook body lists refunds as {id, reason, total}: their lines and dates
                # come with the next sync, which reads /refunds
                "refunds_complete": refunds is not None or not summary,
                "source": _plain(payload.get("created_via")),
                "tags": _tags(ctx, meta.get(META["tags"])),
                "billing_address": _address(
                    ctx, {k: v for k, v in billing.items() if k != "email"}, "billing"
                ),
                "shipping_address": _address(ctx, payload.get("shipping"), "shipping"),
            }
        )

    return _wrap(payload, build)


# --- products -------------------------------------------------------------------------------


def _names(ctx: _Ctx, value: Any, path: str) -> tuple[str, ...]:
    out = []
    for i, raw in enumerate(ctx.items(value, path)):
        name = _text(ctx.obj(raw, f"{path}[{i}]").get("name"))
        if name:
            out.append(name)
    return tuple(out)


def _variant(ctx: _Ctx, raw: Any, path: str, currency: str) -> Variant:
    data = ctx.obj(raw, path)
    price = ctx.amount_or(data.get("regular_price"), f"{path}.regular_price", None)
    if price is None:
        price = ctx.amount_or(data.get("price"), f"{path}.price", None)
    options = [
        _text(ctx.obj(a, f"{path}.attributes").get("option"))
        for a in ctx.items(data.get("attributes"), f"{path}.attributes")
    ]
    return Variant(
        id=ctx.id(data.get("id"), f"{path}.id"),
        sku=_plain(data.get("sku")),
        title=" / ".join(o for o in options if o) or None,
        price=None if price is None else {"amount": price, "currency": currency},
    )


def product_from_rest(
    payload: Mapping[str, Any],
    *,
    shop: str,
    currency: str = "USD",
    variations: list[Mapping[str, Any]] | None = None,
    site_timezone: dt.tzinfo | None = None,
) -> Product:
    """A ``GET /wc/v3/products/<id>`` record as a Product.

    WooCommerce has neither a product type nor a vendor: ``product_type`` is the first
    category and ``vendor`` the first brand (WooCommerce 9.6+ ``brands``). A simple product
    has no variants (its price lives on the product); a variable product's variants come
    from ``variations`` (``GET /products/<id>/variations``) when given, else they are known
    by id only. Post statuses map through :data:`PRODUCT_STATUSES`.
    """

    def build(ctx: _Ctx) -> Product:
        product_id = ctx.id(payload.get("id"), "id")
        created = _date(ctx, payload, "date_created", "", site_timezone, required=True)
        updated = _date(ctx, payload, "date_modified", "", site_timezone, required=False) or created
        categories = _names(ctx, payload.get("categories"), "categories")
        brands = _names(ctx, payload.get("brands"), "brands")
        variants: list[Variant] = []
        if payload.get("type") == "variable":
            if variations is not None:
                variants = [
                    _variant(ctx, v, f"variations[{i}]", currency) for i, v in enumerate(variations)
                ]
                order = {
                    str(v): k
                    for k, v in enumerate(ctx.items(payload.get("variations"), "variations"))
                }
                variants.sort(key=lambda v: order.get(v.id, len(order)))
            else:
                for i, vid in enumerate(ctx.items(payload.get("variations"), "variations")):
                    variants.append(Variant(id=ctx.id(vid, f"variations[{i}]")))
        status = _plain(payload.get("status"))
        return Product(
            platform=PLATFORM,
            shop=shop,
            id=product_id,
            title=_text(payload.get("name")) or "",
            product_type=categories[0] if categories else None,
            vendor=brands[0] if brands else None,
            tags=_names(ctx, payload.get("tags"), "tags"),
            categories=categories,
            status=PRODUCT_STATUSES.get(status, status) if status else None,
            created_at=created,
            updated_at=updated,
            variants=tuple(variants),
        )

    return _wrap(payload, build)
