"""The read model: a shop's rows as typed Polars frames, and the few facts a plan asks for.

The store owns the SQL (issue 18): the core, the loyalty derivation, the metrics and the
backtest ask for frames here and never write a query. Whole-shop reads go through the
columnar reader (:mod:`._columnar`: text in bulk, parsed by Polars); a one-customer re-plan
reads the same columns through indexed selects with bound parameters, so both hand the rules
the same frames. Money columns are integers (ten-thousandths), instants integer microseconds.

What "as of" means, table by table: orders placed after ``as_of`` are left out (and counted in
:attr:`ShopRead.future_orders`); refunds, fulfilments, deliveries, cancellations, reviews,
consent and outbox deliveries count only if they happened by then. Line items and products
have no history in the store: their current values are used.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl
from sqlalchemy import TextClause, inspect, text

from shopsync.core.features import (
    PURCHASE_COLUMNS,
    RULE_COLUMNS,
    counts_as_purchase,
    shop_currency,
)
from shopsync.store._columnar import Column, bulk_rows, read_table
from shopsync.store._delivered import delivered_at
from shopsync.store.facts import Facts, consistent, order_columns, order_facts

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from shopsync.store import Store

__all__ = [
    "CONSENT_COLUMNS",
    "I64",
    "LINE_PRODUCT_TYPE",
    "LOYALTY_ORDERS",
    "LOYALTY_REFUNDS",
    "REAL_ORDERS_SQL",
    "TEXT",
    "Column",
    "ShopRead",
    "feature_currency",
    "feature_tables",
    "frame_of_rows",
    "loyalty_tables",
    "products",
    "read_shop",
    "read_table",
    "table_names",
]

I64, TEXT = pl.Int64(), pl.String()
DAY_US = 86_400_000_000

REAL_ORDERS_SQL = "NOT test"
"""The store half of the purchase rule (the frame half is
:func:`shopsync.core.features.counts_as_purchase`): every read of orders for a program or
metric adds this to its WHERE clause, so a test order (Shopify ``test``, a test payment
gateway) never reaches a frame: it is never revenue, a purchase, a loyalty earn, a review
request or a win-back's last order."""

LINE_PRODUCT_TYPE = (  # a line's product type, else its product's (Shopify lines carry none)
    "COALESCE(NULLIF(line_items.product_type, ''), (SELECT products.product_type FROM products"
    " WHERE products.shop_id = line_items.shop_id AND products.id = line_items.product_id))"
)
# Since when a consent row counts. The platform's own date (Shopify's consentUpdatedAt) when it
# is earlier than the sync that saw it, so a backtest sees consent given before the first sync;
# among the rows that count, the latest observed still wins.
CONSENT_AT = (
    "CASE WHEN consent_updated_at IS NOT NULL AND consent_updated_at < observed_at"
    " THEN consent_updated_at ELSE observed_at END"
)
CONSENT_COLUMNS = [
    Column("customer_id", TEXT),
    Column("channel", TEXT),
    Column("observed_at", I64),
    Column("state", TEXT),
]
"""What features and plans read of ``consent_history``."""

_CUSTOMERS = [Column("id", TEXT), Column("created_at", I64), Column("birthday", TEXT)]
_REFUNDS = [Column("order_id", TEXT), Column("created_at", I64), Column("amount", I64)]
_LINES = [
    Column("order_id", TEXT),
    Column("product_id", TEXT),
    Column("sku", TEXT),
    Column("product_type", TEXT, LINE_PRODUCT_TYPE),
    # Ten-thousandths of a unit, as the store keeps them (1.5 kg -> 15000): exact and integer.
    Column("quantity", I64),
    Column("unit_price", I64),
    Column("refunded_quantity", I64),
]
_FULFILLMENTS = [
    Column("order_id", TEXT),
    Column("created_at", I64),
    Column("status", TEXT),
    Column("delivered_at", I64),
]
_REVIEWS = [Column("customer_id", TEXT), Column("product_id", TEXT), Column("reviewed_at", I64)]
_OWN_ORDERS = "order_id IN (SELECT id FROM orders WHERE shop_id = :sid AND customer_id = :cid)"


