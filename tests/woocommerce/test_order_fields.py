"""Order pages ask for the fields the mappers read only (WordPress's ``_fields``, issue 20
item 3.3): the emulator honours ``_fields`` as WordPress does, every mapper reads nothing
outside :data:`~shopsync_woocommerce.mapping.ORDER_FIELDS`, and a trimmed read stores
exactly what a whole read stores, quarantine included."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest
from shopsync_woocommerce import WooCommerceAdapter
from shopsync_woocommerce._emu_fields import filter_fields, is_field_included, requested_fields
from shopsync_woocommerce._fast_orders import order_tables
from shopsync_woocommerce.mapping import ORDER_FIELDS, order_from_rest

import shopsync
from tests.shopify.test_fast_ingest import snapshot
from tests.sync.emulated import FAST_RETRIES, emulated
from tests.woocommerce._fixtures import ORDER_FILES, SHOP, load, records
from tests.woocommerce.test_fast_ingest import _add_fixture_orders, two_urls

__all__ = ["two_urls"]  # the fixture

_GMT = ("date_created", "date_modified", "date_paid", "date_completed")

# --- the emulator's ``_fields`` ----------------------------------------------------------------

_BODY = {
    "id": 7,
    "billing": {"email": "a@b.c", "phone": "1"},
    "line_items": [{"id": 1, "name": "x"}, {"id": 2, "name": "y"}],
    "total": "1.00",
}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ("id,total", {"id": 7, "total": "1.00"}),
        (" id , nope ", {"id": 7}),  # trimmed; an unknown name is ignored
        ("id total", {"id": 7, "total": "1.00"}),  # wp_parse_list splits on spaces too
        ("billing.email", {"billing": {"email": "a@b.c"}}),
        ("billing.email,billing", {"billing": {"email": "a@b.c", "phone": "1"}}),
        ("billing,billing.email", {"billing": {"email": "a@b.c", "phone": "1"}}),
        ("line_items.name", {"line_items": []}),  # a dot path does not reach into a list
        ("line_items.1", {"line_items": {"1": {"id": 2, "name": "y"}}}),  # PHP keys 0, 1...
        ("line_items.0", {"line_items": [{"id": 1, "name": "x"}]}),
    ],
)
def test_fields_filter_as_wordpress(fields: str, expected: Any) -> None:
    wanted = requested_fields({"_fields": fields})
    assert filter_fields(_BODY, wanted) == expected
    assert filter_fields([_BODY, _BODY], wanted) == [expected, expected]  # each list item


def test_no_or_empty_fields_filter_nothing() -> None:
    assert requested_fields({}) is None
    assert requested_fields({"_fields": " , "}) is None
    assert filter_fields(_BODY, None) is _BODY


def test_field_inclusion_as_rest_is_field_included() -> None:
    fields = ["billing.email", "line_items"]
    assert is_field_included("billing", fields)
    assert is_field_included("line_items.name", fields)
    assert not is_field_included("bill", fields)
    assert not is_field_included("shipping", fields)
    assert is_field_included("anything", None)


def _adapter(shop: Any, **extra: Any) -> WooCommerceAdapter:
    adapter = shopsync.connect(
        "woocommerce", **shop.settings, retry_policy=FAST_RETRIES, per_page=25, **extra
    )
    assert isinstance(adapter, WooCommerceAdapter)
    return adapter


def test_emulated_pages_with_fields_are_the_whole_pages_filtered() -> None:
    """The renderer's skipped parts change nothing but their absence, on list and single
    endpoints, for the reader's fields and for some of the skipped parts asked for. A single
    record keeps its ``_links`` whatever ``_fields`` says: ``WP_REST_Server::serve_request``
    adds a response's links (``response_to_data``) after ``rest_post_dispatch`` filtered it,
    and WooCommerce adds them unconditionally (a list's items carry theirs in their data,
    ``prepare_response_for_collection``, so the filter reaches them)."""
    with emulated("woocommerce", seed=4, customers=10, orders=60) as shop:
        _add_fixture_orders(shop.state)
        victim = sorted(shop.state.orders, key=int)[3]
        shop.faults.invalid_records.add(("orders", victim))
        with closing(_adapter(shop)) as adapter:
            params = {"per_page": "100", "orderby": "id", "order": "asc", "status": "any"}
            whole, _ = adapter._list("orders", params)
            for fields in (",".join(ORDER_FIELDS), "id,line_items,_links,payment_url"):
                wanted = requested_fields({"_fields": fields})
                trimmed, _ = adapter._list("orders", {**params, "_fields": fields})
                assert trimmed == filter_fields(whole, wanted)
                one, _ = adapter._get(f"orders/{victim}", {"_fields": fields})
                alone, _ = adapter._get(f"orders/{victim}", {})
                assert one == {**filter_fields(alone, wanted), "_links": alone["_links"]}
            currency, _ = adapter._get("data/currencies/current", {"_fields": "code"})
            assert set(currency) == {"code", "_links"} and currency["code"] == shop.state.currency
    assert len(whole) > 60 and any(o["refunds"] for o in whole)


# --- the mappers read nothing outside ORDER_FIELDS ----------------------------------------------


class _Recording(dict[str, Any]):
    """A record noting every top-level key the row mapper asks for."""

    asked: set[str]

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.asked.add(str(key))
        return super().__contains__(key)


def _projected(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if k in ORDER_FIELDS}


def _local_only(raw: dict[str, Any]) -> dict[str, Any]:
    """The record without its ``*_gmt`` dates: the mappers read the site-local ones."""
    return {k: v for k, v in raw.items() if k not in {f"{d}_gmt" for d in _GMT}}


def _real_orders() -> Iterator[tuple[str, dict[str, Any], list[Any] | None]]:
    refunds = load("list-all-refunds")
    for label, raw in records(*ORDER_FILES):
        listed = {r["id"] for r in raw.get("refunds") or ()}
        found = [r for r in refunds if r["id"] in listed] if listed else None
        yield label, raw, found
        yield f"{label} without its refund records", raw, None  # a webhook-shaped body
        yield f"{label} with local dates", _local_only(raw), found


def _emulated_orders() -> list[tuple[str, dict[str, Any], list[Any] | None]]:
    with (
        emulated("woocommerce", seed=5, customers=10, orders=80) as shop,
        closing(_adapter(shop)) as adapter,
    ):
        rows, _ = adapter._list("orders", {"per_page": "100", "status": "any"})
        out = []
        for raw in rows:
            details = None
            if raw["refunds"]:
                details, _ = adapter._list(f"orders/{raw['id']}/refunds", {})
            out.append((f"emulated {raw['id']}", raw, details))
    return out


_ORDERS = [*_real_orders(), *_emulated_orders()]


@pytest.mark.parametrize(("label", "raw", "refunds"), _ORDERS, ids=[o[0] for o in _ORDERS])
def test_a_record_projected_to_the_fields_maps_as_the_whole_record(
    label: str, raw: dict[str, Any], refunds: list[Any] | None
) -> None:
    """Row path (the model) and fast path (the store rows) alike."""
    zone = dt.timezone(dt.timedelta(hours=2))
    whole = order_from_rest(copy.deepcopy(raw), shop=SHOP, refunds=refunds, site_timezone=zone)
    part = order_from_rest(_projected(raw), shop=SHOP, refunds=refunds, site_timezone=zone)
    assert part == whole
    rows = order_tables(copy.deepcopy(raw), refunds)
    trimmed = order_tables(_projected(raw), refunds)
    assert (rows is None) == (trimmed is None)
    if rows is not None and trimmed is not None:
        assert trimmed.tables == rows.tables


@pytest.mark.parametrize(("label", "raw", "refunds"), _ORDERS, ids=[o[0] for o in _ORDERS])
def test_the_row_mapper_asks_for_no_key_outside_the_fields(
    label: str, raw: dict[str, Any], refunds: list[Any] | None
) -> None:
    record = _Recording(copy.deepcopy(raw))
    record.asked = set()
    zone = dt.timezone.utc
    order_from_rest(record, shop=SHOP, refunds=refunds, site_timezone=zone)
    assert record.asked and record.asked <= set(ORDER_FIELDS), record.asked - set(ORDER_FIELDS)


def test_the_fast_path_refuses_what_lacks_a_field_it_needs() -> None:
    """The projection test would not see a key the fast path reads but always finds
    absent-or-equal; a record missing each field in turn either maps as before or is refused
    (and the row path, tested above, takes it)."""
    _, raw, refunds = next(iter(_real_orders()))
    full = order_tables(copy.deepcopy(raw), refunds)
    assert full is not None
    for key in ORDER_FIELDS:
        without = {k: v for k, v in raw.items() if k != key}
        rows = order_tables(without, refunds)
        whole = order_tables(dict(without, extra_key="x", _links={}), refunds)
        assert (rows is None) == (whole is None), key
        if rows is not None and whole is not None:
            assert rows.tables == whole.tables, key


# --- a trimmed read stores what a whole read stores ---------------------------------------------


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("fast", [True, False])
def test_a_trimmed_sync_stores_what_a_whole_sync_stores(
    seed: int, fast: bool, two_urls: dict[bool, str]
) -> None:
    """Every table, content hashes and the quarantine (reasons and raw records) included,
    on the fast path and the row path; then an incremental sync after changes."""
    with emulated("woocommerce", seed=seed, customers=15, orders=90) as shop:
        _add_fixture_orders(shop.state)
        ids = sorted(shop.state.orders, key=int)
        shop.faults.invalid_records |= {("orders", ids[2]), ("orders", ids[-3])}
        stores = {trim: shopsync.Store(two_urls[trim]) for trim in (True, False)}
        asked: dict[bool, list[str]] = {True: [], False: []}
        try:
            for rounds in range(2):
                if rounds:
                    shop.faults.invalid_records.discard(("orders", ids[2]))
                    shop.state.cancel_order(ids[5])
                    shop.state.update_order(ids[-3], tags=("again",))  # still refused
                for trim, store in stores.items():
                    with closing(_adapter(shop)) as adapter:
                        adapter.request_fields = trim
                        adapter.fast_ingest = fast
                        real = adapter._get

                        def spy(
                            endpoint: str, params: Any, trim: bool = trim, real: Any = real
                        ) -> Any:
                            asked[trim].append(params.get("_fields", ""))
                            return real(endpoint, params)

                        adapter._get = spy  # type: ignore[method-assign]
                        report = shopsync.sync(adapter, store, resources=["customers", "orders"])
                    assert report.total("quarantined") == (1 if rounds else 2)
            snaps = {trim: snapshot(store) for trim, store in stores.items()}
            held = {
                trim: sorted((q.record_id, q.reason, q.raw) for q in store.quarantined())
                for trim, store in stores.items()
            }
        finally:
            for store in stores.values():
                store.close()
    assert ",".join(ORDER_FIELDS) in asked[True] and not any(asked[False])
    assert held[True] == held[False] and held[True]
    assert '"payment_url"' in held[True][0][2]  # the whole record, asked for again
    assert snaps[True]["orders"] and snaps[True]["line_items"] and snaps[True]["fulfillments"]
    for table in snaps[False]:
        assert snaps[True][table] == snaps[False][table], table


# --- the refetch of refused records is bounded -------------------------------------------------


def test_many_refused_orders_cost_a_bounded_number_of_refetches() -> None:
    """A shop whose every order is refused (a currency a plugin adds, say) is not asked for
    each order again: past :data:`~shopsync_woocommerce._reads.WHOLE_REFETCHES` per read,
    the rest are quarantined as read (same reason; the projection of the record)."""
    from shopsync_woocommerce._reads import WHOLE_REFETCHES

    with emulated("woocommerce", seed=6, customers=5, orders=WHOLE_REFETCHES + 30) as shop:
        shop.faults.invalid_records |= {("orders", i) for i in shop.state.orders}
        records, rejected, singles = _refused_read(shop)
    assert not records and len(rejected) == len(shop.state.orders) > WHOLE_REFETCHES
    assert 0 < len(singles) <= WHOLE_REFETCHES
    whole = [r for r in rejected if '"payment_url"' in str(r.raw)]
    assert len(whole) == len(singles)  # those asked for again are whole, the rest as read


def _refused_read(
    shop: Any, single: Any = None, listed: Any = None
) -> tuple[list[Any], list[Any], list[str]]:
    """The records and rejected orders of a read whose ``GET /orders/<id>`` answers
    ``single(endpoint, real)`` (None: the emulator's answer; list requests go through
    ``listed(params)``), and the orders asked for."""
    from shopsync.testing.contract import read_all

    with closing(_adapter(shop)) as adapter:
        singles: list[str] = []
        real = adapter._get

        def spy(endpoint: str, params: Any) -> Any:
            if endpoint.startswith("orders/"):
                singles.append(endpoint)
                return real(endpoint, params) if single is None else single(endpoint, real)
            return real(endpoint, listed(params) if listed else params)

        adapter._get = spy  # type: ignore[method-assign]
        records, rejected, _ = read_all(adapter, "orders")
    return records, rejected, singles


def test_a_refused_order_gone_changed_or_refused_again_is_quarantined_as_read() -> None:
    """The refetch failing (404: deleted meanwhile; 429 past the retries; an error body) or
    answering a changed record leaves the record as read; the read goes on."""
    from shopsync.errors import NotFoundError, RateLimitedError

    def changed(endpoint: str, real: Any) -> Any:
        body, headers = real(endpoint, {})
        return {**body, "date_modified_gmt": "2099-01-01T00:00:00"}, headers

    def raising(error: Exception) -> Any:
        def single(endpoint: str, real: Any) -> Any:
            raise error

        return single

    answers = [
        raising(NotFoundError("gone", platform="woocommerce")),
        raising(RateLimitedError("slow down", platform="woocommerce")),
        lambda endpoint, real: ([], {}),  # not an object
        changed,
    ]
    with emulated("woocommerce", seed=7, customers=5, orders=30) as shop:
        victims = sorted(shop.state.orders, key=int)[3:6]
        shop.faults.invalid_records |= {("orders", v) for v in victims}
        for single in answers:
            _, rejected, singles = _refused_read(shop, single)
            assert sorted(r.record_id for r in rejected) == victims
            assert len(singles) == len(victims)
            assert not any('"payment_url"' in r.raw for r in rejected)  # as read


def test_a_shop_ignoring_fields_is_not_asked_again() -> None:
    """A store that ignores ``_fields`` (older than WordPress 4.8, a proxy) sends whole
    records: a refused one is quarantined whole without another request."""
    with emulated("woocommerce", seed=8, customers=5, orders=30) as shop:
        victims = sorted(shop.state.orders, key=int)[2:5]
        shop.faults.invalid_records |= {("orders", v) for v in victims}

        def whole(params: Any) -> Any:
            return {k: v for k, v in params.items() if k != "_fields"}

        def unexpected(endpoint: str, real: Any) -> Any:
            return real(endpoint, {})

        _, rejected, singles = _refused_read(shop, unexpected, whole)
    assert sorted(r.record_id for r in rejected) == victims
    assert all('"payment_url"' in r.raw for r in rejected)
    assert singles == []


def test_fields_as_a_php_array_filter_as_a_list() -> None:
    """``_fields[]=id&_fields[]=total``: PHP reads an array, which ``wp_parse_list`` keeps
    as it is (no split on commas); the later of ``_fields`` and ``_fields[]`` wins."""
    assert requested_fields({}, "_fields%5B%5D=id&_fields%5B%5D=total") == ("id", "total")
    assert requested_fields({}, "_fields[0]=id&_fields[1]=%20billing.email") == (
        "id",
        "billing.email",
    )
    assert requested_fields({}, "_fields[]=id,total") == ("id,total",)
    assert requested_fields({}, "_fields[]=id&_fields=total") == ("total",)
    with (
        emulated("woocommerce", seed=4, customers=5, orders=10) as shop,
        closing(_adapter(shop)) as adapter,
    ):
        trimmed, _ = adapter._list("orders", {"_fields[]": "id"})
    assert trimmed and all(list(o) == ["id"] for o in trimmed)


def test_a_dot_path_into_an_order_part_built_on_request_leaves_it_out() -> None:
    """``get_fields_for_response`` keeps ``line_items.name`` as it is, and
    ``WC_REST_Orders_V2_Controller::get_formatted_item_data`` builds an extra part only when
    its exact name is in that list (``array_intersect``): ``line_items`` is then never built,
    so absent, not empty; ``billing`` (base data) is there and filtered."""
    with (
        emulated("woocommerce", seed=4, customers=5, orders=10) as shop,
        closing(_adapter(shop)) as adapter,
    ):
        trimmed, _ = adapter._list("orders", {"_fields": "id,line_items.name,billing.email"})
    assert trimmed and all(set(o) == {"id", "billing"} for o in trimmed)
    assert all(set(o["billing"]) == {"email"} for o in trimmed)


# --- a record missing a part never erases what the store holds ------------------------------------


@pytest.mark.parametrize("part", ["line_items", "refunds", "billing", "customer_id"])
@pytest.mark.parametrize("fast", [True, False])
def test_an_order_stripped_of_a_part_keeps_what_the_store_holds(
    part: str, fast: bool, two_urls: dict[bool, str]
) -> None:
    """A shop (a proxy, a plugin, a partial ``_fields``) that leaves a part out of a changed
    order, even when asked again whole: the order is quarantined with the part's name and
    the store keeps the order as it was (its lines, refunds, address, customer), on the
    fast path and the row path."""
    from shopsync_woocommerce.mapping import ORDER_PARTS

    assert part in ORDER_PARTS
    with emulated("woocommerce", seed=3, customers=8, orders=30) as shop:
        victim = next(
            i
            for i in sorted(shop.state.orders, key=int)
            if shop.state.orders[i].line_items and shop.state.orders[i].customer_id
        )
        with shopsync.Store(two_urls[fast]) as store:
            for rounds in range(2):
                if rounds:
                    shop.state.update_order(victim, tags=("changed",))
                with closing(_adapter(shop)) as adapter:
                    adapter.fast_ingest = fast
                    real = adapter._get

                    def stripping(endpoint: str, params: Any, real: Any = real) -> Any:
                        body, headers = real(endpoint, params)
                        items = body if isinstance(body, list) else [body]
                        for item in items:
                            if isinstance(item, dict) and str(item.get("id")) == victim:
                                item.pop(part, None)
                        return body, headers

                    if rounds:
                        adapter._get = stripping  # type: ignore[method-assign]
                    report = shopsync.sync(adapter, store, resources=["customers", "orders"])
                if not rounds:
                    before = snapshot(store)
                    assert report.total("quarantined") == 0
            after = snapshot(store)
            held = [(q.record_id, q.reason) for q in store.quarantined()]
    assert report.total("quarantined") == 1
    assert [record for record, _ in held] == [victim] and part in held[0][1]
    assert after["orders"] and after["line_items"]
    for table in before.keys() - {"quarantine", "sync_cursors"}:  # the read went on
        assert after[table] == before[table], table
