"""Revision 0020 (issue 22 follow-up): Shopify checkouts a webhook stored under a digest of
their token are re-keyed by their recovery link's segment (the cart token), as a sync page
keys them, with their reminders; the token's digest is kept in ``token_key``; a checkout
held twice (once by a webhook, once by a sync) becomes one row, the newer, with one reminder
key. Built like revision 0018's tests (tests/store/test_checkout_token_migration.py)."""

from __future__ import annotations

import datetime as dt
import json
from importlib import import_module
from typing import Any

import pytest
from shopsync_shopify._checkouts import checkout_key, recovery_segment
from sqlalchemy import inspect, text

from shopsync.store import Store
from shopsync.store._rows import from_micros as read_micros
from shopsync.store.checkout_rows import read_checkouts
from shopsync.testing._checkouts import cart_token, recovery_url

SHOP = "both.myshopify.com"
TOKEN = "5f0c1e2d3b4a69788796a5b4c3d2e1f0"
CART = cart_token(dt.datetime(2026, 11, 30, tzinfo=dt.timezone.utc), 7)
URL = recovery_url(SHOP, CART, "6dacd6065bb80268bda857ee")
T = 1_764_000_000_000_000  # micros
MIGRATION = "shopsync.store.migrations.versions.0020_checkout_cart_keys"


def _checkout(conn: Any, cid: str, url: str | None, updated: int, done: int | None) -> None:
    conn.execute(
        text(
            "INSERT INTO checkouts (shop_id, id, customer_id, email, created_at, updated_at,"
            " completed_at, recovery_url, currency, subtotal, total, lines)"
            " VALUES (1, :i, '7', :e, :t, :u, :d, :url, 'USD', 100000, 100000, '[]')"
        ),
        {"i": cid, "e": f"{cid[:6]}@x.test", "t": T, "u": updated, "d": done, "url": url},
    )


def _outbox(conn: Any, cid: str, status: str, stage: str = "stage1") -> None:
    key = f"abandoned_checkout:{SHOP}:{cid}:{stage}"
    action = {
        "kind": "abandoned_checkout",
        "idempotency_key": key,
        "checkout_id": cid,
        "facts": {"checkout_id": cid, "total": "10.00"},
    }
    conn.execute(
        text(
            "INSERT INTO outbox (shop_id, idempotency_key, sink, stage, kind, customer_id,"
            " marketing, model, action, status, attempts, due_at, next_attempt_at, created_at,"
            " updated_at) VALUES (1, :k, 'email', 0, 'abandoned_checkout', '7', 1, 'm', :a,"
            " :st, 1, :t, :t, :t, :t)"
        ),
        {"k": key, "a": json.dumps(action), "st": status, "t": T},
    )


def _woocommerce_checkout(conn: Any) -> None:
    """A WooCommerce checkout (its order id), which no Shopify revision may touch."""
    conn.execute(
        text(
            "INSERT INTO checkouts (shop_id, id, created_at, updated_at, recovery_url,"
            " currency, subtotal, total, lines) VALUES (2, '55', :t, :t,"
            " 'https://w.example/checkout/order-pay/55/', 'USD', 1, 1, '[]')"
        ),
        {"t": T},
    )


def _old_store(store_url: str) -> Store:
    old = Store(store_url, migrate=False)
    old.migrate("0019")
    with old.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO shops (shop_id, platform, shop, created_at)"
                " VALUES (1, 'shopify', :s, 0), (2, 'woocommerce', 'w.example', 0)"
            ),
            {"s": SHOP},
        )
    return old


def _outbox_rows(store: Store) -> list[Any]:
    with store.engine.connect() as conn:
        return list(
            conn.execute(
                text("SELECT idempotency_key, status, action FROM outbox ORDER BY id")
            ).all()
        )


def _action(row: Any) -> dict[str, Any]:
    return row.action if isinstance(row.action, dict) else json.loads(row.action)


@pytest.mark.parametrize("newer", ["webhook", "sync"])
def test_a_checkout_held_twice_ends_as_one_row_with_one_reminder_key(
    store_url: str, newer: str
) -> None:
    """The webhook's copy (under the token's digest) and the sync's (under the cart token's)
    become one row under the cart token's key: the newer's fields, the completion either
    held (the older's here), the token's digest. Each copy had a stage-1 reminder: the
    sync's keeps its key; the webhook's cannot take it (cancelled, since not settled) and
    keeps its old one, so the planner sees one reminder of the checkout."""
    old = _old_store(store_url)
    by_token, by_cart = checkout_key(TOKEN), checkout_key(CART)
    late, early = (by_token, by_cart) if newer == "webhook" else (by_cart, by_token)
    with old.engine.begin() as conn:
        _checkout(conn, late, URL, T + 9, None)
        _checkout(conn, early, URL, T + 5, T + 5)
        _outbox(conn, by_cart, "done")
        _outbox(conn, by_token, "pending")
    old.close()

    store = Store(store_url)
    assert store.schema_version() == Store.head_version()
    (kept,) = read_checkouts(store, "shopify", SHOP)
    assert kept.id == by_cart and kept.token_key == by_token
    assert kept.email == f"{late[:6]}@x.test"  # the newer copy's fields
    assert kept.updated_at == read_micros(T + 9)
    assert kept.completed_at == read_micros(T + 5)
    rows = _outbox_rows(store)
    ours = [r for r in rows if by_cart in r.idempotency_key]
    assert [(r.idempotency_key, r.status) for r in ours] == [
        (f"abandoned_checkout:{SHOP}:{by_cart}:stage1", "done")
    ]
    assert [r.status for r in rows if by_token in r.idempotency_key] == ["cancelled"]
    store.close()


