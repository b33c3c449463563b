"""Attacks on the routing of a large bulk file into partitions (``_bulk_route``): for any
file, routed (many partitions, embedded objects' children settled bucket by bucket) it must
read as it reads in one partition (no routing), and the routing must keep to its share of
the open files the process may hold."""

from __future__ import annotations

import json
import tempfile
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shopsync_shopify import _bulk_route

from .bulk_spool import assemble, offline_adapter

_ONE = 1 << 30
"""Partition bytes past any test file: one partition, no routing."""


def _read(spool: bytes, partition_bytes: int) -> tuple[list[str], list[tuple[str, str]]]:
    """The nodes (as sorted JSON text) and the rejections of reading ``spool``."""
    adapter = offline_adapter()
    adapter.bulk_partition_bytes = partition_bytes
    nodes, rejected = assemble(adapter, spool, 7)
    return sorted(json.dumps(n, sort_keys=True) for n in nodes), rejected


_TAILS = ["", " x", "\u00e9", "\n", '"', "\\", "/", "\u2028", "\ud800", "\udfff\ud800"]
"""What an id may end with: a space, non-ASCII, a line break (so noted in hex), a quote or a
backslash (escaped: read by parsing), a slash (``\\/``), a lone surrogate."""


@st.composite
def _spools(draw: st.DrawFn) -> bytes:
    """A bulk file of orders (some written twice, with refunds, fulfilments and a customer),
    roots that are not orders, and child lines naming roots, refunds, fulfilments, customers
    or nothing known, written every way a reader must take: compact or spaced, ``/`` escaped
    or not, non-ASCII raw or escaped, the parent first or last, CRLF, trailing blanks, blank
    lines, no last newline.
    An embedded object belongs to one root (its id names the root): Shopify's ids are
    unique, and an id shared by two roots reads differently routed (the last root noting one
    takes its children)."""
    tail = st.sampled_from(_TAILS)

    def gid(kind: str, n: int | str) -> str:
        return f"gid://shopify/{kind}/{n}{draw(tail)}"

    objects: list[dict[str, Any]] = []
    parents = [gid("Order", 99), gid("Refund", 99), gid("Customer", 9), ""]
    roots: dict[str, int] = {}  # root id -> its tag, in the ids of the objects it embeds
    for n in draw(st.lists(st.integers(1, 6), max_size=8)):  # a number twice: maybe a copy
        kind = draw(st.sampled_from(["Order", "Order", "Product"]))  # not an order: noted
        root: dict[str, Any] = {"id": gid(kind, n)}
        tag = roots.setdefault(root["id"], len(roots))
        parents.append(root["id"])
        if draw(st.booleans()):
            root["customer"] = {"id": gid("Customer", draw(st.integers(1, 3)))}
            parents.append(root["customer"]["id"])
        for key, held in (("refunds", "Refund"), ("fulfillments", "Fulfillment")):
            if draw(st.booleans()):
                many = range(draw(st.integers(0, 2)))
                root[key] = [{"id": gid(held, f"{tag}-{j}")} for j in many]
                parents += [item["id"] for item in root[key]]
        objects.append(root)
    kinds = ["LineItem", "RefundLineItem", "FulfillmentLineItem", "Mystery"]
    for _ in range(draw(st.integers(0, 24))):
        child: dict[str, Any] = {"__typename": draw(st.sampled_from(kinds))}
        if draw(st.booleans()):
            child["id"] = gid("LineItem", draw(st.integers(1, 9)))
        parent = draw(st.sampled_from(parents))
        if draw(st.booleans()):
            child = {"__parentId": parent, **child}
        else:
            child["__parentId"] = parent
        objects.append(child)
    lines = []
    for obj in draw(st.permutations(objects)):
        raw = json.dumps(obj, ensure_ascii=False)
        ascii_only = draw(st.booleans()) or any("\ud800" <= c <= "\udfff" for c in raw)
        spaced = draw(st.booleans())
        text = json.dumps(obj, ensure_ascii=ascii_only, separators=None if spaced else (",", ":"))
        if draw(st.booleans()):
            text = text.replace("/", "\\/")
        lines.append(text.encode() + draw(st.sampled_from([b"\n", b"\n", b"\r\n", b" \n"])))
        if draw(st.integers(0, 9)) == 0:
            lines.append(draw(st.sampled_from([b"\n", b" \n", b"\r\n"])))
    spool = b"".join(lines)
    return spool.rstrip(b"\n") if draw(st.booleans()) else spool


