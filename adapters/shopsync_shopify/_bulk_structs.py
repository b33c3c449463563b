"""Typed, compiled decoding of a bulk order's JSONL lines (issue 20 item 3.1).

:func:`decode` reads a root line and the child lines waiting for it into the structs below by
``msgspec`` (in C: only the fields the store keeps are read, their JSON types checked), and
attaches the children as :func:`._bulk._attach` attaches parsed ones; :mod:`._struct_rows`
then builds the store rows from the structs without a dict walk.

It takes only what it can reassemble exactly as today's path does and answers None for
anything else, which then takes that path whole (parsed by orjson/json, attached, mapped by
:mod:`._fast_orders` or the models, quarantined with the field path): a line msgspec refuses
(a value of another JSON type, a required member missing or null, NaN, a lone surrogate, a
BOM), a line that is not UTF-8 (msgspec skips the members it does not read, json refuses the
line), a child of an unknown or unexpected kind (its rejection is that path's), a child that
others name as parent or that carries a list children go into, a holder's id twice. A member
named twice is read as json reads it (the last one), but for ``__typename`` (refused). Members
not declared here are ignored, as the mappers ignore them.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, Struct

from shopsync_shopify._jsonl import _number

__all__ = ["Decoded", "Order", "decode", "root_ids"]


class Money(Struct, gc=False):
    amount: str
    currencyCode: str | None = None


class Bag(Struct, gc=False):
    """A ``MoneyBag``: its shop amount."""

    shopMoney: Money


class Ref(Struct, gc=False):
    """A reference to another object (``customer``, ``product``, ``lineItem``...)."""

    id: str | None = None


class Address(Struct, gc=False):
    firstName: str | None = None
    lastName: str | None = None
    company: str | None = None
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    province: str | None = None
    zip: str | None = None
    countryCodeV2: str | None = None
    countryCode: str | None = None
    phone: str | None = None


class TaxLine(Struct, gc=False):
    priceSet: Bag
    title: str | None = None
    rate: int | float | str | None = None


class Tracking(Struct, gc=False):
    company: str | None = None
    number: str | None = None
    url: str | None = None


class _Child(Struct, tag_field="__typename", kw_only=True, gc=False):
    """A child line. The guards are the members that make :func:`._bulk._attach` descend
    into a child; a child carrying one, whatever its value, takes today's path: the decoder
    refuses it (no JSON value is an ``UnsetType``), with no check a child in Python."""

    lineItems: msgspec.UnsetType = UNSET
    refundLineItems: msgspec.UnsetType = UNSET
    fulfillmentLineItems: msgspec.UnsetType = UNSET
    discountApplications: msgspec.UnsetType = UNSET
    refunds: msgspec.UnsetType = UNSET
    fulfillments: msgspec.UnsetType = UNSET


class LineItem(_Child, tag="LineItem"):
    id: str
    quantity: int
    originalUnitPriceSet: Bag
    totalDiscountSet: Bag
    title: str | None = None
    name: str | None = None
    currentQuantity: int | None = None
    sku: str | None = None
    product: Ref | None = None
    variant: Ref | None = None
    taxLines: list[TaxLine] | None = None


class RefundLineItem(_Child, tag="RefundLineItem"):
    quantity: int
    lineItem: Ref
    id: str | None = None
    subtotalSet: Bag | None = None


class FulfillmentLineItem(_Child, tag="FulfillmentLineItem"):
    quantity: int
    lineItem: Ref
    id: str | None = None


class Value(Struct, gc=False):
    """A discount's ``value``: ``percentage`` is told apart by presence, as the mappers do."""

    percentage: int | float | str | msgspec.UnsetType | None = UNSET
    amount: int | float | str | None = None


class Discount(_Child, tag="DiscountCodeApplication"):
    id: str | None = None
    lineItem: Ref | None = None
    value: Value | None = None
    allocationMethod: str | None = None
    code: str | None = None
    title: str | None = None
    description: str | None = None


