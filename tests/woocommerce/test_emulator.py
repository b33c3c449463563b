"""The REST emulator: authentication as WC_REST_Authentication does it, paging, filters, errors."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
import woocommerce
from shopsync_woocommerce._auth import string_to_sign
from shopsync_woocommerce._render import wc_status
from woocommerce.oauth import OAuth

from shopsync.testing import EmulatedShop, emulate


@pytest.fixture(scope="module")
def shop() -> Iterator[EmulatedShop]:
    with emulate("woocommerce", seed=8, customers=30, orders=230, products=12) as shop:
        yield shop


def client(shop: EmulatedShop, **kw: Any) -> woocommerce.API:
    settings = {**shop.settings, **kw}
    return woocommerce.API(
        url=settings["url"],
        consumer_key=settings["consumer_key"],
        consumer_secret=settings["consumer_secret"],
        timeout=30,
    )


def signed_url(
    shop: EmulatedShop,
    path: str,
    params: dict[str, Any],
    *,
    method: str = "GET",
    algorithm: str = "HMAC-SHA256",
    timestamp: int | None = None,
    nonce: str = "n0nce",
) -> str:
    """A URL signed by hand (to choose the nonce, timestamp and algorithm)."""
    url = f"{shop.url}/wp-json/wc/v3/{path}"
    query = {
        **{k: str(v) for k, v in params.items()},
        "oauth_consumer_key": shop.settings["consumer_key"],
        "oauth_timestamp": str(timestamp or int(time.time())),
        "oauth_nonce": nonce,
        "oauth_signature_method": algorithm,
    }
    base = string_to_sign(method, shop.url, urlsplit(url).path, query)
    digest = hashlib.sha1 if algorithm == "HMAC-SHA1" else hashlib.sha256
    key = (shop.settings["consumer_secret"] + "&").encode()
    query["oauth_signature"] = base64.b64encode(
        hmac.new(key, base.encode(), digest).digest()
    ).decode()
    return f"{url}?{urlencode(query)}"


def error(response: requests.Response) -> tuple[int, str, str]:
    body = response.json()
    assert body["data"]["status"] == response.status_code
    return response.status_code, body["code"], body["message"]


# --- the official client, unchanged ------------------------------------------------------------


def test_official_client_pages_orders(shop: EmulatedShop) -> None:
    api = client(shop)
    first = api.get("orders", params={"per_page": 100, "page": 1, "orderby": "id", "order": "asc"})
    assert first.status_code == 200
    # the client sends every parameter twice (signed URL + requests params); last value wins
    assert first.request.url.count("per_page=100") == 2
    assert first.headers["X-WP-Total"] == "230"
    assert first.headers["X-WP-TotalPages"] == "3"
    assert 'rel="next"' in first.headers["Link"] and 'rel="prev"' not in first.headers["Link"]
    assert "oauth_" not in first.headers["Link"]
    ids = [o["id"] for o in first.json()]
    assert len(ids) == 100 and ids == sorted(ids)
    last = api.get("orders", params={"per_page": 100, "page": 3, "orderby": "id", "order": "asc"})
    assert len(last.json()) == 30
    assert 'rel="prev"' in last.headers["Link"] and 'rel="next"' not in last.headers["Link"]
    beyond = api.get("orders", params={"per_page": 100, "page": 9})
    assert beyond.status_code == 200 and beyond.json() == []


def test_default_page_size_and_order(shop: EmulatedShop) -> None:
    orders = client(shop).get("orders").json()
    assert len(orders) == 10
    created = [o["date_created_gmt"] for o in orders]
    assert created == sorted(created, reverse=True)  # orderby=date, order=desc


@pytest.mark.parametrize("per_page", ["0", "101", "abc"])
def test_per_page_limits(shop: EmulatedShop, per_page: str) -> None:
    response = client(shop).get("orders", params={"per_page": per_page})
    status, code, message = error(response)
    assert (status, code) == (400, "rest_invalid_param")
    assert "per_page" in message and "per_page" in response.json()["data"]["params"]


def test_hmac_sha1_and_header_free_signatures_are_accepted(shop: EmulatedShop) -> None:
    for algorithm in ("HMAC-SHA1", "HMAC-SHA256"):
        url = signed_url(
            shop, "customers", {"per_page": 2}, algorithm=algorithm, nonce=f"nonce-{algorithm}"
        )
        assert requests.get(url, timeout=10).status_code == 200


def test_wrong_secret_is_refused(shop: EmulatedShop) -> None:
    response = client(shop, consumer_secret="cs_wrong").get("orders")
    assert error(response) == (
        401,
        "woocommerce_rest_authentication_error",
        "Invalid signature - provided signature does not match.",
    )


def test_unknown_key_is_refused(shop: EmulatedShop) -> None:
    response = client(shop, consumer_key="ck_nobody").get("orders")
    assert error(response)[2] == "Consumer key is invalid."


def test_no_credentials_cannot_view(shop: EmulatedShop) -> None:
    response = requests.get(f"{shop.url}/wp-json/wc/v3/orders", timeout=10)
    assert error(response)[:2] == (401, "woocommerce_rest_cannot_view")


def test_missing_oauth_parameter(shop: EmulatedShop) -> None:
    url = signed_url(shop, "orders", {})
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "oauth_nonce"]
    response = requests.get(f"{url.split('?')[0]}?{urlencode(query)}", timeout=10)
    assert error(response) == (
        401,
        "woocommerce_rest_authentication_missing_parameter",
        "Missing OAuth parameter oauth_nonce",
    )


def test_nonce_reuse_is_refused(shop: EmulatedShop) -> None:
    url = signed_url(shop, "products", {"per_page": 1}, nonce="once-only")
    assert requests.get(url, timeout=10).status_code == 200
    again = requests.get(url, timeout=10)
    assert error(again)[2] == "Invalid nonce - nonce has already been used."


@pytest.mark.parametrize("offset", [-16 * 60, 16 * 60])
def test_timestamp_window(shop: EmulatedShop, offset: int) -> None:
    url = signed_url(shop, "products", {}, timestamp=int(time.time()) + offset, nonce=f"t{offset}")
    assert error(requests.get(url, timeout=10))[2] == "Invalid timestamp."
    ok = signed_url(shop, "products", {}, timestamp=int(time.time()) - 14 * 60, nonce=f"ok{offset}")
    assert requests.get(ok, timeout=10).status_code == 200


def test_clock_skew_between_client_and_store() -> None:
    with emulate(
        "woocommerce", customers=3, orders=5, products=2, auth_clock=lambda: time.time() + 3600
    ) as shop:
        assert error(client(shop).get("orders"))[2] == "Invalid timestamp."


def test_slash_in_a_signed_value_is_refused_like_a_real_store(shop: EmulatedShop) -> None:
    """The client signs with Python's quote() (keeps '/'), the store with rawurlencode()."""
    api = client(shop)
    assert api.get("customers", params={"search": "a b~c"}).status_code == 200
    assert error(api.get("customers", params={"search": "a/b"}))[0] == 401


