"""CPU microseconds an order of a WooCommerce first sync's own mapping and storing (issue 20).

    python benchmarks/woocommerce_map.py capture pages.json --orders 10000  # once
    python benchmarks/woocommerce_map.py run pages.json --repeats 5

``capture`` reads an emulated store's order pages as the sync asks for them (``_fields``,
keyset paging) and keeps them with each order's refund records. ``run`` replays them, in
this process and without a request: each page parsed (not counted), mapped by the columnar
ingest path (``ColumnarLoop`` and ``_fast_orders.order_tables``, as the sync's own thread
maps them) and written to a fresh SQLite store (``ingest_columns.store_page`` in the page's
transaction, its commit counted), and prints the CPU microseconds an order of the mapping,
of the storing and of both, each run's and the least. The page thread (requests, JSON
decoding) is ``woocommerce_read.py``'s; this is the part that holds the GIL against it.
Interleave runs of two versions (``PYTHONPATH``) on a shared machine: the least of several
runs moves least with the load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any

import shopsync


def capture(path: str, orders: int, seed: int) -> None:
    """Read ``orders`` orders of an emulated store; their pages and refunds to ``path``."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from woocommerce_read import shop_options

    from shopsync.testing.process import emulate_in_process

    with emulate_in_process("woocommerce", **shop_options(orders, seed)) as shop:
        adapter: Any = shopsync.connect("woocommerce", **shop.settings, per_page=100)
        adapter.takes_rows = True
        pages: list[dict[str, Any]] = []
        refunds: dict[str, Any] = {}
        paged, refunds_of = adapter._modified_pages, adapter._refunds_of

        def kept_pages(*args: Any, **kwargs: Any) -> Any:
            for page in paged(*args, **kwargs):
                pages.append({"rows": page.rows, "cursor": page.cursor, "last": page.last})
                yield page

        def kept_refunds(raw: Any, index: Any) -> Any:
            refunds[str(raw.get("id"))] = found = refunds_of(raw, index)
            return found

        adapter._modified_pages, adapter._refunds_of = kept_pages, kept_refunds
        read = sum(len(p.records) + len(getattr(p, "rows", ())) for p in adapter.read_orders())
        if adapter.site_timezone is not None:
            raise SystemExit("the replay maps in UTC: the emulated store names a time zone")
        adapter.close()
    with open(path, "w") as out:
        out.write(json.dumps({"shop": shop.shop, "pages": pages, "refunds": refunds}))
    print(f"{read:,} orders in {len(pages)} pages, {len(refunds)} with refunds: {path}")


def replay(path: str) -> dict[str, float]:
    """One run over the captured pages into a fresh store: CPU microseconds an order."""
    from shopsync_woocommerce._fast_orders import order_tables
    from shopsync_woocommerce.mapping import order_from_rest

    from shopsync.adapter_kit import RawPage
    from shopsync.ingest_columns import ColumnarLoop, store_page

    with open(path) as f:
        data = json.load(f)
    shop, refunds = data["shop"], data["refunds"]
    texts = [(json.dumps(p["rows"]), p["cursor"], p["last"]) for p in data["pages"]]
    del data

    def refunds_of(raw: Any) -> Any:
        return refunds.get(str(raw.get("id"))) if type(raw) is dict and raw.get("refunds") else None

    def convert(raw: Any) -> Any:
        return order_from_rest(raw, shop=shop, refunds=refunds_of(raw), site_timezone=None)

    parsing = [0.0]

    def pages() -> Any:
        for text, cursor, last in texts:
            started = time.process_time()
            rows = json.loads(text)
            parsing[0] += time.process_time() - started
            yield RawPage(rows, cursor=cursor, last=last)

    mapping = storing = 0.0
    count = 0
    with tempfile.TemporaryDirectory() as tmp:
        store = shopsync.Store(f"sqlite:///{tmp}/woo.db")
        loop = ColumnarLoop("orders", convert, lambda raw: order_tables(raw, refunds_of(raw)))
        mapped = loop.run(pages())
        while True:
            started = time.process_time()
            page: Any = next(mapped, None)
            mapping += time.process_time() - started
            if page is None:
                break
            started = time.process_time()
            with store.transaction() as tx:
                store.upsert(page.records, conn=tx)
                store_page(store, "woocommerce", shop, page, tx)
            storing += time.process_time() - started
            count += len(page.records) + len(page.rows)
        store.close()
    mapping -= parsing[0]
    us = 1e6 / count
    return {"map": mapping * us, "store": storing * us, "both": (mapping + storing) * us}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["capture", "run"])
    parser.add_argument("path", help="the captured pages (JSON)")
    parser.add_argument("--orders", type=int, default=10_000, help="capture: orders")
    parser.add_argument("--seed", type=int, default=1, help="capture: the store's seed")
    parser.add_argument("--repeats", type=int, default=3, help="run: runs, each a fresh store")
    args = parser.parse_args()
    if args.action == "capture":
        capture(args.path, args.orders, args.seed)
        return
    runs = [replay(args.path) for _ in range(args.repeats)]
    for run in runs:
        print(json.dumps({k: round(v, 1) for k, v in run.items()}))
    least = {k: round(min(r[k] for r in runs), 1) for k in runs[0]}
    print(json.dumps({"least": least, "load": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
