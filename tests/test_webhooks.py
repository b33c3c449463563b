"""Webhook intake semantics, with a toy platform whose deliveries carry shared models as JSON.

The real Shopify and WooCommerce deliveries are tested in each adapter's own suite.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shopsync import webhooks
from shopsync.errors import ConfigurationError, SignatureError, WebhookError
from shopsync.models import Customer, Order
from shopsync.store import Store
from tests.fakes import installed
from tests.test_models import order
from tests.test_store import customer, later

SECRET = "whsec_toy_secret"
SHOP = "acme.myshopify.com"

TOY = """
import base64, hashlib, hmac, json
from shopsync.adapter import Deletion, WebhookEvent, WebhookParser
from shopsync.errors import SignatureError, WebhookError
from shopsync.models import Customer, Order

class Undeclared:
    platform = "undeclared"

    @staticmethod
    def parse_webhook(headers, raw_body, secret):
        raise AssertionError("never called: the class does not declare WebhookParser")

class ToyAdapter(WebhookParser):
    platform = "toy"

    @staticmethod
    def parse_webhook(headers, raw_body, secret):
        digest = hmac.new(secret.encode(), raw_body, hashlib.sha256).digest()
        expected = base64.b64encode(digest).decode()
        if not hmac.compare_digest(headers.get("x-toy-hmac", ""), expected):
            raise SignatureError("bad toy signature")
        try:
            doc = json.loads(raw_body)
        except ValueError:
            raise WebhookError("body is not JSON")
        return WebhookEvent(
            topic=doc["topic"],
            shop=doc["shop"],
            delivery_id=headers.get("x-toy-delivery"),
            records=[Order.model_validate(o) for o in doc.get("orders", [])]
            + [Customer.model_validate(c) for c in doc.get("customers", [])],
            deleted=[Deletion("orders", i, T) for i in doc.get("deleted", [])],
            redact_customer=doc.get("redact"),
            data_request_customer=doc.get("data_request"),
            redact_shop=doc.get("redact_shop", False),
            ping=doc.get("ping", False),
        )

import datetime
T = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
"""


@pytest.fixture(autouse=True)
def toy_platform(tmp_path: Path) -> Iterator[None]:
    """Register the toy adapter as the 'toy' platform through a fake distribution."""
    with installed(
        tmp_path,
        "shopsync_toy",
        TOY,
        {
            "shopsync.adapters": {
                "toy": "shopsync_toy:ToyAdapter",
                "undeclared": "shopsync_toy:Undeclared",
            }
        },
    ):
        yield


def delivery(
    doc: dict[str, Any], delivery_id: str = "d-1", secret: str = SECRET
) -> tuple[dict[str, str], bytes]:
    body = json.dumps(doc).encode()
    sig = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return {"X-Toy-Hmac": sig, "X-Toy-Delivery": delivery_id}, body


def order_doc(**changes: Any) -> dict[str, Any]:
    return order(platform="toy", customer_id="7", **changes).model_dump(mode="json")


def deliver(
    store: Store, doc: dict[str, Any], delivery_id: str = "d-1", now: dt.datetime | None = None
) -> webhooks.WebhookResult:
    headers, body = delivery(doc, delivery_id)
    return webhooks.handle("toy", headers, body, store, SECRET, shops={SHOP}, now=now)


def call_app(
    app: webhooks.WSGIApp, platform: str, headers: dict[str, str], body: bytes
) -> tuple[str, list[tuple[str, str]], bytes]:
    """POST ``body`` to ``app``'s endpoint for ``platform`` in-process: status, headers, body."""
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": f"/webhooks/{platform}",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()},
    }
    answered: list[tuple[str, list[tuple[str, str]]]] = []
    out = b"".join(app(environ, lambda s, h: answered.append((s, h))))
    return answered[0][0], answered[0][1], out


def test_an_adapter_that_does_not_declare_webhooks_takes_none(store: Store) -> None:
    headers, body = delivery({"topic": "orders/create", "shop": SHOP})
    with pytest.raises(ConfigurationError, match="does not take webhooks"):
        webhooks.handle("undeclared", headers, body, store, SECRET, shops={SHOP})


