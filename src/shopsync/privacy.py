"""Privacy chores that span the store and files outside it.

The ad-audience file (:class:`shopsync.sinks.AdAudience`) is appended to as customers are
added; an audience upload replaces the list on the ad platform, so the file must shrink when
a customer withdraws consent, unsubscribes or is erased. :func:`prune_audience` rewrites it
with only the customers marketing may reach today. Run it before every upload (and after
each sync); appending alone would keep the withdrawn ones in the next upload.
"""

from __future__ import annotations

import os
import tempfile

from shopsync.core.policy import Policy
from shopsync.models import Customer
from shopsync.sinks.files import AdAudience, audience_row
from shopsync.store import NO_SHOP, Store

__all__ = ["prune_audience"]


def _allowed(
    store: Store, audience: AdAudience, platform: str, shop: str, policy: Policy | None
) -> set[str]:
    from shopsync.outbox._attempts import withheld  # the delivery-time consent check, exactly

    shop_id = store.shop_id(platform, shop, create=False)
    if shop_id == NO_SHOP:
        return set()
    keys = set()
    for customer in store.iter(Customer, platform, shop):
        if withheld(store, shop_id, customer, policy) is not None:
            continue
        row = audience_row(customer, platform=audience.platform)
        if row is not None:
            keys.add(f"{row['email_sha256']},{row['phone_sha256']}")
    return keys


def prune_audience(
    store: Store,
    audience: AdAudience,
    platform: str,
    shop: str,
    *,
    policy: Policy | None = None,
) -> int:
    """Rewrite ``audience``'s file with only the customers of ``shop`` that marketing may
    reach now (consent, suppressions, erasure); returns how many rows were dropped.

    The new file replaces the old one atomically (a crash leaves one or the other, never a
    mix). Rows of customers the store does not hold (another shop's, erased ones) go.
    """
    path = audience.path
    if not path.exists():
        return 0
    allowed = _allowed(store, audience, platform, shop, policy)
    with open(path, encoding="utf-8", newline="") as handle:
        lines = handle.read().splitlines()
    if not lines:
        return 0
    header, rows = lines[0], lines[1:]
    kept = [line for line in rows if line.strip() in allowed]
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write("".join(f"{line}\n" for line in [header, *kept]))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
    return len(rows) - len(kept)
