"""Bulk operations as Shopify runs them at 2026-10: ungrouped output (children on their own
lines, in no guaranteed order), up to five at once, ``partialDataUrl`` on failure, result
URLs that expire, and the ``bulk_operations/finish`` webhook; and the adapter reading all of
that right."""

from __future__ import annotations

import json
import time
import zlib
from typing import Any

import pytest
import requests
from shopsync_shopify import ShopifyAdapter, queries
from shopsync_shopify._render import expressible
from shopsync_shopify.webhooks import parse_webhook, sign

import shopsync
from shopsync.errors import PlatformError
from shopsync.testing import Subscription

from .bulk_spool import assemble
from .test_shopify_adapter import FAST, ManualClock, _read
from .test_shopify_emulator import _gql

INNER = """{ orders { edges { node { id
  lineItems { edges { node { __typename id quantity } } }
  refunds { id refundLineItems { edges { node {
    __typename quantity lineItem { id } } } } } } } } }"""
RUN = """mutation($q: String!, $g: Boolean) { bulkOperationRunQuery(query: $q, groupObjects: $g) {
  bulkOperation { id status } userErrors { field message code } } }"""
STATUS = """query($id: ID!) { node(id: $id) { ... on BulkOperation {
  id status errorCode objectCount url partialDataUrl } } }"""


def _run(shop: Any, group: bool | None = None) -> dict[str, Any]:
    variables: dict[str, Any] = {"q": INNER}
    if group is not None:
        variables["g"] = group
    return _gql(shop, RUN, variables).json()["data"]["bulkOperationRunQuery"]


def _wait(shop: Any, op_id: str) -> dict[str, Any]:
    for _ in range(400):
        node = _gql(shop, STATUS, {"id": op_id}).json()["data"]["node"]
        if node["status"] not in ("CREATED", "RUNNING"):
            return node
        time.sleep(0.02)
    raise AssertionError("bulk operation did not finish")


def _lines(url: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in requests.get(url, timeout=10).text.splitlines()]


def _child_before_parent(lines: list[dict[str, Any]]) -> bool:
    seen: set[str] = set()
    for line in lines:
        if "__parentId" in line and line["__parentId"] not in seen:
            return True
        seen.add(line.get("id", ""))
        seen.update(r["id"] for r in line.get("refunds", ()))
    return False


def test_output_is_ungrouped_and_unordered_unless_grouping_is_asked(shopify_shop: Any) -> None:
    shop = shopify_shop(orders=40)
    ungrouped = _lines(_wait(shop, _run(shop)["bulkOperation"]["id"])["url"])
    grouped = _lines(_wait(shop, _run(shop, group=True)["bulkOperation"]["id"])["url"])
    key = lambda line: json.dumps(line, sort_keys=True)  # noqa: E731
    assert sorted(map(key, ungrouped)) == sorted(map(key, grouped))
    assert _child_before_parent(ungrouped) and not _child_before_parent(grouped)


def test_five_bulk_queries_run_at_once_and_a_sixth_waits(shopify_shop: Any) -> None:
    shop = shopify_shop(orders=5, bulk_delay=0.5)
    started = [_run(shop) for _ in range(5)]
    assert all(s["bulkOperation"] and not s["userErrors"] for s in started)
    sixth = _run(shop)
    assert sixth["bulkOperation"] is None
    assert sixth["userErrors"][0]["code"] == "OPERATION_IN_PROGRESS"


def test_a_failed_operation_offers_its_partial_data(shopify_shop: Any) -> None:
    shop = shopify_shop(orders=30, bulk_fail_after=10)
    node = _wait(shop, _run(shop)["bulkOperation"]["id"])
    assert node["status"] == "FAILED" and node["errorCode"] == "INTERNAL_SERVER_ERROR"
    assert node["url"] is None and node["partialDataUrl"]
    partial = _lines(node["partialDataUrl"])
    assert sum(1 for line in partial if "__parentId" not in line) == 10