class AutomaticDiscount(Discount, tag="AutomaticDiscountApplication"):
    pass


class ManualDiscount(Discount, tag="ManualDiscountApplication"):
    pass


class ScriptDiscount(Discount, tag="ScriptDiscountApplication"):
    pass


class _Holder(Struct, kw_only=True, gc=False):
    """An object children name as parent: the lists they go into (UNSET in its line, else
    today's path takes the order)."""

    lineItems: Any = UNSET
    refundLineItems: Any = UNSET
    fulfillmentLineItems: Any = UNSET
    discountApplications: Any = UNSET


class Refund(_Holder):
    id: str
    createdAt: str
    totalRefundedSet: Bag
    note: str | None = None


class Fulfillment(_Holder):
    id: str
    createdAt: str
    deliveredAt: str | None = None
    status: str | None = None
    trackingInfo: list[Tracking] | None = None


class Order(_Holder):
    id: str
    createdAt: str
    updatedAt: str
    currencyCode: str
    totalPriceSet: Bag
    subtotalPriceSet: Bag
    totalDiscountsSet: Bag
    totalShippingPriceSet: Bag
    totalTaxSet: Bag
    name: str | None = None
    email: str | None = None
    processedAt: str | None = None
    cancelledAt: str | None = None
    closedAt: str | None = None
    displayFinancialStatus: str | None = None
    displayFulfillmentStatus: str | None = None
    discountCodes: list[str] | None = None
    sourceName: str | None = None
    tags: list[str] | str | None = None
    test: bool | None = None
    taxesIncluded: bool | None = None
    edited: bool | None = None
    cancelReason: str | None = None
    checkoutToken: str | None = None
    cartToken: str | None = None
    totalTipReceivedSet: Bag | None = None
    currentTotalDutiesSet: Bag | None = None
    totalRefundedSet: Bag | None = None
    taxLines: list[TaxLine] | None = None
    customer: Ref | None = None
    billingAddress: Address | None = None
    shippingAddress: Address | None = None
    refunds: list[Refund] | None = None
    fulfillments: list[Fulfillment] | None = None


_ORDER = msgspec.json.Decoder(Order)
_CHILD = msgspec.json.Decoder(
    LineItem
    | RefundLineItem
    | FulfillmentLineItem
    | Discount
    | AutomaticDiscount
    | ManualDiscount
    | ScriptDiscount
)
_ORDER_KIDS = (LineItem, Discount, AutomaticDiscount, ManualDiscount, ScriptDiscount)


class Decoded(Struct, gc=False):
    """A root line decoded, its children attached (``lineItems``, ``discountApplications``,
    each refund's ``refundLineItems``, each fulfilment's ``fulfillmentLineItems``, in the
    order :func:`._bulk._attach` gives them); ``taken`` as that function records it."""

    order: Order
    taken: list[tuple[str, list[bytes]]]


def _utf8(data: bytes) -> None:
    """Raise UnicodeDecodeError if ``data`` is not UTF-8 (msgspec would skip an unread
    member's bytes unchecked)."""
    if not data.isascii():
        data.decode()


def _kids(lines: list[bytes], children: dict[str, list[bytes]]) -> list[Any]:
    """The child lines decoded, in order; ValueError for any that :func:`decode` leaves to
    today's path (see the module doc)."""
    kids = []
    decode = _CHILD.decode
    for raw in lines:  # one a line, as _jsonl._parse_lines reads them (not joined)
        if not raw.isascii():  # as _utf8, inline (five child lines an order)
            raw.decode()
        kids.append(decode(raw))
    for kid in kids:  # (a child with lists of its own was refused by the decoder: _Child)
        cid = kid.id
        if cid and cid in children:
            raise ValueError("a child named as parent")
    return kids


def _sorted(items: list[Any]) -> list[Any]:
    """In id order, as :func:`._bulk._attach` sorts a list (stable: ties keep file order)."""
    if len(items) > 1:
        items.sort(key=_key)
    return items


