"""Loyalty inputs that are not platform records: referrals and manual adjustments.

They are recorded in ``loyalty_inputs`` under a key (recording a key again is a no-op) and
take effect at the next :func:`~shopsync.loyalty.update_ledger`, which reads them with the orders.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from shopsync.core import loyalty as rules
from shopsync.core.loyalty import LoyaltyError
from shopsync.loyalty._refs import CustomerRef, ref, utc_micros
from shopsync.store import Store, ledger

__all__ = ["adjust", "record_referral"]


def record_input(
    store: Store,
    platform: str,
    shop: str,
    kind: str,
    customer_id: str,
    at: int,
    key: str,
    data: dict[str, Any],
) -> bool:
    shop_id = store.shop_id(platform, shop)
    with store.transaction() as conn:
        return bool(
            ledger.add_inputs(
                conn,
                [
                    {
                        "shop_id": shop_id,
                        "key": key,
                        "kind": kind,
                        "customer_id": customer_id,
                        "occurred_at": at,
                        "data": data,
                    }
                ],
            )
        )


def record_referral(
    store: Store,
    platform: str,
    shop: str,
    *,
    advocate_id: str,
    at: dt.datetime,
    friend_id: str | None = None,
    friend_email: str | None = None,
    ip: str | None = None,
    key: str | None = None,
) -> str:
    """Record that ``advocate_id`` referred a friend (by customer id or email); returns its key.

    The rewards follow at the next :func:`update_ledger` once the friend's first order is paid and
    past its approval period. Recording the same key twice is a no-op.
    """
    if friend_id is None and not friend_email:
        raise LoyaltyError("a referral needs the friend's customer id or email")
    micros = utc_micros(at)
    if key is None:
        # The key carries no e-mail address (erasure must find nothing in keys); a referral
        # recorded by an older version under the plain address keeps its key.
        mail = (friend_email or "").strip().lower()
        key = rules.source_key("referral", advocate_id, friend_id or ledger.email_token(mail))
        if friend_id is None:
            legacy = rules.source_key("referral", advocate_id, mail)
            with store.engine.connect() as conn:
                shop_id = store.shop_id(platform, shop, conn, create=False)
                key = ledger.existing_input_key(conn, shop_id, [legacy]) or key
    data = {
        "friend_id": friend_id,
        "friend_email": friend_email and friend_email.strip().lower(),
        "ip": ip,
    }
    record_input(store, platform, shop, "referral", advocate_id, micros, key, data)
    return key


def adjust(
    store: Store, customer: CustomerRef, points: int, *, at: dt.datetime, reason: str, key: str
) -> bool:
    """A manual correction of the approved balance (positive or negative) with its reason.

    ``key`` names the adjustment (e.g. a support ticket); recording it again is a no-op.
    Takes effect at the next :func:`update_ledger`. Returns False if the key was recorded before.
    """
    platform, shop, customer_id = ref(customer)
    if not reason.strip():
        raise LoyaltyError("an adjustment needs a reason")
    return record_input(
        store,
        platform,
        shop,
        "adjust",
        customer_id,
        utc_micros(at),
        key,
        {"points": int(points), "reason": reason},
    )
