"""Renamed public names still work for one release and warn: "sync" now only means reading a
platform, "report" only the HTML retention report, "context" only the sinks' DeliveryContext."""

from __future__ import annotations

import importlib
import warnings

import pytest

from shopsync._renamed import OLD_NAMES

RENAMED = [(module, old, new) for module, names in OLD_NAMES.items() for old, new in names.items()]


@pytest.mark.parametrize(("module", "old", "new"), RENAMED)
def test_an_old_name_still_works_for_one_release_and_warns(module: str, old: str, new: str) -> None:
    found = importlib.import_module(module)
    with pytest.warns(DeprecationWarning, match=f"{module}.{old} is now {module}.{new}"):
        value = getattr(found, old)
    assert value is getattr(found, new)
    public = getattr(found, "__all__", None)
    assert public is None or (old not in public and new in public)


def test_from_import_of_an_old_name_warns_at_the_caller() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from shopsync.sync import SyncReport  # noqa: F401
    [warning] = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    assert warning.filename == __file__  # stacklevel points at the import, not at shopsync


@pytest.mark.parametrize("module", sorted(OLD_NAMES))
def test_an_unknown_name_is_still_an_attribute_error(module: str) -> None:
    with pytest.raises(AttributeError, match=f"module '{module}' has no attribute 'synch'"):
        importlib.import_module(module).synch  # noqa: B018
