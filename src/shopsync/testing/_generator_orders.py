"""Orders for the seeded generator: lines, discounts, shipping, refunds, cancellations and
fulfilments of one order, drawn from the generator's random stream in a fixed order (so the
same seed gives the same shop).

Orders and their parts are built without validation (see ``_builder``): validating 100k
orders field by field costs about a minute, and the values are correct by construction. The
test suite re-validates every record of generated shops to keep it so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from shopsync.models import (
    Address,
    FinancialStatus,
    Fulfillment,
    FulfillmentLine,
    FulfillmentStatus,
    LineItem,
    Money,
    Order,
    Product,
    Refund,
    RefundLine,
)
from shopsync.testing._catalogue import (
    CARRIERS,
    CODES,
    COUNTRIES,
    FIRST,
    LAST,
    REFUND_NOTES,
    Category,
)

if TYPE_CHECKING:
    from shopsync.testing.generator import _Generator

__all__ = ["CANCEL_RATE", "DISCOUNT_RATE", "REFUND_RATE", "OrderMaker"]

DAY = dt.timedelta(days=1)
B = TypeVar("B", bound=BaseModel)

REFUND_RATE = 0.05
CANCEL_RATE = 0.02
DISCOUNT_RATE = 0.12


def _builder(model: type[B]) -> Callable[..., B]:
    """A fast unvalidated constructor: copying a template is several times quicker than
    ``model_construct``, which resolves every default on every call."""
    # every field present (required ones as None placeholders) keeps the field order
    # canonical, so model_dump_json of a built record matches a validated one
    required = [name for name, info in model.model_fields.items() if info.is_required()]
    template = model.model_construct(**dict.fromkeys(required))
    return lambda **fields: template.model_copy(update=fields)


_order = _builder(Order)
_line = _builder(LineItem)
_refund = _builder(Refund)
_refund_line = _builder(RefundLine)
_fulfillment = _builder(Fulfillment)
_fulfillment_line = _builder(FulfillmentLine)


class OrderMaker:
    """Makes the orders of one :class:`~.generator._Generator`, from its random stream."""

    def __init__(self, gen: _Generator) -> None:
        self.gen = gen

    def make_order(
        self,
        number: int,
        created: dt.datetime,
        idx: int | None,
        email: str,
        home: Address,
        picks: list[int],
        catalogue: list[tuple[Product, Category, float]],
        profiles: list[dict[str, Any]],
        source: str,
        spend: Decimal | None = None,
    ) -> Order:
        """One order; with ``spend`` (a buying model's draw) the unit prices are scaled so
        the lines' value before discounts is ``spend``, as a price override would."""
        rng = self.gen.rng
        end = self.gen.end
        code_pct = Decimal(0)
        codes: tuple[str, ...] = ()
        bfcm = created.month == 11 and created.day >= 20
        if rng.random() < (0.3 if bfcm else DISCOUNT_RATE):
            code, pct = ("BFCM25", "0.25") if bfcm else rng.choice(CODES)
            codes, code_pct = (code,), Decimal(pct)
        lines = []
        drawn = []
        for k in picks:  # the draws first, in the order they always were made
            product, cat, _ = catalogue[k]
            variant = rng.choice(product.variants) if product.variants else None
            unit = (
                variant.price
                if variant and variant.price
                else self.gen.money(self.gen.price(rng.uniform(*cat.price) * self.gen.scale))
            )
            qty = 1 if rng.random() < 0.8 else rng.choice((2, 2, 3))
            drawn.append((product, cat, variant, unit, qty))
        if spend is not None:
            natural = sum((unit.amount * qty for *_, unit, qty in drawn), Decimal(0))
            factor = spend / natural if natural > 0 else Decimal(0)
            step = self.gen.step
            drawn = [
                (p, c, v, self.gen.money(max(step, u.amount * factor)), q)
                for p, c, v, u, q in drawn
            ]
        for product, cat, variant, unit, qty in drawn:
            gross = unit.amount * qty
            discount = self.gen.money(gross * code_pct)
            lines.append(
                _line(
                    id=self.gen.next_id("line_items"),
                    product_id=product.id,
                    variant_id=variant.id if variant else None,
                    sku=variant.sku if variant else f"{cat.name[:3].upper()}-{product.id}",
                    title=product.title,
                    product_type=product.product_type,
                    quantity=Decimal(qty),  # as validation makes it, so dumps match
                    unit_price=unit,
                    total_discount=discount if codes else None,
                    total=self.gen.money(gross - discount.amount),
                )
            )
        subtotal = sum((li.total.amount for li in lines), Decimal(0))
        discounts = sum((li.total_discount.amount for li in lines if li.total_discount), Decimal(0))
        shipping = (
            Decimal(0)
            if subtotal >= 75 * self.gen.scale
            else self.gen.price(rng.choice((4, 6)) * self.gen.scale)
        )
        tax_rate = next(Decimal(c[2]) for c in COUNTRIES if c[0] == home.country_code)
        tax = self.gen.money(subtotal * tax_rate).amount
        total = self.gen.money(subtotal + shipping + tax)
        shipping_address = home
        if rng.random() < 0.08:
            shipping_address = self.gen.address(rng.choice(FIRST), rng.choice(LAST))  # a gift
        fields: dict[str, Any] = {
            "platform": self.gen.platform,
            "shop": self.gen.shop,
            "id": self.gen.next_id("orders"),
            "name": f"#{number}",
            "customer_id": profiles[idx]["id"] if idx is not None else None,
            "email": email,
            "created_at": created,
            "processed_at": created,
            "currency": self.gen.currency,
            "subtotal": self.gen.money(subtotal),
            "total_discounts": self.gen.money(discounts),
            "total_shipping": self.gen.money(shipping),
            "total_tax": self.gen.money(tax),
            "total": total,
            "total_refunded": self.gen.money(Decimal(0)),
            "line_items": tuple(lines),
            "discount_codes": codes,
            "source": source,
            "tags": ("gift",) if shipping_address is not home else (),
            "billing_address": home,
            "shipping_address": shipping_address,
            "financial_status": FinancialStatus.PAID,
        }
        touched = [created]
        age = (end - created) / DAY
        roll = rng.random()
        if roll < CANCEL_RATE:
            cancelled = min(created + rng.uniform(0.05, 2) * DAY, end - dt.timedelta(seconds=1))
            touched.append(cancelled)
            fields.update(cancelled_at=cancelled, closed_at=cancelled)
            if rng.random() < 0.3:
                fields["financial_status"] = FinancialStatus.VOIDED
            else:
                paid = created + dt.timedelta(seconds=rng.uniform(2, 60))
                fields.update(
                    paid_at=paid,
                    financial_status=FinancialStatus.REFUNDED,
                    total_refunded=total,
                    refunds=(self.full_refund(lines, total, cancelled, "Order cancelled"),),
                )
                fields["line_items"] = tuple(
                    li.model_copy(update={"refunded_quantity": li.quantity}) for li in lines
                )
            fields["updated_at"] = max(touched)
            return _order(**fields)
        if age < 10 and rng.random() < 0.15:
            fields["financial_status"] = FinancialStatus.PENDING  # awaiting a bank transfer
            fields["updated_at"] = created
            return _order(**fields)
        paid = created + dt.timedelta(seconds=rng.uniform(2, 60))
        fields["paid_at"] = paid
        touched.append(paid)
        shipped_at = created + rng.uniform(0.3, 3) * DAY
        shipped_lines = lines
        if shipped_at < end:
            status = FulfillmentStatus.FULFILLED
            if len(lines) > 1 and rng.random() < 0.03:
                shipped_lines = lines[:1]
                status = FulfillmentStatus.PARTIALLY_FULFILLED
            company, url = rng.choice(CARRIERS)
            tracking = f"{rng.randrange(10**11, 10**12)}"
            delivered: dt.datetime | None = shipped_at + rng.uniform(1, 7) * DAY
            if delivered is not None and (delivered >= end or rng.random() < 0.03):
                delivered = None  # in transit, or the carrier never scanned it
            fields["fulfillments"] = (
                _fulfillment(
                    id=self.gen.next_id("fulfillments"),
                    created_at=shipped_at,
                    tracking_company=company,
                    tracking_numbers=(tracking,),
                    tracking_urls=(url.format(tracking),),
                    delivered_at=delivered,
                    lines=tuple(
                        _fulfillment_line(line_item_id=li.id, quantity=li.quantity)
                        for li in shipped_lines
                    ),
                ),
            )
            fields["fulfillment_status"] = status
            touched.append(delivered or shipped_at)
        if roll < CANCEL_RATE + REFUND_RATE:
            refund_at = max(touched) + rng.uniform(1, 20) * DAY
            if refund_at < end:
                touched.append(refund_at)
                self.refund(fields, lines, total, refund_at)
        fields["updated_at"] = max(touched)
        return _order(**fields)

    def full_refund(
        self, lines: list[LineItem], total: Money, at: dt.datetime, note: str | None
    ) -> Refund:
        return _refund(
            id=self.gen.next_id("refunds"),
            created_at=at,
            amount=total,
            note=note,
            lines=tuple(
                _refund_line(line_item_id=li.id, quantity=li.quantity, subtotal=li.total)
                for li in lines
            ),
        )

    def refund(
        self, fields: dict[str, Any], lines: list[LineItem], total: Money, at: dt.datetime
    ) -> None:
        rng = self.gen.rng
        note = rng.choice(REFUND_NOTES)
        kind = rng.random()
        if kind < 0.4:  # everything back
            refund = self.full_refund(lines, total, at, note)
            fields["line_items"] = tuple(
                li.model_copy(update={"refunded_quantity": li.quantity}) for li in lines
            )
            fields["financial_status"] = FinancialStatus.REFUNDED
        elif kind < 0.85:  # one unit of one line
            k = rng.randrange(len(lines))
            li = lines[k]
            amount = self.gen.money(li.total.amount / li.quantity)
            line = _refund_line(line_item_id=li.id, quantity=Decimal(1), subtotal=amount)
            refund = _refund(
                id=self.gen.next_id("refunds"),
                created_at=at,
                amount=amount,
                note=note,
                lines=(line,),
            )
            changed = list(lines)
            changed[k] = li.model_copy(update={"refunded_quantity": Decimal(1)})
            fields["line_items"] = tuple(changed)
            fields["financial_status"] = (
                FinancialStatus.REFUNDED if amount >= total else FinancialStatus.PARTIALLY_REFUNDED
            )
        else:  # a goodwill amount, no goods back
            amount = self.gen.money(total.amount * Decimal("0.1"))
            refund = _refund(
                id=self.gen.next_id("refunds"), created_at=at, amount=amount, note="Goodwill"
            )
            fields["financial_status"] = FinancialStatus.PARTIALLY_REFUNDED
        fields["refunds"] = (refund,)
        fields["total_refunded"] = refund.amount
