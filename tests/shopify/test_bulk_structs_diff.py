"""Differential attack on the typed-struct bulk path (issue 20 item 3.1): real bulk lines
mutated at random (hypothesis), and the divergences it or a reading found, each a case. For
any input the struct path and the parsed path must give the same pages (rows, hashes,
quarantine with field paths, checkouts completed, high-water mark) or the same error."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

pytest.importorskip("msgspec")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.payload_edits import paths, set_at

from .test_bulk_structs import _discount, _outcome, _sample, bulk_lines

__all__ = ["bulk_lines"]  # the fixture, shared

_MARK = "@@mutant@@"
VALUES: list[Any] = [
    None,
    "",
    0,
    -1,
    7,
    2**63,
    -(2**70),
    1.1,
    -0.0,
    True,
    "true",
    [],
    {},
    {"amount": "1.10"},
    ["x"],
    "1.10",
    "01.10",
    "1.1e1",
    "-1.10",
    "1.12345",
    "usd",
    "EUR",
    "2024-02-29T23:59:60Z",
    "2024-01-02T03:04:05+02:00",
    "2024-01-02T03:04:05.123456789Z",
    "2024-01-02T03:04:05",
    "2024-01-02",
    "gid://shopify/LineItem/12",
    "12",
    "caf\u00e9 \U0001f600",
    "\ud800",
    "a\u0000b",
]
RAW: list[bytes] = [
    b"1.10",
    b"1.1e1",
    b"1E400",
    b"-0",
    b"123456789012345678901234567890",
    b"0.1000000000000000055511151231257827021181583404541015625",
    b'"\\u0031.10"',
    b'"\\ud83d\\ude00"',
    b'"\\udc00"',
    b'"tr\\u0075e"',
    b"NaN",
]


def _dumps(node: Any) -> bytes:
    """As Shopify writes a line (compact: its ``__parentId`` read off its end)."""
    return json.dumps(node, separators=(",", ":")).encode()


def _key_edits(text: bytes, key: str) -> list[bytes]:
    """``text`` (the mark where ``key``'s value was) with the key escaped, named twice or
    dropped, and the value object given both ``percentage`` and ``amount``."""
    name = json.dumps(key).encode()
    member = name + b":" + json.dumps(_MARK).encode()
    escaped = b'"\\u%04x' % ord(key[0]) + json.dumps(key[1:]).encode()[1:]
    return [
        text.replace(member, escaped + b":7"),
        text.replace(member, b'"percentage":5,"amount":"2.5"'),
        text.replace(member, b'"percentage":null,"amount":"2.5"'),
        text.replace(member, name + b':"x",' + name + b":0"),
    ]


def _holders(lines: list[bytes]) -> list[str]:
    """The ids in ``lines`` children may name: orders, refunds, fulfilments, children."""
    ids = ["gid://shopify/Order/404"]
    for line in lines:
        node = json.loads(line)
        if not isinstance(node, dict):
            continue
        for key in ("refunds", "fulfillments"):
            items = node.get(key)
            if isinstance(items, list):
                ids.extend(str(n["id"]) for n in items if isinstance(n, dict) and "id" in n)
        if node.get("id"):
            ids.append(str(node["id"]))
    return ids


@st.composite
def _mutants(draw: st.DrawFn, lines: list[bytes]) -> list[bytes]:
    out = list(lines)
    for _ in range(draw(st.integers(1, 2))):  # one change, or a combination of two
        at = draw(st.integers(0, len(out) - 1))
        node = json.loads(out[at])
        path = draw(st.sampled_from([p for p in paths(node) if p[-1] != "__parentId"]))
        how = draw(st.integers(0, 3))
        if how == 3:  # the file's shape: a line twice, dropped, or under another parent
            shape = draw(st.integers(0, 2))
            if shape == 0:
                out.insert(draw(st.integers(0, len(out))), out[at])
            elif shape == 1 and len(out) > 1:
                del out[at]
            elif "__parentId" in node:
                node["__parentId"] = draw(st.sampled_from(_holders(out)))
                out[at] = _dumps(node) + b"\n"
            continue
        if how == 0:
            text = _dumps(set_at(node, path, draw(st.sampled_from(VALUES))))
        else:
            text = _dumps(set_at(node, path, _MARK))
            if how == 1 or not isinstance(path[-1], str):
                text = text.replace(json.dumps(_MARK).encode(), draw(st.sampled_from(RAW)))
            else:
                text = draw(st.sampled_from(_key_edits(text, path[-1])))
        out[at] = text + b"\n"
    return out


@settings(
    max_examples=int(os.environ.get("SHOPSYNC_DIFF_EXAMPLES", "150")),
    deadline=None,
    derandomize="SHOPSYNC_DIFF_EXAMPLES" not in os.environ,  # a longer hunt: random
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_mutated_bulk_files_give_what_the_parsed_path_gives(
    bulk_lines: list[bytes], monkeypatch: pytest.MonkeyPatch, data: st.DataObject
) -> None:
    lines, _ = _sample(bulk_lines)
    changed = data.draw(_mutants(lines))
    parsed, _ = _outcome(changed, False, monkeypatch)
    typed, _ = _outcome(changed, True, monkeypatch)
    assert typed == parsed


def _with(lines: list[bytes], extra: list[bytes]) -> list[bytes]:
    return [*lines, *(line if line.endswith(b"\n") else line + b"\n" for line in extra)]


def _spliced(parent: str, shape: int) -> list[bytes]:
    """Child lines none of which is one JSON object, that joined with commas read as one
    value a line: an unclosed object, the member that closes it, two objects on one line (0);
    an object, then one left open in a list that the next line closes (1); the same with the
    top-level ``__parentId`` named by an escape, the lines ending in a member named
    ``a"__parentId`` (2)."""
    tail = b'"__parentId":"' + parent.encode() + b'"}'
    one = _discount(parent).rstrip(b"\n")
    two = _discount(parent).replace(b"SAVE5", b"TWO").rstrip(b"\n")
    if shape == 0:
        opened = b'{"__typename":"ManualDiscountApplication","allocationMethod":"ACROSS",'
        opened += b'"value":{"amount":"1.0"},"title":"T","x":{' + tail
        return [opened, tail, one + b"," + two]
    if shape == 1:
        return [one + b',{"x":[{' + tail, b'{"a":1}],' + two[1:]]
    hidden = b'"__p\\u0061rentId":"' + parent.encode() + b'"'
    return [
        one.replace(b'"__parentId"', b'"__p\\u0061rentId"') + b',{"x":{"a\\' + tail,
        two[1:].replace(tail, hidden + b',"b\\' + tail),
    ]


@pytest.mark.parametrize("shape", [0, 1, 2])
@pytest.mark.parametrize("refused", [False, True])
def test_child_lines_that_are_not_one_object_each_give_what_the_parsed_path_gives(
    bulk_lines: list[bytes], monkeypatch: pytest.MonkeyPatch, refused: bool, shape: int
) -> None:
    """Their order taken by the structs, or refused by them (a boolean as a string) and
    parsed: the lines are read as without msgspec either way."""
    lines, _ = _sample(bulk_lines)
    parent = json.loads(lines[-1])["__parentId"]
    if refused:
        at = next(i for i, line in enumerate(lines) if json.loads(line).get("id") == parent)
        lines[at] = lines[at].replace(b'"test":false', b'"test":"false"')
        assert b'"test":"false"' in lines[at]
    changed = _with(lines, _spliced(parent, shape))
    parsed, _ = _outcome(changed, False, monkeypatch)
    typed, _ = _outcome(changed, True, monkeypatch)
    assert typed == parsed
    assert parsed[-1][0] is json.JSONDecodeError  # read a line at a time, as before


DISCOUNT_VALUES = [
    b'{"percentage":12.5,"amount":"5.0"}',
    b'{"amount":"5.0","percentage":12.5}',
    b'{"percentage":null,"amount":"5.0"}',
    b'{"amount":"5.0","percentage":null}',
    b'{"percentage":"12.5"}',
    b'{"percentage":"1.1e1"}',
    b'{"percentage":"01.10"}',
    b'{"percentage":1.10}',
    b'{"percentage":1e-7}',
    b'{"percentage":-0.0}',
    b'{"percentage":-1}',
    b'{"percentage":123456789012345678901234567890}',
    b'{"percentage":true}',
    b'{"\\u0070ercentage":3,"amount":"5.0"}',
    b'{"percentage":3,"percentage":4}',
    b'{"amount":"5.0","amount":"6.0"}',
    b'{"amount":1.1}',
    b'{"amount":"1.1e1"}',
    b'{"amount":null}',
    b"{}",
    b"null",
    b'{"percentage":{"amount":"1"}}',
]


def test_discount_values_give_what_the_parsed_path_gives(
    bulk_lines: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A discount's ``value`` each way the mappers tell a percentage from an amount (both
    given, in either order, one null, by escape, twice, as texts and numbers of every form),
    the percentage line's: the hypothesis test reaches these rarely."""
    lines, _ = _sample(bulk_lines)
    at = next(i for i, line in enumerate(lines) if b'"percentage"' in line)
    start = lines[at].index(b'"value":') + len(b'"value":')
    end = lines[at].index(b"}", start) + 1
    typed_somewhere = 0
    for value in DISCOUNT_VALUES:
        changed = [*lines[:at], lines[at][:start] + value + lines[at][end:], *lines[at + 1 :]]
        parsed, _ = _outcome(changed, False, monkeypatch)
        typed, built = _outcome(changed, True, monkeypatch)
        assert typed == parsed, value
        typed_somewhere += built
    assert typed_somewhere