def test_signature_uses_the_configured_site_url() -> None:
    """'Works with the domain, fails with the IP': the base string uses the home URL."""
    with emulate(
        "woocommerce", customers=3, orders=5, products=2, site_url="http://shop.example"
    ) as shop:
        assert shop.settings["url"] == "http://shop.example"
        api = woocommerce.API(
            url=shop.url,
            consumer_key=shop.settings["consumer_key"],
            consumer_secret=shop.settings["consumer_secret"],
        )
        assert error(api.get("orders"))[0] == 401
        url = signed_url(shop, "orders", {})
        assert requests.get(url, timeout=10).status_code == 401
        good = OAuth(
            url="http://shop.example/wp-json/wc/v3/orders",
            consumer_key=shop.settings["consumer_key"],
            consumer_secret=shop.settings["consumer_secret"],
            version="wc/v3",
            method="GET",
        ).get_oauth_url()
        assert (
            requests.get(
                shop.url + good.removeprefix("http://shop.example"), timeout=10
            ).status_code
            == 200
        )


def test_https_mode_accepts_basic_auth() -> None:
    with emulate("woocommerce", customers=3, orders=5, products=2, https=True) as shop:
        url = f"{shop.url}/wp-json/wc/v3/orders"
        key, secret = shop.settings["consumer_key"], shop.settings["consumer_secret"]
        assert requests.get(url, auth=(key, secret), timeout=10).status_code == 200
        assert (
            requests.get(
                url, params={"consumer_key": key, "consumer_secret": secret}, timeout=10
            ).status_code
            == 200
        )
        wrong = requests.get(url, auth=(key, "cs_wrong"), timeout=10)
        assert error(wrong)[2] == "Consumer secret is invalid."
        # over https, OAuth is signed against the https URL
        query = {
            "oauth_consumer_key": key,
            "oauth_timestamp": str(int(time.time())),
            "oauth_nonce": "https-1",
            "oauth_signature_method": "HMAC-SHA256",
        }
        base = string_to_sign(
            "GET", shop.url.replace("http://", "https://"), "/wp-json/wc/v3/orders", query
        )
        query["oauth_signature"] = base64.b64encode(
            hmac.new((secret + "&").encode(), base.encode(), hashlib.sha256).digest()
        ).decode()
        assert requests.get(url, params=query, timeout=10).status_code == 200


