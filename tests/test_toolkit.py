"""The adapter toolkit (:mod:`shopsync.adapter_kit`): the mapping context both mappers share,
the page loop both adapters run, and JSON through the one HTTP client."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

import pytest
import requests
from pydantic import BaseModel, ConfigDict

from shopsync.adapter_kit import (
    PageLoop,
    RawPage,
    RecordReader,
    RequestCounter,
    create_once,
    guarded,
    join_path,
    parse_timestamp,
    quarantined_record,
    refusals,
    rejected_record,
)
from shopsync.errors import (
    REASON_LIMIT,
    InvalidRecordError,
    PlatformError,
    ResponseError,
    TransportError,
)
from shopsync.http import HttpClient, HttpStats, decode_json
from shopsync.models import Money

UTC = dt.timezone.utc
RAW = {"id": 7, "note": "the record as received"}


def refused(call: Any) -> InvalidRecordError:
    with pytest.raises(InvalidRecordError) as caught:
        call()
    return caught.value


# --------------------------------------------------------------------------- paths


def test_paths_join_keys_with_dots_and_indexes_with_brackets() -> None:
    assert join_path("", "id") == "id"
    assert join_path("lineItems", 2) == "lineItems[2]"
    assert join_path("lineItems[2]", "price") == "lineItems[2].price"
    assert join_path("", 0) == "[0]"


def test_a_field_is_read_by_dotted_path_and_a_wrong_shape_names_where() -> None:
    ctx = RecordReader(RAW)
    node = {"price": {"shopMoney": {"amount": "1.50"}}}
    assert ctx.get(node, "price.shopMoney.amount", "lines[0]") == "1.50"
    assert ctx.get(node, "price.presentmentMoney.amount", "lines[0]") is None
    error = refused(lambda: ctx.get({"price": [1]}, "price.shopMoney", "lines[0]"))
    assert error.path == "lines[0].price" and "expected an object, got list" in error.reason
    assert error.raw is RAW
    error = refused(lambda: ctx.get("text", "price", "lines[0]"))
    assert error.path == "lines[0]"


def test_a_required_field_names_its_own_path() -> None:
    ctx = RecordReader(RAW)
    assert ctx.required({"id": 1}, "id", "refunds[0]") == 1
    error = refused(lambda: ctx.required({"id": None}, "id", "refunds[0]"))
    assert (error.path, error.reason) == ("refunds[0].id", "required field is missing")
    assert refused(lambda: ctx.required({}, "currency")).path == "currency"


def test_objects_and_lists_read_null_as_empty_and_refuse_other_shapes() -> None:
    ctx = RecordReader(RAW)
    assert ctx.obj(None, "billing") == {} and ctx.items(None, "line_items") == []
    assert ctx.obj({"a": 1}, "billing") == {"a": 1} and ctx.items([1], "x") == [1]
    assert refused(lambda: ctx.obj([1], "billing")).path == "billing"
    error = refused(lambda: ctx.items("abc", "line_items"))
    assert error.path == "line_items" and "expected a list, got str" in error.reason


# --------------------------------------------------------------------------- values


def test_ids_are_strings_and_the_parser_is_the_platforms() -> None:
    ctx = RecordReader(RAW)
    assert ctx.id(42, "id") == "42" and ctx.id(" 42 ", "id") == "42" and ctx.id(42.0, "id") == "42"
    assert ctx.opt_id(None, "customer.id") is None
    for bad in (True, None, "", "  ", 1.5, {"a": 1}, [1]):
        assert refused(lambda bad=bad: ctx.id(bad, "id")).path == "id", bad

    class Gids(RecordReader):
        @staticmethod
        def parse_id(value: Any) -> str:
            return str(value).rsplit("/", 1)[-1]

    assert Gids(RAW).id("gid://shopify/Order/9", "id") == "9"


def test_amounts_are_exact_decimals_and_malformed_ones_name_the_path() -> None:
    ctx = RecordReader(RAW)
    assert ctx.amount("29.35", "total") == Decimal("29.35")
    assert ctx.amount(0.1, "total") == Decimal("0.1")  # a JSON float, read through its repr
    assert ctx.amount(3, "total") == Decimal(3)
    for bad in (None, True, "abc", "NaN", "Infinity", "1,5", {"x": 1}):
        error = refused(lambda bad=bad: ctx.amount(bad, "line_items[1].price"))
        assert error.path == "line_items[1].price" and error.reason, bad
    assert ctx.amount_or("", "total", Decimal(0)) == Decimal(0)
    assert ctx.amount_or(None, "total", None) is None
    assert ctx.amount_or(" 2.5 ", "total", None) == Decimal("2.5")
    assert refused(lambda: ctx.amount_or("x", "total", None)).path == "total"


def test_money_carries_its_currency_and_the_currency_rules() -> None:
    ctx = RecordReader(RAW)
    assert ctx.money("12.50", "eur", "total") == Money.of("12.50", "EUR")
    error = refused(lambda: ctx.money("1", "XXX", "total"))  # "no currency"
    assert error.path == "total" and "not a currency" in error.reason
    assert refused(lambda: ctx.money("1.00001", "USD", "total")).path == "total"  # 5 places
    assert refused(lambda: ctx.money("1e30", "USD", "total")).path == "total"
    assert ctx.currency(" usd ", "currency") == "USD"
    for bad in (None, "", "XXY", 12, "XTS"):
        assert refused(lambda bad=bad: ctx.currency(bad, "currency")).path == "currency", bad


def test_integers_and_quantities() -> None:
    ctx = RecordReader(RAW)
    assert ctx.int("3", "numberOfOrders") == 3 and ctx.int(4, "q") == 4
    for bad in (True, "3.5", None, "x"):
        assert refused(lambda bad=bad: ctx.int(bad, "q")).path == "q", bad
    assert ctx.quantity(1.5, "line_items[0].quantity") == Decimal("1.5")
    assert ctx.quantity("2.0", "q") == Decimal(2) and str(ctx.quantity("2.0", "q")) == "2"
    for bad in (-1, "1.00001", "", None, float("nan"), False):
        assert refused(lambda bad=bad: ctx.quantity(bad, "line_items[0].quantity")).path == (
            "line_items[0].quantity"
        ), bad


def test_timestamps_are_aware_utc_and_a_missing_offset_is_refused_unless_assumed() -> None:
    ctx = RecordReader(RAW)
    expected = dt.datetime(2024, 1, 1, 10, 0, tzinfo=UTC)
    assert ctx.timestamp("2024-01-01T12:00:00+02:00", "createdAt") == expected
    assert ctx.timestamp("2024-01-01T10:00:00Z", "createdAt") == expected
    assert ctx.timestamp(None, "createdAt") is None
    error = refused(lambda: ctx.timestamp("2024-01-01T10:00:00", "processed_at"))
    assert error.path == "processed_at" and "offset" in error.reason
    assert ctx.timestamp("2024-01-01T10:00:00", "date_created_gmt", assume=UTC) == expected
    for bad in ("yesterday", 12, "", "2024-13-01T00:00:00Z"):
        assert refused(lambda bad=bad: ctx.timestamp(bad, "created_at")).path == "created_at"
    assert refused(lambda: ctx.timestamp_required(None, "updatedAt")).path == "updatedAt"
    aware = parse_timestamp("2024-01-01T10:00:00Z")
    assert aware.tzinfo is UTC and aware == expected
    with pytest.raises(ValueError, match="offset"):
        parse_timestamp("2024-01-01T10:00:00")


def test_dates() -> None:
    ctx = RecordReader(RAW)
    assert ctx.date("1990-05-17", "birthday") == dt.date(1990, 5, 17)
    assert ctx.date("", "birthday") is None and ctx.date(None, "birthday") is None
    assert refused(lambda: ctx.date("17/05/1990", "metafield.value")).path == "metafield.value"


def test_a_model_that_refuses_its_fields_names_the_field_under_the_path() -> None:
    class Line(BaseModel):
        model_config = ConfigDict(extra="forbid")
        quantity: int

    ctx = RecordReader(RAW)
    assert ctx.build(Line, "lineItems[0]", quantity=2) == Line(quantity=2)
    error = refused(lambda: ctx.build(Line, "lineItems[0]", quantity="many"))
    assert error.path == "lineItems[0].quantity" and error.raw is RAW


def test_a_reason_quoting_a_huge_value_is_cut() -> None:
    ctx = RecordReader(RAW)
    error = refused(lambda: ctx.amount("9" * 5000 + "x", "total"))
    assert len(error.reason) < 400 and error.reason.endswith("...")
    assert len(InvalidRecordError("x" * 5000).reason) <= REASON_LIMIT + 40


# --------------------------------------------------------------------------- refusals


def test_any_shape_error_becomes_a_refusal_with_the_raw_record() -> None:
    @guarded
    def mapper(payload: Any, *, shop: str) -> str:
        return str(payload["id"] + shop)  # TypeError on an int id, KeyError without one

    assert mapper({"id": "1"}, shop="s") == "1s"
    for payload in ({"id": 1}, {}, None, [1]):
        error = refused(lambda payload=payload: mapper(payload, shop="s"))
        assert error.raw is payload and error.reason.startswith("malformed record ("), payload


def test_a_refusal_keeps_its_own_path_and_gets_the_raw_record() -> None:
    raw = {"total": "abc"}
    with pytest.raises(InvalidRecordError) as caught, refusals(raw):
        RecordReader(None).amount(raw["total"], "total")
    assert caught.value.path == "total" and caught.value.raw is raw


def test_a_validation_error_names_its_location_when_asked() -> None:
    class Order(BaseModel):
        lines: list[int]

    raw: dict[str, Any] = {"lines": [1, "x"]}
    with pytest.raises(InvalidRecordError) as caught, refusals(raw, validation_paths=True):
        Order.model_validate(raw)
    assert caught.value.path == "lines[1]" and caught.value.raw is raw
    with pytest.raises(InvalidRecordError) as caught, refusals(raw):
        Order.model_validate(raw)
    assert caught.value.path is None


def test_deep_nesting_is_refused_not_raised() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]

    @guarded
    def mapper(payload: Any) -> str:
        return json.dumps(payload)

    assert refused(lambda: mapper(deep)).reason.startswith("malformed record (RecursionError")


# --------------------------------------------------------------------------- the page loop


class Rec(BaseModel):
    id: str
    updated_at: dt.datetime


def _map(raw: Any) -> Rec | None:
    if raw.get("skip"):
        return None
    ctx = RecordReader(raw)
    return Rec(
        id=ctx.id(ctx.required(raw, "id"), "id"),
        updated_at=ctx.timestamp_required(raw.get("updated_at"), "updated_at"),
    )


def _row(i: int, hour: int, **extra: Any) -> dict[str, Any]:
    return {"id": i, "updated_at": f"2024-01-01T{hour:02d}:00:00Z", **extra}


def at(hour: int) -> dt.datetime:
    return dt.datetime(2024, 1, 1, hour, tzinfo=UTC)


def test_the_page_loop_maps_or_rejects_each_record_and_tracks_the_high_water_mark() -> None:
    pages = [
        RawPage([_row(1, 3), _row(2, 1), {"id": 3, "updated_at": "soon"}], cursor="a"),
        RawPage([_row(4, 2), _row(5, 9, skip=True)], cursor="b", last=True),
        RawPage([_row(6, 23)], cursor="never read"),
    ]
    out = list(PageLoop("orders", _map).run(pages))
    assert [p.cursor for p in out] == ["a", "b"]  # stops at the last page
    assert [[r.id for r in p.records] for p in out] == [["1", "2"], ["4"]]
    assert [p.high_water for p in out] == [at(3), at(3)]  # a running maximum
    (bad,) = out[0].rejected
    assert (bad.resource, bad.record_id) == ("orders", "3")
    assert bad.reason.startswith("updated_at: ") and json.loads(bad.raw)["updated_at"] == "soon"
    assert out[1].rejected == []


def test_an_unordered_scan_reports_its_high_water_mark_only_on_its_last_page() -> None:
    pages = iter([RawPage([_row(1, 5)]), RawPage([_row(2, 4)], last=True)])
    out = list(PageLoop("customers", _map, ordered=False).run(pages))
    assert [p.high_water for p in out] == [None, at(5)]


def test_the_loop_ends_when_the_pages_end_and_an_empty_read_yields_one_empty_page() -> None:
    out = list(PageLoop("orders", _map).run([RawPage([_row(1, 1)])]))
    assert len(out) == 1 and out[0].high_water == at(1)
    (empty,) = PageLoop("orders", _map).run([RawPage([], last=True)])
    assert (list(empty.records), list(empty.rejected), empty.high_water) == ([], [], None)


def test_stats_are_taken_after_mapping_and_prepare_runs_under_the_refusal() -> None:
    stats = HttpStats()
    counter = RequestCounter(stats)
    stats.requests = 5  # before the read: not this read's
    counter.restart()

    def prepare(raw: Any) -> Any:
        stats.requests += 1  # a follow-up request while mapping (a long order's lines)
        if raw["id"] == 2:
            raise InvalidRecordError("more lines than a page fetches", raw=raw, path="lineItems")
        return {**raw, "completed": True}

    def fetch() -> Iterator[RawPage]:
        stats.requests += 1
        yield RawPage([_row(1, 1), _row(2, 2)], last=True)

    (page,) = PageLoop("orders", _map, prepare=prepare, stats=counter).run(fetch())
    assert page.stats == {"requests": 3, "retries": 0, "throttle_waits": 0}
    assert [r.id for r in page.records] == ["1"]
    assert page.rejected[0].reason == "lineItems: more lines than a page fetches"


def test_the_loop_can_be_fed_one_record_at_a_time() -> None:
    loop = PageLoop("orders", _map, ordered=False, record_id=lambda raw: f"gid-{raw['id']}")
    loop.add(_row(1, 2))
    loop.add({"id": 2})
    loop.reject('{"__parentId": 9}', "bulk line without a known parent (9)")
    assert loop.pending == 3 and loop.high_water == at(2)
    first = loop.page()
    assert first.high_water is None and [r.record_id for r in first.rejected] == ["gid-2", None]
    assert loop.pending == 0
    assert loop.page(last=True).high_water == at(2)


def test_a_rejected_record_is_json_that_any_store_encodes() -> None:
    error = InvalidRecordError("not a date", path="created_at")
    raw = {"id": 5, "name": "caf\u00e9 \ud800", "at": dt.date(2024, 1, 1)}
    entry = rejected_record("customers", raw, error)
    entry.raw.encode("utf-8")  # a lone surrogate is escaped, not passed on
    assert json.loads(entry.raw)["name"] == raw["name"]
    assert (entry.record_id, entry.reason) == ("5", "created_at: not a date")
    assert rejected_record("customers", [1], error).record_id is None
    assert rejected_record("customers", {"id": ""}, error).record_id is None


def test_a_node_that_is_not_an_object_is_quarantined_not_raised() -> None:
    """A null edge node used to crash Shopify's page loop while naming its id."""
    from shopsync_shopify._bulk import record_gid

    error = InvalidRecordError("malformed record (AttributeError: ...)")
    entry = rejected_record("orders", None, error, record_id=record_gid)
    assert (entry.record_id, entry.raw) == (None, "null")
    assert rejected_record("orders", {"id": "gid://shopify/Order/7"}, error, record_id=record_gid)
    loop = PageLoop("orders", guarded(_map), record_id=record_gid)
    (page,) = loop.run([RawPage([None], last=True)])
    assert [r.raw for r in page.rejected] == ["null"] and not page.records


