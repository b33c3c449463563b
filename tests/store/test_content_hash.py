"""The content hash's JSON text and the JSON columns' text are what ``json.dumps`` writes,
byte for byte, however they are produced (issue 20): a stored hash or column written by an
older shopsync must compare equal to one written now."""

from __future__ import annotations

import datetime as dt
import enum
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shopsync_shopify.mapping import order_from_webhook

from shopsync.store import content_hash, fast_rows
from shopsync.store._json_text import dumps_like
from shopsync.store._rows import order_rows

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "shopify"


class Shade(enum.Enum):
    RED = "red"


class Kind(str, enum.Enum):
    PAID = "paid"


VALUES: list[Any] = [
    None,
    True,
    0,
    -3,
    2**63,
    2**70,  # orjson refuses it: json writes it
    1.5,
    -0.0,
    "plain",
    'M\u00fcnchen \u2028 "quoted" \\ \t',  # json escapes what is not ASCII
    "\ud800",  # a lone surrogate: orjson refuses it
    "rub\x7fout",  # DEL is ASCII, but json escapes it (orjson writes it as it is)
    "\U0001f600 gr\u00fc\u00dfe\x7f \u2029 \uffff \U0010ffff",  # past the BMP: UTF-16 pairs
    {"\u00e4": 1, "z": 2, "a": "\u00e4", "\U0001f600": None, "\uff21": 0},  # keys sort alike
    [],
    {},
    (1, "a", None),
    {"b": 1, "a": [1, {"z": None, "y": "\u00e9"}], "c": ()},
    [Decimal("1.20"), Decimal("-0.0001"), dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)],
    [dt.date(2026, 1, 2), Kind.PAID],
]


def _definition(content: Any) -> bytes:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), default=str).encode()


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_the_hashed_text_is_json_dumps_text(value: Any) -> None:
    assert content_hash._text([value]) == _definition([value])


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.text(), lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner)))
def test_any_text_hashes_as_json_dumps_writes_it(value: Any) -> None:
    """orjson's text, escaped afterwards where it is not ASCII, is json's byte for byte."""
    assert content_hash._text([value]) == _definition([value])


def _outcome(dumps: Any, value: Any) -> str:
    try:
        return str(dumps(value))
    except (TypeError, ValueError) as exc:
        return type(exc).__name__


@pytest.mark.parametrize("value", [*VALUES, float("nan"), float("inf"), 1e16, 1e-7], ids=repr)
def test_the_column_text_is_json_dumps_text(value: Any) -> None:
    assert _outcome(dumps_like(), value) == _outcome(json.dumps, value)
    options: dict[str, Any] = {"sort_keys": True, "separators": (",", ":"), "default": str}
    same = _outcome(lambda v: json.dumps(v, **options), value)
    assert _outcome(dumps_like(**options), value) == same


@pytest.mark.parametrize(
    "value",
    [
        *([v] for v in VALUES),
        [],
        ["plain text 1Z999"],
        ["https://www.ups.com/track?tracknum=1Z999&x=1"],
        [""],
        ["a'b"],
        ["rub\x7fout"],
        ["tab\there"],
        ["new\nline"],
        ["M\u00fcnchen"],
        ["\u0661\u0662"],
        ['say "hi"'],
        ["back\\slash"],
        ["a", "b"],
    ],
    ids=repr,
)
def test_a_short_list_column_is_json_dumps_text(value: list[Any]) -> None:
    """The store writes a list of one plain string itself (``fast_rows._short_list``)."""
    assert _outcome(fast_rows._short_list, value) == _outcome(json.dumps, value)


_ESCAPED = [*range(0x20), 0x7F, *range(0x80, 0xA0), 0xAD, 0x2028, 0x2029, 0xFEFF, 0xFFFF]
_ESCAPED += [0xD800, 0xDBFF, 0xDC00, 0xDFFF, 0x10000, 0x1F600, 0x10FFFF]


@pytest.mark.parametrize("orjson", [True, False], ids=["orjson", "json"])
def test_each_character_json_escapes_hashes_as_json_writes_it(
    orjson: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """C0 and C1 controls, DEL, U+2028/2029, lone surrogates and characters past the BMP,
    in values and keys, nested: the definition's text with orjson installed or not."""
    if not orjson:
        monkeypatch.setattr(content_hash, "_orjson", None)
    elif content_hash._orjson is None:
        pytest.skip("the fast extra is not installed")
    for char in map(chr, _ESCAPED):
        value = [char, {char: [char, f"a{char}{char}b"], "k" + char: None, "k": [[char]]}]
        assert content_hash._text(value) == _definition(value), hex(ord(char))


def test_what_json_cannot_write_is_refused_alike() -> None:
    assert _outcome(dumps_like(), Shade.RED) == _outcome(json.dumps, Shade.RED) == "TypeError"


def _fixture_orders() -> list[Any]:
    orders = []
    for path in sorted(FIXTURES.glob("*order*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for raw in data.get("orders") or [data.get("order")]:
            if raw:
                orders.append(order_from_webhook(raw, shop="a.myshopify.com"))
    return orders


def test_real_orders_hash_as_the_definition_says() -> None:
    orders = _fixture_orders()
    assert len(orders) >= 3
    for order in orders:
        tables = order_rows(0, order)
        content = [
            [content_hash._GET[table](row) for row in tables[table]]
            for table in content_hash._TABLES
        ]
        assert content_hash._text(content) == _definition(content)
        assert tables["orders"][0]["content_hash"] == content_hash.order_hash(tables)
