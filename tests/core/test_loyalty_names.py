"""``shopsync.loyalty.sync`` was renamed ``update_ledger``: "sync" only means reading a platform."""

from __future__ import annotations

import pytest

import shopsync.loyalty


@pytest.mark.parametrize(
    ("old", "new"), [("sync", "update_ledger"), ("SyncResult", "LedgerUpdate")]
)
def test_an_old_name_still_works_for_one_release_and_warns(old: str, new: str) -> None:
    with pytest.warns(DeprecationWarning, match=f"shopsync.loyalty.{old} is now"):
        found = getattr(shopsync.loyalty, old)
    assert found is getattr(shopsync.loyalty, new)
    assert old not in shopsync.loyalty.__all__ and new in shopsync.loyalty.__all__


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'synch'"):
        shopsync.loyalty.synch  # noqa: B018