LOYALTY_ORDERS = [
    Column("id", TEXT),
    Column("customer_id", TEXT),
    Column("created_at", I64),
    Column("paid_at", I64),
    Column("processed_at", I64),
    Column("cancelled_at", I64),
    Column("financial_status", TEXT),
    Column("currency", TEXT),
    Column("subtotal", I64),
    Column("total_shipping", I64),
    Column("total_tax", I64),
    Column("total", I64),
]
"""The order columns the loyalty derivation reads (the amounts an earn rule may count)."""
LOYALTY_REFUNDS = [
    Column("order_id", TEXT),
    Column("id", TEXT),
    Column("created_at", I64),
    Column("amount", I64),
]


_ORDER_NAMES = [
    "id",
    "customer_id",
    "created_at",
    "paid_at",
    "processed_at",
    "cancelled_at",
    "financial_status",
    "fulfillment_status",
    "currency",
    "total",
    "ship_country",
]
"""The order columns plans read (their SQL: the order facts' one list, :mod:`.facts`)."""


def _orders_columns(dialect: str, more: Sequence[str] = ()) -> list[Column]:
    by_name = {c.name: c for c in order_columns(dialect)}
    return [by_name[name] for name in [*_ORDER_NAMES, *more]]


def _products_columns(dialect: str) -> list[Column]:
    tags = "tags" if dialect == "sqlite" else "CAST(tags AS TEXT)"
    return [
        Column("id", TEXT),
        Column("product_type", TEXT),
        Column("tags", TEXT, tags),
        Column("status", TEXT),
    ]


_SHOP_FACTS = {
    "orders": [*_ORDER_NAMES, "test"],
    "lines": [c.name for c in _LINES],
    "refunds": [c.name for c in _REFUNDS],
    "fulfillments": [c.name for c in _FULFILLMENTS],
}
"""The snapshot columns :func:`read_shop` reads (not the amounts only loyalty counts, nor the
change sequence): at 10M orders each integer column left out is 80 MB."""


class _Facts:
    """A shop's order facts (:mod:`.facts`) and the views the reads below take of them."""

    def __init__(
        self,
        store: Store,
        shop_id: int,
        catalogue: pl.DataFrame | None,
        columns: Mapping[str, Sequence[str]] | None = None,
        where: pl.Expr | None = None,
        codes: Mapping[str, Sequence[str]] | None = None,
        facts: Facts | None = None,
        ordered: bool = True,
    ) -> None:
        """``columns``, ``where``, ``codes``, ``ordered``: read only these columns and orders
        of the snapshot, these texts as codes, in order or not (:func:`.facts.order_facts`);
        ``facts``: these, read already (a set of customers' own)."""
        self.store, self.shop_id, self.catalogue = store, shop_id, catalogue
        self.facts: Facts = (
            order_facts(store, shop_id, columns, where=where, codes=codes, ordered=ordered)
            if facts is None
            else facts
        )

    def orders(self, columns: Iterable[Column | str], at: int | None = None) -> pl.DataFrame:
        """Real orders with a customer (placed by ``at``), as the SQL reads selected them."""
        return self.facts.orders.filter(_customers_orders(at)).select(_names(columns))

    def lines(self, columns: Iterable[Column | str]) -> pl.DataFrame:
        """Line items with :data:`LINE_PRODUCT_TYPE`: a line's type, else its product's."""
        lines = self.facts.lines
        own, own_type = pl.col("product_type"), lines.schema["product_type"]
        missing = own.is_null() | (own == "")
        if lines.select(missing.any()).item():
            catalogue = self.catalogue
            if catalogue is None:
                catalogue = read_table(
                    self.store.engine,
                    "products",
                    [Column("id", TEXT), Column("product_type", TEXT)],
                    f"shop_id = {int(self.shop_id)}",
                )
            types = catalogue.select(
                pl.col("id").alias("product_id"), pl.col("product_type").alias("_type")
            ).cast({"product_id": lines.schema["product_id"], "_type": own_type})
            lines = lines.join(types, on="product_id", how="left", maintain_order="left")
            lines = lines.with_columns(
                pl.when(missing).then(pl.col("_type")).otherwise(own).alias("product_type")
            )
        return lines.select(_names(columns))