def test_result_urls_expire_and_the_operation_gives_a_fresh_one(shopify_shop: Any) -> None:
    clock = ManualClock()
    shop = shopify_shop(orders=5, clock=clock, bulk_url_ttl=60.0)
    node = _wait(shop, _run(shop)["bulkOperation"]["id"])
    assert requests.get(node["url"], timeout=5).status_code == 200
    clock.now += 61
    expired = requests.get(node["url"], timeout=5)
    assert expired.status_code == 403 and b"expired" in expired.content
    fresh = _gql(shop, STATUS, {"id": node["id"]}).json()["data"]["node"]["url"]
    assert fresh != node["url"] and requests.get(fresh, timeout=5).status_code == 200


def test_the_finish_webhook_has_the_published_shape(shopify_shop: Any) -> None:
    shop = shopify_shop(orders=5)
    emulator = shop.emulator
    events: list[Any] = []
    shop.state.subscribe(events.append)
    op = _wait(shop, _run(shop)["bulkOperation"]["id"])
    deadline = time.monotonic() + 5
    while not events and time.monotonic() < deadline:
        time.sleep(0.02)
    finished = [e for e in events if e.topic == "bulk_operation.finished"]
    assert len(finished) == 1
    sub = Subscription("1", "bulk_operations/finish", "http://127.0.0.1:9/unused", "s3cret")
    delivery = emulator.webhook(finished[0], sub)
    assert delivery is not None
    body = json.loads(delivery.body)
    assert set(body) == set(load_sample())
    assert body["admin_graphql_api_id"] == op["id"] and body["status"] == "completed"
    event = parse_webhook(delivery.headers, delivery.body, "s3cret")
    assert event.topic == "bulk_operations/finish" and not event.records
    assert event.notice == {"bulk_operation": op["id"], "status": "completed", "error_code": ""}


def load_sample() -> dict[str, Any]:
    """The keys of Shopify's published ``bulk_operations/finish`` sample (reference only)."""
    keys = ("admin_graphql_api_id", "completed_at", "created_at", "error_code", "status", "type")
    return dict.fromkeys(keys)


def test_a_finish_delivery_from_shopify_parses() -> None:
    raw = json.dumps(
        load_sample()
        | {
            "admin_graphql_api_id": "gid://shopify/BulkOperation/9",
            "status": "failed",
            "error_code": "timeout",
        }
    ).encode()
    headers = {
        "X-Shopify-Topic": "bulk_operations/finish",
        "X-Shopify-Shop-Domain": "a.myshopify.com",
        "X-Shopify-Hmac-Sha256": sign("k", raw),
    }
    event = parse_webhook(headers, raw, "k")
    assert event.notice == {
        "bulk_operation": "gid://shopify/BulkOperation/9",
        "status": "failed",
        "error_code": "timeout",
    }


def _connect(shop: Any, **kw: Any) -> ShopifyAdapter:
    kw.setdefault("bulk_poll_interval", 0.01)
    adapter = shopsync.connect("shopify", **shop.settings, retry_policy=FAST, **kw)
    assert isinstance(adapter, ShopifyAdapter)
    return adapter


def test_the_adapter_assembles_unordered_children_in_small_partitions(
    shopify_shop: Any,
) -> None:
    shop = shopify_shop(customers=30, orders=150, seed=11)
    with _connect(shop, bulk_threshold=None) as adapter:
        paged, _ = _read(adapter.read_orders())
        adapter.bulk_partition_bytes = 4096  # spill: many partitions of the result file
        bulk, rejected = _read(adapter.backfill_orders())
    assert not rejected and bulk == paged
    assert bulk == {k: expressible(v) for k, v in shop.state.orders.items()}
    assert all(not op.grouped for op in shop.emulator.bulk_ops.values())


def test_the_adapter_fetches_a_fresh_url_when_the_result_url_expired(shopify_shop: Any) -> None:
    clock = ManualClock()
    shop = shopify_shop(orders=20, clock=clock, bulk_url_ttl=60.0)
    with _connect(shop) as adapter:
        op_id, url = adapter._run_bulk(queries.BULK_ORDERS.replace("QUERY_ARG", ""), timeout=30)
        clock.now += 120
        assert requests.get(url or "", timeout=5).status_code == 403
        orders, rejected = _read(adapter._bulk_pages(op_id, url, 100, "orders", adapter._order))
    assert len(orders) == 20 and not rejected


