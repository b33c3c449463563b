"""The incremental plan after 1% of the customers changed, beside the full plan, same run.

    python benchmarks/incremental.py            # quick: 10,000 customers / 100,000 orders
    python benchmarks/incremental.py --full     # the issue's 1M customers / 10M orders (hours)
    python benchmarks/incremental.py --customers N --orders M [--changed 0.01] [--db PATH]

The fixture is ``benchmarks/plan.py``'s (SQLite, written in bulk). Then, in order:

1. ``prime`` (untimed setup): the first incremental plan as of a day before ``AS_OF`` plans
   every customer; it is applied to a JSON Lines sink, which settles it (the outbox holds its
   actions, the notes are cleared, every customer's loyalty moment is recorded);
2. ``change``: ``--changed`` of the customers (1%) each get a new order through
   ``Store.upsert``, which notes them;
3. ``full``: ``shopsync.plan(store, policy, AS_OF, update_ledger=False)`` in a fresh process,
   every program, loyalty included (a dry-run derivation of every customer);
4. ``incremental``: ``plan(..., only_changed=True)`` in a fresh process, from the same store;
   with ``--check`` (the default below 100,000 customers) it then plans in full, untimed,
   and checks the incremental plan is the full plan restricted to its customers.

Both plans run a day after ``prime``, so the shop-level models stored by ``prime`` are stale
(``models.refresh_every_days`` = 1): ``full`` (which stores nothing) and ``incremental`` rebuild
them, and ``incremental`` stores the new version. Then, with those stored models fresh:

5. ``incremental_stored`` and ``full_stored``: the same two plans again, each in a fresh
   process, reusing the stored models (``models_rebuilt`` false in their output): beside 3 and
   4, the cost of rebuilding the models (issue 19, item 3).
6. ``settle`` (untimed): the incremental plan as of ``AS_OF`` applied, which records its
   customers' program moments with the day's models (the models of ``prime`` were the day
   before's: the programs' thresholds read their values, so 3-5 plan every customer); then
   ``change_later`` (another 1%) and ``incremental_later`` / ``full_later`` six hours on: the
   steady state between two models refreshes, where only the changed customers and those
   whose program or loyalty moment has come are planned.

Each timed phase reads the shop from the store, computes the day's statistics and plans,
as a cron job would; peak RSS is the phase's own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SIZES = {"quick": (10_000, 100_000), "full": (1_000_000, 10_000_000)}
LATER_HOURS = 6


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _policy():  # type: ignore[no-untyped-def]
    import plan as bench_plan

    from shopsync.core.policy import Policy

    return Policy.from_dict({**bench_plan.POLICY, "loyalty": {"enabled": True}})


def _store(path: str):  # type: ignore[no-untyped-def]
    from shopsync.store import Store

    return Store(f"sqlite:///{path}")


def phase_prime(path: str, out: str) -> dict[str, object]:
    import features

    from shopsync.outbox import apply
    from shopsync.planning import plan
    from shopsync.sinks import JsonLines

    store = _store(path)
    at0 = features.AS_OF - dt.timedelta(days=1)
    start = time.perf_counter()
    first = plan(store, _policy(), at0, only_changed=True)
    planned = time.perf_counter() - start
    report = apply(first, store, [JsonLines("prime.jsonl", root=out)], now=at0)
    return {
        "first_plan_s": round(planned, 2),
        "customers": len(first.customers),
        "recorded": report.recorded,
        "apply_s": round(time.perf_counter() - start - planned, 2),
    }


def phase_settle(path: str, out: str) -> dict[str, object]:
    """The incremental plan as of ``AS_OF`` applied (untimed): its customers' moments are
    recorded with the day's models, as after a day's first plan."""
    import features

    from shopsync.outbox import apply
    from shopsync.planning import plan
    from shopsync.sinks import JsonLines

    store = _store(path)
    result = plan(store, _policy(), features.AS_OF, only_changed=True)
    report = apply(result, store, [JsonLines("settle.jsonl", root=out)], now=features.AS_OF)
    return {"customers": len(result.customers), "recorded": report.recorded}


def phase_change(path: str, share: float, offset: int = 0) -> dict[str, object]:
    from decimal import Decimal

    import features

    from shopsync.models import FinancialStatus, LineItem, Money, Order

    store = _store(path)
    with store.engine.connect() as conn:
        from sqlalchemy import text

        ids = [r[0] for r in conn.execute(text("SELECT id FROM customers ORDER BY id"))]
    step = max(1, round(1 / share))
    chosen = ids[offset::step]
    at = features.AS_OF + dt.timedelta(hours=1 if offset else -2)
    usd = lambda v: Money.of(Decimal(v), "USD")  # noqa: E731
    orders = [
        Order(
            platform=features.PLATFORM,
            shop=features.SHOP,
            id=f"inc{offset or ''}-{cid}",
            customer_id=cid,
            created_at=at,
            updated_at=at,
            paid_at=at,
            financial_status=FinancialStatus.PAID,
            currency="USD",
            subtotal=usd("30"),
            total_discounts=usd("0"),
            total_shipping=usd("0"),
            total_tax=usd("0"),
            total=usd("30"),
            total_refunded=usd("0"),
            line_items=(
                LineItem(
                    id=f"inc{offset or ''}-{cid}-0",
                    product_id="p-coffee",
                    title="Coffee",
                    product_type="Coffee",
                    quantity=1,
                    unit_price=usd("30"),
                    total=usd("30"),
                ),
            ),
        )
        for cid in chosen
    ]
    start = time.perf_counter()
    for lo in range(0, len(orders), 250):  # pages, as a sync writes them
        store.upsert(orders[lo : lo + 250])
    return {"changed": len(chosen), "write_s": round(time.perf_counter() - start, 2)}


def _models(result: object) -> dict[str, object]:
    """Which shop-level models the plan used (:attr:`shopsync.Plan.models`)."""
    used = [m.as_dict() for m in getattr(result, "models", ())]
    return {
        "models_version": [m["version"] for m in used],
        "models_rebuilt": any(m["rebuilt"] for m in used),
    }


def phase_full(path: str, hours: float = 0) -> dict[str, object]:
    import features

    from shopsync.planning import plan

    store = _store(path)
    start, cpu = time.perf_counter(), time.process_time()
    at = features.AS_OF + dt.timedelta(hours=hours)
    result = plan(store, _policy(), at, update_ledger=False)
    return {
        "seconds": round(time.perf_counter() - start, 2),
        "cpu_s": round(time.process_time() - cpu, 2),
        "peak_mb": round(_peak_mb()),
        "actions": len(result),
        "held": len(result.held),
        **_models(result),
    }


def phase_incremental(path: str, check: bool, hours: float = 0) -> dict[str, object]:
    import features

    from shopsync.planning import plan

    store = _store(path)
    start, cpu = time.perf_counter(), time.process_time()
    at = features.AS_OF + dt.timedelta(hours=hours)
    result = plan(store, _policy(), at, only_changed=True)
    seconds = time.perf_counter() - start
    out: dict[str, object] = {
        "seconds": round(seconds, 2),
        "cpu_s": round(time.process_time() - cpu, 2),
        "peak_mb": round(_peak_mb()),
        "customers_planned": len(result.customers),
        "actions": len(result),
        "held": len(result.held),
        "notes": [n for n in result.notes if n.startswith("incremental")],
        **_models(result),
        "keys_sha256": hashlib.sha256(
            "\n".join(
                [*result.keys, "--", *(h.action.idempotency_key for h in result.held)]
            ).encode()
        ).hexdigest()[:16],
    }
    if check:
        full = plan(_store(path), _policy(), at, update_ledger=False)
        chosen = set(result.customers)
        same = result.keys == [a.idempotency_key for a in full if a.customer_id in chosen]
        held = [h.action.idempotency_key for h in result.held] == [
            h.action.idempotency_key for h in full.held if h.action.customer_id in chosen
        ]
        out["equals_full_restricted"] = same and held
    return out


def _child(*args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, __file__, "--phase", *args], check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="10,000 customers (the default)")
    size.add_argument("--full", action="store_true", help="1M customers / 10M orders")
    parser.add_argument("--customers", type=int)
    parser.add_argument("--orders", type=int)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--db", default=None)
    parser.add_argument("--check", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        name, path, *rest = args.phase
        if name == "prime":
            result = phase_prime(path, rest[0])
        elif name == "settle":
            result = phase_settle(path, rest[0])
        elif name == "change":
            result = phase_change(path, float(rest[0]), int(rest[1]) if rest[1:] else 0)
        elif name in ("full", "full_stored", "full_later"):
            result = phase_full(path, LATER_HOURS if name == "full_later" else 0)
        else:
            hours = LATER_HOURS if name == "incremental_later" else 0
            result = phase_incremental(path, "check" in rest, hours)
        print(json.dumps(result))
        return
    customers, orders = SIZES["full" if args.full else "quick"]
    customers, orders = args.customers or customers, args.orders or orders
    check = args.check if args.check is not None else customers < 100_000
    tmp = tempfile.mkdtemp(prefix="shopsync-incremental-")
    path = args.db or os.path.join(tmp, "incremental.db")
    import plan as bench_plan

    started = time.perf_counter()
    if os.path.exists(path):
        os.remove(path)  # the run writes notes and an outbox: always from a fresh fixture
    bench_plan.build(path, customers, orders, args.seed)
    report: dict[str, object] = {
        "customers": customers,
        "orders": orders,
        "changed_share": args.changed,
        "fixture_s": round(time.perf_counter() - started, 1),
        "load_avg": os.getloadavg(),
    }
    report["prime"] = _child("prime", path, tmp)
    report["change"] = _child("change", path, str(args.changed))
    report["full"] = _child("full", path)
    report["incremental"] = _child("incremental", path, *(["check"] if check else []))
    report["incremental_stored"] = _child("incremental_stored", path)
    report["full_stored"] = _child("full_stored", path)
    # 6. the same day later: the incremental plan of AS_OF applied (its customers' program and
    # loyalty moments recorded with the day's models), another 1% changed, and both plans
    # again LATER_HOURS on: the steady state between two models refreshes
    report["settle"] = _child("settle", path, tmp)
    report["change_later"] = _child("change", path, str(args.changed), "1")
    report["incremental_later"] = _child("incremental_later", path, *(["check"] if check else []))
    report["full_later"] = _child("full_later", path)
    full_s = report["full"]["seconds"]  # type: ignore[index]
    inc_s = report["incremental"]["seconds"]  # type: ignore[index]
    report["speedup"] = round(full_s / inc_s, 1) if inc_s else None
    report["models"] = {
        "incremental_rebuilt_s": inc_s,
        "incremental_stored_s": report["incremental_stored"]["seconds"],  # type: ignore[index]
        "full_rebuilt_s": full_s,
        "full_stored_s": report["full_stored"]["seconds"],  # type: ignore[index]
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
