"""SQL, HTML and template syntax in customer data is stored exactly and rendered inert.

Hostile names, tags and emails go into an emulated shop, are synced over HTTP, and must come
back from the store byte for byte (bound parameters everywhere), be escaped in the email's
HTML and never evaluated by its templates, and reach JSON Lines and CSV files inert (no
spreadsheet formula). File sinks refuse paths that lead outside their directory.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
from pathlib import Path

import pytest
from sqlalchemy import inspect

from shopsync.errors import ConfigurationError
from shopsync.models import Customer, Order
from shopsync.outbox import apply
from shopsync.sinks import Brand, Csv, Email, JsonLines
from shopsync.sinks._base import Cancelled, DeliveryContext
from shopsync.store import Store
from shopsync.sync import sync
from tests.apply.helpers import NOW, nudge
from tests.sync.emulated import connect, emulated

PAYLOADS = [
    "'); DROP TABLE customers;--",
    "<script>alert(1)</script>",
    "{{ 7*7 }}",
    "{% raw %}",
    "${7*7}",
    '=HYPERLINK("http://evil.example","x")',
    "+1+1",
    "@SUM(1+1)",
    "-2+3",
]
HOSTILE_EMAIL = "o'neil);drop-table--{{7*7}}@example.com"
"""Valid for the store (one @, no space), not for a mail header: the email sink cancels it."""
MAILABLE_EMAIL = "o'neil--{{7*7}}${7*7}@example.com"


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_hostile_text_is_synced_and_stored_exactly(platform: str, store: Store) -> None:
    with emulated(platform, seed=4, customers=3, orders=6, products=2) as shop:
        added = [
            shop.state.add_customer(
                first_name=text, last_name=text[::-1], tags=(text.replace(",", ";"),)
            )
            for text in PAYLOADS
        ]
        added.append(shop.state.add_customer(first_name="Plain", email=HOSTILE_EMAIL))
        order_id = sorted(shop.state.orders)[0]
        shop.state.update_order(order_id, tags=tuple(p.replace(",", ";") for p in PAYLOADS[:5]))
        adapter = connect(shop)
        sync(adapter, store)
        for customer in added:
            stored = store.get(Customer, platform, adapter.shop, customer.id)
            assert stored is not None
            assert (stored.first_name, stored.last_name, stored.email, stored.tags) == (
                customer.first_name,
                customer.last_name,
                customer.email,
                customer.tags,
            )
        stored_order = store.get(Order, platform, adapter.shop, order_id)
        assert stored_order is not None and stored_order.tags == shop.state.orders[order_id].tags
    assert {"customers", "orders"} <= set(inspect(store.engine).get_table_names())
    assert store.count(Customer, platform, adapter.shop) == 3 + len(added)


def _customer(text: str, email: str = MAILABLE_EMAIL) -> Customer:
    return Customer(
        platform="shopify",
        shop="acme.myshopify.com",
        id="1",
        email=email,
        first_name=text,
        last_name="O'Brien & Co",
        created_at=NOW - dt.timedelta(days=300),
        updated_at=NOW - dt.timedelta(days=3),
        consent={"email": {"state": "subscribed"}},
    )


@pytest.mark.parametrize("text", PAYLOADS)
def test_emails_escape_and_never_evaluate(text: str, tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    customer = _customer(text)
    store.upsert([customer])
    sink = Email(
        "127.0.0.1",
        1,
        sender="shop@acme.example",
        brand=Brand(name="Acme", address="1 Main St, Springfield", url="https://acme.example"),
        security="none",
        unsubscribe_url="https://acme.example/unsubscribe",
        unsubscribe_secret="unsubscribe-secret-for-injection",
    )
    action = nudge("1", reason=f"because {text}", facts={"note": text, "days_since_order": 90})
    message = sink.build(action, DeliveryContext(store, customer, NOW))
    html = message.get_body(("html",)).get_content()
    plain = message.get_body(("plain",)).get_content()
    assert "<script>" not in html
    if "<" in text:
        assert "&lt;script&gt;" in html
    if "{" in text:
        assert text in plain, "template syntax in the data must be printed, not run"
    assert "49" not in plain.replace(action.idempotency_key, "")
    assert "\r" not in str(message["To"]) and "\n" not in str(message["To"])


@pytest.mark.parametrize(
    ("name", "email"),
    [("Ann\r\nBcc: victim@evil.example", MAILABLE_EMAIL), ("Ann", HOSTILE_EMAIL)],
)
def test_what_cannot_go_in_a_mail_header_is_cancelled(
    name: str, email: str, tmp_path: Path
) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    customer = _customer(name, email)
    store.upsert([customer])
    sink = Email(
        "127.0.0.1",
        1,
        sender="shop@acme.example",
        brand=Brand(name="Acme", address="1 Main St, Springfield", url="https://acme.example"),
        security="none",
        unsubscribe_url="https://acme.example/unsubscribe",
        unsubscribe_secret="unsubscribe-secret-for-injection",
    )
    with pytest.raises(Cancelled, match="To header") as caught:
        sink.build(nudge("1"), DeliveryContext(store, customer, NOW))
    assert email not in str(caught.value) and "victim" not in str(caught.value)


def test_file_sinks_write_hostile_values_inert(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    store.upsert([_customer("Ann")])
    actions = [
        nudge("1", n, reason=text, facts={"note": text}) for n, text in enumerate(PAYLOADS, 1)
    ]
    jsonl = JsonLines("out.jsonl", root=tmp_path)
    table = Csv("out.csv", root=tmp_path, columns=("kind", "reason", "note"))
    report = apply(actions, store, [jsonl, table], now=NOW)
    assert report.delivered == 2 * len(PAYLOADS)
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [line["reason"] for line in lines] == PAYLOADS
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(PAYLOADS)
    for row, text in zip(rows, PAYLOADS, strict=True):
        for cell in (row["reason"], row["note"]):
            formula = text.startswith(("=", "+", "-", "@"))
            assert cell == ("'" + text if formula else text)


def test_file_sinks_refuse_paths_outside_their_directory(tmp_path: Path) -> None:
    root = tmp_path / "exports"
    outside = tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside)
    (root / "file-link.jsonl").symlink_to(outside / "x.jsonl")
    for path in ("../escape.jsonl", str(outside / "abs.jsonl"), "link/x.jsonl", "file-link.jsonl"):
        for sink in (JsonLines, Csv):
            with pytest.raises(ConfigurationError, match="outside"):
                sink(path, root=root)
    # A symlink swapped in after the sink was built is refused at write time.
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    store.upsert([_customer("Ann")])
    sink = JsonLines("late.jsonl", root=root)
    os.symlink(outside / "late.jsonl", root / "late.jsonl")
    report = apply([nudge("1")], store, [sink], now=NOW)
    assert report.delivered == 0
    assert not (outside / "late.jsonl").exists()