# --------------------------------------------------------------------------- JSON


class _Response(requests.Response):
    def __init__(self, body: bytes, status: int = 200) -> None:
        super().__init__()
        self._content = body
        self.status_code = status


def test_json_is_decoded_or_refused_as_a_cut_body_that_a_retry_may_fix() -> None:
    assert decode_json(_Response(b'{"a": 1}'), where="GET x", platform="p") == {"a": 1}
    with pytest.raises(ResponseError) as caught:
        decode_json(_Response(b'{"a": '), where="GET https://s/x?token=abc", platform="p")
    assert caught.value.retryable and "abc" not in str(caught.value)


def test_a_body_nested_deeper_than_json_can_read_is_refused_as_not_json() -> None:
    """A response nested past the interpreter's recursion limit (a broken or hostile server)
    is a ResponseError like any unreadable body, not a RecursionError out of the sync."""
    deep = b"[" * 200_000 + b"]" * 200_000
    with pytest.raises(ResponseError, match="not valid JSON"):
        decode_json(_Response(deep), where="GET x", platform="p")


def test_an_error_response_is_closed_before_its_error_is_raised() -> None:
    """A streamed response (the bulk result download) holds its connection until closed: an
    error status must not leave it open (CI: an unclosed socket after an expired bulk URL)."""
    closed: list[int] = []

    class Tracked(_Response):
        def close(self) -> None:
            closed.append(self.status_code)

    http = HttpClient("p", sleep=lambda _: None)
    with pytest.raises(PlatformError):
        http.exchange(lambda: Tracked(b"denied", 403), "GET https://s/x")
    assert closed == [403]
    assert http.exchange(lambda: Tracked(b"{}", 200), "GET https://s/x").status_code == 200
    assert closed == [403]  # a good response is the caller's to read and close