def test_a_delivery_is_applied_through_the_upsert_path(store: Store) -> None:
    result = deliver(store, {"topic": "orders/create", "shop": SHOP, "orders": [order_doc()]})
    assert (result.status, result.upserted.inserted, result.customer_ids) == ("applied", 1, ("7",))
    assert store.get(Order, "toy", SHOP, "1001") == order(platform="toy", customer_id="7")


def test_a_retried_delivery_is_applied_once(store: Store) -> None:
    doc = {"topic": "orders/create", "shop": SHOP, "orders": [order_doc()]}
    assert deliver(store, doc).status == "applied"
    assert deliver(store, doc).status == "duplicate"


def test_an_older_version_never_overwrites_a_newer_one(store: Store) -> None:
    deliver(
        store,
        {
            "topic": "orders/updated",
            "shop": SHOP,
            "orders": [order_doc(updated_at=later(9), name="v2")],
        },
        "a",
    )
    result = deliver(
        store, {"topic": "orders/updated", "shop": SHOP, "orders": [order_doc(name="v1")]}, "b"
    )
    assert result.upserted.stale == 1
    stored = store.get(Order, "toy", SHOP, "1001")
    assert stored is not None and stored.name == "v2"


@pytest.mark.parametrize("tamper", ["wrong-secret", "body", "missing"])
def test_a_bad_signature_stores_nothing(store: Store, tamper: str) -> None:
    headers, body = delivery(
        {"topic": "orders/create", "shop": SHOP, "orders": [order_doc()]},
        secret="other" if tamper == "wrong-secret" else SECRET,
    )
    if tamper == "body":
        body = body.replace(b"1001", b"1002")
    if tamper == "missing":
        headers.pop("X-Toy-Hmac")
    with pytest.raises(SignatureError):
        webhooks.handle("toy", headers, body, store, SECRET, shops={SHOP})
    assert store.count(Order, "toy", SHOP) == 0


def test_unknown_shops_and_huge_bodies_are_refused(store: Store) -> None:
    headers, body = delivery({"topic": "orders/create", "shop": "evil.myshopify.com", "orders": []})
    with pytest.raises(WebhookError, match="does not serve"):
        webhooks.handle("toy", headers, body, store, SECRET)
    with pytest.raises(WebhookError, match="exceeds"):
        webhooks.handle("toy", headers, b"x" * 101, store, SECRET, shops={SHOP}, max_body=100)


def test_a_shop_the_store_knows_is_accepted_without_listing_it(store: Store) -> None:
    store.upsert([customer(platform="toy")])
    headers, body = delivery({"topic": "customers/update", "shop": SHOP, "customers": []})
    assert webhooks.handle("toy", headers, body, store, SECRET).status == "applied"


def test_deletions_and_pings(store: Store) -> None:
    deliver(store, {"topic": "orders/create", "shop": SHOP, "orders": [order_doc()]}, "a")
    result = deliver(store, {"topic": "orders/delete", "shop": SHOP, "deleted": ["1001"]}, "b")
    assert result.deleted == 1 and store.get(Order, "toy", SHOP, "1001") is None
    assert deliver(store, {"topic": "ping", "shop": SHOP, "ping": True}, "c").status == "ping"


def test_gdpr_redact_erases_personal_data_and_keeps_orders(store: Store) -> None:
    deliver(
        store,
        {
            "topic": "x",
            "shop": SHOP,
            "customers": [
                customer(platform="toy", email="ann@example.com").model_dump(mode="json")
            ],
            "orders": [order_doc(email="ann@example.com", billing_address={"city": "Oslo"})],
        },
        "a",
    )
    store.quarantine("toy", SHOP, [webhooks_rejected('{"email": "Ann@Example.COM"}')])
    store.quarantine("toy", SHOP, [webhooks_rejected('{"email": "bob@example.com"}', "8")])
    export = deliver(
        store, {"topic": "customers/data_request", "shop": SHOP, "data_request": "7"}, "b"
    ).export
    assert export is not None and export["customer"]["email"] == "ann@example.com"
    assert [o["id"] for o in export["orders"]] == ["1001"]
    deliver(store, {"topic": "customers/redact", "shop": SHOP, "redact": "7"}, "c")
    assert store.get(Customer, "toy", SHOP, "7") is None
    kept = store.get(Order, "toy", SHOP, "1001")
    assert kept is not None and kept.email is None and kept.billing_address is None
    assert [q.record_id for q in store.quarantined()] == ["8"]
    assert store.consent_history("toy", SHOP, "7") == []


