"""No access token, consumer secret, webhook secret or SMTP password escapes.

Sync (both platforms), webhook intake and apply (email with SMTP AUTH, a signed webhook sink)
run with every logger at DEBUG (urllib3's request lines included); every repr of an adapter,
sink and store, and the text of errors provoked on purpose (a wrong token, a forged delivery,
a refused SMTP login), are collected with everything pytest captured, and searched for the
secrets.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from shopsync_shopify.webhooks import sign

from shopsync import webhooks
from shopsync.errors import ShopSyncError
from shopsync.outbox import apply, list_outbox
from shopsync.sinks import Brand, Email, Webhook
from shopsync.store import Store
from shopsync.sync import sync
from tests.apply.helpers import NOW, Receiver, customer, nudge, smtp_server
from tests.sync.emulated import connect, emulated

WEBHOOK_SECRET = "whsec_8f3kQz1LmW0pXc7Rt2Yb"
SMTP_PASSWORD = "smtp-pw-Hq4Zr9Tn2Vx6"
SIGNING_SECRET = "sink-sign-Jd8Kp3Wq5Ls7"
UNSUBSCRIBE_SECRET = "unsub-Gm2Xc9Bv4Nz1"


def test_no_secret_appears_in_logs_reprs_errors_or_output(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: shopsync, urllib3, requests...
    for name in ("urllib3", "requests", "shopsync"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    seen: list[str] = []
    secrets = [WEBHOOK_SECRET, SMTP_PASSWORD, SIGNING_SECRET, UNSUBSCRIBE_SECRET]
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    seen.append(repr(store))

    for platform in ("shopify", "woocommerce"):
        with emulated(platform, seed=3, customers=6, orders=12, products=3) as shop:
            settings = shop.settings
            secrets += [
                str(settings[k]) for k in ("access_token", "consumer_secret") if k in settings
            ]
            adapter = connect(shop)
            seen += [repr(adapter), str(vars(adapter))]
            seen.append(repr(sync(adapter, store)))
            wrong = dict(settings)
            for key in ("access_token", "consumer_secret"):
                if key in wrong:
                    wrong[key] = wrong[key][:-4] + "XXXX"
                    secrets.append(wrong[key])
            bad = connect(
                shop, **{k: wrong[k] for k in ("access_token", "consumer_secret") if k in wrong}
            )
            with pytest.raises(ShopSyncError) as failed:
                next(iter(bad.read_customers()))
            seen += [str(failed.value), repr(failed.value), repr(bad)]

    # Webhook intake: an accepted and a forged delivery.
    order = json.dumps({"id": 1, "currency": "USD"}).encode()
    for signature in (sign(WEBHOOK_SECRET, order), sign("wrong-secret", order)):
        headers = {
            "X-Shopify-Topic": "orders/updated",
            "X-Shopify-Shop-Domain": "emulated-3.myshopify.com",
            "X-Shopify-Webhook-Id": f"w-{signature[:6]}",
            "X-Shopify-Hmac-Sha256": signature,
        }
        try:
            seen.append(repr(webhooks.handle("shopify", headers, order, store, WEBHOOK_SECRET)))
        except ShopSyncError as exc:
            seen += [str(exc), repr(exc)]

    # Apply: email with SMTP AUTH (right and wrong password) and a signed webhook sink.
    store.upsert([customer("1"), customer("2")])
    brand = Brand(name="Acme", address="1 Main St, Springfield", url="https://acme.example")
    with smtp_server(auth=("shop@acme.example", SMTP_PASSWORD)) as server, Receiver() as hook:
        sinks = []
        for n, password in enumerate((SMTP_PASSWORD, SMTP_PASSWORD[::-1])):
            secrets.append(password)
            sinks.append(
                Email(
                    "127.0.0.1",
                    server.port,
                    sender="shop@acme.example",
                    brand=brand,
                    username="shop@acme.example",
                    password=password,
                    security="none",
                    unsubscribe_url="https://acme.example/unsubscribe",
                    unsubscribe_secret=UNSUBSCRIBE_SECRET,
                    name=f"email-{n}",
                )
            )
        sinks.append(Webhook(hook.url, SIGNING_SECRET))
        report = apply([nudge("1"), nudge("2", 2)], store, sinks, now=NOW)
        for sink in sinks:
            seen += [repr(sink), str(getattr(sink, "__dict__", ""))]
            sink.close()
    seen += [repr(report), repr(list_outbox(store))]
    assert report.delivered >= 4, list_outbox(store)  # email-0 and the webhook, twice
    assert any("auth" in (row.reason or "").lower() for row in list_outbox(store))

    out, err = capfd.readouterr()
    haystack = "\n".join([*seen, caplog.text, out, err])
    assert "127.0.0.1" in caplog.text  # the HTTP debug lines were captured
    leaked = [s for s in set(secrets) if s and s in haystack]
    assert leaked == [], f"secrets leaked: {leaked}"
