"""Typed decoding of bulk lines (issue 20 item 3.1): with msgspec's structs a bulk file gives
exactly what the parsed path gives, order for order: the same store rows (and hashes), the
same records the row path maps, the same quarantine and rejected lines, the same checkouts
completed. Every member of a real order's lines is set in turn to values msgspec refuses or
reads otherwise than json (wrong types, null, missing, huge integers, NaN and Infinity, bytes
that are not UTF-8, a lone surrogate, a member named twice, money with an exponent or too many
places) and unknown members are added: the outcome must not change."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("msgspec")

from shopsync_shopify import ShopifyAdapter, _bulk, _struct_rows
from shopsync_shopify._checkouts import CheckoutTap
from shopsync_shopify._fast_orders import order_tables

import shopsync
from shopsync.testing import emulate
from tests.payload_edits import paths, set_at

from .test_shopify_adapter import FAST

_MARK = "@@hostile@@"
JSON_VALUES: list[Any] = [None, "", 5, -1, 1.5, True, [], {}, "\u0000", "1e3", "1.23456", "x"]
RAW_VALUES = [
    b"NaN",
    b"-Infinity",
    b"123456789012345678901234567890",
    b"1e400",
    b'"\xff\xfe"',
    b'"\\ud800"',
    b'"caf\xc3\xa9"',
]


def _lines(shop: Any) -> list[bytes]:
    adapter = shopsync.connect(
        "shopify", **shop.settings, retry_policy=FAST, bulk_poll_interval=0.01
    )
    assert isinstance(adapter, ShopifyAdapter)
    with adapter:
        query = _bulk.queries.for_version(_bulk.queries.BULK_ORDERS, adapter.api_version)
        op_id, url = adapter._run_bulk(query.replace("QUERY_ARG", ""), 60.0)
        assert url is not None
        spool = adapter._download(op_id, url)
        try:
            return [line if line.endswith(b"\n") else line + b"\n" for line in spool]
        finally:
            spool.close()


def _outcome(lines: list[bytes], structs: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, int]:
    """What reassembling ``lines`` gives (or the error it raises), and how many orders came
    through the structs."""
    built = [0]
    real = _struct_rows.struct_tables

    def counted(*args: Any) -> Any:
        rows = real(*args)
        built[0] += rows is not None
        return rows

    with monkeypatch.context() as patch:
        patch.setattr(_struct_rows, "struct_tables", counted)
        if not structs:
            patch.setattr(_bulk, "_bulk_structs", None)
        adapter = object.__new__(ShopifyAdapter)
        adapter.shop = "s.myshopify.com"
        adapter.bulk_partition_bytes = 1 << 30
        adapter._page_stats = dict  # type: ignore[method-assign]
        tap = CheckoutTap()
        mapper, rows = tap.mapped(adapter._order), tap.mapped(order_tables)
        out: list[Any] = []
        with tempfile.TemporaryFile() as spool:
            spool.write(b"".join(lines))
            spool.seek(0)
            try:
                for page in tap.pages(adapter._assemble(spool, 3, "orders", mapper, rows)):
                    out.append(
                        (
                            [(r.id, r.updated_at, r.tables, _raw(r)) for r in page.rows],  # type: ignore[attr-defined]
                            page.records,
                            page.rejected,
                            page.completed_checkouts,
                            page.high_water,
                        )
                    )
            except Exception as exc:  # the same error either way
                out.append((type(exc), str(exc)))
    return out, built[0]


def _raw(rows: Any) -> Any:
    """The record the store would hand back, or the error building it raises."""
    try:
        return rows.raw
    except Exception as exc:
        return (type(exc), str(exc))


@pytest.fixture(scope="module")
def bulk_lines() -> Iterator[list[bytes]]:
    """A varied emulated shop's bulk file, one order placed from a checkout."""
    with emulate(
        "shopify", seed=7, customers=20, orders=100, products=12, order_variety=True, plan="plus"
    ) as shop:
        lines = _lines(shop)
    first = next(i for i, line in enumerate(lines) if b'"__parentId"' not in line)
    root = json.loads(lines[first])
    root.update(checkoutToken="c0ffee", cartToken="cart-1")
    lines[first] = json.dumps(root, separators=(",", ":")).encode() + b"\n"
    yield lines


def _discount(parent: str) -> bytes:
    line = {
        "__typename": "DiscountCodeApplication",
        "allocationMethod": "ACROSS",
        "value": {"__typename": "MoneyV2", "amount": "5.0"},
        "code": "SAVE5",
        "__parentId": parent,
    }
    return json.dumps(line, separators=(",", ":")).encode() + b"\n"


