"""Hostile and broken payloads: every one is mapped or quarantined with a reason, never half
stored and never answered with an unexpected exception.

The payloads start from the real ones in ``tests/fixtures`` (REST shapes of both platforms)
and from GraphQL nodes rendered by the Shopify emulator (no published fixture carries a whole
node), then hypothesis mutates them at random JSON paths: keys removed or nulled, values
retyped, 1 MB strings, deep nesting, NUL, lone surrogates, right-to-left marks and emoji,
negative and huge numbers, float money, unknown currencies, dates without an offset or not
dates at all. Examples are derandomized so CI sees the same ones on every run; the module
prints how many payloads each mapping took and refused.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
from collections import Counter
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shopsync_shopify import _render as shopify_render
from shopsync_shopify import mapping as shopify
from shopsync_shopify.webhooks import order_from_delivery as shopify_delivered_order
from shopsync_shopify.webhooks import sign as shopify_sign
from shopsync_woocommerce import mapping as woo
from shopsync_woocommerce.webhooks import sign as woo_sign
from sqlalchemy import func, select

from shopsync import webhooks
from shopsync.errors import InvalidRecordError, WebhookError
from shopsync.models import Customer, Order, Product
from shopsync.store import Store
from shopsync.store.schema import metadata
from shopsync.testing.generator import generate_shop

FIXTURES = Path(__file__).parents[1] / "fixtures"
SHOPIFY_SHOP = "hostile.myshopify.com"
WOO_SHOP = "example.com"  # the site the fixtures' _links name (webhooks check it)
SECRET = "whsec_hostile_input"
HUGE = "\u00e9" * 500_000  # 1 MB of UTF-8
MAPPING_EXAMPLES = 500
INTAKE_EXAMPLES = 60

OUTCOMES: Counter[tuple[str, str]] = Counter()
"""(mapper, outcome) over the whole module; printed at its end."""


def _fixture(platform: str, name: str) -> Any:
    return json.loads((FIXTURES / platform / name).read_text(encoding="utf-8"))


def _resolved(value: Any) -> Any:
    """A rendered GraphQL node with its argument-taking fields answered, as the API would."""
    if callable(value):
        return _resolved(value({"first": 250, "namespace": "facts", "key": "birth_date"}))
    if isinstance(value, dict):
        return {k: _resolved(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v) for v in value]
    return value


@cache
def _graphql_seeds() -> dict[str, list[dict[str, Any]]]:
    state = generate_shop(
        platform="shopify",
        shop=SHOPIFY_SHOP,
        seed=10,
        customers=4,
        orders=12,
        products=4,
        end=dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc),
    )
    orders = sorted(state.orders.values(), key=lambda o: (-len(o.refunds), o.id))
    return {
        "customers": [
            _resolved(shopify_render.customer_graphql(c)) for c in state.customers.values()
        ],
        "orders": [_resolved(shopify_render.order_graphql(o)) for o in orders[:4]],
        "products": [_resolved(shopify_render.product_graphql(p)) for p in state.products.values()],
    }


@cache
def _seeds() -> dict[str, list[dict[str, Any]]]:
    orders = [_fixture("shopify", "python_api-order.json")["order"]]
    for name in ("js-2024-04-orders.json", "ruby-2026-07-orders.json", "python_api-orders.json"):
        orders += _fixture("shopify", name)["orders"]
    orders.append(_fixture("shopify", "ruby-2026-07-order.json")["order"])
    customers = [
        _fixture("shopify", "python_api-customer.json")["customer"],
        _fixture("shopify", "ruby-2026-07-customer.json")["customer"],
        *_fixture("shopify", "js-2024-04-customers.json")["customers"],
    ]
    products = [
        shopify_render.product_rest(p)
        for p in generate_shop(
            platform="shopify", shop=SHOPIFY_SHOP, seed=11, customers=0, orders=0, products=3
        ).products.values()
    ]
    gql = _graphql_seeds()
    return {
        "shopify.rest.orders": orders,
        "shopify.rest.customers": customers,
        "shopify.rest.products": products,
        "shopify.graphql.orders": gql["orders"],
        "shopify.graphql.customers": gql["customers"],
        "shopify.graphql.products": gql["products"],
        "woocommerce.orders": [
            *_fixture("woocommerce", "list-all-orders.json"),
            _fixture("woocommerce", "retrieve-an-order.json"),
        ],
        "woocommerce.orders+refunds": [_fixture("woocommerce", "list-all-refunds.json")],
        "woocommerce.customers": [
            *_fixture("woocommerce", "list-all-customers.json"),
            _fixture("woocommerce", "create-a-customer.json"),
        ],
        "woocommerce.products": [
            *_fixture("woocommerce", "list-all-products.json"),
            _fixture("woocommerce", "retrieve-a-product-variation.json"),
        ],
    }


def _woo_order_with_refunds(doc: Any) -> Order:
    """The refund list (mutated) beside the real order 723 it belongs to."""
    order = _fixture("woocommerce", "list-all-orders.json")[1]
    return woo.order_from_rest(order, shop=WOO_SHOP, refunds=doc)


MAPPERS: dict[str, tuple[Callable[[Any], Any], type]] = {
    "shopify.rest.orders": (lambda d: shopify.order_from_webhook(d, shop=SHOPIFY_SHOP), Order),
    "shopify.rest.customers": (
        lambda d: shopify.customer_from_webhook(d, shop=SHOPIFY_SHOP, currency="USD"),
        Customer,
    ),
    "shopify.rest.products": (
        lambda d: shopify.product_from_webhook(d, shop=SHOPIFY_SHOP, currency="USD"),
        Product,
    ),
    "shopify.graphql.orders": (lambda d: shopify.order_from_graphql(d, shop=SHOPIFY_SHOP), Order),
    "shopify.graphql.customers": (
        lambda d: shopify.customer_from_graphql(d, shop=SHOPIFY_SHOP),
        Customer,
    ),
    "shopify.graphql.products": (
        lambda d: shopify.product_from_graphql(d, shop=SHOPIFY_SHOP, currency="USD"),
        Product,
    ),
    "woocommerce.orders": (lambda d: woo.order_from_rest(d, shop=WOO_SHOP), Order),
    "woocommerce.orders+refunds": (_woo_order_with_refunds, Order),
    "woocommerce.customers": (
        lambda d: woo.customer_from_rest(d, shop=WOO_SHOP, currency="USD"),
        Customer,
    ),
    "woocommerce.products": (lambda d: woo.product_from_rest(d, shop=WOO_SHOP), Product),
}

# --------------------------------------------------------------------------- mutations

_SPECIAL_TEXT = [
    "",
    " ",
    "\x00",
    "nul\x00inside",
    "\ud800",
    "lone \udfff surrogate",
    "\u202etxet lrt",
    "\U0001f469\u200d\U0001f469\u200d\U0001f467",
    "null",
    "NaN",
    "Infinity",
    "-1",
    "1e999",
    "0.000001",
    "-10.00",
    "99999999999999999999.99",
    "12,50",
    "2024-01-02T03:04:05",
    "2024-01-02 03:04:05",
    "2024-01-02",
    "2024-13-45T99:99:99Z",
    "0000-00-00 00:00:00",
    "yesterday",
    "ZZZ",
    "usd",
    " EUR ",
    "XBT",
    "gid://shopify/Order/",
    "gid://shopify/Order/1?x",
    "<script>alert(1)</script>",
    "'); DROP TABLE orders;--",
]


def _deep(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return {"nested": value}


_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "bool": st.booleans(),
    "int": st.integers(min_value=-(10**6), max_value=10**6),
    "huge int": st.sampled_from([10**20, -(10**20), 2**63, -(2**63) - 1, 10**400]),
    "float": st.sampled_from([0.1, -1.5, 12.345678, 1e308, -0.0, math.inf, -math.inf, math.nan]),
    "special text": st.sampled_from(_SPECIAL_TEXT),
    "any text": st.text(st.characters(codec=None, categories=None), max_size=12),
    "huge text": st.just(HUGE),
    "list": st.lists(st.none() | st.integers() | st.text(max_size=3), max_size=3),
    "object": st.dictionaries(st.sampled_from(["id", "amount", "x"]), st.integers(), max_size=2),
    "deep": st.integers(min_value=50, max_value=300).map(_deep),
}
MUTATIONS = ["remove", *_VALUES]


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from _paths(value, (*prefix, i))


def _set(doc: Any, path: tuple[Any, ...], value: Any, *, remove: bool = False) -> Any:
    if not path:
        return None if remove else value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if remove:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


@st.composite
def mutated(draw: st.DrawFn, name: str) -> tuple[Any, list[str]]:
    """A seed payload of ``name`` with one to four mutations, and what they were."""
    doc = copy.deepcopy(draw(st.sampled_from(_seeds()[name])))
    done = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = list(_paths(doc))
        # Leaves and inner nodes alike; the root itself only rarely.
        path = draw(st.sampled_from(paths[1:] or paths)) if draw(st.integers(0, 19)) else ()
        kind = draw(st.sampled_from(MUTATIONS))
        value = None if kind == "remove" else draw(_VALUES[kind])
        doc = _set(doc, path, value, remove=kind == "remove")
        done.append(f"{kind}@{'.'.join(map(str, path)) or '<root>'}")
    return doc, done


def _map(name: str, doc: Any, mapper: Callable[[Any], Any] | None = None) -> Any:
    """Map ``doc``; the model, or the InvalidRecordError (any other exception fails)."""
    default, kind = MAPPERS[name]
    mapper = mapper or default
    try:
        record = mapper(doc)
    except InvalidRecordError as exc:
        assert exc.reason.strip(), f"{name}: a refusal without a reason"
        assert len(str(exc)) < 20_000, f"{name}: a reason of {len(str(exc))} characters"
        return exc
    assert isinstance(record, kind)
    # What came back is a valid model: it survives its own JSON round trip.
    assert type(record).model_validate_json(record.model_dump_json()) == record
    return record


# --------------------------------------------------------------------------- mapping


def _reproducible(examples: int) -> Any:
    """The same examples on every run (CI reproduces a failure), big payloads allowed."""
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@pytest.mark.parametrize("name", sorted(MAPPERS))
def test_every_mutated_payload_is_mapped_or_refused_with_a_reason(name: str) -> None:
    for seed in _seeds()[name]:  # the unmutated seeds all map
        assert not isinstance(_map(name, copy.deepcopy(seed)), InvalidRecordError)

    @_reproducible(MAPPING_EXAMPLES)
    @given(mutated(name))
    def check(case: tuple[Any, list[str]]) -> None:
        doc, _ = case
        outcome = _map(name, doc)
        OUTCOMES[(name, "refused" if isinstance(outcome, InvalidRecordError) else "mapped")] += 1

    check()
    assert OUTCOMES[(name, "mapped")] and OUTCOMES[(name, "refused")]


# --------------------------------------------------------------------------- webhook intake


def _counts(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in metadata.sorted_tables
            if t.name not in ("shops", "webhook_deliveries", "alembic_version")
        }


INTAKE: dict[str, tuple[str, str, Callable[[Any], Any]]] = {
    # the intake refuses an order delivery without a part it stores whole (includeFields)
    "shopify.rest.orders": (
        "shopify",
        "orders/updated",
        lambda d: shopify_delivered_order(d, SHOPIFY_SHOP),
    ),
    "shopify.rest.customers": (
        "shopify",
        "customers/update",
        lambda d: shopify.customer_from_webhook(d, shop=SHOPIFY_SHOP),
    ),
    "woocommerce.orders": ("woocommerce", "order.updated", MAPPERS["woocommerce.orders"][0]),
    "woocommerce.customers": (
        "woocommerce",
        "customer.updated",
        lambda d: woo.customer_from_rest(d, shop=WOO_SHOP),
    ),
    "woocommerce.products": (
        "woocommerce",
        "product.updated",
        MAPPERS["woocommerce.products"][0],
    ),
}


def _delivery(platform: str, topic: str, body: bytes, n: int) -> dict[str, str]:
    if platform == "shopify":
        return {
            "X-Shopify-Topic": topic,
            "X-Shopify-Shop-Domain": SHOPIFY_SHOP,
            "X-Shopify-Webhook-Id": f"hostile-{n}",
            "X-Shopify-Hmac-Sha256": shopify_sign(SECRET, body),
        }
    return {
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Source": f"https://{WOO_SHOP}/",
        "X-WC-Webhook-Delivery-ID": f"hostile-{n}",
        "X-WC-Webhook-Signature": woo_sign(SECRET, body),
    }


def _delivered_to(doc: dict[str, Any], shop: str) -> dict[str, Any]:
    """``doc`` as ``shop`` would send it: the fixtures' orders come from other shops, and an
    ``order_status_url`` naming another ``*.myshopify.com`` is refused at the door (a body
    replayed for another shop), so they would never reach the store."""
    url = doc.get("order_status_url")
    host = urlsplit(url).hostname if isinstance(url, str) else None
    if not isinstance(url, str) or not host or not host.endswith(".myshopify.com"):
        return doc
    return {**doc, "order_status_url": url.replace(host, shop, 1)}


@pytest.mark.parametrize("name", sorted(INTAKE))
def test_webhook_intake_stores_a_record_whole_or_quarantines_it(name: str, store: Store) -> None:
    platform, topic, mapper = INTAKE[name]
    kind = MAPPERS[name][1]
    shop = SHOPIFY_SHOP if platform == "shopify" else WOO_SHOP
    store.shop_id(platform, shop)
    numbers = iter(range(1, 10**6))

    @_reproducible(INTAKE_EXAMPLES)
    @given(mutated(name))
    def check(case: tuple[Any, list[str]]) -> None:
        doc, _ = case
        n = next(numbers)
        if isinstance(doc, dict) and isinstance(doc.get("id"), (int, str)):
            doc["id"] = 5_000_000 + n  # a fresh record each time, so nothing is "stale"
        if platform == "shopify" and isinstance(doc, dict):
            doc = _delivered_to(doc, shop)
        body = json.dumps(doc).encode()
        before = _counts(store)
        expected = _map(name, copy.deepcopy(doc), mapper)
        headers = _delivery(platform, topic, body, n)
        try:
            result = webhooks.handle(platform, headers, body, store, SECRET)
        except WebhookError as exc:  # over MAX_BODY, or not a JSON object: refused whole
            OUTCOMES[(f"intake {name}", "refused at the door")] += 1
            assert str(exc) and _counts(store) == before
            return
        after = _counts(store)
        if isinstance(expected, InvalidRecordError):
            OUTCOMES[(f"intake {name}", "quarantined")] += 1
            assert result.quarantined == 1 and result.upserted.inserted == 0
            assert {k: v for k, v in after.items() if k != "quarantine"} == {
                k: v for k, v in before.items() if k != "quarantine"
            }, "a refused record left rows behind"
            (entry,) = [q for q in store.quarantined() if q.raw == body.decode()]
            assert entry.reason.strip() and entry.resource == f"{kind.__name__.lower()}s"
        else:
            OUTCOMES[(f"intake {name}", "stored")] += 1
            assert result.quarantined == 0
            assert after["quarantine"] == before["quarantine"]
            assert store.get(kind, platform, shop, expected.id) == expected

    check()
    assert OUTCOMES[(f"intake {name}", "stored")] and OUTCOMES[(f"intake {name}", "quarantined")]


@pytest.fixture(scope="module", autouse=True)
def _summary() -> Iterator[None]:
    yield
    by_name: dict[str, list[str]] = {}
    for (name, outcome), count in sorted(OUTCOMES.items()):
        by_name.setdefault(name, []).append(f"{outcome} {count}")
    print("\nhostile payloads:")
    for name, parts in by_name.items():
        print(f"  {name}: {', '.join(parts)}")
    print(f"  total: {sum(OUTCOMES.values())}")