def test_basic_auth_is_ignored_over_plain_http(shop: EmulatedShop) -> None:
    key, secret = shop.settings["consumer_key"], shop.settings["consumer_secret"]
    response = requests.get(f"{shop.url}/wp-json/wc/v3/orders", auth=(key, secret), timeout=10)
    assert error(response)[:2] == (401, "woocommerce_rest_cannot_view")


def test_read_only_key_cannot_write() -> None:
    with emulate("woocommerce", customers=3, orders=5, products=2, permissions="read") as shop:
        api = client(shop)
        assert api.get("orders").status_code == 200
        response = api.post("webhooks", {"topic": "order.created", "delivery_url": "http://x/"})
        assert error(response)[2] == "The API key provided does not have write permissions."


# --- filters ------------------------------------------------------------------------------------


def all_of(
    api: woocommerce.API, endpoint: str, per_page: int = 100, **params: Any
) -> list[dict[str, Any]]:
    """Every record of a collection, page after page until ``X-WP-TotalPages``."""
    out: list[dict[str, Any]] = []
    page = 1
    while True:
        response = api.get(endpoint, params={"per_page": per_page, "page": page, **params})
        assert response.status_code == 200, response.text
        out += response.json()
        if page >= int(response.headers["X-WP-TotalPages"]):
            return out
        page += 1


def all_orders(api: woocommerce.API, **params: Any) -> list[dict[str, Any]]:
    return all_of(api, "orders", **params)


