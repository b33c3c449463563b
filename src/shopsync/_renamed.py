"""Public names renamed in 0.x, kept for one release: the old name warns and returns the new
object. "Sync" now only means reading a platform, "report" only the HTML retention report,
and "context" only the sinks' :class:`~shopsync.sinks.DeliveryContext` (CHANGELOG)."""

from __future__ import annotations

import importlib
import warnings
from typing import Any

OLD_NAMES: dict[str, dict[str, str]] = {
    "shopsync": {"SyncReport": "SyncResult"},
    "shopsync.sync": {"SyncReport": "SyncResult", "ResourceReport": "ResourceResult"},
    "shopsync.outbox": {"ApplyReport": "ApplyResult"},
    "shopsync.worker": {"WorkerReport": "WorkerResult"},
    "shopsync.consent": {"ImportReport": "ImportResult"},
    "shopsync.adapter_kit": {"MappingContext": "RecordReader"},
    "shopsync.metrics": {"report": "period"},
    "shopsync.loyalty": {"sync": "update_ledger", "SyncResult": "LedgerUpdate"},
}
"""For each module, old name -> new name."""


def old_name(module: str, name: str) -> Any:
    """``module``'s new object for the old ``name`` (with a DeprecationWarning), else
    AttributeError: a module's ``__getattr__`` ends with this."""
    new = OLD_NAMES.get(module, {}).get(name)
    if new is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    warnings.warn(f"{module}.{name} is now {module}.{new}", DeprecationWarning, stacklevel=3)
    return getattr(importlib.import_module(module), new)