def _sample(lines: list[bytes]) -> tuple[list[bytes], dict[str, int]]:
    """Orders with lines, refund lines and fulfilment lines (a discount added to one), and
    their child lines; the index of one line of each kind."""
    parsed = [json.loads(line) for line in lines]
    roots = {p["id"]: p for p in parsed if "__parentId" not in p}
    owner: dict[str, str] = {}
    for root in roots.values():
        for key in ("refunds", "fulfillments"):
            for item in root.get(key) or ():
                owner[item["id"]] = root["id"]

    def root_of(p: dict[str, Any]) -> str:
        parent = p.get("__parentId")
        return p["id"] if parent is None else owner.get(parent, parent)

    kinds_of: dict[str, set[str]] = {}
    for p in parsed:
        kinds_of.setdefault(root_of(p), set()).add(p.get("__typename", "Order"))
    chosen = {
        next(r for r in roots if kind in kinds_of[r])
        for kind in ("RefundLineItem", "FulfillmentLineItem", "LineItem")
    }
    rich = sorted(chosen)[0]
    picked = [line for line, p in zip(lines, parsed, strict=True) if root_of(p) in chosen]
    picked.append(_discount(rich))
    picked.append(_discount(rich).replace(b"SAVE5", b"SAVE6").replace(b"5.0", b"2"))
    percent = b'{"__typename":"PricingPercentageValue","percentage":12.5}'
    picked.append(_discount(rich).replace(b'{"__typename":"MoneyV2","amount":"5.0"}', percent))
    kinds: dict[str, int] = {}
    for i, line in enumerate(picked):
        kinds.setdefault(json.loads(line).get("__typename", "Order"), i)
    return picked, kinds


def test_a_clean_bulk_file_comes_through_the_structs_as_it_comes_parsed(
    bulk_lines: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [*bulk_lines, _discount(json.loads(bulk_lines[0]).get("__parentId") or "x")]
    parsed, _ = _outcome(lines, False, monkeypatch)
    typed, built = _outcome(lines, True, monkeypatch)
    assert typed == parsed
    roots = sum(b'"__parentId"' not in line for line in bulk_lines)
    assert built >= roots - 3  # nearly every order by the structs (not edited, taxed...)
    assert any(page[3] for page in typed)  # a checkout completed through the struct path


def _variants(line: bytes) -> Iterator[bytes]:
    """``line`` with each member in turn hostile (see the module doc): a few of the values
    each, in rotation, so the test stays quick."""
    node = json.loads(line)
    yield line.rstrip(b"\n")[:-1] + b',"unknownMember":{"a":[1,NaN]}}'
    yield line.rstrip(b"\n")[:-1] + b',"unknown":"\xff"}'
    yield b"\xef\xbb\xbf" + line
    for i, path in enumerate(paths(node)):
        if path[-1] == "__parentId":
            continue
        for k in range(3):
            value = JSON_VALUES[(i + 3 * k) % len(JSON_VALUES)]
            yield json.dumps(set_at(node, path, value)).encode()
        text = json.dumps(set_at(node, path, _MARK)).encode()
        for k in range(2):
            raw = RAW_VALUES[(i + 2 * k) % len(RAW_VALUES)]
            yield text.replace(f'"{_MARK}"'.encode(), raw)
        if isinstance(path[-1], str):
            key = json.dumps(path[-1]).encode()
            original = json.dumps(_get(node, path)).encode()
            member = key + b": " + f'"{_MARK}"'.encode()
            yield text.replace(member, key + b": 7, " + key + b": " + original)
            yield text.replace(member, key + b": " + original + b", " + key + b": 7")
            without = dict(_get(node, path[:-1]))
            del without[path[-1]]
            yield json.dumps(set_at(node, path[:-1], without) if path[:-1] else without).encode()


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        node = node[step]
    return node


@pytest.mark.parametrize(
    "kind",
    ["Order", "LineItem", "RefundLineItem", "FulfillmentLineItem", "DiscountCodeApplication"],
)
def test_hostile_lines_give_what_the_parsed_path_gives(
    bulk_lines: list[bytes], monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    lines, kinds = _sample(bulk_lines)
    at = kinds[kind]
    typed_somewhere = 0
    for variant in _variants(lines[at]):
        changed = [*lines[:at], variant + b"\n", *lines[at + 1 :]]
        parsed, _ = _outcome(changed, False, monkeypatch)
        typed, built = _outcome(changed, True, monkeypatch)
        assert typed == parsed, variant
        typed_somewhere += built
    assert typed_somewhere  # the structs took some variants (the rest took the parsed path)