def test_a_request_sent_by_another_client_gets_the_one_policy() -> None:
    """A platform's own client (the woocommerce package) sends; HttpClient counts, maps
    errors and transport failures, and decodes."""
    http = HttpClient("p", sleep=lambda _: None)
    answers = [
        requests.ConnectionError("refused https://s/x?consumer_secret=cs_123"),
        _Response(b'{"ok": true', 200),
        _Response(b'{"ok": true}', 200),
    ]

    def send() -> requests.Response:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert http.call(lambda: http.receive_json(send, "GET https://s/x")) == {"ok": True}
    assert (http.stats.requests, http.stats.retries) == (3, 2)

    def refused_send() -> requests.Response:
        raise requests.Timeout("https://s/x?consumer_secret=cs_123")

    with pytest.raises(TransportError) as caught:
        http.exchange(refused_send, "GET https://s/x")
    assert "cs_123" not in str(caught.value) and caught.value.__cause__ is None


def test_mapping_contexts_share_one_implementation() -> None:
    """Both mappers use the toolkit's context rather than helpers of their own."""
    from shopsync_shopify import _map_common as shopify
    from shopsync_woocommerce import mapping as woo

    assert issubclass(shopify._Ctx, RecordReader) and issubclass(woo._Ctx, RecordReader)
    assert not hasattr(woo, "_Bad") and not hasattr(woo, "_short")


