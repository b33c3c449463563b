"""Shopify checkouts: one key whatever told us of them (issue 22 follow-up). Today's recovery
link names the checkout's cart token, not its token (two published ``checkouts/create``
bodies, described in ``shopsync_shopify._checkouts``), so the store keys a checkout by the
link's segment and keeps a digest of its token beside it: a webhook and a sync page of one
checkout are one row, and an order's ``checkout_token`` or ``cart_token`` and a
``checkouts/delete`` body (``id`` and ``token`` only) find it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from shopsync_shopify._checkouts import (
    checkout_from_graphql,
    checkout_from_webhook,
    checkout_key,
)

from shopsync.store import Store
from shopsync.store.checkout_recovery import recovered
from shopsync.store.checkout_rows import (
    complete_checkouts,
    delete_checkout,
    read_checkouts,
    upsert_checkouts,
)
from shopsync.testing._checkouts import cart_token, recovery_url
from tests.shopify.checkout_bodies import delivered, graphql_node, webhook_body

UTC = dt.timezone.utc
HOUR = dt.timedelta(hours=1)
SHOP = "cart-shop.myshopify.com"
TOKEN = "5f0c1e2d3b4a69788796a5b4c3d2e1f0"  # 32 hex digits, like the published bodies
CART = cart_token(dt.datetime(2026, 11, 30, 15, tzinfo=UTC), 0x5EED)
URL = recovery_url(SHOP, CART, "0385aa11bb22cc33dd44ee55ff660011") + "&locale=en-US"
BODY = webhook_body(TOKEN, CART, URL)
NODE = graphql_node(URL, updated_at="2026-11-30T15:04:00Z")


def _parse(topic: str, body: dict[str, Any]) -> Any:
    return delivered(topic, body, SHOP)


def test_the_link_names_the_cart_token_and_both_sources_give_one_key() -> None:
    assert CART != TOKEN and f"/checkouts/ac/{CART}/recover?key=" in URL
    hooked = checkout_from_webhook(BODY, shop=SHOP)
    synced = checkout_from_graphql(NODE, shop=SHOP)
    assert hooked.id == synced.id == checkout_key(CART)
    assert hooked.token_key == checkout_key(TOKEN) and synced.token_key is None
    for held in (hooked.id, hooked.token_key):
        assert TOKEN not in held and CART not in held  # digests only: the link is a bearer link


@pytest.mark.parametrize(
    ("edit", "source"),
    [
        ({"abandoned_checkout_url": None}, CART),
        ({"abandoned_checkout_url": "https://x.test/cart"}, CART),
        ({"abandoned_checkout_url": None, "cart_token": None}, TOKEN),
        ({"abandoned_checkout_url": f"https://{SHOP}/checkouts/{TOKEN}/recover?key=k"}, TOKEN),
        ({"abandoned_checkout_url": URL.replace(CART, CART[:-2] + "%3D%3D")}, CART[:-2] + "=="),
    ],
)
def test_a_body_without_a_usable_link_falls_back_to_its_cart_token_then_its_token(
    edit: dict[str, Any], source: str
) -> None:
    found = checkout_from_webhook({**BODY, **edit}, shop=SHOP)
    assert (found.id, found.token_key) == (checkout_key(source), checkout_key(TOKEN))


def test_a_body_naming_no_checkout_is_quarantined() -> None:
    bare = {k: v for k, v in BODY.items() if k not in ("token", "cart_token")}
    event = _parse("checkouts/update", {**bare, "abandoned_checkout_url": None})
    (rejected,) = event.rejected
    assert "cart_token" in rejected.reason and not event.checkouts
    # a body with a link but no token is a checkout all the same (keyed by the link)
    (kept,) = _parse("checkouts/update", {**bare, "cart_token": CART}).checkouts
    assert kept.id == checkout_key(CART) and kept.token_key is None


def test_an_order_names_its_checkout_by_checkout_token_and_by_cart_token() -> None:
    from shopsync_shopify._render_rest import order_rest

    from tests.sync.emulated import emulated

    with emulated("shopify", seed=2, customers=3, orders=3, products=2) as shop:
        order = sorted(shop.state.orders.values(), key=lambda o: o.id)[0]
        body = order_rest(order, shop.state)
    body.update(checkout_token=TOKEN, cart_token=CART)
    keys = [cid for cid, _ in _parse("orders/create", body).completed_checkouts]
    assert sorted(keys) == sorted([checkout_key(TOKEN), checkout_key(CART)])
    body.update(checkout_token=None)
    keys = [cid for cid, _ in _parse("orders/create", body).completed_checkouts]
    assert keys == [checkout_key(CART)]


@pytest.mark.parametrize("first", ["webhook", "sync"])
def test_a_checkout_told_by_webhook_and_read_by_sync_is_one_row(store: Store, first: str) -> None:
    hooked = checkout_from_webhook(BODY, shop=SHOP)  # updated 15:05
    synced = checkout_from_graphql(NODE, shop=SHOP)  # updated 15:04
    for c in (hooked, synced) if first == "webhook" else (synced, hooked):
        upsert_checkouts(store, [c])
    (held,) = read_checkouts(store, "shopify", SHOP)
    assert held.id == checkout_key(CART) and held.updated_at == hooked.updated_at
    assert held.token_key == checkout_key(TOKEN)  # an older sync page does not drop it
    # a newer sync page (no token) keeps it too
    upsert_checkouts(store, [synced.model_copy(update={"updated_at": hooked.updated_at + HOUR})])
    (held,) = read_checkouts(store, "shopify", SHOP)
    assert held.token_key == checkout_key(TOKEN)


def test_an_older_webhook_after_a_sync_still_leaves_its_token(store: Store) -> None:
    synced = checkout_from_graphql({**NODE, "updatedAt": "2026-11-30T18:00:00Z"}, shop=SHOP)
    upsert_checkouts(store, [synced])
    count = upsert_checkouts(store, [checkout_from_webhook(BODY, shop=SHOP)])
    assert count.stale == 1
    (held,) = read_checkouts(store, "shopify", SHOP)
    assert held.updated_at == synced.updated_at and held.token_key == checkout_key(TOKEN)


def test_an_orders_checkout_token_completes_the_checkout_read_by_sync(store: Store) -> None:
    upsert_checkouts(store, [checkout_from_webhook(BODY, shop=SHOP)])
    upsert_checkouts(store, [checkout_from_graphql(NODE, shop=SHOP)])
    at = dt.datetime(2026, 11, 30, 16, tzinfo=UTC)
    with store.transaction() as tx:
        assert complete_checkouts(store, tx, "shopify", SHOP, [(checkout_key(TOKEN), at)]) == 1
        assert complete_checkouts(store, tx, "shopify", SHOP, [(checkout_key(CART), at)]) == 0
    (held,) = read_checkouts(store, "shopify", SHOP)
    assert held.completed_at == at


def test_an_orders_cart_token_completes_a_checkout_only_sync_read(store: Store) -> None:
    upsert_checkouts(store, [checkout_from_graphql(NODE, shop=SHOP)])
    at = dt.datetime(2026, 11, 30, 16, tzinfo=UTC)
    with store.transaction() as tx:
        assert complete_checkouts(store, tx, "shopify", SHOP, [(checkout_key(TOKEN), at)]) == 0
        assert complete_checkouts(store, tx, "shopify", SHOP, [(checkout_key(CART), at)]) == 1
    (held,) = read_checkouts(store, "shopify", SHOP)
    assert held.completed_at == at


def test_a_delete_by_token_removes_the_checkout_and_keeps_a_late_sync_page_out(
    store: Store,
) -> None:
    upsert_checkouts(store, [checkout_from_graphql(NODE, shop=SHOP)])
    upsert_checkouts(store, [checkout_from_webhook(BODY, shop=SHOP)])
    event = _parse("checkouts/delete", {"id": 122, "token": TOKEN})
    (key,) = [cid for cid, _ in event.deleted_checkouts if cid != "122"]
    at = dt.datetime(2026, 11, 30, 17, tzinfo=UTC)
    with store.transaction() as tx:
        assert delete_checkout(store, tx, "shopify", SHOP, key, at)
    assert read_checkouts(store, "shopify", SHOP) == []
    late = upsert_checkouts(store, [checkout_from_graphql(NODE, shop=SHOP)])
    assert late.stale == 1 and read_checkouts(store, "shopify", SHOP) == []


def test_a_delete_by_token_before_any_version_keeps_the_late_webhook_out(store: Store) -> None:
    at = dt.datetime(2026, 11, 30, 17, tzinfo=UTC)
    with store.transaction() as tx:
        store.shop_id("shopify", SHOP, tx)
        assert not delete_checkout(store, tx, "shopify", SHOP, checkout_key(TOKEN), at)
    late = upsert_checkouts(store, [checkout_from_webhook(BODY, shop=SHOP)])
    assert late.stale == 1 and read_checkouts(store, "shopify", SHOP) == []


@pytest.mark.parametrize("synced_first", [True, False])
def test_a_deletion_by_token_reaches_the_sync_copy_once_a_version_ties_the_keys(
    store: Store, synced_first: bool
) -> None:
    """A ``checkouts/delete`` (token only) that found no row by its token (the store held the
    sync's copy, which has no token, or nothing yet) leaves a tombstone under the token's
    key alone. A version from before the deletion naming both keys (a late
    ``checkouts/update``) is kept out, and it ties the tombstone to the cart token's key:
    the sync's copy goes, and a late sync page stays out."""
    at = dt.datetime(2026, 11, 30, 17, tzinfo=UTC)
    synced = checkout_from_graphql(NODE, shop=SHOP)  # updated 15:04, before the deletion
    if synced_first:
        upsert_checkouts(store, [synced])
    with store.transaction() as tx:
        store.shop_id("shopify", SHOP, tx)
        assert not delete_checkout(store, tx, "shopify", SHOP, checkout_key(TOKEN), at)
    if not synced_first:
        upsert_checkouts(store, [synced])  # a page read before the deletion, written after
    late = upsert_checkouts(store, [checkout_from_webhook(BODY, shop=SHOP)])
    assert late.stale == 1 and read_checkouts(store, "shopify", SHOP) == []
    again = upsert_checkouts(store, [synced])
    assert again.stale == 1 and read_checkouts(store, "shopify", SHOP) == []


def test_a_checkout_body_linking_to_another_myshopify_shop_is_refused() -> None:
    """The signature covers the body, not the shop header, and one app serves many shops: a
    checkout body of another shop, replayed for this one, would be stored here and its
    customer reminded with the other shop's link. As an order's ``order_status_url``, a
    link on a myshopify domain must name the delivery's shop (a custom domain passes)."""
    from shopsync.errors import WebhookError

    other = URL.replace(SHOP, "other-shop.myshopify.com")
    for topic in ("checkouts/create", "checkouts/update"):
        with pytest.raises(WebhookError, match=r"other-shop\.myshopify\.com"):
            _parse(topic, {**BODY, "abandoned_checkout_url": other})
    custom = URL.replace(SHOP, "shop.example.com")
    (kept,) = _parse("checkouts/update", {**BODY, "abandoned_checkout_url": custom}).checkouts
    assert kept.id == checkout_key(CART)
    shouted = URL.replace(SHOP, SHOP.upper())  # host names are case-blind
    (kept,) = _parse("checkouts/update", {**BODY, "abandoned_checkout_url": shouted}).checkouts
    assert kept.id == checkout_key(CART)


def test_a_sync_page_keeps_the_checkouts_number_a_webhook_body_has_none() -> None:
    """The ``AbandonedCheckout`` gid's number is the checkout's REST ``id``, the one a
    ``checkouts/delete`` body names; a create/update body carries no ``id`` since 2026-04."""
    assert checkout_from_graphql(NODE, shop=SHOP).number == "122"
    assert checkout_from_webhook(BODY, shop=SHOP).number is None
    event = _parse("checkouts/delete", {"id": 122, "token": TOKEN})
    assert sorted(cid for cid, _ in event.deleted_checkouts) == sorted(["122", checkout_key(TOKEN)])
    gid = _parse("checkouts/delete", {"id": "gid://shopify/AbandonedCheckout/122", "token": TOKEN})
    assert "122" in [cid for cid, _ in gid.deleted_checkouts]
    odd = _parse("checkouts/delete", {"id": "not a number", "token": TOKEN})
    assert [cid for cid, _ in odd.deleted_checkouts] == [checkout_key(TOKEN)]


def _deliver_delete(store: Store, at: dt.datetime) -> int:
    """A ``checkouts/delete`` body as Shopify sends it (``id`` and ``token``), applied."""
    event = _parse("checkouts/delete", {"id": 122, "token": TOKEN})
    with store.transaction() as tx:
        store.shop_id("shopify", SHOP, tx)
        return sum(
            delete_checkout(store, tx, "shopify", SHOP, key, at)
            for key, _ in event.deleted_checkouts
        )


def test_a_delete_reaches_a_checkout_held_only_from_sync_by_its_number(store: Store) -> None:
    """The sync's copy has no token: the body's ``id`` (the gid's number) finds it. The row
    goes, a reminder planned for it is cancelled at delivery, and a sync page read before
    the deletion stays out (the tombstone is under its number and its key)."""
    upsert_checkouts(store, [checkout_from_graphql(NODE, shop=SHOP)])
    assert recovered(store, "shopify", SHOP, "7", checkout_key(CART)) is None
    assert _deliver_delete(store, dt.datetime(2026, 11, 30, 17, tzinfo=UTC)) == 1
    assert read_checkouts(store, "shopify", SHOP) == []
    gone = recovered(store, "shopify", SHOP, "7", checkout_key(CART))
    assert gone is not None and "no longer in the store" in gone
    late = upsert_checkouts(store, [checkout_from_graphql(NODE, shop=SHOP)])
    assert late.stale == 1 and read_checkouts(store, "shopify", SHOP) == []
    hooked = upsert_checkouts(store, [checkout_from_webhook(BODY, shop=SHOP)])
    assert hooked.stale == 1 and read_checkouts(store, "shopify", SHOP) == []
    newer = {**NODE, "updatedAt": "2026-11-30T18:00:00Z"}  # the platform has it again
    assert upsert_checkouts(store, [checkout_from_graphql(newer, shop=SHOP)]).inserted == 1


def test_a_delete_by_number_before_the_sync_page_keeps_that_page_out(store: Store) -> None:
    """The deletion came first (nothing held): a sync page read before it, written after,
    names the number only; it stays out, and so does a later page of the same version."""
    assert _deliver_delete(store, dt.datetime(2026, 11, 30, 17, tzinfo=UTC)) == 0
    for _ in range(2):
        late = upsert_checkouts(store, [checkout_from_graphql(NODE, shop=SHOP)])
        assert late.stale == 1 and read_checkouts(store, "shopify", SHOP) == []


def test_a_webhook_version_keeps_the_number_the_sync_gave(store: Store) -> None:
    """A webhook body has no ``id``: its version, newer or older, never clears the number."""
    upsert_checkouts(store, [checkout_from_graphql(NODE, shop=SHOP)])
    newer = {**BODY, "updated_at": "2026-11-30T10:30:00-05:00"}
    upsert_checkouts(store, [checkout_from_webhook(newer, shop=SHOP)])
    (held,) = read_checkouts(store, "shopify", SHOP)
    assert (held.number, held.token_key) == ("122", checkout_key(TOKEN))
    older_page = {**NODE, "id": "gid://shopify/AbandonedCheckout/122"}
    assert upsert_checkouts(store, [checkout_from_graphql(older_page, shop=SHOP)]).stale == 1
    assert _deliver_delete(store, dt.datetime(2026, 11, 30, 17, tzinfo=UTC)) == 1
    assert read_checkouts(store, "shopify", SHOP) == []