def _customers_orders(at: int | None) -> pl.Expr:
    """Real orders (the frame half of :data:`REAL_ORDERS_SQL`) with a customer, placed by
    ``at`` (None: whenever)."""
    keep = (pl.col("test") == 0) & pl.col("customer_id").is_not_null()
    return keep if at is None else keep & (pl.col("created_at") <= at)


def _names(columns: Iterable[Column | str]) -> list[str]:
    return [c if isinstance(c, str) else c.name for c in columns]


def _top_currency(orders: pl.DataFrame) -> str | None:
    """The currency most of these orders use (ties: alphabetical), None without orders."""
    if not orders.height:
        return None
    column = orders["currency"]
    low = column.min()
    if not column.null_count() and low == column.max():
        return str(low)  # one currency, as most shops: no counting (10M: 0.04 s, not 0.11)
    counts = orders.group_by("currency").len().sort(["len", "currency"], descending=[True, False])
    return str(counts.item(0, "currency"))


def table_names(store: Store) -> set[str]:
    """The tables the store's database holds (read once per store: a schema does not change
    under a running process, and the inspector costs a round trip)."""
    found = getattr(store, "_shopsync_tables", None)
    if found is None:
        found = set(inspect(store.engine).get_table_names())
        store._shopsync_tables = found  # type: ignore[attr-defined]
    return set(found)


def frame_of_rows(rows: Iterable[Any], columns: list[Column]) -> pl.DataFrame:
    """Rows (tuples in ``columns`` order) as a frame with the columns' types."""
    schema = {c.name: c.dtype for c in columns}
    return pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")


_INSTANT = re.compile(r":(at|since)\b")
_NOT_INSTANT = re.compile(r":(?!(?:at|since)\b)")


def _inlined(where: str, instants: Mapping[str, int]) -> str:
    """``where`` with its instants (``:at``, ``:since``) written in as integers, for the
    columnar reader: a COPY binds no parameter, and a whole-shop read runs once a plan."""
    return _INSTANT.sub(lambda m: str(int(instants[m.group(1)])), where)


@functools.lru_cache(maxsize=256)
def _customer_select(table: str, columns: tuple[Column, ...], where: str, who: str) -> TextClause:
    """``SELECT columns FROM table WHERE shop_id = :sid AND where AND who``, built once: the
    instants in ``where`` stay bound (``:at``, ``:since``), so a webhook's re-plan at now sends
    the SQL the last one sent (no compiling, no re-preparing, no re-planning: issue 18, 4.3)."""
    cols = ", ".join(f"{c.sql} AS {c.name}" for c in columns)
    literal = _NOT_INSTANT.sub(r"\\:", where)  # colons inside literals are not parameters
    return text(f"SELECT {cols} FROM {table} WHERE shop_id = :sid AND {literal} AND {who}")


_FUTURE = text(
    "SELECT count(*) FROM orders WHERE shop_id = :sid AND created_at > :at"
    f" AND {REAL_ORDERS_SQL} AND customer_id = :cid"
)
"""One customer's real orders placed after ``as_of``."""


class _Reader:
    """Whole-shop reads through the columnar reader; one-customer reads through selects."""

    conn: Connection | None = None  # one customer's selects share it (one snapshot)

    def __init__(self, store: Store, shop_id: int, customer_id: str | None) -> None:
        self.store = store
        self.shop_id = shop_id
        self.customer_id = customer_id
        self.dialect = store.engine.dialect.name

    def read(
        self,
        table: str,
        columns: list[Column],
        where: str,
        by_customer: str,
        **instants: int,
    ) -> pl.DataFrame:
        """``where`` is trusted SQL, its instants named ``:at`` and ``:since`` (``instants``
        holds them); ``by_customer`` restricts it to the customer (``:cid`` is bound) when
        one is being re-planned."""
        if self.customer_id is None:
            where = _inlined(where, instants)
            return read_table(
                self.store.engine, table, columns, f"shop_id = {self.shop_id} AND {where}"
            )
        query = _customer_select(table, tuple(columns), where, by_customer)
        params = {"sid": self.shop_id, "cid": self.customer_id, **instants}
        if self.conn is not None:
            rows = self.conn.execute(query, params).all()
        else:
            with self.store.engine.connect() as conn:
                rows = conn.execute(query, params).all()
        # as the whole shop's read hands them over, so one customer's frames agree with it
        return bulk_rows(rows, columns, self.dialect)