def test_a_failing_bulk_read_never_applies_partial_orders_and_pages_instead(
    shopify_shop: Any,
) -> None:
    shop = shopify_shop(orders=60, bulk_fail_after=10)
    with _connect(shop, bulk_threshold=5) as adapter:
        orders, rejected = _read(adapter.read_orders())
        assert adapter.read_path["orders"] == "paging"
    assert shop.emulator.stats["bulk"] == 2  # tried twice, then paged
    assert not rejected and orders == {k: expressible(v) for k, v in shop.state.orders.items()}


def test_retries_of_a_bulk_read_reach_the_sync_report(shopify_shop: Any, tmp_path: Any) -> None:
    """The count query, the operation's creation, its polls and the download come before the
    first page: their retries are counted in it (they used to be left out of every page)."""
    shop = shopify_shop(customers=20, orders=60, seed=5)
    shop.faults.retry_after = 0.01
    with _connect(shop, bulk_threshold=0) as adapter:
        store = shopsync.Store(f"sqlite:///{tmp_path / 's.db'}")
        shop.faults.inject("429")
        shop.faults.inject("5xx")
        report = shopsync.sync(adapter, store)
        store.close()
        assert adapter.read_path["orders"] == "bulk"
        assert dict(shop.faults.counts) == {"429": 1, "5xx": 1}
        assert sum(r.retries for r in report.resources.values()) == 2


def test_a_sync_reports_only_its_own_requests(shopify_shop: Any, tmp_path: Any) -> None:
    """Requests the adapter sent before the sync (a check, a write-back) are not the sync's."""
    shop = shopify_shop(customers=10, orders=20, seed=6)
    shop.faults.retry_after = 0.01
    with _connect(shop, bulk_threshold=None) as adapter:
        shop.faults.inject("429")
        adapter.granted_access()  # retried once, before any sync
        store = shopsync.Store(f"sqlite:///{tmp_path / 's.db'}")
        report = shopsync.sync(adapter, store)
        store.close()
    assert adapter.http.stats.retries == 1
    assert sum(r.retries for r in report.resources.values()) == 0


def _lines_of(*objects: dict[str, Any]) -> bytes:
    """As Shopify writes them (compact, slashes escaped), but a line whose "spaced" is set."""
    out = b""
    for o in objects:
        spaced = o.pop("spaced", False)
        text = json.dumps(o) if spaced else json.dumps(o, separators=(",", ":"))
        out += text.replace("/", "\\/").encode() + b"\n"
    return out


def test_reassembly_is_the_same_in_one_partition_and_in_many() -> None:
    """Children before and after their parents, a child of an embedded refund, a child line
    that does not end with its parent, a line of unknown kind and one whose parent is
    nowhere: the same nodes and the same rejections whether the file is one partition (no
    routing pass) or spread over many, the last line without its newline."""

    def gid(kind: str, n: int) -> str:
        return f"gid://shopify/{kind}/{n}"

    def line(n: int, order: int) -> dict[str, Any]:
        return {
            "__typename": "LineItem",
            "id": gid("LineItem", n),
            "__parentId": gid("Order", order),
        }

    spool = _lines_of(
        line(12, 1),  # before its parent, and after its sibling in id order
        {"id": gid("Order", 1), "refunds": [{"id": gid("Refund", 7)}]},
        {**line(11, 1), "spaced": True},  # read by parsing, not off its end
        {"__parentId": gid("Refund", 7), "__typename": "RefundLineItem", "quantity": 1},
        {"id": gid("Order", 2), "refunds": []},
        {"__typename": "Mystery", "__parentId": gid("Order", 2)},
        {"__typename": "LineItem", "id": gid("LineItem", 99), "__parentId": gid("Order", 404)},
        line(21, 2),
    )
    adapter = shopsync.connect(
        "shopify", shop="a.myshopify.com", access_token="shpat_x", base_url="http://127.0.0.1:9"
    )
    results = []
    for partition_bytes in (1 << 20, 64):
        adapter.bulk_partition_bytes = partition_bytes  # type: ignore[attr-defined]
        # the file's last line without its newline
        nodes, rejected = assemble(adapter, spool[:-1], 100)
        results.append((sorted(nodes, key=lambda n: n["id"]), rejected))
    assert results[0] == results[1]
    nodes, rejected = results[0]
    assert [li["id"][-2:] for li in nodes[0]["lineItems"]] == ["11", "12"]
    assert nodes[0]["refunds"][0]["refundLineItems"] == [
        {"__typename": "RefundLineItem", "quantity": 1}
    ]
    assert [li["id"][-2:] for li in nodes[1]["lineItems"]] == ["21"]
    assert [reason for reason, _ in rejected] == [
        "bulk line of unknown kind",
        f"bulk line without a known parent ({gid('Order', 404)})",
    ]


