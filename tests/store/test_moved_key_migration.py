"""Revision 0024 renames the reversals of moved orders that a ledger written before the fix
holds as ``adjust:sha256:<digest>`` (ids too long for a plain key) to
``adjust:moved:sha256:<digest>``, the key the fixed derivation writes: the same digest, of
``adjust:moved:<customer>:<order>:<effective_at>``, which the row itself holds, so a row is
renamed only when its digest is exactly that one. A manual adjustment hashed the same way,
or a row whose digest is of something else, keeps its key. A downgrade names them back."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import select

from shopsync.store import Store, ledger, redemptions
from shopsync.store.schema import loyalty_ledger
from tests.store.alembic_kit import downgrade

CID, OID, AT = "c" * 130, "o" * 130, 1_700_000_000_000_000
_DIGEST = hashlib.sha256(f"adjust:moved:{CID}:{OID}:{AT}".encode()).hexdigest()
OLD, NEW = f"adjust:sha256:{_DIGEST}", f"adjust:moved:sha256:{_DIGEST}"
MANUAL = "adjust:sha256:" + hashlib.sha256(("adjust:" + "k" * 300).encode()).hexdigest()
OTHER = "adjust:sha256:" + hashlib.sha256(f"adjust:moved:{CID}:{OID}:{AT + 1}".encode()).hexdigest()
AGAIN = hashlib.sha256(f"adjust:moved:{CID}:{OID}:{AT + 7}".encode()).hexdigest()


def _row(
    shop_id: int, key: str, kind: str, points: int, order_id: str | None, at: int = AT
) -> dict[str, Any]:
    return {
        "shop_id": shop_id,
        "customer_id": CID,
        "source_key": key,
        "kind": kind,
        "pending": 0,
        "approved": points,
        "effective_at": at,
        "recorded_at": at,
        "order_id": order_id,
        "reason": "test",
        "detail": {},
    }


def _keys(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        found = conn.execute(select(loyalty_ledger.c.source_key).order_by(loyalty_ledger.c.id))
        return list(found.scalars())


def _moved(store: Store, shop_id: int) -> tuple[list[int], dict[tuple[str, str], int]]:
    """Points still held for the moved order, and its generations."""
    with store.engine.connect() as conn:
        held = [int(r.approved) for r in ledger.moved_order_points(conn, shop_id)]
        return held, redemptions.moved_generations(conn, shop_id)


def test_old_hashed_reversals_of_moved_orders_are_renamed_and_named_back(store_url: str) -> None:
    old = Store(store_url, migrate=False)
    old.migrate("0023")
    shop_id = old.shop_id("shopify", "long.example")
    with old.transaction() as conn:
        conn.execute(
            loyalty_ledger.insert(),
            [
                _row(shop_id, f"earn:{OID}", "earn", 10, OID),  # the order's earn
                _row(shop_id, OLD, "adjust", -10, OID),  # its reversal, the order gone
                _row(shop_id, MANUAL, "adjust", 5, None),  # a long manual adjustment
                _row(shop_id, OTHER, "adjust", 0, OID),  # a digest of another moment
            ],
        )
    with old.transaction() as conn:  # a second shop, reversed twice by syncs before the fix
        other = old.shop_id("shopify", "twice.example", conn)
        conn.execute(
            loyalty_ledger.insert(),
            [
                _row(other, f"earn:{OID}", "earn", 10, OID),
                _row(other, OLD, "adjust", -10, OID),
                _row(other, f"adjust:sha256:{AGAIN}", "adjust", -10, OID, AT + 7),
            ],
        )
    assert _moved(old, shop_id) == ([10], {})  # the bug: reversed again at every sync
    old.close()

    store = Store(store_url)
    assert store.schema_version() == Store.head_version()
    again = f"adjust:moved:sha256:{AGAIN}"
    assert _keys(store) == [f"earn:{OID}", NEW, MANUAL, OTHER, f"earn:{OID}", NEW, again]
    assert _moved(store, shop_id) == ([0], {(CID, OID): 1})  # reversed once, one generation
    # reversed twice: the next ledger update sees the 10 points too many and gives them back
    assert _moved(store, other) == ([-10], {(CID, OID): 2})

    downgrade(store.engine, "0023")
    assert store.schema_version() == "0023"
    assert _keys(store) == [
        f"earn:{OID}",
        OLD,
        MANUAL,
        OTHER,
        f"earn:{OID}",
        OLD,
        f"adjust:sha256:{AGAIN}",
    ]
    store.close()