@dataclass
class ShopRead:
    """One shop (or one customer of it) as of an instant: what :func:`read_shop` returns."""

    customers: pl.DataFrame
    orders: pl.DataFrame
    refunds: pl.DataFrame
    lines: pl.DataFrame
    fulfillments: pl.DataFrame
    consent: pl.DataFrame
    products: pl.DataFrame | None
    """None when the caller passed ``read_products=False``."""
    reviews: pl.DataFrame
    advocates: pl.DataFrame
    sent: pl.DataFrame | None
    """None: the store has no outbox table."""
    suppressed: pl.DataFrame
    future_orders: int
    currency: str | None
    """The currency most real orders by ``at`` use; None when not asked for or no order."""
    requests_delivered: dict[str, int]


def read_shop(
    store: Store,
    shop_id: int,
    at: int,
    *,
    customer_id: str | None = None,
    window_days: int = 30,
    read_products: bool = True,
    advocates: bool = True,
    find_currency: bool = True,
    columns: Mapping[str, Sequence[str]] | None = None,
) -> ShopRead:
    """Read the shop (or one customer of it) as of ``at`` (micros, UTC).

    ``read_products=False`` skips the catalogue, ``advocates=False`` the referral rewards,
    ``find_currency=False`` the query for the shop's main currency (only asked for a whole
    shop). ``columns`` (table -> names) adds order facts to ``orders`` and ``refunds``: the
    amounts the loyalty earn rule counts and the refunds' ids, read in the same pass.
    """
    more = _more_columns(columns or {})
    r = _Reader(store, shop_id, customer_id)
    catalogue = products(store, shop_id) if read_products else None
    if customer_id is None:  # the whole shop: the order facts' snapshot
        wanted = {**_SHOP_FACTS, **{t: [*_SHOP_FACTS[t], *more[t]] for t in more}}
        facts = _Facts(store, shop_id, catalogue, wanted)
        return _shop_read(r, facts, at, window_days, catalogue, advocates, find_currency, more=more)
    with consistent(store.engine) as conn:  # one customer: every select in one snapshot
        r.conn = conn
        orders = r.read(
            "orders",
            _orders_columns(r.dialect, more["orders"]),
            f"customer_id IS NOT NULL AND created_at <= :at AND {REAL_ORDERS_SQL}",
            "customer_id = :cid",
            at=at,
        )
        params = {"sid": shop_id, "at": at, "cid": customer_id}
        future = conn.execute(_FUTURE, params).scalar_one()
        rest = (window_days, catalogue, advocates, find_currency)
        return _shop_read(r, None, at, *rest, orders=orders, future=int(future), more=more)


