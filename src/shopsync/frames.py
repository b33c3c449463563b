"""A shop's frames read from the store: the one step between the store and the pure core.

:mod:`shopsync.core` takes frames, a policy and ``as_of`` and never reads the store (issue 18,
item 2); the functions here do the reading, through the store's read model
(:func:`shopsync.store.read.read_shop`, :func:`shopsync.store.read.feature_tables`), and hand
the result to the core. :mod:`shopsync.planning` and :mod:`shopsync.metrics` are built on them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence

import polars as pl

from shopsync._instants import to_micros
from shopsync.core._data import SHIPMENT_SCHEMA, Frames, to_us
from shopsync.core.features import compute_features, shop_currency
from shopsync.store import Store
from shopsync.store.checkout_rows import checkout_frame
from shopsync.store.erased import erased_frame
from shopsync.store.event_rows import browse_frame
from shopsync.store.read import feature_currency, feature_tables, read_shop
from shopsync.store.read_set import read_customers
from shopsync.store.shipments import shipments

__all__ = ["customer_features", "load", "read_inputs"]


def load(
    store: Store,
    platform: str,
    shop: str,
    as_of: dt.datetime,
    *,
    currency: str | None = None,
    customer_id: str | None = None,
    window_days: int = 30,
    products: pl.DataFrame | None = None,
    advocates: bool = True,
    shipments_since: dt.datetime | None = None,
    columns: Mapping[str, Sequence[str]] | None = None,
    customer_ids: Collection[str] | None = None,
) -> Frames:
    """Read the shop (or one customer of it) as of ``as_of``, in one read.

    ``products`` skips reading the catalogue (pass one already read); ``advocates=False``
    skips the referral rewards, which only the lifecycle stages use; ``shipments_since``
    reads the tracking of the shipments made since then (:attr:`Frames.shipments`);
    ``columns`` adds order and refund columns to the read (:func:`read_shop`'s);
    ``customer_ids`` reads those customers alone (:func:`read_customers`: the catalogue and
    the currency stay the shop's).
    """
    at = to_us(as_of)
    shop_id = int(store.shop_id(platform, shop, create=False))
    if customer_ids is not None:
        read = read_customers(
            store,
            shop_id,
            at,
            customer_ids,
            window_days=window_days,
            read_products=products is None,
            advocates=advocates,
            find_currency=currency is None,
            columns=columns,
        )
    else:
        read = read_shop(
            store,
            shop_id,
            at,
            customer_id=customer_id,
            window_days=window_days,
            read_products=products is None,
            advocates=advocates,
            find_currency=currency is None,
            columns=columns,
        )
    if currency is None and customer_id is None:
        currency = read.currency
    catalogue = read.products if products is None else products
    assert catalogue is not None  # read_shop reads it when none was passed
    recent = pl.DataFrame(schema=SHIPMENT_SCHEMA)
    if shipments_since is not None:
        since = to_us(shipments_since)
        made = read.fulfillments.filter(
            (pl.col("created_at") > since) & (pl.col("created_at") <= at)
        )["order_id"]
        mine = set(read.orders["id"].to_list()) & set(made.to_list())
        recent = pl.DataFrame(shipments(store, shop_id, mine), schema=SHIPMENT_SCHEMA, orient="row")
    return Frames(
        platform=platform,
        shop=shop,
        as_of=at,
        currency=currency or shop_currency(read.orders) or "",
        customers=read.customers,
        orders=read.orders,
        refunds=read.refunds,
        lines=read.lines,
        fulfillments=read.fulfillments,
        consent=read.consent,
        products=catalogue,
        reviews=read.reviews,
        advocates=read.advocates,
        sent=read.sent,
        suppressed=read.suppressed,
        future_orders=read.future_orders,
        requests_delivered=read.requests_delivered,
        shipments=recent,
        checkouts=checkout_frame(store, shop_id, at, customer_id, customer_ids),
        browse=browse_frame(store, shop_id, at, customer_id, customer_ids),
        erased=erased_frame(store, shop_id, customer_id),
    )


def customer_features(
    store: Store,
    platform: str,
    shop: str,
    as_of: dt.datetime,
    *,
    currency: str | None = None,
) -> pl.DataFrame:
    """One row per customer of the shop as of ``as_of`` (aware), with
    :data:`shopsync.core.features.FEATURE_SCHEMA` (the rules: :mod:`shopsync.core.features`).
    Only the purchases are read (:func:`shopsync.store.read.feature_tables` with
    ``purchases``); without ``currency``, the currency the features fall back on is counted
    first (:func:`shopsync.store.read.feature_currency`)."""
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError("as_of must be timezone-aware")
    shop_id = int(store.shop_id(platform, shop, create=False))
    at = int(to_micros(as_of))
    currency = currency or feature_currency(store, shop_id, at) or ""
    # only the purchases read (the rule applied as the snapshot is scanned), and consumed:
    # each input's memory goes once the features have read it
    frames = feature_tables(store, shop_id, at, purchases=True)
    return compute_features(frames, as_of, currency=currency, consume=True, purchases=True)


def read_inputs(
    store: Store, platform: str, shop: str, as_of: dt.datetime
) -> dict[str, pl.DataFrame]:
    """The rows the features need, as frames; already cut at ``as_of`` where a time exists.
    Texts of few distinct values (the orders' ``financial_status`` and ``currency``, the
    lines' ``product_id`` and ``product_type``) come as ``pl.Categorical``."""
    shop_id = int(store.shop_id(platform, shop, create=False))
    return feature_tables(store, shop_id, int(to_micros(as_of)))