def test_gdpr_shop_redact_removes_the_shop(store: Store) -> None:
    deliver(store, {"topic": "x", "shop": SHOP, "orders": [order_doc()]}, "a")
    removal = {"topic": "shop/redact", "shop": SHOP, "redact_shop": True}
    # Deliveries just arrived: the shop is installed, so a removal now is a replay.
    with pytest.raises(WebhookError, match="active"):
        deliver(store, removal, "b")
    assert ("toy", SHOP) in store.shops()
    later = dt.datetime.now(dt.timezone.utc) + webhooks.ACTIVE_WINDOW + dt.timedelta(hours=1)
    deliver(store, removal, "b", now=later)
    assert ("toy", SHOP) not in store.shops()


def test_a_deletion_is_never_dated_after_its_receipt(store: Store) -> None:
    deliver(store, {"topic": "x", "shop": SHOP, "orders": [order_doc()]}, "a")
    # The toy platform dates its deletions 2024-01-01: later than this receipt.
    received = dt.datetime(2023, 6, 1, tzinfo=dt.timezone.utc)
    deliver(store, {"topic": "orders/delete", "shop": SHOP, "deleted": ["1001"]}, "b", received)
    (mark,) = store.tombstones("toy", SHOP)
    assert (mark.resource, mark.record_id, mark.reason, mark.at) == (
        "orders",
        "1001",
        "deleted",
        received,
    )
    assert store.lift_tombstones("toy", SHOP, "orders", ["1001"]) == 1


def webhooks_rejected(raw: str, record_id: str = "7") -> Any:
    from shopsync.adapter import Rejected

    return Rejected("customers", record_id, raw, "bad")


class TestWsgiApp:
    def call(
        self, app: Any, path: str, headers: dict[str, str], body: bytes, method: str = "POST"
    ) -> tuple[str, dict[str, Any]]:
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": "application/json",
            "wsgi.input": io.BytesIO(body),
            **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()},
        }
        status: list[str] = []
        out = b"".join(app(environ, lambda s, h: status.append(s)))
        return status[0], json.loads(out)

    def test_statuses(self, store: Store) -> None:
        seen: list[webhooks.WebhookResult] = []
        app = webhooks.wsgi_app(
            store, {"toy": SECRET}, shops={SHOP}, max_body=10_000, on_result=seen.append
        )
        headers, body = delivery({"topic": "orders/create", "shop": SHOP, "orders": [order_doc()]})
        assert self.call(app, "/webhooks/toy", headers, body) == ("200 OK", {"status": "applied"})
        assert self.call(app, "/webhooks/toy", headers, body) == ("200 OK", {"status": "duplicate"})
        assert (
            self.call(app, "/webhooks/toy", {**headers, "X-Toy-Hmac": "Zm9v"}, body)[0]
            == "401 Unauthorized"
        )
        assert self.call(app, "/webhooks/nope", headers, body)[0] == "404 Not Found"
        assert (
            self.call(app, "/webhooks/toy", headers, body, method="GET")[0]
            == "405 Method Not Allowed"
        )
        assert self.call(app, "/webhooks/toy", headers, b"x" * 10_001)[0] == "413 Payload Too Large"
        h2, _ = delivery({}, "z")
        bad = b"not json"
        sig = base64.b64encode(hmac.new(SECRET.encode(), bad, hashlib.sha256).digest()).decode()
        assert (
            self.call(app, "/webhooks/toy", {**h2, "X-Toy-Hmac": sig}, bad)[0] == "400 Bad Request"
        )
        assert [r.status for r in seen] == ["applied", "duplicate"]


def test_compliance_deliveries_are_no_sign_that_a_shop_is_installed(store: Store) -> None:
    """Shopify sends the compliance topics after the uninstall too (they are the app's, not
    the shop's subscriptions): an erasure just before shop/redact must not block it."""
    store.shop_id("toy", SHOP)
    for n, topic in enumerate(("customers/redact", "customers/data_request", "shop/redact")):
        assert store.record_delivery("toy", SHOP, f"c-{n}", topic)
    assert store.last_activity("toy", SHOP) is None
    assert store.record_delivery("toy", SHOP, "o-1", "orders/updated")
    assert store.last_activity("toy", SHOP) is not None