@settings(max_examples=120, deadline=None, derandomize=True)
@given(spool=_spools(), structs=st.booleans())
def test_a_routed_file_reads_as_one_partition_reads_it(spool: bytes, structs: bool) -> None:
    """Nodes and rejections alike, however a root's ids are read (msgspec or not)."""
    one = _read(spool, _ONE)
    saved = _bulk_route._bulk_structs
    if not structs:
        _bulk_route._bulk_structs = None  # type: ignore[assignment]
    try:
        assert _read(spool, 64) == one
        assert _read(spool, 400) == one
    finally:
        _bulk_route._bulk_structs = saved  # type: ignore[assignment]


def test_ids_with_a_lone_surrogate_are_routed_not_raised() -> None:
    """JSON may write a lone UTF-16 surrogate (``\\ud800``): an id holding one is a str that
    does not encode to UTF-8. The routing keys ids as bytes: such an id (a refund's, an
    order's, a parent nothing names) raised UnicodeEncodeError and ended the whole read, where
    one partition reads the file; and a rejection naming such a parent could not be stored
    (the reason held the surrogate: UnicodeEncodeError in the store)."""
    refund, order = "gid://shopify/Refund/7\ud800", "gid://shopify/Order/\ud800"
    objects = [
        {"__typename": "RefundLineItem", "quantity": 1, "__parentId": refund},
        {"id": "gid://shopify/Order/1", "refunds": [{"id": refund}]},
        {"__typename": "LineItem", "id": "gid://shopify/LineItem/2", "__parentId": order},
        {"id": order},
        {"__typename": "RefundLineItem", "quantity": 3, "__parentId": "R\udfff"},
    ]
    spool = b"".join(json.dumps(o, separators=(",", ":")).encode() + b"\n" for o in objects)
    nodes, rejected = _read(spool, 64)
    assert (nodes, rejected) == _read(spool, _ONE)
    ((reason, _),) = rejected  # named so that a store can encode it (UTF-8)
    assert reason.encode() == "bulk line without a known parent (R\ufffd\ufffd\ufffd)".encode()
    assert [json.loads(n).get("lineItems") for n in nodes] == [
        None,
        [{"__typename": "LineItem", "id": "gid://shopify/LineItem/2"}],
    ]


@pytest.mark.parametrize("soft", [24, 16, 8])
def test_routing_keeps_to_half_the_open_files_the_process_may_hold(
    soft: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At the usual limit of 1,024 open files a 10M-order shop's file (some 32 GB) wanted 980
    partitions, and the buckets beside them: past half the limit, partitions grow instead,
    and every order still gets its children. At a small limit too: a floor of 16 files took
    all of a limit of 16 (the read ended "Too many open files")."""
    import resource

    objects: list[dict[str, Any]] = []
    for n in range(1, 81):
        refund = f"gid://shopify/Refund/{n}"
        objects.append({"__typename": "RefundLineItem", "quantity": n, "__parentId": refund})
        objects.append({"id": f"gid://shopify/Order/{n}", "refunds": [{"id": refund}]})
    spool = b"".join(json.dumps(o).encode() + b"\n" for o in objects)
    opened = [0, 0]  # open now, most open at once
    made = tempfile.TemporaryFile

    def counted(*args: Any, **kwargs: Any) -> Any:
        file = made(*args, **kwargs)
        opened[0] += 1
        opened[1] = max(opened)
        close = file.close

        def closing() -> None:
            if not file.closed:
                opened[0] -= 1
            close()

        file.close = closing
        return file

    monkeypatch.setattr(resource, "getrlimit", lambda _: (soft, resource.RLIM_INFINITY))
    if soft == 24:  # 8 partitions, 2 buckets of noted ids and 2 of waiting lines
        assert _bulk_route.partitions(len(spool), 64) == 8
    monkeypatch.setattr(tempfile, "TemporaryFile", counted)
    adapter = offline_adapter()
    adapter.bulk_partition_bytes = 64
    nodes, rejected = assemble(adapter, spool, 50, made)
    assert rejected == []
    assert opened[0] == 0 and opened[1] <= soft // 2
    assert opened[1] == (12 if soft == 24 else 6 if soft == 16 else 0)  # 8: one partition
    assert sorted(n["refunds"][0]["refundLineItems"][0]["quantity"] for n in nodes) == list(
        range(1, 81)
    )
