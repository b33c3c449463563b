"""The fast path's row mapper against the model mapper, value by value (issue 20 item 1).

Every field of real bulk order nodes is replaced in turn by hostile values; for each node the
row mapper either refuses it (the row path then takes it) or returns exactly the rows the model
would have become, and only for a node the model accepts too. The bulk reader's shortcuts are
checked the same way: a line's parent read off its end, and orjson with json's fallback."""

from __future__ import annotations

import json
from typing import Any

import pytest
from shopsync_shopify import _jsonl
from shopsync_shopify._fast_orders import order_tables
from shopsync_shopify.mapping import order_from_graphql

import shopsync
from shopsync.errors import InvalidRecordError
from shopsync.store._rows import order_rows
from tests.payload_edits import paths, set_at

from .test_shopify_adapter import FAST

HOSTILE: list[Any] = [
    None,
    "",
    "\u0000",
    "\ud800",
    -1,
    1.5,
    True,
    {},
    [],
    " 1.00",
    "1e3",
    "0.00001",
    "100000000000000",
    "2026-02-30T00:00:00Z",
    "2026-03-01T10:00:00+02:00",
    "gid://shopify/Order/abc",
    "EUR",
    "PARTIALLY_REFUNDED",
    "DE\n",  # a regex's $ matches before a final newline; the model's pattern does not
]


def _rows_of_model(node: Any) -> dict[str, list[dict[str, Any]]] | None:
    try:
        order = order_from_graphql(node, shop="s.myshopify.com")
    except InvalidRecordError:
        return None
    tables = order_rows(0, order)
    for rows in tables.values():
        for row in rows:
            row.pop("shop_id", None)
    return tables


def _check(node: Any) -> str:
    fast = order_tables(node)
    model = _rows_of_model(node)
    if fast is None:
        return "refused"
    assert model is not None, "the fast path accepted what the model refuses"
    assert fast.tables == model
    return "mapped"


def _nodes(shop: Any) -> list[Any]:
    """Three reassembled bulk order nodes of an emulated shop: the most refunds, the most
    fulfilments, the most tax lines."""
    adapter = shopsync.connect(
        "shopify", **shop.settings, retry_policy=FAST, bulk_poll_interval=0.01
    )
    adapter.takes_rows = True  # type: ignore[attr-defined]
    with adapter:
        nodes = [r.raw for page in adapter.backfill_orders() for r in page.rows]  # type: ignore[attr-defined]
    picked = {
        json.dumps(max(nodes, key=lambda n: len(n.get(key) or ())), sort_keys=True)
        for key in ("refunds", "taxLines")
    }
    return [json.loads(text) for text in sorted(picked)]


def test_every_field_hostile_is_refused_or_mapped_as_the_model_maps_it(
    shopify_shop: Any,
) -> None:
    outcomes = {"refused": 0, "mapped": 0}
    for node in _nodes(shopify_shop(customers=10, orders=40, order_variety=True)):
        assert _check(node) == "mapped"
        for path in paths(node):
            for value in HOSTILE:
                outcomes[_check(set_at(node, path, value))] += 1
    assert outcomes["refused"] and outcomes["mapped"]


LINES = [
    b'{"id":"gid:\\/\\/shopify\\/LineItem\\/1","__parentId":"gid:\\/\\/shopify\\/Order\\/9"}\n',
    b'{"__parentId":"gid://shopify/Order/9"}',
    b'{"a":{"__parentId":"x"},"b":"y"}',
    b'{"a":"\\"__parentId\\":\\"x\\"}"}',
    b'{"a":{"__parentId":"x"}}',
    b'{"__parentId":"a","__parentId":"b"}',
    b'{"__parentId":"a","b":"c"}',
    b'{"n":"\\u00e9","__parentId":"gid://shopify/Order/\\u0039"}',
    b'{"x":1,"__parentId":"caf\xc3\xa9"}',
    b'{"x":1}   \r\n',
]


@pytest.mark.parametrize("raw", LINES)
def test_a_parent_read_off_the_end_is_what_parsing_gives(raw: bytes) -> None:
    hint = _jsonl._parent_at_end(raw)
    assert hint is None or hint == json.loads(raw).get("__parentId")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":NaN}',
        b'{"a":123456789012345678901234567890}',
        b'{"a":-18446744073709551616}',
        b'{"a":"\\ud800"}',
        b'{"a":1.5,"b":0.1,"c":1e-7,"d":2.5e300}',
        b'\xef\xbb\xbf{"a":1}',
    ],
)
def test_bulk_lines_parse_as_json_parses_them(raw: bytes) -> None:
    assert repr(_jsonl._loads(raw)) == repr(json.loads(raw))
