"""The planner on a large SQLite store: a full plan, and one-customer re-plans.

    python benchmarks/plan.py [--customers 1000000] [--orders 10000000] [--db PATH] [--keep]
                              [--loyalty] [--pc-customers 10000] [--pc-orders 40000]
                              [--pc-calls 500]

The fixture is the one ``benchmarks/features.py`` writes (customers with consent history,
orders with 1-3 lines over nine product types, refunds, cancellations), plus what the
programs need on top: one shipment per live order (half with a delivery date) and a
catalogue row per product. The policy configures usage periods for the consumables and
warranties for electronics and kitchenware, so every program has work to do.

Each phase runs in a fresh child process, so its peak RSS (``ru_maxrss``) is its own:

- ``plan``: ``shopsync.plan(store, policy, as_of)`` end to end (reading the store included).
  Loyalty notices are left out unless ``--loyalty`` (their derivation is a per-order Python
  loop, measured in ``benchmarks/features.py``);
- ``customer``: on a second, ``--pc-customers`` shop, the first ``plan_customer`` (which
  computes and caches the day's shop statistics), then ``--pc-calls`` re-plans of distinct
  customers with loyalty on; p50 and p99 of those.

Targets (issue 18): a full plan of 1M customers / 10M orders, every program and loyalty
included, in at most 60 s and 2.5 GB; ``plan_customer`` p99 under 50 ms on the 1M-customer
shop. A plan reuses the shop models it stored (and then goes part by part) unless they are
stale: the first plan on a new fixture rebuilds them from the whole shop, the costlier path.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
POLICY = {
    "replenishment": {
        "usage_days_by_type": {
            "Coffee": 21,
            "Tea": 45,
            "Skincare": 60,
            "Supplements": 30,
            "Pet Food": 28,
        }
    },
    "warranty": {"days_by_type": {"Electronics": 730, "Kitchen": 365}},
}


def _features_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_features", HERE / "features.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(path: str, customers: int, orders: int, seed: int) -> None:
    features = _features_module()
    if not features._fixture_matches(path, customers, orders, seed):
        if os.path.exists(path):
            os.remove(path)
        features.build(path, customers, orders, seed)
    con = sqlite3.connect(path)
    done = con.execute("SELECT count(*) FROM fulfillments").fetchone()[0]
    if not done:
        day = 86_400_000_000
        con.execute(
            "INSERT INTO fulfillments (shop_id, order_id, id, position, created_at, status,"
            " tracking_numbers, tracking_urls, delivered_at, lines)"
            f" SELECT 1, id, 'f' || id, 0, created_at + {day}, 'success', '[]', '[]',"
            f" CASE WHEN CAST(id AS INTEGER) % 2 = 0 THEN created_at + {4 * day} END, '[]'"
            " FROM orders WHERE cancelled_at IS NULL"
        )
        con.execute(
            "INSERT INTO products (shop_id, id, title, product_type, tags, categories, status,"
            " created_at, updated_at, variants)"
            " SELECT 1, product_id, min(title), min(product_type), '[]', '[]', 'active', 0, 0,"
            " '[]' FROM line_items GROUP BY product_id"
        )
        con.commit()
    con.close()


def phase_plan(path: str, loyalty: bool) -> dict[str, object]:
    from shopsync.core.policy import Policy
    from shopsync.planning import plan
    from shopsync.store import Store

    features = _features_module()
    policy = Policy.from_dict({**POLICY, "loyalty": {"enabled": loyalty}})
    store = Store(f"sqlite:///{path}")
    start = time.perf_counter()
    result = plan(store, policy, features.AS_OF)
    seconds = time.perf_counter() - start
    return {
        "seconds": round(seconds, 2),
        "peak_mb": round(_peak_mb()),
        "planned": result.counts,
        "held": result.held_counts,
    }


def phase_customer(path: str, calls: int) -> dict[str, object]:
    from shopsync.core.policy import Policy
    from shopsync.planning import plan_customer
    from shopsync.store import Store

    features = _features_module()
    policy = Policy.from_dict(POLICY)
    store = Store(f"sqlite:///{path}")
    con = sqlite3.connect(path)
    ids = [
        r[0]
        for r in con.execute(
            "SELECT id FROM customers ORDER BY (CAST(id AS INTEGER) * 7919) % 100003 LIMIT ?",
            (calls + 1,),
        )
    ]
    con.close()
    start = time.perf_counter()
    plan_customer(store, policy, features.AS_OF, features.PLATFORM, features.SHOP, ids[0])
    cold = time.perf_counter() - start
    times = []
    actions = 0
    for cid in ids[1:]:
        start = time.perf_counter()
        result = plan_customer(store, policy, features.AS_OF, features.PLATFORM, features.SHOP, cid)
        times.append(time.perf_counter() - start)
        actions += len(result)
    times.sort()
    return {
        "cold_first_call_s": round(cold, 3),
        "calls": len(times),
        "p50_ms": round(1000 * times[len(times) // 2], 1),
        "p99_ms": round(1000 * times[min(len(times) - 1, int(len(times) * 0.99))], 1),
        "max_ms": round(1000 * times[-1], 1),
        "actions": actions,
        "peak_mb": round(_peak_mb()),
    }


def _child(*args: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, "--phase", *args], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--db", default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--loyalty", action="store_true", help="include loyalty notices")
    parser.add_argument("--pc-customers", type=int, default=10_000)
    parser.add_argument("--pc-orders", type=int, default=40_000)
    parser.add_argument("--pc-calls", type=int, default=500)
    parser.add_argument("--skip-plan", action="store_true")
    parser.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        name, path, *rest = args.phase
        if name == "plan":
            result = phase_plan(path, rest == ["loyalty"])
        else:
            result = phase_customer(path, int(rest[0]))
        print(json.dumps(result))
        return
    tmp = tempfile.mkdtemp(prefix="shopsync-plan-")
    path = args.db or os.path.join(tmp, "plan.db")
    report: dict[str, object] = {"customers": args.customers, "orders": args.orders}
    if not args.skip_plan:
        start = time.perf_counter()
        build(path, args.customers, args.orders, args.seed)
        report["fixture_seconds"] = round(time.perf_counter() - start, 1)
        extra = ["loyalty"] if args.loyalty else []
        report["plan"] = _child("plan", path, *extra)
    small = os.path.join(tmp, "customer.db")
    build(small, args.pc_customers, args.pc_orders, args.seed)
    report["plan_customer"] = {
        "customers": args.pc_customers,
        "orders": args.pc_orders,
        **_child("customer", small, str(args.pc_calls)),
    }
    print(json.dumps(report, indent=2))
    if not args.keep:
        for p in (path, small):
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(p + suffix) and (p != args.db):
                    os.remove(p + suffix)


if __name__ == "__main__":
    main()
