"""Revision 0018 (issue 22): Shopify checkouts stored by the previous version under their
numeric id are re-keyed by their token (the one in the stored recovery URL), with the outbox
entries of their reminders, so the next webhook or sync lands on the same row and a reminder
already sent is not sent again under the new key. WooCommerce rows keep their order ids."""

from __future__ import annotations

import json
from typing import Any

from shopsync_shopify._checkouts import checkout_from_webhook, checkout_key
from sqlalchemy import text

from shopsync.store import Store
from shopsync.store.checkout_rows import read_checkouts, upsert_checkouts

SHOP = "old.myshopify.com"
TOKEN = "0123456789abcdef0456456789abcdef"
URL = f"https://{SHOP}/14168/checkouts/ac/{TOKEN}/recover?key=6dacd6065bb80268bda857ee"
T = 1_764_000_000_000_000  # micros


def _checkout(conn: Any, shop_id: int, cid: str, url: str | None) -> None:
    conn.execute(
        text(
            "INSERT INTO checkouts (shop_id, id, customer_id, email, created_at, updated_at,"
            " recovery_url, currency, subtotal, total, lines)"
            " VALUES (:s, :i, '7', 'ann@x.test', :t, :t, :u, 'USD', 100000, 100000, '[]')"
        ),
        {"s": shop_id, "i": cid, "t": T, "u": url},
    )


def _outbox(conn: Any, shop_id: int, shop: str, cid: str, status: str) -> None:
    key = f"abandoned_checkout:{shop}:{cid}:stage1"
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
            " updated_at) VALUES (:s, :k, 'email', 0, 'abandoned_checkout', '7', 1, 'm', :a,"
            " :st, 1, :t, :t, :t, :t)"
        ),
        {"s": shop_id, "k": key, "a": json.dumps(action), "st": status, "t": T},
    )


def test_shopify_rows_keyed_by_id_are_re_keyed_by_token_with_their_reminders(
    store_url: str,
) -> None:
    old = Store(store_url, migrate=False)
    old.migrate("0017")
    with old.engine.begin() as conn:
        for shop_id, platform, shop in ((1, "shopify", SHOP), (2, "woocommerce", "w.example")):
            conn.execute(
                text(
                    "INSERT INTO shops (shop_id, platform, shop, created_at) VALUES (:i, :p, :s, 0)"
                ),
                {"i": shop_id, "p": platform, "s": shop},
            )
        _checkout(conn, 1, "122", URL)
        _checkout(conn, 1, "123", "https://old.myshopify.com/no-token-here")
        _checkout(conn, 2, "55", "https://w.example/checkout/order-pay/55/?pay_for_order=true")
        _outbox(conn, 1, SHOP, "122", "done")
        _outbox(conn, 2, "w.example", "55", "pending")
    old.close()

    store = Store(store_url)
    assert store.schema_version() == Store.head_version()
    new = checkout_key(TOKEN)
    assert sorted(c.id for c in read_checkouts(store, "shopify", SHOP)) == ["123", new]
    assert [c.id for c in read_checkouts(store, "woocommerce", "w.example")] == ["55"]
    with store.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT shop_id, idempotency_key, action FROM outbox ORDER BY shop_id")
        ).all()
    keys = [(r.shop_id, r.idempotency_key) for r in rows]
    assert keys == [
        (1, f"abandoned_checkout:{SHOP}:{new}:stage1"),
        (2, "abandoned_checkout:w.example:55:stage1"),
    ]
    action = rows[0].action if isinstance(rows[0].action, dict) else json.loads(rows[0].action)
    assert action["checkout_id"] == new and action["facts"]["checkout_id"] == new
    assert action["idempotency_key"] == keys[0][1]

    # today's webhook of that checkout (token, no id) lands on the re-keyed row
    body = {
        "token": TOKEN,
        "email": "ann@x.test",
        "created_at": "2025-11-24T16:00:00Z",
        "updated_at": "2025-11-24T17:00:00Z",
        "abandoned_checkout_url": URL,
        "currency": "USD",
        "subtotal_price": "10.00",
        "total_price": "10.00",
        "customer": {"id": 7},
        "line_items": [],
    }
    count = upsert_checkouts(store, [checkout_from_webhook(body, shop=SHOP)])
    assert (count.inserted, count.updated) == (0, 1)
    assert sorted(c.id for c in read_checkouts(store, "shopify", SHOP)) == ["123", new]
    store.close()


