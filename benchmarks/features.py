"""Per-customer features and the loyalty recomputation on a large SQLite store.

    python benchmarks/features.py [--customers 1000000] [--orders 10000000] [--db PATH]
                                  [--keep] [--no-loyalty] [--loyalty-write] [--changed 1]

The fixture is written straight into the store's tables with ``executemany`` of row tuples
(a seeded NumPy generator, no pydantic): ~23 % one-time buyers, 1-3 line items per order
(mean 1.6), 5 % refunded, 2 % cancelled, consent history for every customer. It is reused
when ``--db`` already holds a fixture of the same size (``--keep`` keeps it afterwards).

Each measured phase runs in a fresh child process, so its peak RSS (``ru_maxrss``) is its
own and not the fixture writer's. Targets (issue 18): features at most 15 s end to end and
2 GB peak at 1M customers / 10M orders, and within 1.5x of a plain Polars script over Parquet
(``benchmarks/alt_polars.py``).

Whole-shop reads go through the order facts' snapshot (``<db>.facts``, store/facts.py), so
the features run three times: **cold** (no snapshot: the first read reads every row from
SQLite and writes the files), **warm** (the files are current) and, with ``--changed P``,
after P % of the orders were updated through ``Store.upsert`` (the read merges them from the
database; a large delta also rewrites the files).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

from shopsync.store.schema import QUANTITY_SCALE

AS_OF = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
AS_OF_US = int(AS_OF.timestamp()) * 1_000_000
YEAR_US = 365 * 86_400 * 1_000_000
PLATFORM, SHOP = "shopify", "bench.myshopify.com"
CHUNK = 200_000
ONE_UNIT = 10**QUANTITY_SCALE  # a line's quantity, stored in ten-thousandths
FIXTURE = 2  # the layout's version: 1 stored every line's quantity as 0.0001 of a unit


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(path: str, customers: int, orders: int, seed: int) -> None:
    from shopsync.store import Store

    Store(f"sqlite:///{path}").close()  # creates the schema through the migrations
    rng = np.random.default_rng(seed)
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    con.execute(
        "INSERT INTO shops (shop_id, platform, shop, created_at) VALUES (1, ?, ?, 0)",
        (PLATFORM, SHOP),
    )
    start = AS_OF_US - 3 * YEAR_US
    c_created = np.sort(rng.integers(start, AS_OF_US - 86_400_000_000, customers))
    states = np.array(["subscribed", "not_subscribed", "unsubscribed", "unknown"])
    consent = states[rng.choice(4, customers, p=[0.42, 0.35, 0.13, 0.10])]
    has_birthday = rng.random(customers) < 0.3
    for lo in range(0, customers, CHUNK):
        hi = min(customers, lo + CHUNK)
        ids = [str(1_000_000 + i) for i in range(lo, hi)]
        rows = [
            (
                1,
                cid,
                created,
                created,
                "[]",
                st,
                "unknown",
                "unknown",
                "unknown",
                f"19{70 + i % 30}-{1 + i % 12:02d}-{1 + i % 28:02d}" if bd else None,
            )
            for i, cid, created, st, bd in zip(
                range(lo, hi),
                ids,
                c_created[lo:hi].tolist(),
                consent[lo:hi].tolist(),
                has_birthday[lo:hi].tolist(),
                strict=True,
            )
        ]
        con.executemany(
            "INSERT INTO customers (shop_id, id, created_at, updated_at, tags, email_consent,"
            " email_opt_in, sms_consent, sms_opt_in, birthday) VALUES (?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
        con.executemany(
            "INSERT INTO consent_history (shop_id, customer_id, channel, observed_at, state,"
            " opt_in_level) VALUES (1, ?, 'email', ?, ?, 'unknown')",
            [(r[1], r[2], r[5]) for r in rows],
        )
    # buyers: a lognormal appetite per customer; about a quarter buy once
    weight = rng.lognormal(0, 1.2, customers)
    owner = rng.choice(customers, orders, p=weight / weight.sum())
    created = np.maximum(rng.integers(start, AS_OF_US, orders), c_created[owner])
    order_idx = np.argsort(created, kind="stable")
    owner, created = owner[order_idx], created[order_idx]
    subtotal = (np.round(rng.lognormal(3.6, 0.6, orders), 2) * 10_000).astype(np.int64)
    shipping = np.where(subtotal > 750_000, 0, 50_000)
    tax = subtotal * 7 // 100
    total = subtotal + shipping + tax
    roll = rng.random(orders)
    cancelled = roll < 0.02
    refunded = (roll >= 0.02) & (roll < 0.07)
    n_lines = rng.choice([1, 2, 3], orders, p=[0.55, 0.3, 0.15])
    statuses = np.where(cancelled, "voided", np.where(refunded, "partially_refunded", "paid"))
    types = np.array(
        [
            "Coffee",
            "Tea",
            "Skincare",
            "Supplements",
            "Pet Food",
            "Electronics",
            "Kitchen",
            "Apparel",
            "Home",
        ]
    )
    line_id = 20_000_000
    for lo in range(0, orders, CHUNK):
        hi = min(orders, lo + CHUNK)
        oids = [str(10_000_000 + i) for i in range(lo, hi)]
        cids = [str(1_000_000 + c) for c in owner[lo:hi].tolist()]
        made = created[lo:hi].tolist()
        cancel = cancelled[lo:hi].tolist()
        con.executemany(
            "INSERT INTO orders (shop_id, id, customer_id, created_at, updated_at, paid_at,"
            " cancelled_at, financial_status, fulfillment_status, currency, subtotal,"
            " total_discounts, total_shipping, total_tax, total, total_refunded,"
            " discount_codes, tags) VALUES (1,?,?,?,?,?,?,?,'fulfilled','USD',?,0,?,?,?,?,"
            "'[]','[]')",
            [
                (
                    oid,
                    cid,
                    t,
                    t,
                    None if c else t + 30_000_000,
                    t + 3_600_000_000 if c else None,
                    stt,
                    sub,
                    sh,
                    tx,
                    tot,
                    tot // 5 if rf else 0,
                )
                for oid, cid, t, c, rf, stt, sub, sh, tx, tot in zip(
                    oids,
                    cids,
                    made,
                    cancel,
                    refunded[lo:hi].tolist(),
                    statuses[lo:hi].tolist(),
                    subtotal[lo:hi].tolist(),
                    shipping[lo:hi].tolist(),
                    tax[lo:hi].tolist(),
                    total[lo:hi].tolist(),
                    strict=True,
                )
            ],
        )
        counts = n_lines[lo:hi].tolist()
        products = rng.integers(0, 400, int(sum(counts))).tolist()
        lines = []
        k = 0
        for oid, n, sub in zip(oids, counts, subtotal[lo:hi].tolist(), strict=True):
            for position in range(n):
                product = products[k]
                k += 1
                line_id += 1
                lines.append(
                    (
                        oid,
                        str(line_id),
                        position,
                        str(2_000_000 + product),
                        f"Product {product}",
                        types[product % 9],
                        sub // n,
                        sub // n,
                    )
                )
        con.executemany(
            "INSERT INTO line_items (shop_id, order_id, id, position, product_id, title,"
            " product_type, quantity, unit_price, total, refunded_quantity)"
            f" VALUES (1,?,?,?,?,?,?,{ONE_UNIT},?,?,0)",
            lines,
        )
        con.executemany(
            "INSERT INTO refunds (shop_id, order_id, id, position, created_at, amount, lines)"
            " VALUES (1, ?, ?, 0, ?, ?, '[]')",
            [
                (oid, f"r{oid}", t + 10 * 86_400_000_000, tot // 5)
                for oid, t, rf, tot in zip(
                    oids, made, refunded[lo:hi].tolist(), total[lo:hi].tolist(), strict=True
                )
                if rf and t + 10 * 86_400_000_000 < AS_OF_US
            ],
        )
        con.commit()
    con.execute(
        "CREATE TABLE bench_meta (customers INTEGER, orders INTEGER, seed INTEGER, fixture INTEGER)"
    )
    con.execute("INSERT INTO bench_meta VALUES (?, ?, ?, ?)", (customers, orders, seed, FIXTURE))
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def _fixture_matches(path: str, customers: int, orders: int, seed: int) -> bool:
    if not os.path.exists(path):
        return False
    try:
        con = sqlite3.connect(path)
        row = con.execute("SELECT customers, orders, seed, fixture FROM bench_meta").fetchone()
        con.close()
    except sqlite3.Error:
        return False
    return tuple(row or ()) == (customers, orders, seed, FIXTURE)


def phase_features(path: str, snapshot: str = "cold") -> dict[str, float]:
    """The features as of AS_OF; ``snapshot="cold"`` removes the order facts' snapshot first
    (the figure of a store that has none yet), ``"as is"`` keeps what is there."""
    import shutil

    from shopsync.frames import customer_features
    from shopsync.store import Store

    if snapshot == "cold":
        shutil.rmtree(path + ".facts", ignore_errors=True)
    store = Store(f"sqlite:///{path}", migrate=False)
    started = time.perf_counter()
    frame = customer_features(store, PLATFORM, SHOP, AS_OF, currency="USD")
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "peak_mb": _peak_mb(),
        "rows": frame.height,
        "buyers": int((frame["paid_orders"] > 0).sum()),
        "digest": digest(frame),
    }


def digest(frame: Any) -> dict[str, Any]:
    """A few sums of the feature frame; ``alt_pandas.py features`` prints the same ones."""
    net = frame["net_spend"].sum() or 0
    return {
        "rows": frame.height,
        "paid_orders": int(frame["paid_orders"].sum()),
        "net_units": int(net * 10_000),
        "gap_median_sum": round(float(frame["gap_median_days"].sum()), 3),
        "products": int(frame["products"].list.len().sum()),
        "subscribed": int((frame["email_consent"] == "subscribed").sum()),
    }


def phase_rfm(path: str) -> dict[str, Any]:
    """shopsync's RFM summary of the paid orders: the store's columnar reader, then
    :func:`shopsync.clv.summary_from_transactions` (daily, same-day orders once)."""
    import polars as pl
    from sqlalchemy import create_engine

    from shopsync import clv
    from shopsync.store.read import Column, read_table

    started = time.perf_counter()
    engine = create_engine(f"sqlite:///{path}")
    paid = (
        f"customer_id IS NOT NULL AND paid_at IS NOT NULL AND paid_at <= {AS_OF_US}"
        f" AND cancelled_at IS NULL AND total > 0 AND created_at <= {AS_OF_US}"
    )
    tx = read_table(
        engine,
        "orders",
        [Column("customer_id", pl.String()), Column("created_at", pl.Int64())],
        paid,
    )
    engine.dispose()
    read_s = time.perf_counter() - started
    compute = time.perf_counter()
    summary = clv.summary_from_transactions(
        tx["customer_id"],
        tx["created_at"].cast(pl.Datetime("us", "UTC")),
        as_of=AS_OF.date(),
    )
    end = time.perf_counter()
    return {
        "seconds": round(end - started, 2),
        "read_seconds": round(read_s, 2),
        "compute_seconds": round(end - compute, 2),
        "peak_mb": round(_peak_mb()),
        "digest": {
            "customers": int(summary.frequency.size),
            "frequency": int(summary.frequency.sum()),
        },
    }


def phase_change(path: str, percent: float) -> dict[str, float]:
    """Update ``percent`` % of the orders (a day later, one more cent) through the store's
    upsert, as a sync would; not timed as a read."""
    from shopsync.models import Money, Order
    from shopsync.store import Store

    store = Store(f"sqlite:///{path}", migrate=False)
    every = max(1, round(100 / percent))
    con = sqlite3.connect(path)
    ids = [
        r[0] for r in con.execute(f"SELECT id FROM orders WHERE CAST(id AS INTEGER) % {every} = 0")
    ]
    con.close()
    started = time.perf_counter()
    for lo in range(0, len(ids), 1000):
        batch = list(store._read(Order, PLATFORM, SHOP, ids[lo : lo + 1000]))
        store.upsert(
            o.model_copy(
                update={
                    "updated_at": o.updated_at + dt.timedelta(days=1),
                    "total": Money(amount=o.total.amount + 1, currency=o.currency),
                }
            )
            for o in batch
        )
    return {"orders": len(ids), "seconds": time.perf_counter() - started}


def phase_loyalty(path: str, write: bool) -> dict[str, float]:
    from shopsync import loyalty
    from shopsync.core.policy import Policy
    from shopsync.store import Store

    store = Store(f"sqlite:///{path}", migrate=False)
    policy = Policy.from_dict({"currency": "USD"})
    started = time.perf_counter()
    result = loyalty.update_ledger(
        store, PLATFORM, SHOP, as_of=AS_OF, policy=policy, dry_run=not write
    )
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "peak_mb": _peak_mb(),
        "customers": result.customers,
        "entries": result.derived,
        "written": result.added,
        "actions": len(result.actions),
    }


def _child(phase: str, path: str, write: bool, extra: tuple[str, ...] = ()) -> dict[str, float]:
    args = [sys.executable, __file__, "--phase", phase, "--db", path, *extra]
    if write:
        args.append("--loyalty-write")
    out = subprocess.run(args, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--db", default=None, help="fixture path (default: a temp file)")
    parser.add_argument("--keep", action="store_true", help="keep the fixture afterwards")
    parser.add_argument("--no-loyalty", action="store_true")
    parser.add_argument(
        "--loyalty-write", action="store_true", help="write the ledger too (default: derive only)"
    )
    parser.add_argument(
        "--changed", type=float, default=0, help="percent of orders to update, then read again"
    )
    parser.add_argument(
        "--phase", choices=["features", "warm", "change", "loyalty"], help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.phase:
        if args.phase in ("features", "warm"):
            run = phase_features(args.db, "cold" if args.phase == "features" else "as is")
        elif args.phase == "change":
            run = phase_change(args.db, args.changed)
        else:
            run = phase_loyalty(args.db, args.loyalty_write)
        print(json.dumps(run))
        return
    path = args.db or os.path.join(tempfile.gettempdir(), "shopsync-bench-features.db")
    try:
        if _fixture_matches(path, args.customers, args.orders, args.seed):
            print(f"reusing fixture {path}")
        else:
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(path + suffix):
                    os.remove(path + suffix)
            started = time.perf_counter()
            build(path, args.customers, args.orders, args.seed)
            print(
                f"fixture: {args.customers:,} customers, {args.orders:,} orders written in "
                f"{time.perf_counter() - started:.0f} s ({os.path.getsize(path) / 2**20:.0f} MiB)"
            )
        features = _child("features", path, False)
        print(
            f"features (cold: no snapshot yet): {features['seconds']:.1f} s end to end, peak"
            f" {features['peak_mb']:.0f} MB ({features['rows']:,} customers,"
            f" {features['buyers']:,} with paid orders)"
        )
        warm = _child("warm", path, False)
        print(f"features (warm): {warm['seconds']:.1f} s, peak {warm['peak_mb']:.0f} MB")
        if args.changed:
            change = _child("change", path, False, ("--changed", str(args.changed)))
            print(f"changed {change['orders']:,} orders in {change['seconds']:.0f} s (upsert)")
            for label in ("first read after the change", "next read"):
                after = _child("warm", path, False)
                same = after["digest"] == warm["digest"]
                print(
                    f"features ({label}): {after['seconds']:.1f} s, peak"
                    f" {after['peak_mb']:.0f} MB{'' if not same else ' (digest unchanged?)'}"
                )
        if not args.no_loyalty:
            result = _child("loyalty", path, args.loyalty_write)
            mode = "derive + write" if args.loyalty_write else "derive only"
            print(
                f"loyalty ({mode}): {result['seconds']:.1f} s, peak {result['peak_mb']:.0f} MB"
                f" ({result['customers']:,} customers, {result['entries']:,} entries,"
                f" {result['written']:,} written, {result['actions']:,} actions due)"
            )
    finally:
        if not args.keep and not args.db:
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(path + suffix):
                    os.remove(path + suffix)


if __name__ == "__main__":
    main()