def test_the_page_loop_reads_lists_and_mappings_alike() -> None:
    rows: list[Mapping[str, Any]] = [_row(1, 1)]
    (page,) = PageLoop("orders", _map).run([RawPage(tuple(rows), last=True)])
    assert [r.id for r in page.records] == ["1"]


# --------------------------------------------------------------------------- write-back


class _Codes:
    """A platform's code table with a race: another writer may take a code first."""

    def __init__(self, *, rival: bool = False, refuse: str | None = None) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.rival = rival
        self.refuse = refuse
        self.created = 0

    def find(self, code: str) -> dict[str, Any] | None:
        return self.rows.get(code)

    def create(self, code: str) -> dict[str, Any]:
        if self.rival:  # the other writer's code lands between our look-up and our create
            self.rows[code] = {"id": "theirs", "code": code}
            self.rival = False
        if code in self.rows or self.refuse:
            error = PlatformError(f"refused: {self.refuse or 'taken'}", status=400)
            error.code = self.refuse or "taken"  # type: ignore[attr-defined]
            raise error
        self.created += 1
        self.rows[code] = {"id": f"ours-{self.created}", "code": code}
        return dict(self.rows[code])


def _create(codes: _Codes, code: str = "WB-1") -> dict[str, Any]:
    return create_once(
        lambda: codes.find(code),
        lambda: codes.create(code),
        taken=lambda exc: getattr(exc, "code", None) == "taken",
    )