def test_modified_after_is_strict_and_to_the_second(shop: EmulatedShop) -> None:
    api = client(shop)
    stamps = sorted(o.updated_at for o in shop.state.orders.values())
    pivot = stamps[len(stamps) // 2]
    text = pivot.strftime("%Y-%m-%dT%H:%M:%S")
    got = all_orders(api, modified_after=text, dates_are_gmt="true")
    want = {
        o.id
        for o in shop.state.orders.values()
        if o.updated_at.replace(microsecond=0) > pivot.replace(microsecond=0)
    }
    assert {str(o["id"]) for o in got} == want
    assert all(o["date_modified_gmt"] > text for o in got)
    # without dates_are_gmt the value is site-local time (-03:00 by default)
    local = (pivot - dt.timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S")
    assert {o["id"] for o in all_orders(api, modified_after=local)} == {o["id"] for o in got}
    before = all_orders(api, modified_before=text, dates_are_gmt="true")
    assert all(o["date_modified_gmt"] < text for o in before)


def test_after_and_before_filter_creation(shop: EmulatedShop) -> None:
    api = client(shop)
    created = sorted(o.created_at for o in shop.state.orders.values())
    lo, hi = created[50].strftime("%Y-%m-%dT%H:%M:%S"), created[150].strftime("%Y-%m-%dT%H:%M:%S")
    got = all_orders(api, after=lo, before=hi, dates_are_gmt="1")
    assert got and all(lo < o["date_created_gmt"] < hi for o in got)


def test_status_customer_include_and_orderby(shop: EmulatedShop) -> None:
    api = client(shop)
    completed = all_orders(api, status="completed")
    assert completed and {o["status"] for o in completed} == {"completed"}
    want = {o.id for o in shop.state.orders.values() if wc_status(o) == "completed"}
    assert {str(o["id"]) for o in completed} == want
    both = all_orders(api, status="completed,refunded")
    assert {o["status"] for o in both} <= {"completed", "refunded"}
    buyer = next(o.customer_id for o in shop.state.orders.values() if o.customer_id)
    mine = all_orders(api, customer=buyer)
    assert mine and all(str(o["customer_id"]) == buyer for o in mine)
    ids = sorted(shop.state.orders)[:3]
    picked = all_orders(api, include=",".join(ids), orderby="include", order="asc")
    assert [str(o["id"]) for o in picked] == ids
    by_modified = all_orders(api, orderby="modified", order="asc")
    stamps = [o["date_modified_gmt"] for o in by_modified]
    assert stamps == sorted(stamps)


@pytest.mark.parametrize(
    ("param", "value"),
    [("orderby", "total"), ("order", "up"), ("status", "shipped"), ("modified_after", "soon")],
)
def test_invalid_parameters(shop: EmulatedShop, param: str, value: str) -> None:
    response = client(shop).get("orders", params={param: value})
    assert error(response)[:2] == (400, "rest_invalid_param")


def test_customers_have_no_modified_filter_and_default_to_name_order(shop: EmulatedShop) -> None:
    api = client(shop)
    everyone = api.get(
        "customers", params={"per_page": 100, "modified_after": "2100-01-01T00:00:00"}
    )
    assert len(everyone.json()) == len(shop.state.customers)  # ignored, as on a real store
    names = [f"{c['first_name']} {c['last_name']}".lower() for c in everyone.json()]
    assert names == sorted(names)
    one = next(iter(shop.state.customers.values()))
    found = api.get("customers", params={"email": one.email}).json()
    assert [c["id"] for c in found] == [int(one.id)]


def test_single_records_refunds_coupons_and_errors(shop: EmulatedShop) -> None:
    api = client(shop)
    refunded = next(o for o in shop.state.orders.values() if o.refunds)
    refunds = api.get(f"orders/{refunded.id}/refunds").json()
    assert {str(r["id"]) for r in refunds} == {r.id for r in refunded.refunds}
    order = api.get(f"orders/{refunded.id}").json()
    assert [r["total"].startswith("-") for r in order["refunds"]] == [True] * len(refunds)
    assert error(api.get("orders/1"))[:2] == (404, "woocommerce_rest_shop_order_invalid_id")
    assert error(api.get("customers/1"))[:2] == (404, "woocommerce_rest_invalid_id")
    assert error(api.get("nothing/here"))[:2] == (404, "rest_no_route")
    coupons = api.get("coupons").json()
    assert coupons and coupons[0]["code"] == coupons[0]["code"].lower()
    one = api.get(f"coupons/{coupons[0]['id']}").json()
    assert one["code"] == coupons[0]["code"]
    assert api.get("data/currencies/current").json()["code"] == "USD"


def test_corrupted_records_are_served_corrupted(shop: EmulatedShop) -> None:
    victim = sorted(shop.state.orders)[0]
    shop.faults.invalid_records.add(("orders", victim))
    try:
        body = client(shop).get(f"orders/{victim}").json()
    finally:
        shop.faults.invalid_records.discard(("orders", victim))
    assert body["date_created_gmt"] == "not-a-date" and body["total"] == "abc"


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_a_modified_window_pages_as_its_sorted_records(shop: EmulatedShop, order: str) -> None:
    """``orderby=modified`` with a modification window is served from a view of the sorted
    records (``_emu_rest._Window``), not a copy: page numbers, ``offset`` and the totals must
    still be those of the filtered, sorted list."""
    api = client(shop)
    stamps = sorted(o.updated_at.replace(microsecond=0) for o in shop.state.orders.values())
    lo, hi = stamps[len(stamps) // 5], stamps[4 * len(stamps) // 5]
    want = sorted(
        (o for o in shop.state.orders.values() if lo < o.updated_at.replace(microsecond=0) < hi),
        key=lambda o: (o.updated_at, int(o.id)),
        reverse=order == "desc",
    )
    params = {
        "orderby": "modified",
        "order": order,
        "dates_are_gmt": "true",
        "modified_after": lo.strftime("%Y-%m-%dT%H:%M:%S"),
        "modified_before": hi.strftime("%Y-%m-%dT%H:%M:%S"),
        "per_page": 7,
    }
    got, page = [], 1
    while True:
        response = api.get("orders", params={**params, "page": page})
        assert response.headers["X-WP-Total"] == str(len(want))
        got += [str(o["id"]) for o in response.json()]
        if page >= int(response.headers["X-WP-TotalPages"]):
            break
        page += 1
    assert got == [o.id for o in want]
    shifted = api.get("orders", params={**params, "offset": 5}).json()
    assert [str(o["id"]) for o in shifted] == [o.id for o in want[5:12]]
    beyond = api.get("orders", params={**params, "page": page + 1}).json()
    assert beyond == []


@pytest.mark.parametrize(("orderby", "order"), [("id", "asc"), ("date", "desc")])
def test_the_refunds_collection_pages_filters_and_sees_a_new_refund(
    orderby: str, order: str
) -> None:
    """``GET /refunds`` pages through every order's refunds, filtered by ``after`` and sorted
    as asked; its answer is cached per query, so a refund made in between must show."""
    with emulate("woocommerce", seed=9, customers=20, orders=150, products=8) as shop:
        api = client(shop)

        def expected(after: dt.datetime | None) -> list[str]:
            refunds = [r for o in shop.state.orders.values() for r in o.refunds]
            kept = [
                r for r in refunds if after is None or r.created_at.replace(microsecond=0) > after
            ]
            if orderby == "id":
                kept.sort(key=lambda r: int(r.id), reverse=order == "desc")
            else:
                kept.sort(
                    key=lambda r: (r.created_at.replace(microsecond=0), int(r.id)),
                    reverse=order == "desc",
                )
            return [r.id for r in kept]

        params = {"orderby": orderby, "order": order, "dates_are_gmt": "true"}
        listed = [str(r["id"]) for r in all_of(api, "refunds", per_page=2, **params)]
        assert listed == expected(None) and len(listed) > 4
        created = sorted(r.created_at for o in shop.state.orders.values() for r in o.refunds)
        pivot = created[len(created) // 2].replace(microsecond=0)
        later = {**params, "after": pivot.strftime("%Y-%m-%dT%H:%M:%S")}
        assert [str(r["id"]) for r in all_of(api, "refunds", per_page=2, **later)] == expected(
            pivot
        )
        paid = next(
            o
            for o in shop.state.orders.values()
            if not o.refunds and o.total.amount > 0 and o.financial_status == "paid"
        )
        shop.state.cancel_order(paid.id)
        fresh = [str(r["id"]) for r in all_of(api, "refunds", per_page=2, **params)]
        assert fresh == expected(None) and len(fresh) == len(listed) + 1