def _more_columns(columns: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """:func:`read_shop`'s ``columns`` beyond those it reads anyway."""
    readable = {"orders": {c.name for c in order_columns("sqlite")} - {"test", "seq", "_row"}}
    readable["refunds"] = {"id"}
    if any(t not in readable or set(n) - readable[t] for t, n in columns.items()):
        raise ValueError(f"read_shop reads no such columns: {dict(columns)}")
    have = {"orders": _ORDER_NAMES, "refunds": _names(_REFUNDS)}
    return {t: [n for n in dict.fromkeys(columns.get(t, ())) if n not in have[t]] for t in have}


def _shop_read(
    r: _Reader,
    facts: _Facts | None,
    at: int,
    window_days: int,
    catalogue: pl.DataFrame | None,
    advocates: bool,
    find_currency: bool,
    *,
    orders: pl.DataFrame | None = None,
    future: int = 0,
    currency: str | None = None,
    more: Mapping[str, Sequence[str]],
) -> ShopRead:
    """The rest of :func:`read_shop`: the order facts from ``facts`` (a whole shop) or the
    reader's selects (one customer), and the other tables."""
    store, shop_id, customer_id = r.store, r.shop_id, r.customer_id
    tables = table_names(store)
    refund_columns = [*_REFUNDS, *(Column(name, TEXT) for name in more["refunds"])]
    if facts is not None:  # masks, not copies: each filtered copy was a frame of every order
        every = facts.facts.orders
        real = pl.col("test") == 0
        placed = real & (pl.col("created_at") <= at)
        orders = every.filter(placed & pl.col("customer_id").is_not_null()).select(
            *_ORDER_NAMES, *more["orders"]
        )
        future = int(every.select((real & ~placed).sum()).item())
        if find_currency:
            currency = _top_currency(every.lazy().filter(placed).select("currency").collect())
        refunds = facts.facts.refunds.select(_names(refund_columns))
        lines = facts.lines(_LINES)
        fulfillments = facts.facts.fulfillments.select(_names(_FULFILLMENTS))
    else:
        refunds = r.read("refunds", refund_columns, "1 = 1", _OWN_ORDERS)
        lines = r.read("line_items", _LINES, "1 = 1", _OWN_ORDERS)
        fulfillments = r.read("fulfillments", _FULFILLMENTS, "1 = 1", _OWN_ORDERS)
    assert orders is not None
    rewarded = pl.DataFrame(schema={"customer_id": TEXT})
    if advocates and "loyalty_ledger" in tables:
        rewarded = r.read(
            "loyalty_ledger",
            [Column("customer_id", TEXT)],
            "kind = 'bonus' AND source_key LIKE 'bonus:referral:%:advocate' "
            "AND effective_at <= :at",
            "customer_id = :cid",
            at=at,
        ).unique()
    sent: pl.DataFrame | None = None
    suppressed = pl.DataFrame(schema={"customer_id": TEXT})
    if "outbox" in tables:
        since = at - window_days * DAY_US
        sent = r.read(
            "outbox",
            [
                Column("customer_id", TEXT),
                Column("key", TEXT, "idempotency_key"),
                Column("at", I64, "finished_at"),
            ],
            "status = 'done' AND marketing = 1 AND finished_at IS NOT NULL "
            "AND finished_at <= :at AND finished_at > :since",
            "customer_id = :cid",
            at=at,
            since=since,
        )
        if sent.height:  # none (most one-customer reads): no query (~0.3 ms) to group nothing
            sent = sent.group_by("customer_id", "key").agg(pl.col("at").min())
    if "suppressions" in tables:
        suppressed = r.read(
            "suppressions",
            [Column("customer_id", TEXT)],
            "channel = 'email' AND created_at <= :at",
            "customer_id = :cid",
            at=at,
        )
    reviews = pl.DataFrame(schema={c.name: c.dtype for c in _REVIEWS})
    if "reviews" in tables:
        reviews = r.read("reviews", _REVIEWS, "reviewed_at <= :at", "customer_id = :cid", at=at)
    return ShopRead(
        customers=r.read("customers", _CUSTOMERS, "created_at <= :at", "id = :cid", at=at),
        orders=orders,
        refunds=refunds,
        lines=lines,
        fulfillments=fulfillments,
        consent=r.read(
            "consent_history", CONSENT_COLUMNS, f"{CONSENT_AT} <= :at", "customer_id = :cid", at=at
        ),
        products=catalogue,
        reviews=reviews,
        advocates=rewarded,
        sent=sent,
        suppressed=suppressed,
        future_orders=future,
        currency=currency,
        requests_delivered=delivered_at(store, shop_id, "review_request:", at, customer_id),
    )


def products(store: Store, shop_id: int) -> pl.DataFrame:
    """The shop's catalogue: id, product_type, tags (a list of strings), status."""
    columns = _products_columns(store.engine.dialect.name)
    frame = read_table(store.engine, "products", columns, f"shop_id = {shop_id}")
    return frame.with_columns(
        pl.col("tags").fill_null("[]").str.json_decode(pl.List(pl.String)).alias("tags")
    )


_FEATURE_ORDERS = list(PURCHASE_COLUMNS)
_FEATURE_FACTS = {
    "orders": _FEATURE_ORDERS,
    "refunds": ["created_at", "amount"],
    "lines": ["product_id", "product_type"],
}
"""The snapshot columns :func:`feature_tables` reads (keys and ``_row`` come with them)."""


def feature_tables(
    store: Store, shop_id: int, at: int, *, purchases: bool = False
) -> dict[str, pl.DataFrame]:
    """The rows the customer features need, cut at ``at`` (micros) where a time exists:
    customers, orders (real ones with a customer), refunds, line_items, consent; the orders'
    status and currency and the lines' product id and type as ``pl.Categorical``.
    ``purchases``: only the orders the purchase rule keeps by ``at``
    (:func:`shopsync.core.features.counts_as_purchase`), without the columns only it reads
    (``compute_features(purchases=True)``): the rule is applied as the snapshot is scanned;
    and the rows of the order facts in no promised order (no ``_row`` read)."""
    engine = store.engine
    # the orders filtered as the snapshot is scanned: no frame of every order beside them;
    # the lines' few distinct texts as codes
    where, names = _customers_orders(at), _FEATURE_ORDERS
    if purchases:
        where = where & counts_as_purchase(at)
        names = [n for n in names if n not in RULE_COLUMNS]
    codes: dict[str, Sequence[str]] = {
        "orders": [n for n in ("financial_status", "currency") if n in names],
        "lines": ["product_id", "product_type"],
    }
    columns: dict[str, Sequence[str]] = {**_FEATURE_FACTS, "orders": names}
    facts = _Facts(store, shop_id, None, columns, where, codes, ordered=not purchases)
    return {
        "customers": read_table(
            engine,
            "customers",
            [Column("id", TEXT), Column("created_at", I64), Column("birthday", TEXT)],
            f"shop_id = {shop_id} AND created_at <= {at}",
        ),
        "orders": facts.facts.orders.select(names),
        "refunds": facts.facts.refunds.filter(pl.col("created_at") <= at).select(
            "order_id", "amount"
        ),
        "line_items": facts.lines(["order_id", "product_id", "product_type"]),
        "consent": read_table(
            engine,
            "consent_history",
            CONSENT_COLUMNS,
            f"shop_id = {shop_id} AND {CONSENT_AT} <= {at}",
        ),
    }


def feature_currency(store: Store, shop_id: int, at: int) -> str | None:
    """The currency most real orders with a customer placed by ``at`` use (ties:
    alphabetical), None without: what the features fall back on
    (:func:`shopsync.core.features.shop_currency` of :func:`feature_tables`' orders), counted
    from the order facts (1M orders: 0.05-0.1 s)."""
    currency = {"orders": ["currency"]}
    where = _customers_orders(at)
    facts = order_facts(store, shop_id, currency, where=where, codes=currency, ordered=False)
    return shop_currency(facts.orders)


def loyalty_tables(store: Store, shop_id: int, with_lines: bool) -> dict[str, pl.DataFrame]:
    """The whole history the loyalty derivation replays: orders (real ones with a customer,
    with the amounts an earn rule may count), refunds, customers and, when asked, each line's
    product type."""
    facts = _Facts(store, shop_id, None)
    frames = {
        "orders": facts.orders(LOYALTY_ORDERS),
        "refunds": facts.facts.refunds.select(_names(LOYALTY_REFUNDS)),
        "customers": read_table(
            store.engine,
            "customers",
            [
                Column("id", TEXT),
                Column("birthday", TEXT),
                Column("updated_at", I64),
                Column("email", TEXT),
            ],
            f"shop_id = {shop_id}",
        ),
    }
    if with_lines:
        frames["line_items"] = facts.lines(["order_id", "product_type"])
    return frames