def _key(kid: Any) -> tuple[int, str]:
    """``_bulk._child_key`` of a child struct: its id, else its line item's."""
    cid = getattr(kid, "id", None)
    if cid:
        return _number(cid)
    line = getattr(kid, "lineItem", None)
    return _number(None if line is None else line.id)


def decode(line: bytes, children: dict[str, list[bytes]]) -> Decoded | None:
    """The root ``line`` decoded with the lines of ``children`` waiting for it (by parent id)
    attached; None when today's path must take it (``children`` is left as it was)."""
    try:
        _utf8(line)
        order = _ORDER.decode(line)
        if (
            not order.id
            or order.lineItems is not UNSET
            or order.refundLineItems is not UNSET
            or order.fulfillmentLineItems is not UNSET
            or order.discountApplications is not UNSET
        ):
            return None
        taken: list[tuple[str, list[bytes]]] = []
        holders: set[str] = set()
        lines = children.get(order.id) if children else None
        holders.add(order.id)
        items: list[Any] = []
        discounts: list[Any] = []
        if lines is not None:
            taken.append((order.id, lines))
            for kid in _kids(lines, children):
                if type(kid) is LineItem:
                    items.append(kid)
                elif type(kid) in _ORDER_KIDS:
                    discounts.append(kid)
                else:
                    return None  # another kind under an order: today's path files it
        for refund in order.refunds or ():
            if not refund.id or refund.id in holders or not _plain_holder(refund):
                return None
            holders.add(refund.id)
            kids = children.get(refund.id) if children else None
            if kids is not None:
                taken.append((refund.id, kids))
                got = _kids(kids, children)
                if any(type(kid) is not RefundLineItem for kid in got):
                    return None
                refund.refundLineItems = _sorted(got)
        for shipped in order.fulfillments or ():
            if not shipped.id or shipped.id in holders or not _plain_holder(shipped):
                return None
            holders.add(shipped.id)
            kids = children.get(shipped.id) if children else None
            if kids is not None:
                taken.append((shipped.id, kids))
                got = _kids(kids, children)
                if any(type(kid) is not FulfillmentLineItem for kid in got):
                    return None
                shipped.fulfillmentLineItems = _sorted(got)
    except (msgspec.MsgspecError, ValueError):
        return None
    if lines is not None:
        if items:
            order.lineItems = _sorted(items)
        if discounts:
            order.discountApplications = _sorted(discounts)
    return Decoded(order, taken)


def _plain_holder(holder: _Holder) -> bool:
    return (
        holder.lineItems is UNSET
        and holder.refundLineItems is UNSET
        and holder.fulfillmentLineItems is UNSET
        and holder.discountApplications is UNSET
    )


class _Embedded(Struct, gc=False):
    id: str | None = None


class _Root(Struct, gc=False):
    """What the routing pass (:func:`._bulk_route._split`) needs of a root line."""

    id: str
    parent: str | None = msgspec.field(name="__parentId", default=None)
    refunds: list[_Embedded] | None = None
    fulfillments: list[_Embedded] | None = None


_ROOT = msgspec.json.Decoder(_Root)


def root_ids(raw: bytes) -> list[bytes] | None:
    """The ids of a root line as parsing reads them (its own first, then its refunds' and
    fulfilments', the objects children name as parent), by one msgspec decode of just those
    members: a fifth of ``_jsonl._root_ids``' cost on a 3 kB order line, which scans the
    line for escapes and splits it (issue 20). None for a line it does not read so (a
    ``__parentId``, an id that is not a string or is empty, an embedded list of anything
    but objects, a line msgspec refuses): the caller reads it as before."""
    try:
        root = _ROOT.decode(raw)
    except msgspec.MsgspecError:
        return None
    if root.parent is not None or not root.id:
        return None
    ids = [root.id.encode()]
    for items in (root.refunds, root.fulfillments):
        for item in items or ():
            if item.id:
                ids.append(item.id.encode())
    return ids
