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
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
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


# --------------------------------------------------------------------------- issue 16 item 10

QUERY_PASSWORD = "pw-in-query-Zx81Lq"
PASSWORD_URLS = [
    f"postgresql+psycopg://shopsync@127.0.0.1:1/db?password={QUERY_PASSWORD}",
    f"postgresql+psycopg://shopsync@127.0.0.1:1/db?sslmode=disable&PASSWORD={QUERY_PASSWORD}",
    f"postgresql+psycopg://shopsync@127.0.0.1:1/db?sslpassword={QUERY_PASSWORD}",
    f"postgresql+psycopg://shopsync:{QUERY_PASSWORD}@127.0.0.1:1/db",
]


@pytest.mark.parametrize("url", PASSWORD_URLS)
def test_a_store_url_holding_a_password_is_refused_by_config_and_cli(
    url: str, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from shopsync.cli import app
    from shopsync.config import load_config

    config = tmp_path / "shopsync.toml"
    config.write_text(f'[store]\nurl = "{url}"\n', encoding="utf-8")
    with pytest.raises(ShopSyncError) as refused:
        load_config(config)
    assert "password" in str(refused.value) and QUERY_PASSWORD not in str(refused.value)
    result = CliRunner().invoke(app, ["outbox", "list", "--db", url])
    assert result.exit_code != 0
    assert "password" in result.output and "env:" in result.output
    assert QUERY_PASSWORD not in result.output


def test_the_cli_reads_a_store_url_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from shopsync.cli import app

    db = tmp_path / "store.db"
    Store(f"sqlite:///{db}").close()
    monkeypatch.setenv("TEST_STORE_URL", f"sqlite:///{db}")
    result = CliRunner().invoke(app, ["outbox", "list", "--db", "env:TEST_STORE_URL"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("url", PASSWORD_URLS)
def test_repr_of_a_store_never_shows_a_password(url: str) -> None:
    store = Store(url, migrate=False)  # nothing connects before the first query
    try:
        assert QUERY_PASSWORD not in repr(store) and QUERY_PASSWORD not in str(store)
        assert "127.0.0.1" in repr(store)
    finally:
        store.close()


def test_a_store_error_never_shows_a_query_password() -> None:
    with pytest.raises(ShopSyncError) as failed:
        Store(f"nosuchdialect://u@h/db?password={QUERY_PASSWORD}")
    assert QUERY_PASSWORD not in str(failed.value)


_HEADER_VALUES = st.one_of(
    st.none(),
    st.text(),
    st.binary(),
    st.integers(),
    st.text(alphabet=string.ascii_letters + string.digits + "+/=", max_size=64),
    st.builds(lambda s: "sha256=" + s, st.text()),
)


@settings(max_examples=300, derandomize=True, database=None)
@given(header=_HEADER_VALUES, body=st.binary(max_size=64))
def test_signature_checks_answer_false_and_never_raise_on_any_header(
    header: object, body: bytes
) -> None:
    from shopsync_shopify.webhooks import verify as shopify_verify
    from shopsync_woocommerce.webhooks import verify as woo_verify

    from shopsync.sinks.webhook import verify_signature

    secret = "whsec_property_secret_0001"
    for check in (shopify_verify, woo_verify, verify_signature):
        assert check(secret, body, header) is False  # type: ignore[arg-type]