@pytest.mark.parametrize("read", ["structs", "scan", "parse"])  # how a root's ids are read
def test_a_root_notes_its_embedded_objects_not_itself(
    read: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An order's partition is a hash of its id, so its children find it without a note:
    a root line notes only its refunds and fulfilments (in their buckets), and the child of
    one waits in its parent's bucket, however the root's ids are read."""
    import contextlib
    import tempfile

    from shopsync_shopify import _bulk_route

    if read != "structs":
        monkeypatch.setattr(_bulk_route, "_bulk_structs", None)
    if read == "parse":
        monkeypatch.setattr(_bulk_route, "_root_ids", lambda raw: None)
    order = "gid://shopify/Order/1"
    root = {
        "id": order,
        "refunds": [{"id": "gid://shopify/Refund/7"}],
        "fulfillments": [{"id": "gid://shopify/Fulfillment/8"}],
    }
    kid = {"__typename": "RefundLineItem", "__parentId": "gid://shopify/Refund/7"}
    lines = [json.dumps(root).encode() + b"\n", json.dumps(kid, separators=(",", ":")).encode()]
    with contextlib.ExitStack() as stack:  # two partitions, two buckets
        files = [stack.enter_context(tempfile.TemporaryFile()) for _ in range(6)]
        _bulk_route._split(lines, files[:2], files[2:4], files[4:])
        written = []
        for f in files:
            f.seek(0)
            written.append(f.read())
    part = zlib.crc32(order.encode()) % 2
    assert written[part] == lines[0] and written[1 - part] == b""
    notes = sorted(written[2].splitlines() + written[3].splitlines())
    assert notes == [b"%d gid://shopify/Fulfillment/8" % part, b"%d gid://shopify/Refund/7" % part]
    waiting = written[4 + zlib.crc32(b"gid://shopify/Refund/7") % 2]
    assert waiting == lines[1] + b"\n"


def test_the_reader_holds_one_bucket_of_embedded_ids_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The ids children may name as parent are held a bucket at a time, never all at once
    (an index of the whole file grew some 90 bytes an order: 1 GB at 10M orders), and every
    child still reaches its order: a refund's line item precedes its order half the time,
    and an id holding a line break (decoded from an escape) is noted whole."""

    from shopsync_shopify import _bulk_route

    objects: list[dict[str, Any]] = []
    for n in range(1, 161):
        refund = f"gid://shopify/Refund/{n}" if n > 1 else "gid://shopify/Refund/a\nb"
        kid = {"__typename": "RefundLineItem", "quantity": n, "__parentId": refund}
        root = {"id": f"gid://shopify/Order/{n}", "refunds": [{"id": refund}]}
        objects += [kid, root] if n % 2 else [root, kid]
    held: list[int] = []
    settle = _bulk_route._settle

    def settle_counting(noted: Any, *args: Any) -> None:
        noted.seek(0)
        held.append(len(noted.read().splitlines()))
        settle(noted, *args)

    monkeypatch.setattr(_bulk_route, "_settle", settle_counting)
    adapter = shopsync.connect(
        "shopify", shop="a.myshopify.com", access_token="shpat_x", base_url="http://127.0.0.1:9"
    )
    adapter.bulk_partition_bytes = 256  # type: ignore[attr-defined]
    nodes, rejected = assemble(adapter, _lines_of(*objects), 50)
    assert rejected == []
    assert sum(held) == 160 and len(held) > 4 and max(held) < 80, held
    quantities = {
        n["id"]: [li["quantity"] for li in n["refunds"][0]["refundLineItems"]] for n in nodes
    }
    assert quantities == {f"gid://shopify/Order/{n}": [n] for n in range(1, 161)}


def test_a_bulk_read_eases_the_collector_between_its_pages_and_puts_it_back() -> None:
    """A page is written while the read waits: at Python's threshold of 700 the collector
    walked each page's rows again and again (7 us an order of a backfill, issue 20)."""
    import gc
    import tempfile
    import types

    from shopsync._collector import YOUNG_THRESHOLD

    spool = _lines_of(*({"id": f"gid://shopify/Order/{n}"} for n in (1, 2, 3)))
    adapter = shopsync.connect(
        "shopify", shop="a.myshopify.com", access_token="shpat_x", base_url="http://127.0.0.1:9"
    )
    thresholds = gc.get_threshold()
    seen = []
    mapped = lambda node: types.SimpleNamespace(updated_at=None)  # noqa: E731
    with tempfile.TemporaryFile() as f:
        f.write(spool)
        f.seek(0)
        for page in adapter._assemble(f, 1, "orders", mapped):  # type: ignore[attr-defined]
            seen.append((len(page.records), gc.get_threshold()[0]))
    assert seen == [(1, max(thresholds[0], YOUNG_THRESHOLD))] * 3
    assert gc.get_threshold() == thresholds


def test_reassembly_is_the_same_with_or_without_orjson(monkeypatch: Any) -> None:
    """With the ``fast`` extra a holder's child lines are parsed by orjson
    (``_jsonl._parse_lines``): the nodes and rejections are json's, with orjson or without,
    in one partition or in many, with lines among them that orjson refuses (NaN) or would
    read otherwise (20 digits)."""

    from shopsync_shopify import _jsonl

    order = "gid://shopify/Order/1"
    spool = _lines_of(
        {"__typename": "LineItem", "id": "gid://shopify/LineItem/12", "__parentId": order},
        {"id": order, "refunds": [{"id": "gid://shopify/Refund/7"}]},
        {"__typename": "LineItem", "id": "gid://shopify/LineItem/11", "__parentId": order},
        {"__typename": "LineItem", "n": float("nan"), "__parentId": order},
        {"__typename": "RefundLineItem", "q": 12345678901234567890, "__parentId": "R"},
        {
            "__typename": "RefundLineItem",
            "q": -98765432109876543210,
            "__parentId": "gid://shopify/Refund/7",
        },
        {"__typename": "RefundLineItem", "quantity": 1, "__parentId": "gid://shopify/Refund/7"},
        {"__typename": "Mystery", "__parentId": order},
        {"id": "gid://shopify/Order/2", "big": 98765432109876543210},
        {
            "__typename": "LineItem",
            "id": "gid://shopify/LineItem/21",
            "__parentId": "gid://shopify/Order/2",
        },
    )
    adapter = shopsync.connect(
        "shopify", shop="a.myshopify.com", access_token="shpat_x", base_url="http://127.0.0.1:9"
    )
    results = []
    for orjson in (_jsonl._orjson, None):
        monkeypatch.setattr(_jsonl, "_orjson", orjson)
        for partition_bytes in (1 << 20, 64):
            adapter.bulk_partition_bytes = partition_bytes  # type: ignore[attr-defined]
            nodes, rejected = assemble(adapter, spool, 100)
            results.append(repr((sorted(nodes, key=lambda n: n["id"]), rejected)))
    assert len(set(results)) == 1
    assert "-98765432109876543210" in results[0] and "nan" in results[0]
    assert "bulk line of unknown kind" in results[0]


def test_child_lines_parsed_together_are_what_each_line_parses_to() -> None:
    """``_jsonl._parse_lines``: json's values, line by line: a line that is not one object
    alone (then it fails as that line alone fails)."""
    from shopsync_shopify._jsonl import _loads_short, _parse_lines

    kids = [b'{"a":NaN,"__parentId":"p"}\n', b'{"b":"\\u00e9","__parentId":"p"}']
    assert repr(_parse_lines(kids, _loads_short)) == repr([json.loads(k) for k in kids])
    kids = [b'{"a":1,"__parentId":"p"}\n', b'{"b":[1,2.5],"__parentId":"p"}\n']
    assert _parse_lines(kids, _loads_short) == [json.loads(k) for k in kids]
    two = [b'{"a":1},{"__parentId":"p"}\n', b'{"b":1,"__parentId":"p"}\n']
    with pytest.raises(ValueError):
        _parse_lines(two, _loads_short)


def test_an_order_written_twice_keeps_its_children_in_every_copy() -> None:
    """A root line repeated (here an older copy; the file's order is no guide): every copy
    gets the children that name its id, so whichever version the store keeps has its lines,
    and none is rejected, in one partition or in many."""

    order = "gid://shopify/Order/1"
    spool = _lines_of(
        {"id": order, "updatedAt": "2025-01-02T00:00:00Z", "refunds": [{"id": "R7"}]},
        {"__typename": "LineItem", "id": "gid://shopify/LineItem/11", "__parentId": order},
        {"__typename": "RefundLineItem", "quantity": 1, "__parentId": "R7"},
        {"id": order, "updatedAt": "2000-01-01T00:00:00Z", "refunds": [{"id": "R7"}]},
    )
    adapter = shopsync.connect(
        "shopify", shop="a.myshopify.com", access_token="shpat_x", base_url="http://127.0.0.1:9"
    )
    for partition_bytes in (1 << 20, 64):
        adapter.bulk_partition_bytes = partition_bytes  # type: ignore[attr-defined]
        nodes, rejected = assemble(adapter, spool, 100)
        assert rejected == []
        assert sorted(n["updatedAt"] for n in nodes) == [
            "2000-01-01T00:00:00Z",
            "2025-01-02T00:00:00Z",
        ]
        for node in nodes:
            assert [li["id"][-2:] for li in node.get("lineItems", [])] == ["11"], node
            assert node["refunds"][0].get("refundLineItems") == [
                {"__typename": "RefundLineItem", "quantity": 1}
            ]


def test_a_root_line_is_indexed_by_its_ids_without_parsing_or_else_parsed() -> None:
    """The routing pass reads a root line's ids off its bytes (``_jsonl._root_ids``): the
    root's own first, then every embedded object's, never one missed; a line it cannot read
    so (spaces, escapes, a ``__parentId`` member, an id that is not a plain string) is
    parsed instead (None)."""
    from shopsync_shopify._jsonl import _root_ids

    root = {
        "id": "gid://shopify/Order/7",
        "title": 'a"id":"9',  # the key inside a string: its quotes are escaped
        "customer": {"id": "gid://shopify/Customer/3"},
        "refunds": [{"id": "gid://shopify/Refund/5"}],
        "fulfillments": [{"id": "gid://shopify/Fulfillment/6"}],
    }
    raw = json.dumps(root, separators=(",", ":")).replace("/", "\\/").encode() + b"\n"
    ids = _root_ids(raw)
    assert ids is not None
    assert ids[0] == b"gid://shopify/Order/7"
    assert {b"gid://shopify/Refund/5", b"gid://shopify/Fulfillment/6"} <= set(ids)
    assert b"9" not in ids
    for other in (
        json.dumps(root).encode(),  # spaces after the colons
        raw.replace(b"Order", b"Ord\\u00e9r"),
        raw.replace(b'Refund\\/5"', b'Refund\\/5\\""'),
        raw.replace(b'"gid:\\/\\/shopify\\/Fulfillment\\/6"', b"6"),
        raw.replace(b"}\n", b',"__parentId":"gid:\\/\\/shopify\\/Order\\/1"}\n'),
        b'{"name":"x","id":"gid://shopify/Order/7"}\n',
    ):
        assert other != raw
        assert _root_ids(other) is None, other


def test_the_routing_decode_reads_a_root_lines_ids_as_parsing_does() -> None:
    """``_bulk_structs.root_ids`` (the routing pass's first reading): the root's id first,
    then its refunds' and fulfilments' as json reads them (escapes undone), and None for a
    line that names a parent, even by an escaped key, or that it cannot read so."""
    from shopsync_shopify._bulk_structs import root_ids

    raw = (
        b'{"id":"gid:\\/\\/shopify\\/Order\\/7","refunds":[{"id":"R5"},{"id":null}],'
        b'"fulfillments":[{"id":"F\\u0036"}]}\n'
    )
    assert root_ids(raw) == [b"gid://shopify/Order/7", b"R5", b"F6"]
    for other in (
        raw.replace(b"}\n", b',"__parentId":"gid:\\/\\/shopify\\/Order\\/1"}\n'),
        raw.replace(b"}\n", b',"__parent\\u0049d":"gid:\\/\\/shopify\\/Order\\/1"}\n'),
        raw.replace(b'"refunds":[', b'"refunds":[1,'),
        raw.replace(b'"gid:\\/\\/shopify\\/Order\\/7"', b"7"),
    ):
        assert other != raw
        assert root_ids(other) is None, other


def _polled(seconds: float, interval: float, timeout: float = 3600.0) -> tuple[int, float]:
    """How often an operation running ``seconds`` is asked for its status, and how long
    after it finished the adapter saw it (a clock that moves only when the adapter sleeps)."""
    clock = ManualClock()
    adapter = ShopifyAdapter(
        shop="poll.myshopify.com",
        access_token="token",
        sleep=clock.sleep,
        clock=clock,
        bulk_poll_interval=interval,
    )
    start, polls = clock.now, [0]

    def graphql(query: str, variables: Any = None, *, requested: float = 0) -> dict[str, Any]:
        if query == queries.BULK_RUN:
            op = {"id": "gid://shopify/BulkOperation/1", "status": "CREATED"}
            return {"data": {"bulkOperationRunQuery": {"bulkOperation": op, "userErrors": []}}}
        polls[0] += 1
        done = clock.now - start >= seconds
        return {"data": {"node": {"status": "COMPLETED" if done else "RUNNING", "url": None}}}

    adapter.graphql = graphql  # type: ignore[method-assign]
    adapter._run_bulk("{ orders { edges { node { id } } } }", timeout)
    return polls[0], clock.now - start - seconds


def test_a_long_bulk_operation_is_polled_less_often_as_it_runs() -> None:
    """Each status poll costs the reader some milliseconds of CPU (a GraphQL request):
    at a fixed interval a long operation's polls were a tenth of a 20k-order backfill's
    CPU-seconds (issue 20). The wait grows with the time the operation has run (an eighth
    of it), so it is seen finished at most an eighth later; a short one as before."""
    polls, late = _polled(600.0, 1.0)
    assert polls <= 60  # every second: 600
    assert late <= 600.0 / 8 + 1.0
    polls, late = _polled(13.0, 0.2)  # the benchmark's 20k orders: 65 polls at 0.2 s
    assert polls <= 30
    assert late <= 13.0 / 8 + 0.2
    polls, late = _polled(1.0, 1.0)  # short: 0.2, 0.4, 0.8 s as before
    assert polls <= 4
    assert late <= 0.5


def test_a_bulk_operation_past_its_timeout_is_not_waited_for_longer() -> None:
    """The growing wait stops at the deadline: the timeout is still the timeout."""
    with pytest.raises(PlatformError, match="did not finish"):
        _polled(10_000.0, 1.0, timeout=900.0)


def test_an_hours_long_bulk_operation_is_seen_done_within_half_a_minute() -> None:
    """The growing wait has a ceiling: a large shop's export runs for hours, and an eighth
    of that would leave its finished file unread for many minutes."""
    polls, late = _polled(3 * 3600.0, 1.0, timeout=4 * 3600.0)
    assert late <= 30.0 + 1.0
    assert polls <= 3 * 3600 / 30 + 40  # still far fewer than one a second
