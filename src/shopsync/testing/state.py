"""The emulator's backend: one shop's records, held in memory and inspectable by tests.

Like a moto backend, this is the single truth the platform renderers read from and the
change API writes to. A test can look behind the HTTP layer (``shop.state.orders[id]``)
or change the shop the way a merchant would (``shop.state.refund_order(id)``), and every
change both stamps ``updated_at`` from :attr:`ShopState.clock` and emits an :class:`Event`,
so incremental syncs and webhooks see it exactly as they would on a live shop.

All access goes through one re-entrant lock: the HTTP server serves from several threads
while a test changes the shop from another.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from shopsync._currencies import EXPONENTS
from shopsync.checkouts import Checkout
from shopsync.errors import NotFoundError
from shopsync.models import (
    ConsentState,
    Customer,
    FinancialStatus,
    Fulfillment,
    FulfillmentLine,
    FulfillmentStatus,
    MarketingConsent,
    Money,
    Order,
    Product,
    Refund,
    RefundLine,
)
from shopsync.testing._edits import OrderEdit, edited_order
from shopsync.testing._events import TOPICS, DeliveryAttempt, Event, ProductFacts, Subscription

if TYPE_CHECKING:
    from shopsync.testing.behaviour import Population
    from shopsync.testing.faults import Faults

__all__ = [
    "TOPICS",
    "DeliveryAttempt",
    "Event",
    "ProductFacts",
    "ShopState",
    "Subscription",
]


_TICK = dt.timedelta(microseconds=1)
M = TypeVar("M", Customer, Order, Product)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class ShopState:
    """An in-memory shop: customers, orders, products, deletions and webhook subscriptions.

    Reading the dicts directly is fine for inspection in a test; code that runs while the
    server is up should hold :attr:`lock` or use :meth:`ordered`, which snapshots.
    """

    def __init__(
        self,
        *,
        platform: str,
        shop: str,
        currency: str = "USD",
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self.platform = platform
        self.shop = shop
        self.currency = currency
        self.clock = clock
        """Source of every ``updated_at``; tests may replace it with a fake clock."""
        self.lock = threading.RLock()
        self.customers: dict[str, Customer] = {}
        self.orders: dict[str, Order] = {}
        self.products: dict[str, Product] = {}
        self.checkouts: dict[str, Checkout] = {}
        """Checkouts shoppers started (issue 22; see :mod:`shopsync.testing._checkouts`)."""
        self.order_checkouts: dict[str, str] = {}
        """Order id -> the checkout it was placed from (a Shopify order body names it by
        ``checkout_token``)."""
        self.deleted: dict[tuple[str, str], dt.datetime] = {}
        self.product_facts: dict[str, ProductFacts] = {}
        self.order_edits: dict[str, OrderEdit] = {}
        """Order id -> what an edited order was as placed (:meth:`edit_order`)."""
        self.webhooks: list[Subscription] = []
        self.deliveries: list[DeliveryAttempt] = []
        self.faults: Faults = _default_faults()
        """The fault switches; renderers read ``faults.invalid_records`` from here."""
        self.next_ids: dict[str, int] = {}
        """Next free numeric id per kind (``customers``, ``line_items``...)."""
        self.population: Population | None = None
        """The customers' buying state when the shop was generated with a buying model."""
        self._subscribers: list[Callable[[Event], None]] = []
        self._last_stamp: dt.datetime | None = None
        self._versions: dict[str, int] = {}
        self._sorted: dict[tuple[str, str], tuple[int, list[Any]]] = {}

    # ----------------------------------------------------------------- inspection

    def __repr__(self) -> str:
        return (
            f"ShopState({self.platform!r}, {self.shop!r}, customers={len(self.customers)}, "
            f"orders={len(self.orders)}, products={len(self.products)})"
        )

    def __eq__(self, other: object) -> bool:
        """Equal data, ignoring the lock, clock, subscribers and delivery log."""
        if not isinstance(other, ShopState):
            return NotImplemented
        return self._data() == other._data()

    __hash__ = None  # type: ignore[assignment]

    def _data(self) -> tuple[Any, ...]:
        return (
            self.platform,
            self.shop,
            self.currency,
            self.customers,
            self.orders,
            self.products,
            self.checkouts,
            self.deleted,
            self.product_facts,
            self.next_ids,
        )

    def records(self, resource: str) -> dict[str, Any]:
        """The live dict of ``customers``, ``orders`` or ``products``."""
        tables: dict[str, dict[str, Any]] = {
            "customers": self.customers,
            "orders": self.orders,
            "products": self.products,
            "checkouts": self.checkouts,
        }
        found = tables.get(resource)
        if found is None:
            raise ValueError(f"unknown resource {resource!r}")
        return found

    def ordered(self, resource: str, by: str = "id") -> list[Any]:
        """A snapshot of a resource sorted by ``id`` (numerically), ``created_at`` or
        ``updated_at`` (ties broken by id), cached until the resource next changes, so a
        paginating emulator does not sort 100k orders for every page."""
        if by not in ("id", "created_at", "updated_at"):
            raise ValueError(f"cannot order by {by!r}")
        with self.lock:
            version = self._versions.get(resource, 0)
            cached = self._sorted.get((resource, by))
            if cached is not None and cached[0] == version:
                return cached[1]
            rows = list(self.records(resource).values())
            if by == "id":
                rows.sort(key=lambda r: _id_key(r.id))
            else:
                rows.sort(key=lambda r: (getattr(r, by), _id_key(r.id)))
            self._sorted[(resource, by)] = (version, rows)
            return rows

    def get(self, resource: str, record_id: str) -> Any:
        """The record, or :class:`~shopsync.errors.NotFoundError`."""
        with self.lock:
            found = self.records(resource).get(str(record_id))
        if found is None:
            raise NotFoundError(f"no {resource} record {record_id!r}", status=404)
        return found

    def new_id(self, kind: str) -> str:
        """A fresh numeric id for ``kind`` (``customers``, ``orders``, ``refunds``...)."""
        with self.lock:
            value = self.next_ids.get(kind, 1)
            self.next_ids[kind] = value + 1
            return str(value)

    # ----------------------------------------------------------------- events

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback`` for every event, under the lock (so keep it quick).

        Returns a function that unsubscribes.
        """
        with self.lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self.lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def emit(
        self,
        topic: str,
        resource: str,
        record_id: str,
        record: BaseModel | None = None,
        *,
        at: dt.datetime | None = None,
        child_id: str | None = None,
    ) -> Event:
        """Publish an event without changing anything (data requests, shop redaction)."""
        with self.lock:
            event = Event(topic, resource, record_id, record, at or self.stamp(), child_id)
            for callback in list(self._subscribers):
                callback(event)
            return event

    def stamp(self, after: dt.datetime | None = None) -> dt.datetime:
        """The next change time: ``clock()``, pushed past the previous stamp (and past
        ``after``) by a microsecond when needed, so ``updated_at`` strictly increases."""
        with self.lock:
            now = self.clock()
            if now.tzinfo is None:
                raise ValueError("ShopState.clock must return an aware datetime")
            now = now.astimezone(dt.timezone.utc)
            for floor in (self._last_stamp, after):
                if floor is not None and now <= floor:
                    now = floor + _TICK
            self._last_stamp = now
            return now

    def _put(self, resource: str, record: M, topic: str, child_id: str | None = None) -> M:
        self.records(resource)[record.id] = record
        self._versions[resource] = self._versions.get(resource, 0) + 1
        self.emit(topic, resource, record.id, record, at=record.updated_at, child_id=child_id)
        return record

    def _changed(self, old: M, fields: Mapping[str, Any]) -> M:
        """``old`` with ``fields`` applied, validated, and ``updated_at`` stamped unless the
        caller forces one."""
        values = dict(old)
        values.update(fields)
        if "updated_at" not in fields:
            values["updated_at"] = self.stamp(after=old.updated_at)
        return type(old).model_validate(values)

    def _new(self, model: type[M], resource: str, record: M | None, fields: Any) -> M:
        if record is not None and fields:
            raise TypeError("pass either a model or fields, not both")
        values = dict(record) if record is not None else dict(fields)
        values.setdefault("platform", self.platform)
        values.setdefault("shop", self.shop)
        if not values.get("id"):
            values["id"] = self.new_id(resource)
        if "updated_at" not in fields:
            values["updated_at"] = self.stamp()
        values.setdefault("created_at", values["updated_at"])
        if model is Order:
            values.setdefault("currency", self.currency)
        return model.model_validate(values)

    # ----------------------------------------------------------------- checkouts (issue 22)

    def put_checkout(self, checkout: Checkout) -> Checkout:
        """Add or replace a checkout (``checkout.created`` / ``checkout.updated``)."""
        with self.lock:
            topic = "checkout.updated" if checkout.id in self.checkouts else "checkout.created"
            self.checkouts[checkout.id] = checkout
            self._versions["checkouts"] = self._versions.get("checkouts", 0) + 1
            self.emit(topic, "checkouts", checkout.id, checkout, at=checkout.updated_at)
            return checkout

    def delete_checkout(self, checkout_id: str) -> Checkout:
        """Delete a checkout (``checkout.deleted``): the shop's staff deleted it, or the
        platform purged it; it is gone from the abandoned-checkout listing too."""
        with self.lock:
            old = self.checkouts.pop(checkout_id)
            self._versions["checkouts"] = self._versions.get("checkouts", 0) + 1
            self.emit("checkout.deleted", "checkouts", old.id, old, at=self.stamp(old.updated_at))
            return old

    # ----------------------------------------------------------------- customers

    def add_customer(self, customer: Customer | None = None, **fields: Any) -> Customer:
        """Add a customer, from a model or from fields (id and timestamps are filled in)."""
        with self.lock:
            new = self._new(Customer, "customers", customer, fields)
            return self._put("customers", new, "customer.created")

    def update_customer(self, customer_id: str, **fields: Any) -> Customer:
        with self.lock:
            old: Customer = self.get("customers", customer_id)
            new = self._changed(old, fields)
            return self._put("customers", new, "customer.updated")

    def redact_customer(self, customer_id: str) -> Customer:
        """Erase the customer's personal data (a GDPR redaction), and their orders' too."""
        with self.lock:
            old: Customer = self.get("customers", customer_id)
            redacted = MarketingConsent(state=ConsentState.REDACTED)
            new = self._changed(
                old,
                {
                    "email": None,
                    "phone": None,
                    "first_name": None,
                    "last_name": None,
                    "birthday": None,
                    "default_address": None,
                    "consent": {"email": redacted, "sms": redacted},
                },
            )
            self._put("customers", new, "customer.redact")
            for order in [o for o in self.orders.values() if o.customer_id == customer_id]:
                wiped = {"email": None, "billing_address": None, "shipping_address": None}
                self._put("orders", self._changed(order, wiped), "order.updated")
            return new

    def delete_customer(self, customer_id: str) -> Customer:
        with self.lock:
            old: Customer = self.get("customers", customer_id)
            return self._delete("customers", old, "customer.deleted")

    def request_customer_data(self, customer_id: str) -> Event:
        """A customer asked for their data (emits ``customer.data_request``, changes nothing)."""
        with self.lock:
            customer = self.get("customers", customer_id)
            return self.emit("customer.data_request", "customers", customer.id, customer)

    def redact_shop(self) -> Event:
        """The merchant uninstalled the app long enough ago (emits ``shop.redact``)."""
        return self.emit("shop.redact", "shop", self.shop)

    def _delete(self, resource: str, old: M, topic: str) -> M:
        at = self.stamp(after=old.updated_at)
        del self.records(resource)[old.id]
        self.deleted[(resource, old.id)] = at
        self._versions[resource] = self._versions.get(resource, 0) + 1
        self.emit(topic, resource, old.id, old, at=at)
        return old

    # ----------------------------------------------------------------- orders

    def add_order(
        self, order: Order | None = None, *, from_checkout: str | None = None, **fields: Any
    ) -> Order:
        """Add an order; its customer's ``orders_count``/``total_spent`` follow (and emit
        ``customer.updated``), as on the platforms. ``from_checkout``: the id of the checkout
        it was placed from (:attr:`order_checkouts`)."""
        with self.lock:
            new = self._new(Order, "orders", order, fields)
            if from_checkout is not None:
                self.order_checkouts[new.id] = from_checkout
            self._put("orders", new, "order.created")
            customer = self.customers.get(new.customer_id or "")
            if customer is not None:
                spent = customer.total_spent or Money.zero(new.currency)
                if spent.currency == new.currency:
                    spent = spent + new.total
                self.update_customer(
                    customer.id, orders_count=(customer.orders_count or 0) + 1, total_spent=spent
                )
            return new

    def update_order(self, order_id: str, **fields: Any) -> Order:
        with self.lock:
            old: Order = self.get("orders", order_id)
            new = self._changed(old, fields)
            return self._put("orders", new, "order.updated")

    def pay_order(self, order_id: str) -> Order:
        with self.lock:
            old: Order = self.get("orders", order_id)
            at = self.stamp(after=old.updated_at)
            fields = {"financial_status": FinancialStatus.PAID, "paid_at": at, "updated_at": at}
            return self._put("orders", self._changed(old, fields), "order.paid")

    def cancel_order(self, order_id: str, *, refund: bool = True) -> Order:
        """Cancel; money already taken is refunded in full unless ``refund=False``."""
        with self.lock:
            old: Order = self.get("orders", order_id)
            if old.cancelled_at is not None:
                raise ValueError(f"order {order_id} is already cancelled")
            paid = old.financial_status in (
                FinancialStatus.PAID,
                FinancialStatus.PARTIALLY_PAID,
                FinancialStatus.PARTIALLY_REFUNDED,
            )
            if refund and paid and old.total_refunded < old.total:
                old = self.refund_order(order_id)
            at = self.stamp(after=old.updated_at)
            status = old.financial_status
            if status in (FinancialStatus.PENDING, FinancialStatus.AUTHORIZED):
                status = FinancialStatus.VOIDED
            fields = {
                "cancelled_at": at,
                "closed_at": at,
                "updated_at": at,
                "financial_status": status,
            }
            return self._put("orders", self._changed(old, fields), "order.cancelled")

    def refund_order(
        self,
        order_id: str,
        amount: Decimal | Money | str | int | None = None,
        lines: Mapping[str, int] | Iterable[RefundLine] | None = None,
        *,
        note: str | None = None,
    ) -> Order:
        """Refund part or all of an order.

        ``lines`` maps line item ids to quantities (or is a list of :class:`RefundLine`);
        ``amount`` defaults to those lines' value, or to everything not yet refunded.
        """
        with self.lock:
            old: Order = self.get("orders", order_id)
            refund_lines = _refund_lines(old, lines)
            remaining = old.total - old.total_refunded
            if amount is None:
                value = sum(
                    ((rl.subtotal or Money.zero(old.currency)).amount for rl in refund_lines),
                    Decimal(0),
                )
                money = Money.of(value, old.currency) if refund_lines else remaining
            else:
                money = amount if isinstance(amount, Money) else Money.of(amount, old.currency)
            if money > remaining:
                raise ValueError(f"refund of {money} exceeds the {remaining} left on the order")
            at = self.stamp(after=old.updated_at)
            refund = Refund(
                id=self.new_id("refunds"),
                created_at=at,
                amount=money,
                note=note,
                lines=tuple(refund_lines),
            )
            refunded = {rl.line_item_id: rl.quantity for rl in refund_lines}
            items = tuple(
                li.model_copy(
                    update={"refunded_quantity": li.refunded_quantity + refunded.get(li.id, 0)}
                )
                for li in old.line_items
            )
            total_refunded = old.total_refunded + money
            full = total_refunded >= old.total
            fields = {
                "refunds": (*old.refunds, refund),
                "line_items": items,
                "total_refunded": total_refunded,
                "financial_status": (
                    FinancialStatus.REFUNDED if full else FinancialStatus.PARTIALLY_REFUNDED
                ),
                "updated_at": at,
            }
            return self._put("orders", self._changed(old, fields), "refund.created", refund.id)

    def edit_order(self, order_id: str, line_id: str, quantity: int, **line: Any) -> Order:
        """Set a line to ``quantity`` units (0 removes it; refunds not counted), or add a line
        (``title=``, ``unit_price=``) when the order has none called ``line_id``, as Shopify's
        order editing does; emits ``order.edited`` (see :mod:`shopsync.testing._edits`)."""
        with self.lock:
            old: Order = self.get("orders", order_id)
            at = self.stamp(after=old.updated_at)
            new, record = edited_order(
                old,
                self.order_edits.get(order_id),
                str(line_id),
                quantity,
                at=at,
                edit_id=self.new_id("order_edits"),
                new_line_id=str(line_id) if str(line_id).isdigit() else self.new_id("line_items"),
                line=line or None,
            )
            self.order_edits[order_id] = record
            return self._put("orders", new, "order.edited")

    def fulfill_order(
        self,
        order_id: str,
        *,
        lines: Mapping[str, int] | None = None,
        tracking_company: str | None = None,
        tracking_numbers: Iterable[str] = (),
        tracking_urls: Iterable[str] = (),
        delivered_at: dt.datetime | None = None,
        status: str = "success",
    ) -> Order:
        """Ship ``lines`` (line item id -> quantity; default: everything not yet shipped).

        Emits ``fulfillment.created``, then ``order.fulfilled`` once nothing is left to ship.
        """
        with self.lock:
            old: Order = self.get("orders", order_id)
            open_qty = _unfulfilled(old)
            wanted = dict(lines) if lines is not None else open_qty
            for line_id, qty in wanted.items():
                if qty > open_qty.get(line_id, 0):
                    raise ValueError(f"line {line_id} has only {open_qty.get(line_id, 0)} to ship")
            at = self.stamp(after=old.updated_at)
            fulfillment = Fulfillment(
                id=self.new_id("fulfillments"),
                created_at=at,
                status=status,
                tracking_company=tracking_company,
                tracking_numbers=tuple(tracking_numbers),
                tracking_urls=tuple(tracking_urls),
                delivered_at=delivered_at,
                lines=tuple(
                    FulfillmentLine(line_item_id=k, quantity=v) for k, v in wanted.items() if v
                ),
            )
            done = all(open_qty.get(k, 0) == wanted.get(k, 0) for k in open_qty)
            fields = {
                "fulfillments": (*old.fulfillments, fulfillment),
                "fulfillment_status": (
                    FulfillmentStatus.FULFILLED if done else FulfillmentStatus.PARTIALLY_FULFILLED
                ),
                "updated_at": at,
            }
            new = self._put(
                "orders", self._changed(old, fields), "fulfillment.created", fulfillment.id
            )
            if done:
                self.emit("order.fulfilled", "orders", new.id, new, at=at)
            return new

    def delete_order(self, order_id: str) -> Order:
        with self.lock:
            old: Order = self.get("orders", order_id)
            return self._delete("orders", old, "order.deleted")

    # ----------------------------------------------------------------- products

    def add_product(
        self, product: Product | None = None, facts: ProductFacts | None = None, **fields: Any
    ) -> Product:
        with self.lock:
            new = self._new(Product, "products", product, fields)
            if facts is not None:
                self.product_facts[new.id] = facts
            return self._put("products", new, "product.created")

    def update_product(self, product_id: str, **fields: Any) -> Product:
        with self.lock:
            old: Product = self.get("products", product_id)
            new = self._changed(old, fields)
            return self._put("products", new, "product.updated")


def _id_key(value: str) -> tuple[int, int | str]:
    return (0, int(value)) if value.isdigit() else (1, value)


def _unfulfilled(order: Order) -> dict[str, Decimal]:
    shipped: dict[str, Decimal] = {}
    for f in order.fulfillments:
        if f.status in ("cancelled", "failure", "error"):
            continue
        for fl in f.lines:
            shipped[fl.line_item_id] = shipped.get(fl.line_item_id, 0) + fl.quantity
    return {
        li.id: li.quantity - li.refunded_quantity - shipped.get(li.id, 0)
        for li in order.line_items
        if li.quantity - li.refunded_quantity - shipped.get(li.id, 0) > 0
    }


def _refund_lines(
    order: Order, lines: Mapping[str, int] | Iterable[RefundLine] | None
) -> list[RefundLine]:
    if lines is None:
        return []
    if isinstance(lines, Mapping):
        by_id = {li.id: li for li in order.line_items}
        out = []
        for line_id, qty in lines.items():
            li = by_id.get(str(line_id))
            if li is None:
                raise ValueError(f"order {order.id} has no line item {line_id}")
            if qty > li.quantity - li.refunded_quantity:
                raise ValueError(f"line {line_id} has fewer than {qty} units left to refund")
            step = Decimal(1).scaleb(-EXPONENTS[order.currency])
            value = (li.total.amount * qty / li.quantity).quantize(step, ROUND_HALF_UP)
            subtotal = Money.of(value, order.currency)
            out.append(RefundLine(line_item_id=li.id, quantity=qty, subtotal=subtotal))
        return out
    return list(lines)


def _default_faults() -> Faults:
    from shopsync.testing.faults import Faults

    return Faults()
