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
import html
import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from shopsync._currencies import EXPONENTS
from shopsync.errors import SHAPE_ERRORS, InvalidRecordError
from shopsync.models import (
    Consent,
    Customer,
    FinancialStatus,
    FulfillmentStatus,
    Order,
    Product,
    Variant,
)
from shopsync_woocommerce.consent import DEFAULT_SOURCES, ConsentMetaError, consent_from_meta

__all__ = [
    "META",
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

META = {
    "tags": "_shopsync_tags",
    "consent": "_shopsync_marketing_consent",
    "birthday": "_shopsync_birthday",
    "tracking": "_wc_shipment_tracking_items",
}
"""meta_data keys read for fields WooCommerce core lacks.

- ``_shopsync_tags``: list of strings (or one comma-separated string), customers and orders;
- ``_shopsync_marketing_consent``: ``{"email": {"state", "opt_in_level", "updated_at"},
  "sms": {...}}`` with the :class:`~shopsync.models.ConsentState` values (the ``shopsync``
  consent source; the plugins' keys are in :mod:`.consent`);
- ``_shopsync_birthday``: ``YYYY-MM-DD``;
- ``_wc_shipment_tracking_items``: the Shipment Tracking extension's list of
  ``{tracking_id, tracking_provider, custom_tracking_provider, custom_tracking_link,
  tracking_number, date_shipped}`` (``date_shipped`` in Unix seconds); shopsync also reads
  optional ``status``, ``date_delivered`` (Unix seconds) and ``line_items`` (``[{id, quantity}]``).
"""

ORDER_STATUSES: Mapping[str, tuple[FinancialStatus | None, FulfillmentStatus | None]] = {
    "pending": (FinancialStatus.PENDING, FulfillmentStatus.UNFULFILLED),
    "checkout-draft": (FinancialStatus.PENDING, FulfillmentStatus.UNFULFILLED),
    "on-hold": (FinancialStatus.AUTHORIZED, FulfillmentStatus.ON_HOLD),
    "processing": (FinancialStatus.PAID, None),
    "completed": (FinancialStatus.PAID, FulfillmentStatus.FULFILLED),
    "refunded": (FinancialStatus.REFUNDED, None),
    "cancelled": (None, None),
    "trash": (None, None),
    "failed": (FinancialStatus.VOIDED, FulfillmentStatus.UNFULFILLED),
}
"""WooCommerce status -> (financial, fulfillment); None = decided by payment, refunds and
shipments (see :func:`derive_statuses`)."""

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


class _Bad(Exception):
    """Internal: a field that cannot be mapped (turned into InvalidRecordError at the top)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason


# --- small readers --------------------------------------------------------------------------


def _obj(value: Any, path: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _Bad(path, f"expected an object, got {type(value).__name__}")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Bad(path, f"expected a list, got {type(value).__name__}")
    return value


def _text(value: Any) -> str | None:
    """A display name: WooCommerce HTML-escapes names (``&amp;``, ``&ndash;``); empty is absent."""
    if value is None or value == "":
        return None
    return html.unescape(str(value))


def _plain(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def _id(value: Any, path: str, *, zero_is_none: bool = False) -> str | None:
    if isinstance(value, bool):
        raise _Bad(path, f"{value!r} is not an id")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or value < 0:
        raise _Bad(path, f"{value!r} is not an id")
    if value == 0:
        if zero_is_none:
            return None
        raise _Bad(path, "id 0 does not name a record")
    return str(value)


def parse_date(value: Any, *, assume: dt.tzinfo | None = dt.timezone.utc) -> dt.datetime:
    """A WooCommerce date string as an aware UTC datetime.

    ``assume`` is the zone of a value written without an offset (UTC for ``*_gmt`` fields);
    None means such a value is refused.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{value!r} is not a date")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        if assume is None:
            raise ValueError(f"{value!r} has no UTC offset and no site timezone is known")
        parsed = parsed.replace(tzinfo=assume)
    return parsed.astimezone(dt.timezone.utc)


def _date(
    payload: Mapping[str, Any],
    key: str,
    path: str,
    site_timezone: dt.tzinfo | None,
    *,
    required: bool,
) -> dt.datetime | None:
    gmt, local = payload.get(f"{key}_gmt"), payload.get(key)
    try:
        if gmt not in (None, ""):
            return parse_date(gmt)
        if local not in (None, ""):
            return parse_date(local, assume=site_timezone)
    except ValueError as exc:
        raise _Bad(
            f"{path}{key}_gmt" if gmt not in (None, "") else f"{path}{key}", str(exc)
        ) from None
    if required:
        raise _Bad(f"{path}{key}_gmt", "missing")
    return None


def _decimal(value: Any, path: str, *, empty: Decimal | None = Decimal(0)) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return empty
    if isinstance(value, bool):
        raise _Bad(path, f"{value!r} is not an amount")
    if isinstance(value, float):
        value = repr(value)
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise _Bad(path, f"{value!r} is not an amount") from None
    if not amount.is_finite():
        raise _Bad(path, f"{value!r} is not an amount")
    return amount


def _amount(value: Any, path: str) -> Decimal:
    amount = _decimal(value, path)
    assert amount is not None
    return amount


def _meta(payload: Mapping[str, Any], path: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for i, entry in enumerate(_list(payload.get("meta_data"), f"{path}meta_data")):
        if isinstance(entry, Mapping) and isinstance(entry.get("key"), str):
            found[entry["key"]] = entry.get("value")
        elif entry is not None:
            raise _Bad(f"{path}meta_data[{i}]", "expected {key, value}")
    return found


def _tags(value: Any) -> tuple[str, ...]:
    """A list of tags as written, or a comma-separated string (split and trimmed)."""
    if value in (None, ""):
        return ()
    if isinstance(value, str):
        return tuple(t for t in (part.strip() for part in value.split(",")) if t)
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return tuple(t for t in value if t.strip())
    raise _Bad("meta_data." + META["tags"], "expected a list of tags")


def _address(value: Any, path: str) -> dict[str, Any] | None:
    data = _obj(value, path)
    address = {
        "first_name": _plain(data.get("first_name")),
        "last_name": _plain(data.get("last_name")),
        "company": _plain(data.get("company")),
        "address1": _plain(data.get("address_1")),
        "address2": _plain(data.get("address_2")),
        "city": _plain(data.get("city")),
        "province": _plain(data.get("state")),
        "zip": _plain(data.get("postcode")),
        "country_code": (_plain(data.get("country")) or "").upper() or None,
        "phone": _plain(data.get("phone")),
    }
    return address if any(v is not None for v in address.values()) else None


def _unix(value: Any, path: str) -> dt.datetime | None:
    if value in (None, ""):
        return None
    try:
        return dt.datetime.fromtimestamp(int(str(value)), dt.timezone.utc)
    except (ValueError, OverflowError, OSError):
        raise _Bad(path, f"{value!r} is not a Unix timestamp") from None


def _wrap(payload: Any, build: Any) -> Any:
    """Run a builder, turning every failure into InvalidRecordError with the raw record."""
    if not isinstance(payload, Mapping):
        raise InvalidRecordError(
            f"expected a JSON object, got {type(payload).__name__}", raw=payload, path=None
        )
    try:
        return build()
    except _Bad as bad:
        raise InvalidRecordError(_short(bad.reason), raw=payload, path=bad.path) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = (
            "".join(
                f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"]
            ).lstrip(".")
            or None
        )
        raise InvalidRecordError(first["msg"], raw=payload, path=where) from None
    except SHAPE_ERRORS as exc:  # a shape no reader above expected: still refused, not raised
        reason = _short(f"malformed record ({type(exc).__name__}: {exc})")
        raise InvalidRecordError(reason, raw=payload, path=None) from None


def _short(reason: str, limit: int = 300) -> str:
    """A reason fit for the quarantine: a 1 MB value is not repeated in full."""
    return reason if len(reason) <= limit else reason[:limit] + "..."


# --- customers ------------------------------------------------------------------------------


def _consent(meta: Mapping[str, Any], sources: Sequence[str]) -> Consent:
    try:
        return consent_from_meta(meta, sources)
    except ConsentMetaError as exc:
        raise _Bad(f"meta_data.{exc.key}", str(exc)) from None


def _birthday(value: Any) -> dt.date | None:
    if value in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise _Bad("meta_data." + META["birthday"], f"{value!r} is not a date") from None


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

    def build() -> Customer:
        meta = _meta(payload, "")
        billing = _obj(payload.get("billing"), "billing")
        created = _date(payload, "date_created", "", site_timezone, required=True)
        updated = _date(payload, "date_modified", "", site_timezone, required=False) or created
        spent = payload.get("total_spent")  # wc/v2 only; v3 dropped it
        count = payload.get("orders_count")
        return Customer(
            platform=PLATFORM,
            shop=shop,
            id=_id(payload.get("id"), "id"),
            email=_plain(payload.get("email")) or _plain(billing.get("email")),
            phone=_plain(billing.get("phone")),
            first_name=_plain(payload.get("first_name")),
            last_name=_plain(payload.get("last_name")),
            created_at=created,
            updated_at=updated,
            tags=_tags(meta.get(META["tags"])),
            consent=_consent(meta, consent_sources),
            birthday=_birthday(meta.get(META["birthday"])),
            default_address=_address(payload.get("shipping"), "shipping")
            or _address(
                {k: v for k, v in billing.items() if k not in ("email", "phone")}, "billing"
            ),
            orders_count=int(count) if count is not None else None,
            total_spent=None
            if spent is None or currency is None
            else {"amount": _amount(spent, "total_spent"), "currency": currency},
        )

    return _wrap(payload, build)  # type: ignore[no-any-return]


# --- orders ---------------------------------------------------------------------------------


def _quantity(value: Any, path: str) -> Decimal:
    """The quantity as written, exactly: stores selling by weight or length write 1.5."""
    written = _decimal(value, path, empty=None)
    if written is None or written < 0:
        raise _Bad(path, f"{value!r} is not a quantity")
    return written


def _unit_price(subtotal: Decimal, units: Decimal) -> Decimal:
    if units == 0:
        return subtotal
    price = subtotal / units
    return (
        price.quantize(Decimal("0.0001")) if price != price.quantize(Decimal("0.0001")) else price
    )


def _refund_lines(refund: Mapping[str, Any], path: str, currency: str) -> list[dict[str, Any]]:
    lines = []
    for i, raw in enumerate(_list(refund.get("line_items"), f"{path}line_items")):
        item = _obj(raw, f"{path}line_items[{i}]")
        meta = _meta(item, f"{path}line_items[{i}].")
        target = meta.get("_refunded_item_id") or item.get("refunded_item_id")
        if target in (None, "", 0, "0"):
            continue  # cannot tell which line it refunds: the amount still counts
        where = f"{path}line_items[{i}].quantity"
        units = _quantity(abs(_amount(item.get("quantity"), where)), where)
        subtotal = _decimal(item.get("subtotal"), f"{path}line_items[{i}].subtotal")
        lines.append(
            {
                "line_item_id": _id(target, f"{path}line_items[{i}].meta_data._refunded_item_id"),
                "quantity": units,
                "subtotal": None
                if subtotal is None
                else {"amount": abs(subtotal), "currency": currency},
            }
        )
    return lines


def _refunds(
    payload: Mapping[str, Any],
    details: list[Mapping[str, Any]] | None,
    currency: str,
    fallback_at: dt.datetime,
    site_timezone: dt.tzinfo | None,
) -> list[dict[str, Any]]:
    """Refunds from ``GET /orders/<id>/refunds`` when given, else from the order's summary.

    The summary (``{id, reason, total: "-10.00"}``) has no date: the order's last
    modification, which a refund always bumps, stands in for it.
    """
    out = []
    if details is not None:
        for i, raw in enumerate(details):
            path = f"refunds[{i}]."
            refund = _obj(raw, path)
            out.append(
                {
                    "id": _id(refund.get("id"), f"{path}id"),
                    "created_at": _date(refund, "date_created", path, site_timezone, required=True),
                    "amount": {
                        "amount": abs(_amount(refund.get("amount"), f"{path}amount")),
                        "currency": currency,
                    },
                    "note": _plain(refund.get("reason")),
                    "lines": _refund_lines(refund, path, currency),
                }
            )
    else:
        for i, raw in enumerate(_list(payload.get("refunds"), "refunds")):
            refund = _obj(raw, f"refunds[{i}]")
            out.append(
                {
                    "id": _id(refund.get("id"), f"refunds[{i}].id"),
                    "created_at": fallback_at,
                    "amount": {
                        "amount": abs(_amount(refund.get("total"), f"refunds[{i}].total")),
                        "currency": currency,
                    },
                    "note": _plain(refund.get("reason", refund.get("refund"))),
                }
            )
    return sorted(out, key=lambda r: (r["created_at"], int(r["id"])))


def _fulfillments(value: Any) -> list[dict[str, Any]]:
    key = "meta_data." + META["tracking"]
    if value in (None, ""):
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise _Bad(key, "not a list of tracking items") from None
    groups: dict[str, list[tuple[int, Mapping[str, Any]]]] = {}
    for i, raw in enumerate(_list(value, key)):
        item = _obj(raw, f"{key}[{i}]")
        groups.setdefault(_plain(item.get("tracking_id")) or str(i + 1), []).append((i, item))
    out = []
    for fid, items in groups.items():
        i, first = items[0]
        path = f"{key}[{i}]"
        shipped = _unix(first.get("date_shipped"), f"{path}.date_shipped")
        if shipped is None:
            raise _Bad(f"{path}.date_shipped", "missing")
        lines = []
        for k, raw_line in enumerate(_list(first.get("line_items"), f"{path}.line_items")):
            line = _obj(raw_line, f"{path}.line_items[{k}]")
            units = _quantity(line.get("quantity"), f"{path}.line_items[{k}].quantity")
            lines.append(
                {
                    "line_item_id": _id(line.get("id"), f"{path}.line_items[{k}].id"),
                    "quantity": units,
                }
            )
        out.append(
            {
                "id": fid,
                "created_at": shipped,
                "status": _plain(first.get("status")) or "success",
                "tracking_company": _plain(first.get("custom_tracking_provider"))
                or _plain(first.get("tracking_provider")),
                "tracking_numbers": tuple(
                    n for n in (_plain(it.get("tracking_number")) for _, it in items) if n
                ),
                "tracking_urls": tuple(
                    u for u in (_plain(it.get("custom_tracking_link")) for _, it in items) if u
                ),
                "delivered_at": _unix(first.get("date_delivered"), f"{path}.date_delivered"),
                "lines": lines,
            }
        )
    return out


ShippedLine = tuple[str, Decimal]
"""(line item id, quantity)."""


def _shipped(
    lines: Iterable[tuple[str, Decimal, Decimal]],
    fulfillments: Iterable[tuple[str, Iterable[ShippedLine]]],
) -> FulfillmentStatus:
    live = [
        list(shipped)
        for status, shipped in fulfillments
        if status not in ("cancelled", "failure", "error")
    ]
    if not live:
        return FulfillmentStatus.UNFULFILLED
    if any(not shipped for shipped in live):
        return FulfillmentStatus.FULFILLED
    counts: dict[str, Decimal] = {}
    for shipped in live:
        for line_id, quantity in shipped:
            counts[line_id] = counts.get(line_id, Decimal(0)) + quantity
    if all(counts.get(line_id, 0) >= qty - refunded for line_id, qty, refunded in lines):
        return FulfillmentStatus.FULFILLED
    return FulfillmentStatus.PARTIALLY_FULFILLED


def derive_statuses(
    status: str,
    *,
    paid: bool,
    total: Decimal,
    refunded: Decimal,
    lines: Iterable[tuple[str, Decimal, Decimal]],
    fulfillments: Iterable[tuple[str, Iterable[ShippedLine]]],
) -> tuple[FinancialStatus, FulfillmentStatus]:
    """The shared statuses of an order in WooCommerce ``status`` (the module's table).

    ``lines`` are (line id, quantity, refunded quantity); ``fulfillments`` are (status,
    [(line id, quantity)]), an empty list meaning the whole order.
    """
    financial, fulfillment = ORDER_STATUSES.get(
        status, (FinancialStatus.PAID if paid else FinancialStatus.PENDING, None)
    )
    if financial is None:  # cancelled / trash
        financial = FinancialStatus.PAID if paid or refunded > 0 else FinancialStatus.VOIDED
    if financial is FinancialStatus.PAID and refunded > 0:
        financial = (
            FinancialStatus.REFUNDED if refunded >= total else FinancialStatus.PARTIALLY_REFUNDED
        )
    if fulfillment is None:
        fulfillment = _shipped(lines, fulfillments)
    return financial, fulfillment


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

    def build() -> Order:
        currency = payload.get("currency")
        if not isinstance(currency, str) or not currency.strip():
            raise _Bad("currency", "missing")
        currency = currency.strip().upper()
        if currency not in EXPONENTS:
            raise _Bad("currency", f"{currency!r} is not a currency WooCommerce offers")

        def money(amount: Decimal) -> dict[str, Any]:
            return {"amount": amount, "currency": currency}

        meta = _meta(payload, "")
        billing = _obj(payload.get("billing"), "billing")
        created = _date(payload, "date_created", "", site_timezone, required=True)
        assert created is not None
        updated = _date(payload, "date_modified", "", site_timezone, required=False) or created

        refund_list = _refunds(payload, refunds, currency, updated, site_timezone)
        refunded_units: dict[str, Decimal] = {}
        for refund in refund_list:
            for rl in refund.get("lines", ()):
                key = rl["line_item_id"]
                refunded_units[key] = refunded_units.get(key, Decimal(0)) + rl["quantity"]

        lines: list[dict[str, Any]] = []
        subtotal_sum = Decimal(0)
        for i, raw in enumerate(_list(payload.get("line_items"), "line_items")):
            if raw is None:
                continue
            path = f"line_items[{i}]."
            item = _obj(raw, f"line_items[{i}]")
            units = _quantity(item.get("quantity"), f"{path}quantity")
            subtotal = _amount(item.get("subtotal"), f"{path}subtotal")
            line_total = _amount(item.get("total"), f"{path}total")
            subtotal_sum += line_total
            line_id = _id(item.get("id"), f"{path}id")
            assert line_id is not None
            lines.append(
                {
                    "id": line_id,
                    "product_id": _id(
                        item.get("product_id") or 0, f"{path}product_id", zero_is_none=True
                    ),
                    "variant_id": _id(
                        item.get("variation_id") or 0, f"{path}variation_id", zero_is_none=True
                    ),
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
            raise _Bad("status", f"{status!r} is not a status")
        status = status.removeprefix("wc-")
        total = _amount(payload.get("total"), "total")
        refunded = sum((r["amount"]["amount"] for r in refund_list), Decimal(0))
        fulfillments = _fulfillments(meta.get(META["tracking"]))
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

        codes, discounts = _coupons(payload.get("coupon_lines"))
        summary = _list(payload.get("refunds"), "refunds")

        number = _plain(payload.get("number")) or str(payload.get("id"))
        return Order.model_validate(
            {
                "platform": PLATFORM,
                "shop": shop,
                "id": _id(payload.get("id"), "id"),
                "name": number if number.startswith("#") else f"#{number}",
                "customer_id": _id(
                    payload.get("customer_id") or 0, "customer_id", zero_is_none=True
                ),
                "email": _plain(billing.get("email")),
                "created_at": created,
                "updated_at": updated,
                "processed_at": created,
                "paid_at": _date(payload, "date_paid", "", site_timezone, required=False),
                "cancelled_at": updated if status == "cancelled" else None,
                "closed_at": _date(payload, "date_completed", "", site_timezone, required=False),
                "financial_status": financial,
                "fulfillment_status": fulfillment,
                "currency": currency,
                "subtotal": money(subtotal_sum),
                "total_discounts": money(_amount(payload.get("discount_total"), "discount_total")),
                "total_shipping": money(_amount(payload.get("shipping_total"), "shipping_total")),
                "total_tax": money(_amount(payload.get("total_tax"), "total_tax")),
                "total": money(total),
                "total_refunded": money(refunded),
                "line_items": lines,
                "refunds": refund_list,
                "fulfillments": fulfillments,
                "discount_codes": tuple(codes),
                "discount_applications": discounts,
                "fee_lines": _fees(payload.get("fee_lines"), currency),
                "tax_lines": _taxes(payload.get("tax_lines"), currency),
                "taxes_included": _flag(payload.get("prices_include_tax"), "prices_include_tax"),
                # a webhook body lists refunds as {id, reason, total}: their lines and dates
                # come with the next sync, which reads /refunds
                "refunds_complete": refunds is not None or not summary,
                "source": _plain(payload.get("created_via")),
                "tags": _tags(meta.get(META["tags"])),
                "billing_address": _address(
                    {k: v for k, v in billing.items() if k != "email"}, "billing"
                ),
                "shipping_address": _address(payload.get("shipping"), "shipping"),
            }
        )

    return _wrap(payload, build)  # type: ignore[no-any-return]


def _flag(value: Any, path: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if value in (0, 1, "0", "1", "yes", "no", "true", "false"):
        return str(value).lower() in ("1", "yes", "true")
    raise _Bad(path, f"{value!r} is not a boolean")


def _coupons(value: Any) -> tuple[list[str], list[dict[str, Any]]]:
    """Codes and discount applications of ``coupon_lines``. A line says what it took off
    (``discount``); WooCommerce versions that add ``discount_type`` and ``nominal_amount`` to
    the line also say what the coupon was (``percent`` -> a percentage)."""
    codes: list[str] = []
    applied: list[dict[str, Any]] = []
    for i, raw in enumerate(_list(value, "coupon_lines")):
        line = _obj(raw, f"coupon_lines[{i}]")
        code = _plain(line.get("code"))
        if not code:
            continue
        codes.append(code)
        kind = _plain(line.get("discount_type"))
        nominal = _decimal(
            line.get("nominal_amount"), f"coupon_lines[{i}].nominal_amount", empty=None
        )
        if kind == "percent" and nominal is not None:
            value_, value_type = nominal, "percentage"
        elif kind in ("fixed_cart", "fixed_product") and nominal is not None:
            value_, value_type = nominal, "fixed_amount"
        else:
            value_ = abs(_amount(line.get("discount"), f"coupon_lines[{i}].discount"))
            value_type = "fixed_amount"
        applied.append(
            {
                "type": "coupon",
                "code": code,
                "title": None,
                "value": value_,
                "value_type": value_type,
                "allocation": kind,
            }
        )
    return codes, applied


def _fees(value: Any, currency: str) -> list[dict[str, Any]]:
    out = []
    for i, raw in enumerate(_list(value, "fee_lines")):
        fee = _obj(raw, f"fee_lines[{i}]")
        tax = _decimal(fee.get("total_tax"), f"fee_lines[{i}].total_tax", empty=None)
        out.append(
            {
                "id": _id(fee.get("id"), f"fee_lines[{i}].id"),
                "name": _text(fee.get("name")) or "",
                "total": {
                    "amount": _amount(fee.get("total"), f"fee_lines[{i}].total"),
                    "currency": currency,
                },
                "total_tax": None if tax is None else {"amount": tax, "currency": currency},
            }
        )
    return out


def _taxes(value: Any, currency: str) -> list[dict[str, Any]]:
    """``tax_lines``: one per rate, the tax on items plus the tax on shipping; the rate as a
    fraction when the store says it (``rate_percent``, WooCommerce 3.7+)."""
    out = []
    for i, raw in enumerate(_list(value, "tax_lines")):
        tax = _obj(raw, f"tax_lines[{i}]")
        items = _amount(tax.get("tax_total"), f"tax_lines[{i}].tax_total")
        shipping = _amount(tax.get("shipping_tax_total"), f"tax_lines[{i}].shipping_tax_total")
        percent = _decimal(tax.get("rate_percent"), f"tax_lines[{i}].rate_percent", empty=None)
        out.append(
            {
                "title": _text(tax.get("label")) or _plain(tax.get("rate_code")) or "Tax",
                "rate": None if percent is None else percent / 100,
                "amount": {"amount": items + shipping, "currency": currency},
            }
        )
    return out


# --- products -------------------------------------------------------------------------------


def _names(value: Any, path: str) -> tuple[str, ...]:
    out = []
    for i, raw in enumerate(_list(value, path)):
        name = _text(_obj(raw, f"{path}[{i}]").get("name"))
        if name:
            out.append(name)
    return tuple(out)


def _variant(raw: Any, path: str, currency: str) -> Variant:
    data = _obj(raw, path)
    price = _decimal(data.get("regular_price"), f"{path}.regular_price", empty=None)
    if price is None:
        price = _decimal(data.get("price"), f"{path}.price", empty=None)
    options = [
        _text(_obj(a, f"{path}.attributes").get("option"))
        for a in _list(data.get("attributes"), f"{path}.attributes")
    ]
    return Variant(
        id=_id(data.get("id"), f"{path}.id"),
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

    def build() -> Product:
        product_id = _id(payload.get("id"), "id")
        created = _date(payload, "date_created", "", site_timezone, required=True)
        updated = _date(payload, "date_modified", "", site_timezone, required=False) or created
        categories = _names(payload.get("categories"), "categories")
        brands = _names(payload.get("brands"), "brands")
        variants: list[Variant] = []
        if payload.get("type") == "variable":
            if variations is not None:
                variants = [
                    _variant(v, f"variations[{i}]", currency) for i, v in enumerate(variations)
                ]
                order = {
                    str(v): k for k, v in enumerate(_list(payload.get("variations"), "variations"))
                }
                variants.sort(key=lambda v: order.get(v.id, len(order)))
            else:
                for i, vid in enumerate(_list(payload.get("variations"), "variations")):
                    variants.append(Variant(id=_id(vid, f"variations[{i}]")))
        status = _plain(payload.get("status"))
        return Product(
            platform=PLATFORM,
            shop=shop,
            id=product_id,
            title=_text(payload.get("name")) or "",
            product_type=categories[0] if categories else None,
            vendor=brands[0] if brands else None,
            tags=_names(payload.get("tags"), "tags"),
            categories=categories,
            status=PRODUCT_STATUSES.get(status, status) if status else None,
            created_at=created,
            updated_at=updated,
            variants=tuple(variants),
        )

    return _wrap(payload, build)  # type: ignore[no-any-return]
