"""A shop built by hand for the pure core's tests: a few lines give :class:`Frames`.

    shop = Shop().customer("c1").order("o1", "c1", T0, [("beans", 2, "12")], ptype="Coffee")
    frames = shop.frames(T0 + 30 * DAY)

Every column and dtype is the one :func:`shopsync.frames.load` produces, and ``frames(as_of)``
cuts the rows at ``as_of`` as the read model does (orders placed later are counted in
``future_orders``; consent, reviews, outbox deliveries and suppressions count from their date;
lines, refunds and fulfilments are not cut). ``models()`` gives the same shop as shared models,
so tests/core/test_frames_kit.py can check, on a real store, that both give the same frames.

It lives in tests/ and not in ``shopsync.testing``: :class:`Frames` is private
(``shopsync.core._data``) and its columns are still moving with issue 18, so a public builder
would freeze a schema no user can yet write a rule against.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import polars as pl

from shopsync._instants import to_micros
from shopsync.checkouts import Checkout, CheckoutLine
from shopsync.core._data import BROWSE, CHECKOUTS, Frames
from shopsync.core.loyalty import Entry
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
from shopsync.store.event_rows import EventRow

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 3, 1, 12, tzinfo=UTC)
DAY = dt.timedelta(days=1)
DAY_US = 86_400_000_000
I64, STR = pl.Int64(), pl.String()
UNIT = 10_000  # money and quantities are ten-thousandths in frames

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "customers": {"id": STR, "created_at": I64, "birthday": STR},
    "orders": {
        "id": STR,
        "customer_id": STR,
        "created_at": I64,
        "paid_at": I64,
        "processed_at": I64,
        "cancelled_at": I64,
        "financial_status": STR,
        "fulfillment_status": STR,
        "currency": STR,
        "total": I64,
        "ship_country": STR,
    },
    "refunds": {"order_id": STR, "created_at": I64, "amount": I64},
    "lines": {
        "order_id": STR,
        "product_id": STR,
        "sku": STR,
        "product_type": STR,
        "quantity": I64,
        "unit_price": I64,
        "refunded_quantity": I64,
    },
    "fulfillments": {"order_id": STR, "created_at": I64, "status": STR, "delivered_at": I64},
    "consent": {"customer_id": STR, "channel": STR, "observed_at": I64, "state": STR},
    "products": {"id": STR, "product_type": STR, "tags": pl.List(STR), "status": STR},
    "reviews": {"customer_id": STR, "product_id": STR, "reviewed_at": I64},
    "advocates": {"customer_id": STR},
    "sent": {"customer_id": STR, "key": STR, "at": I64},
    "suppressed": {"customer_id": STR},
    "checkouts": CHECKOUTS,
    "browse": BROWSE,
}


def us(when: dt.datetime | None) -> int | None:
    return None if when is None else to_micros(when)


def units(amount: str | int | Decimal) -> int:
    """ "12.5" -> 125000: money or a quantity in ten-thousandths, as the frames hold them."""
    return int(Decimal(str(amount)) * UNIT)


@dataclass
class _Line:
    product_id: str | None
    quantity: str
    price: str
    sku: str | None
    ptype: str | None
    returned: str


@dataclass
class _Order:
    id: str
    customer_id: str
    at: dt.datetime
    lines: list[_Line]
    paid_at: dt.datetime | None
    status: str
    cancelled: dt.datetime | None
    fulfilled: list[tuple[dt.datetime, dt.datetime | None, str]]
    refunds: list[tuple[dt.datetime, str]]
    currency: str
    country: str | None
    total: str | None

    @property
    def amount(self) -> Decimal:
        if self.total is not None:
            return Decimal(self.total)
        return sum((Decimal(li.price) * Decimal(li.quantity) for li in self.lines), Decimal(0))


@dataclass
class Shop:
    """A shop under construction; every method returns the shop, so calls chain."""

    platform: str = "shopify"
    name: str = "acme"
    currency: str = "USD"
    _customers: dict[str, tuple[dt.datetime, str | None]] = field(default_factory=dict)
    _consent: list[tuple[str, dt.datetime, str]] = field(default_factory=list)
    _orders: list[_Order] = field(default_factory=list)
    _products: dict[str, tuple[str | None, tuple[str, ...], str | None]] = field(
        default_factory=dict
    )
    _reviews: list[tuple[str, str, dt.datetime]] = field(default_factory=list)
    _advocates: list[str] = field(default_factory=list)
    _sent: list[tuple[str, str, dt.datetime]] | None = field(default_factory=list)
    _suppressed: list[str] = field(default_factory=list)
    _delivered: dict[str, dt.datetime] = field(default_factory=dict)
    _checkouts: list[tuple[Any, ...]] = field(default_factory=list)
    _browse: list[tuple[str | None, str, dt.datetime, str]] = field(default_factory=list)

    def customer(
        self,
        cid: str,
        *,
        created: dt.datetime | None = None,
        birthday: str | None = None,
        consent: str | None = "subscribed",
    ) -> Shop:
        """A customer (created 400 days before :data:`T0`) whose email consent is ``consent``,
        observed when the account was created (None: no consent row)."""
        at = created or T0 - 400 * DAY
        self._customers[cid] = (at, birthday)
        if consent is not None:
            self._consent.append((cid, at, consent))
        return self

    def consent(self, cid: str, state: str, at: dt.datetime) -> Shop:
        """A later consent change, observed at ``at``."""
        self._consent.append((cid, at, state))
        return self

    def order(
        self,
        oid: str,
        cid: str,
        at: dt.datetime,
        lines: list[tuple[str | None, Any, str]] | None = None,
        *,
        ptype: str | None = None,
        sku: str | None = None,
        paid: dt.datetime | bool | None = True,
        status: str = "paid",
        cancelled: dt.datetime | None = None,
        fulfilled: dt.datetime | bool = True,
        delivered: dt.datetime | None = None,
        shipment: str = "success",
        refund: tuple[dt.datetime, str] | None = None,
        returned: dict[str, Any] | None = None,
        currency: str | None = None,
        country: str | None = None,
        total: str | None = None,
    ) -> Shop:
        """An order placed at ``at``. ``lines``: (product id, quantity, unit price), default one
        ``p1`` at 20. ``paid``: True pays at ``at``, False leaves it unpaid (``status`` then
        "pending" unless given), None pays without a payment date (as a platform may).
        ``fulfilled``: True ships a day later, a datetime ships then, False not at all.
        ``returned``: product id -> refunded quantity."""
        specs = lines if lines is not None else [("p1", 1, "20")]
        paid_at = at if paid is True else None if paid is False else paid
        if paid is False and status == "paid":
            status = "pending"
        shipped: list[tuple[dt.datetime, dt.datetime | None, str]] = []
        if fulfilled is not False:
            when = at + DAY if fulfilled is True else fulfilled
            assert isinstance(when, dt.datetime)
            shipped.append((when, delivered, shipment))
        back = returned or {}
        self._orders.append(
            _Order(
                id=oid,
                customer_id=cid,
                at=at,
                lines=[
                    _Line(pid, str(q), str(p), sku, ptype, str(back.get(pid or "", 0)))
                    for pid, q, p in specs
                ],
                paid_at=paid_at,
                status=status,
                cancelled=cancelled,
                fulfilled=shipped,
                refunds=[refund] if refund else [],
                currency=currency or self.currency,
                country=country,
                total=total,
            )
        )
        return self

    def product(
        self,
        pid: str,
        ptype: str | None = None,
        tags: tuple[str, ...] = (),
        status: str | None = "active",
    ) -> Shop:
        self._products[pid] = (ptype, tags, status)
        return self

    def review(self, cid: str, pid: str, at: dt.datetime) -> Shop:
        self._reviews.append((cid, pid, at))
        return self

    def advocate(self, cid: str) -> Shop:
        """A customer whose referral the loyalty ledger rewarded."""
        self._advocates.append(cid)
        return self

    def sent(self, cid: str, key: str, at: dt.datetime) -> Shop:
        """A marketing message the outbox delivered (``done``) at ``at``."""
        assert self._sent is not None
        self._sent.append((cid, key, at))
        return self

    def no_outbox(self) -> Shop:
        self._sent = None
        return self

    def suppress(self, cid: str) -> Shop:
        self._suppressed.append(cid)
        return self

    def delivered(self, key: str, at: dt.datetime) -> Shop:
        """The outbox delivered the action keyed ``key`` (a review request) at ``at``."""
        self._delivered[key] = at
        return self

    def checkout(
        self,
        kid: str,
        cid: str | None,
        at: dt.datetime,
        products: tuple[str, ...] = ("p1",),
        *,
        total: str = "40",
        completed: dt.datetime | None = None,
    ) -> Shop:
        """A checkout ``cid`` started at ``at`` (issue 22), completed at ``completed``."""
        self._checkouts.append((kid, cid, at, products, total, completed))
        return self

    def viewed(
        self, cid: str | None, pid: str, at: dt.datetime, kind: str = "product_viewed"
    ) -> Shop:
        """A browse event of ``cid`` (None: a visitor nobody identified) at ``at``."""
        self._browse.append((cid, pid, at, kind))
        return self

    # -- the frames ---------------------------------------------------------------------------

    def frames(self, as_of: dt.datetime, *, window_days: int = 30) -> Frames:
        """The shop as :func:`shopsync.frames.load` reads it at ``as_of``."""
        at = to_micros(as_of)
        kept = [o for o in self._orders if to_micros(o.at) <= at]
        catalogue_type = {pid: spec[0] for pid, spec in self._products.items()}
        rows: dict[str, list[tuple[Any, ...]]] = {
            "customers": [
                (cid, us(c), b)
                for cid, (c, b) in self._customers.items()
                if us(c) <= at  # type: ignore[operator]
            ],
            "orders": [
                (
                    o.id,
                    o.customer_id,
                    us(o.at),
                    us(o.paid_at),
                    None,
                    us(o.cancelled),
                    o.status,
                    "fulfilled" if o.fulfilled else "unfulfilled",
                    o.currency,
                    units(o.amount),
                    o.country,
                )
                for o in kept
            ],
            "refunds": [(o.id, us(w), units(a)) for o in self._orders for w, a in o.refunds],
            "lines": [
                (
                    o.id,
                    li.product_id,
                    li.sku,
                    li.ptype or catalogue_type.get(li.product_id or ""),
                    units(li.quantity),
                    units(li.price),
                    units(li.returned),
                )
                for o in self._orders
                for li in o.lines
            ],
            "fulfillments": [
                (o.id, us(w), s, us(d)) for o in self._orders for w, d, s in o.fulfilled
            ],
            "consent": [(c, "email", us(w), s) for c, w, s in self._consent if us(w) <= at],  # type: ignore[operator]
            "products": [(pid, t, list(tags), s) for pid, (t, tags, s) in self._products.items()],
            "reviews": [(c, p, us(w)) for c, p, w in self._reviews if us(w) <= at],  # type: ignore[operator]
            "advocates": [(c,) for c in sorted(set(self._advocates))],
            "sent": [
                (c, k, us(w))
                for c, k, w in self._sent or []
                if at - window_days * DAY_US < us(w) <= at  # type: ignore[operator]
            ],
            "suppressed": [(c,) for c in self._suppressed],
        }
        built = {name: frame(name, data) for name, data in rows.items()}
        return Frames(
            platform=self.platform,
            shop=self.name,
            as_of=at,
            currency=self.currency,
            customers=built["customers"],
            orders=built["orders"],
            refunds=built["refunds"],
            lines=built["lines"],
            fulfillments=built["fulfillments"],
            consent=built["consent"],
            products=built["products"],
            reviews=built["reviews"],
            advocates=built["advocates"],
            sent=None if self._sent is None else built["sent"],
            suppressed=built["suppressed"],
            future_orders=len(self._orders) - len(kept),
            requests_delivered={k: to_micros(w) for k, w in self._delivered.items() if w <= as_of},
            browse=frame(
                "browse",
                [(c, p, k, us(w)) for c, p, w, k in self._browse if c is not None and w <= as_of],
            ),
            checkouts=frame(
                "checkouts",
                [
                    (
                        *(k, c, f"{c}@example.com" if c else None, us(w)),
                        us(d) if d is not None and d <= as_of else None,
                        *(units(t), self.currency, list(ps)),
                    )
                    for k, c, w, ps, t, d in self._checkouts
                    if w <= as_of
                ],
            ),
        )

    # -- the same shop as shared models, for a real store ---------------------------------------

    def models(self) -> list[Customer | Order | Product]:
        """Customers, orders and products for ``Store.upsert`` (consent: the last state per
        customer; reviews, advocates and the outbox are not records and are left out)."""
        last = {c: s for c, _, s in sorted(self._consent, key=lambda r: r[1])}
        out: list[Customer | Order | Product] = []
        for cid, (created, birthday) in self._customers.items():
            state = ConsentState(last.get(cid, "unknown"))
            out.append(
                Customer(
                    platform=self.platform,
                    shop=self.name,
                    id=cid,
                    email=f"{cid}@example.com",
                    created_at=created,
                    updated_at=created,
                    birthday=dt.date.fromisoformat(birthday) if birthday else None,
                    consent=Consent(email=MarketingConsent(state=state)),
                )
            )
        for pid, (ptype, tags, status) in self._products.items():
            out.append(
                Product(
                    platform=self.platform,
                    shop=self.name,
                    id=pid,
                    title=pid,
                    product_type=ptype,
                    tags=tags,
                    status=status,
                    created_at=T0 - 900 * DAY,
                    updated_at=T0 - 900 * DAY,
                )
            )
        out += [self._order_model(o) for o in self._orders]
        return out

    def event_rows(self) -> list[EventRow]:
        """The browse events as the event endpoint stores them."""
        return [
            EventRow(f"e{n}", c or "anon", c, k, p, w)
            for n, (c, p, w, k) in enumerate(self._browse)
        ]

    def checkout_models(self) -> list[Checkout]:
        """The checkouts as shared models (for ``upsert_checkouts``)."""
        return [
            Checkout(
                platform=self.platform,
                shop=self.name,
                id=k,
                customer_id=c,
                email=f"{c}@example.com" if c else None,
                created_at=w,
                updated_at=d or w,
                completed_at=d,
                currency=self.currency,
                subtotal=Money.of(Decimal(t), self.currency),
                total=Money.of(Decimal(t), self.currency),
                line_items=tuple(
                    CheckoutLine(
                        product_id=p,
                        title=p,
                        quantity=Decimal(1),
                        unit_price=Money.of(Decimal(t), self.currency),
                    )
                    for p in ps
                ),
            )
            for k, c, w, ps, t, d in self._checkouts
        ]

    def _order_model(self, o: _Order) -> Order:
        def money(amount: Decimal | str) -> Money:
            return Money.of(Decimal(amount), o.currency)

        refunded = sum((Decimal(a) for _, a in o.refunds), Decimal(0))
        stamps = [o.at, *(w for w, _, _ in o.fulfilled), *(w for w, _ in o.refunds)]
        return Order(
            platform=self.platform,
            shop=self.name,
            id=o.id,
            customer_id=o.customer_id,
            created_at=o.at,
            updated_at=max(w for w in stamps if w is not None),
            paid_at=o.paid_at,
            cancelled_at=o.cancelled,
            financial_status=FinancialStatus(o.status),
            fulfillment_status=(
                FulfillmentStatus.FULFILLED if o.fulfilled else FulfillmentStatus.UNFULFILLED
            ),
            currency=o.currency,
            subtotal=money(o.amount),
            total_discounts=money("0"),
            total_shipping=money("0"),
            total_tax=money("0"),
            total=money(o.amount),
            total_refunded=money(refunded),
            line_items=tuple(
                LineItem(
                    id=f"{o.id}-{i}",
                    product_id=li.product_id,
                    sku=li.sku,
                    title=li.product_id or "custom",
                    product_type=li.ptype,
                    quantity=Decimal(li.quantity),
                    unit_price=money(li.price),
                    total=money(Decimal(li.price) * Decimal(li.quantity)),
                    refunded_quantity=Decimal(li.returned),
                )
                for i, li in enumerate(o.lines)
            ),
            fulfillments=tuple(
                Fulfillment(id=f"f{o.id}-{i}", created_at=w, status=s, delivered_at=d)
                for i, (w, d, s) in enumerate(o.fulfilled)
            ),
            refunds=tuple(
                Refund(id=f"r{o.id}-{i}", created_at=w, amount=money(a))
                for i, (w, a) in enumerate(o.refunds)
            ),
            shipping_address=Address(country_code=o.country) if o.country else None,
        )


def entry_of_row(row: tuple[Any, ...], per_unit: int) -> Entry:
    """An entry frame's row (``ROW_COLUMNS``' order) as the :class:`Entry` it was made from:
    an earn's detail holds its value, ``per_unit`` and multiplier; the other kinds' none."""
    key, customer, kind, at, pending, approved, reason, order, value, rate = row
    detail = {"value_units": value, "per_unit": per_unit, "multiplier": rate}
    return Entry(
        key, customer, kind, at, pending, approved, reason, order, detail if kind == "earn" else {}
    )


def purchase_lines(rows: list[tuple[Any, ...]]) -> pl.DataFrame:
    """Order lines as :func:`shopsync.core.shop_stats.purchases` reads them: (order, product,
    sku, type, quantity, unit price, refunded quantity), quantities in ten-thousandths."""
    text, num = pl.String, pl.Int64
    names = ("order_id", "product_id", "sku", "product_type")
    schema = {**dict.fromkeys(names, text), "quantity": num, "unit_price": num}
    return pl.DataFrame(rows, schema={**schema, "refunded_quantity": num}, orient="row")


def frame(name: str, rows: list[tuple[Any, ...]]) -> pl.DataFrame:
    """Rows as the read model's frame ``name`` (columns and dtypes of :data:`SCHEMAS`)."""
    return pl.DataFrame(rows, schema=SCHEMAS[name], orient="row")


PROGRAMS = (
    "reviews",
    "winback",
    "replenishment",
    "warranty",
    "recommendations",
    "abandoned_checkout",
    "browse_abandonment",
)


def policy(**sections: Any) -> Any:
    """A policy with loyalty, the holdout and every program off but those given, so a test
    sees one program at a time; ``winback={}`` turns win-back on with its defaults."""
    from shopsync.core.policy import Policy

    data: dict[str, Any] = {"loyalty": {"enabled": False}, "holdout": {"share": 0}}
    for program in PROGRAMS:
        data[program] = {"enabled": False}
    for name, value in sections.items():
        on = {"enabled": True} if name in PROGRAMS else {}
        data[name] = {**data.get(name, {}), **on, **value}
    return Policy.from_dict(data)