def test_the_migration_keys_as_the_adapter_does() -> None:
    from importlib import import_module

    module = import_module("shopsync.store.migrations.versions.0018_checkout_tokens")
    for token in (TOKEN, "c1", "Z9-x_y"):
        assert module.checkout_key(token) == checkout_key(token)
        assert module.token_of_url(f"https://s/1/checkouts/ac/{token}/recover?key=k") == token


def _old_store(store_url: str) -> Store:
    old = Store(store_url, migrate=False)
    old.migrate("0017")
    with old.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO shops (shop_id, platform, shop, created_at)"
                " VALUES (1, 'shopify', :s, 0)"
            ),
            {"s": SHOP},
        )
    return old


def _outbox_rows(store: Store) -> list[Any]:
    with store.engine.connect() as conn:
        return list(
            conn.execute(
                text("SELECT idempotency_key, status, attempts, reason FROM outbox ORDER BY id")
            ).all()
        )


def test_a_reminder_not_yet_settled_is_cancelled_not_retried_under_a_new_key(
    store_url: str,
) -> None:
    """Every sink dedupes by the action's key (Idempotency-Key, Message-ID, the discount code
    derived from it): a pending or parked row retried under the new key could arrive twice or
    quote a code the platform never got. The upgrade cancels it, under the new key so the
    planner does not plan that step again; a done row is only re-keyed."""
    old = _old_store(store_url)
    with old.engine.begin() as conn:
        _checkout(conn, 1, "122", URL)
        _outbox(conn, 1, SHOP, "122", "pending")
        other = URL.replace(TOKEN, "f" * 32)
        _checkout(conn, 1, "124", other)
        _outbox(conn, 1, SHOP, "124", "parked")
        done = URL.replace(TOKEN, "e" * 32)
        _checkout(conn, 1, "125", done)
        _outbox(conn, 1, SHOP, "125", "done")
    old.close()

    store = Store(store_url)
    rows = {r.idempotency_key: r for r in _outbox_rows(store)}
    for token, status in ((TOKEN, "cancelled"), ("f" * 32, "cancelled"), ("e" * 32, "done")):
        row = rows[f"abandoned_checkout:{SHOP}:{checkout_key(token)}:stage1"]
        assert row.status == status
        assert row.attempts == 1
        assert (row.reason is not None and "0018" in row.reason) == (status == "cancelled")
    store.close()


def test_two_old_rows_of_one_token_become_one_and_the_store_opens(store_url: str) -> None:
    """Two rows the previous version stored under different ids with one token (one checkout
    seen under two ids) would collide on the new key: the newer is kept, a completion either
    held is kept, and the outbox entries of the other keep their old key (cancelled unless
    settled), so no unique key is broken and the store opens."""
    old = _old_store(store_url)
    with old.engine.begin() as conn:
        _checkout(conn, 1, "122", URL)
        _checkout(conn, 1, "999", URL)
        conn.execute(
            text("UPDATE checkouts SET updated_at = :t, completed_at = :t WHERE id = '122'"),
            {"t": T + 5},
        )
        conn.execute(text("UPDATE checkouts SET updated_at = :t WHERE id = '999'"), {"t": T + 9})
        _outbox(conn, 1, SHOP, "122", "done")
        _outbox(conn, 1, SHOP, "999", "pending")
    old.close()

    store = Store(store_url)
    new = checkout_key(TOKEN)
    (kept,) = read_checkouts(store, "shopify", SHOP)
    assert kept.id == new
    assert kept.completed_at is not None
    assert len(_outbox_rows(store)) == 2
    assert all(r.status in ("done", "cancelled") for r in _outbox_rows(store))
    assert len({r.idempotency_key for r in _outbox_rows(store)}) == 2
    store.close()