def test_a_webhook_row_is_re_keyed_with_its_reminders_and_others_keep_theirs(
    store_url: str,
) -> None:
    old = _old_store(store_url)
    by_token = checkout_key(TOKEN)
    older_form = f"https://{SHOP}/checkouts/{'e' * 32}/recover?key=k"  # names the token
    with old.engine.begin() as conn:
        _checkout(conn, by_token, URL, T + 9, None)
        _outbox(conn, by_token, "done")
        _outbox(conn, by_token, "pending", "stage2")
        _checkout(conn, checkout_key("e" * 32), older_form, T, None)
        _checkout(conn, checkout_key("f" * 32), None, T, None)  # a webhook's, no link
        _checkout(conn, "123", "https://old.example/no-token-here", T, None)
        _woocommerce_checkout(conn)
    old.close()

    store = Store(store_url)
    held = {c.id: c.token_key for c in read_checkouts(store, "shopify", SHOP)}
    assert held == {
        checkout_key(CART): by_token,
        checkout_key("e" * 32): checkout_key("e" * 32),
        checkout_key("f" * 32): checkout_key("f" * 32),
        "123": None,
    }
    assert [c.id for c in read_checkouts(store, "woocommerce", "w.example")] == ["55"]
    rows = _outbox_rows(store)
    new = checkout_key(CART)
    assert [(r.idempotency_key, r.status) for r in rows] == [
        (f"abandoned_checkout:{SHOP}:{new}:stage1", "done"),
        (f"abandoned_checkout:{SHOP}:{new}:stage2", "cancelled"),
    ]
    for r in rows:
        action = _action(r)
        assert action["checkout_id"] == new and action["facts"]["checkout_id"] == new
        assert action["idempotency_key"] == r.idempotency_key
    store.close()


def test_the_migration_keys_as_the_adapter_does() -> None:
    module = import_module(MIGRATION)
    for token in (TOKEN, CART, "c1", "Z9-x_y", "YWJj%3D"):
        url = f"https://s/1/checkouts/ac/{token}/recover?key=k"
        assert module.checkout_key(token) == checkout_key(token)
        assert module.recovery_segment(url) == recovery_segment(url)
        assert module.recovery_segment(url.replace("/ac/", "/")) == recovery_segment(url)


def test_a_reminder_sent_under_the_moved_key_stops_the_kept_keys_pending_one(
    store_url: str,
) -> None:
    """The webhook's copy was reminded (done) and the sync's copy's reminder of that stage is
    still pending: after the merge the checkout has been reminded once already, so the
    pending one is cancelled, not delivered a second time."""
    old = _old_store(store_url)
    by_token, by_cart = checkout_key(TOKEN), checkout_key(CART)
    with old.engine.begin() as conn:
        _checkout(conn, by_token, URL, T + 9, None)
        _checkout(conn, by_cart, URL, T + 5, None)
        _outbox(conn, by_token, "done")
        _outbox(conn, by_cart, "pending")
    old.close()

    store = Store(store_url)
    statuses = {r.idempotency_key: r.status for r in _outbox_rows(store)}
    assert statuses == {
        f"abandoned_checkout:{SHOP}:{by_token}:stage1": "done",
        f"abandoned_checkout:{SHOP}:{by_cart}:stage1": "cancelled",
    }
    store.close()


def test_the_number_column_is_added_and_filled_where_the_id_is_the_number(
    store_url: str,
) -> None:
    """0020 adds ``checkouts.number`` (the platform's own number: Shopify's REST ``id``, the
    AbandonedCheckout gid's number), indexed. A Shopify row still keyed by its number (one
    0018 could not re-key) gets it; a row keyed by a digest has it nowhere but in its old
    reminders' keys, ambiguously, so it stays NULL until a sync page names it; WooCommerce
    rows have none."""
    old = _old_store(store_url)
    with old.engine.begin() as conn:
        _checkout(conn, "123", "https://old.example/no-token-here", T, None)
        _checkout(conn, checkout_key(CART), URL, T, None)
        _woocommerce_checkout(conn)
    old.close()

    store = Store(store_url)
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT shop_id, id, number FROM checkouts ORDER BY id"))
        held = {(r.shop_id, r.id): r.number for r in rows}
    assert held == {(1, "123"): "123", (1, checkout_key(CART)): None, (2, "55"): None}
    names = {ix["name"] for ix in inspect(store.engine).get_indexes("checkouts")}
    assert "ix_checkouts_number" in names
    store.close()