def test_a_code_is_created_once_and_found_on_every_retry() -> None:
    codes = _Codes()
    assert _create(codes) == {"id": "ours-1", "code": "WB-1", "created": True}
    assert _create(codes) == {"id": "ours-1", "code": "WB-1", "created": False}
    assert codes.created == 1


def test_a_code_another_writer_took_first_is_found_not_refused() -> None:
    codes = _Codes(rival=True)
    assert _create(codes) == {"id": "theirs", "code": "WB-1", "created": False}
    assert codes.created == 0


def test_a_refusal_that_is_not_a_taken_code_is_raised() -> None:
    with pytest.raises(PlatformError, match="refused: invalid_amount"):
        _create(_Codes(refuse="invalid_amount"))


def test_a_taken_refusal_with_nothing_to_find_is_raised() -> None:
    with pytest.raises(PlatformError, match="refused: taken"):
        _create(_Codes(refuse="taken"))


# --------------------------------------------------------------------------- quarantine


def test_a_quarantined_record_is_a_json_object_or_refused() -> None:
    assert quarantined_record('{"id": 1}') == {"id": 1}
    assert quarantined_record({"id": 2}) == {"id": 2}
    assert refused(lambda: quarantined_record("{cut")).reason == "the record is not JSON"
    assert refused(lambda: quarantined_record("[1]")).reason == "the record is not a JSON object"


def test_both_adapters_refuse_quarantined_json_nested_too_deep_to_parse() -> None:
    from shopsync_shopify import ShopifyAdapter
    from shopsync_woocommerce import WooCommerceAdapter

    deep = "[" * 100_000 + "]" * 100_000
    for adapter in (ShopifyAdapter, WooCommerceAdapter):
        error = refused(lambda a=adapter: a.map_record("orders", deep, "s.example"))  # type: ignore[misc]
        assert error.reason == "the record is not JSON", adapter
