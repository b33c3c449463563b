"""The full loyalty sync's frames path (``update_ledger`` writing the columns' entries a chunk
at a time, here one row a chunk) with an erasure or a redemption committing in any gap between
two chunks, on PostgreSQL: the end state is one the two operations in either order give."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from shopsync import loyalty
from shopsync.core.loyalty import LoyaltyError
from shopsync.loyalty import _derivation
from shopsync.store import Store
from tests.reliability.interleave import Interleave
from tests.reliability.test_interleavings import (
    DAY,
    HOUR,
    T0,
    P,
    customer,
    every_gap,
    order,
    pg,
)

pytestmark = pytest.mark.postgres
__all__ = ["pg"]

_shop = "{}-frames.myshopify.com".format


def _setup(store: Store, cid: str, start: dt.datetime = T0) -> None:
    """Two customers of three orders each: the frames' rows of both, one chunk a row."""
    other = f"{cid}-b"
    store.upsert(
        [
            customer(cid, T0, shop=_shop(cid)),
            customer(other, T0, shop=_shop(cid)),
            *(order(f"o{i}-{cid}", cid, start + i * HOUR, _shop(cid)) for i in range(3)),
            *(order(f"o{i}-{other}", other, start + i * HOUR, _shop(cid)) for i in range(3)),
        ]
    )


@pytest.mark.slow(seconds=15)
def test_an_erasure_in_any_gap_of_a_chunked_sync_leaves_no_ledger_behind(
    pg: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_derivation, "_FLUSH", 1)
    now = dt.datetime.now(dt.timezone.utc)

    def check(cid: str, run: Interleave) -> None:
        entries = loyalty.ledger_entries(pg, P, _shop(cid))
        assert cid not in [e.customer_id for e in entries], cid
        assert len(entries) == len({e.source_key for e in entries}), cid
        assert loyalty.update_ledger(pg, P, _shop(cid), as_of=now).added == 0, cid  # all there

    every_gap(
        pg,
        lambda cid: _setup(pg, cid),
        lambda cid: loyalty.update_ledger(pg, P, _shop(cid), as_of=now),
        lambda cid: pg.redact_customer(P, _shop(cid), cid),
        check,
    )


@pytest.mark.slow(seconds=30)
@pytest.mark.parametrize("frames", [True, False])
def test_a_redemption_in_any_gap_of_a_chunked_sync_is_counted_once(
    pg: Store, monkeypatch: pytest.MonkeyPatch, frames: bool
) -> None:
    """A redemption committing between two chunks: the ledger ends with its one entry, each
    order's earn once, and a second sync adds nothing."""
    monkeypatch.setattr(_derivation, "_FLUSH", 1)
    if not frames:
        real = _derivation.derive_shop

        def no_frames(*args: Any, on_entries: Any = None, **more: Any) -> Any:
            return real(*args, **more)

        monkeypatch.setattr(_derivation, "derive_shop", no_frames)
    now = dt.datetime.now(dt.timezone.utc)
    start, at = now - 90 * DAY, now - DAY  # the earns approved, none expired

    def redeem(cid: str) -> str:
        try:
            loyalty.redeem(pg, (P, _shop(cid), cid), 500, as_of=at, key=f"r-{cid}")
        except LoyaltyError as e:
            return f"refused: {e}"
        return "redeemed"

    def check(cid: str, run: Interleave) -> None:
        assert run.result == "redeemed", (cid, run.result, run.error)
        keys = [e.source_key for e in loyalty.ledger_entries(pg, P, _shop(cid))]
        assert len(keys) == len(set(keys)), cid
        assert loyalty.update_ledger(pg, P, _shop(cid), as_of=now).added == 0, cid
        kinds = [e.kind for e in loyalty.ledger_entries(pg, P, _shop(cid)) if e.customer_id == cid]
        assert kinds.count("redeem") == 1 and kinds.count("earn") == 3, (cid, kinds)

    every_gap(
        pg,
        lambda cid: _setup(pg, cid, start),
        lambda cid: loyalty.update_ledger(pg, P, _shop(cid), as_of=now),
        redeem,
        check,
    )