@pytest.mark.parametrize("failure", ["store", "sqlalchemy"])
def test_a_store_error_answers_503_with_retry_after_not_a_500(
    store: Store, failure: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # issue 16 item 3: the platform retries a 503; a 500 with a stack helps nobody.
    from sqlalchemy.exc import OperationalError

    from shopsync.errors import StoreError

    def broken(*_: Any, **__: Any) -> Any:
        if failure == "store":
            raise StoreError("upsert rolled back: database is locked")
        raise OperationalError("INSERT ...", {}, Exception("database is locked"))

    monkeypatch.setattr(store, "record_delivery", broken)
    app = webhooks.wsgi_app(store, {"toy": SECRET}, shops={SHOP})
    headers, body = delivery({"topic": "orders/create", "shop": SHOP, "orders": [order_doc()]})
    status, sent, out = call_app(app, "toy", headers, body)
    assert status == "503 Service Unavailable"
    assert dict(sent)["Retry-After"].isdigit()
    assert "Traceback" not in out.decode() and "INSERT" not in out.decode()


def test_an_app_finds_each_platform_s_parser_once_not_per_delivery(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Reading the installed entry points took 14 ms a delivery (issue 19: webhook to action
    # at 1M customers); an app resolves its platform's parser on the first delivery only.
    looked_up: list[str] = []
    find = webhooks.adapter_class

    def counting(name: str) -> Any:
        looked_up.append(name)
        return find(name)

    monkeypatch.setattr(webhooks, "adapter_class", counting)
    app = webhooks.wsgi_app(store, {"toy": SECRET, "undeclared": SECRET}, shops={SHOP})

    def post(platform: str, n: int) -> str:
        doc = {"topic": "orders/create", "shop": SHOP, "orders": [order_doc(tags=[f"t{n}"])]}
        headers, body = delivery(doc, f"d-{platform}-{n}")
        return call_app(app, platform, headers, body)[0]

    assert [post("toy", n) for n in range(3)] == ["200 OK"] * 3
    assert looked_up == ["toy"]
    # a platform whose adapter takes no webhooks is refused each time, and looked up again
    with pytest.raises(ConfigurationError, match="does not take webhooks"):
        post("undeclared", 0)
    with pytest.raises(ConfigurationError, match="does not take webhooks"):
        post("undeclared", 1)
    assert looked_up == ["toy", "undeclared", "undeclared"]


TOY2 = """
from shopsync_toy import ToyAdapter

class Toy2Adapter(ToyAdapter):
    platform = "toy2"

    @staticmethod
    def parse_webhook(headers, raw_body, secret):
        headers = {**headers, "x-toy-hmac": headers.get("x-toy2-hmac", "")}
        return ToyAdapter.parse_webhook(headers, raw_body, secret)
"""


def test_an_app_serving_two_platforms_parses_each_with_its_own_parser_and_secret(
    store: Store, tmp_path: Path
) -> None:
    """Each platform's parser is kept under its own name: a delivery signed for one platform
    is refused at the other's endpoint, whichever was delivered to first."""
    (tmp_path / "two").mkdir()
    with installed(
        tmp_path / "two",
        "shopsync_toy2",
        TOY2,
        {"shopsync.adapters": {"toy2": "shopsync_toy2:Toy2Adapter"}},
    ):
        other = "whsec_toy2_secret"
        app = webhooks.wsgi_app(store, {"toy": SECRET, "toy2": other}, shops={SHOP})

        def post(platform: str, n: int, secret: str, header: str) -> str:
            doc = {"topic": "orders/create", "shop": SHOP, "orders": [order_doc(tags=[f"t{n}"])]}
            signed, body = delivery(doc, f"d-{platform}-{n}", secret)
            signed[header] = signed.pop("X-Toy-Hmac")
            return call_app(app, platform, signed, body)[0]

        assert post("toy2", 0, other, "X-Toy2-Hmac") == "200 OK"
        assert post("toy", 1, SECRET, "X-Toy-Hmac") == "200 OK"
        assert post("toy", 2, SECRET, "X-Toy2-Hmac") == "401 Unauthorized"  # toy's parser
        assert post("toy2", 3, SECRET, "X-Toy2-Hmac") == "401 Unauthorized"  # toy2's secret
        assert post("toy2", 4, other, "X-Toy-Hmac") == "401 Unauthorized"  # toy2's parser
        assert post("toy2", 5, other, "X-Toy2-Hmac") == "200 OK"
