"""The loyalty derivation of a whole shop: the per-customer rules against the columns.

    python benchmarks/loyalty.py [--orders 100000] [--engine rules|columns|core] [--seed 7]
                                 [--block-orders N] [--actions-only] [--entry-frames]
                                 [--earned SHARE]

Builds a shop in memory (one customer per ten orders, three years of orders, 5 % refunded in
part or whole, 2 % cancelled, a third of the customers with a birthday, 1 % with an
adjustment, 0.5 % with a redemption) and derives its ledger with the default policy (tiers,
expiry, birthdays) in this process; peak RSS is this process's. ``rules`` and ``columns`` run
:func:`shopsync.core.loyalty_shop.derive_shop` with that engine, every customer's
derivation and actions built (what a plan consumes); ``core`` times
:func:`shopsync.core.loyalty_columns.derive_columns` alone (the frames, no Python records).
``--actions-only`` builds the records a dry run builds (``derive_shop(all_entries=False)``:
the entries the actions read, the others counted); ``--entry-frames`` derives what a ledger
write reads (``derive_shop(on_entries=...)``: every customer's derivation and actions, the
entries of the customers the columns derive as one frame per block, rows counted);
``--block-orders`` sets the block size; ``--earned`` hands the derivation the earn entries a
ledger holds for that share of the orders (``LoyaltyTables.earned``: a shop whose ledger is
written, most of its orders earned already).
Prints one JSON line: seconds and CPU-seconds (all threads; steadier than wall time on a
loaded machine), µs per order, peak MB (and the peak once the shop was built, before the
derivation), customers left to the rules.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import polars as pl

DAY = 86_400_000_000
START = 1_640_995_200_000_000  # 2022-01-01 UTC
AS_OF = START + 3 * 365 * DAY
UNIT = 10_000


def shop(orders: int, seed: int, earned: float = 0.0) -> tuple[Any, list[Any]]:
    from shopsync.core.loyalty_shop import LoyaltyTables

    rng = np.random.default_rng(seed)
    customers = max(1, orders // 10)
    created = START + rng.integers(0, 3 * 365 * DAY, orders)
    subtotal = rng.integers(5, 150, orders) * UNIT
    cancelled = np.where(rng.random(orders) < 0.02, created + rng.integers(1, 20, orders) * DAY, 0)
    ids = [str(i) for i in range(orders)]
    frame = pl.DataFrame(
        {
            "id": ids,
            "customer_id": [f"c{i}" for i in rng.integers(0, customers, orders)],
            "created_at": created,
            "paid_at": created,
            "processed_at": created,
            "cancelled_at": pl.Series(cancelled).replace(0, None),
            "financial_status": ["paid"] * orders,
            "currency": ["USD"] * orders,
            "total": subtotal + 5 * UNIT,
            "subtotal": subtotal,
        }
    )
    refunded = np.flatnonzero(rng.random(orders) < 0.05)
    refunds = pl.DataFrame(
        {
            "order_id": [ids[i] for i in refunded],
            "id": [f"r{i}" for i in refunded],
            "created_at": created[refunded] + rng.integers(1, 30 * DAY, len(refunded)),
            "amount": (subtotal[refunded] * rng.choice([0.3, 1.0], len(refunded))).astype(int),
        }
    )
    people = [f"c{i}" for i in range(customers)]
    held = frame.filter(pl.Series(rng.random(orders) < earned)).select(
        "customer_id", pl.col("id").alias("order_id"), (pl.col("subtotal") // 1000).alias("points")
    )
    tables = LoyaltyTables(
        orders=frame,
        refunds=refunds,
        customers=pl.DataFrame(
            {
                "id": people,
                "birthday": [None] * customers,
                "updated_at": [START] * customers,
                "email": [f"{c}@example.com" for c in people],
            },
            schema={
                "id": pl.String,
                "birthday": pl.String,
                "updated_at": pl.Int64,
                "email": pl.String,
            },
        ),
        earned=held if earned else None,
    )
    inputs = []
    for i in range(customers):
        draw = rng.random()
        if draw < 0.33:
            born = f"1980-{1 + i % 12:02d}-{1 + i % 28:02d}"
            inputs.append(_row("birthday", f"b{i}", f"c{i}", START, {"birthday": born}))
        if draw > 0.99:
            at = START + int(rng.integers(0, 3 * 365 * DAY))
            inputs.append(_row("adjust", f"a{i}", f"c{i}", at, {"points": 50, "reason": "x"}))
        if 0.33 < draw < 0.335:
            at = START + int(rng.integers(0, 3 * 365 * DAY))
            inputs.append(_row("redeem", f"x{i}", f"c{i}", at, {"points": 500}))
    inputs.sort(key=lambda r: (r.occurred_at, r.key))
    return tables, inputs


def _row(kind: str, key: str, customer: str, at: int, data: dict[str, Any]) -> Any:
    return SimpleNamespace(kind=kind, key=key, customer_id=customer, occurred_at=at, data=data)


def measure(
    orders: int,
    engine: str,
    seed: int,
    block: int | None = None,
    all_entries: bool = True,
    entry_frames: bool = False,
    earned: float = 0.0,
) -> dict[str, Any]:
    from shopsync.core.loyalty_columns import derive_columns
    from shopsync.core.loyalty_derivations import column_inputs
    from shopsync.core.loyalty_history import facts_table
    from shopsync.core.loyalty_shop import derive_shop
    from shopsync.core.policy import Policy

    tables, inputs = shop(orders, seed, earned)
    policy = Policy.from_dict({"currency": "USD"})
    built_mb = _peak_mb()
    cpu = _cpu()
    start = time.perf_counter()
    fallback = None
    entries = 0
    if engine == "core":
        facts = facts_table({"orders": tables.orders}, policy)
        ledger = derive_columns(
            facts,
            tables.refunds,
            column_inputs(inputs, {}, tables.earned),
            policy.loyalty,
            AS_OF,
            currency="USD",
        )
        entries, fallback = ledger.entries.height, len(ledger.fallback)
    else:
        handed: list[pl.DataFrame] = []
        found = derive_shop(
            tables,
            inputs,
            {},
            policy,
            AS_OF,
            currency="USD",
            platform="shopify",
            shop="bench",
            engine=engine,  # type: ignore[arg-type]
            **({} if block is None else {"block_orders": block}),
            **({} if all_entries else {"all_entries": False}),
            **({"on_entries": handed.append} if entry_frames else {}),
        )
        rows = 0
        for one in found.customers:
            entries += one.entry_count
            rows += sum(frame.height for frame in handed) + (
                0 if one.entries_handed else len(one.derivation.entries)
            )
            handed.clear()
        if entry_frames and all_entries and rows != entries:
            raise AssertionError(f"{rows} entry rows handed, {entries} derived")
        fallback = None if found.by_rules is None else len(found.by_rules)
    seconds = time.perf_counter() - start
    cpu = _cpu() - cpu
    return {
        "engine": f"{engine}, entries as frames"
        if entry_frames
        else engine
        if all_entries
        else f"{engine}, entries for actions",
        "orders": orders,
        "earned_share": earned,
        "seconds": round(seconds, 2),
        "us_per_order": round(seconds / orders * 1e6, 2),
        "entries": entries,
        "customers_by_rules": fallback,
        "cpu_seconds": round(cpu, 2),
        "cpu_us_per_order": round(cpu / orders * 1e6, 2),
        "peak_mb": _peak_mb(),
        "shop_built_mb": built_mb,
    }


def _peak_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--engine", choices=["rules", "columns", "core"], default="columns")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--block-orders", type=int, default=None, help="derive_shop's block size")
    parser.add_argument(
        "--actions-only",
        action="store_true",
        help="derive_shop(all_entries=False): the records a dry run (a plan) builds",
    )
    parser.add_argument(
        "--entry-frames",
        action="store_true",
        help="derive_shop(on_entries=...): what a ledger write reads (the entries as frames)",
    )
    parser.add_argument(
        "--earned",
        type=float,
        default=0.0,
        help="share of the orders whose earn entry the ledger holds (LoyaltyTables.earned)",
    )
    args = parser.parse_args()
    found = measure(
        args.orders,
        args.engine,
        args.seed,
        args.block_orders,
        not args.actions_only,
        args.entry_frames,
        args.earned,
    )
    print(json.dumps(found))


if __name__ == "__main__":
    main()
