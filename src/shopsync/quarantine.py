"""Working the quarantine: records a platform sent that could not be mapped.

Nothing is dropped silently: a rejected record waits in the store with its raw payload and
the reason. After a fix (a new shopsync release, a corrected mapping, or the record edited on
the platform and re-synced), :func:`retry` maps each open entry again; what maps is stored
and the entry resolved, what still fails keeps its entry with the new reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from shopsync.adapter import Rejected, adapter_class
from shopsync.errors import ConfigurationError, InvalidRecordError
from shopsync.store import QuarantinedRecord, Store

__all__ = ["RetryResult", "retry"]


@dataclass
class RetryResult:
    fixed: int = 0
    still_failing: int = 0


def retry(
    store: Store, *, platform: str | None = None, ids: list[int] | None = None
) -> RetryResult:
    """Map open quarantine entries again (all, one platform's, or the given entry ids).

    The adapter class of each entry's platform must offer
    ``map_record(resource, raw, shop) -> Customer | Order | Product`` that raises
    :class:`~shopsync.errors.InvalidRecordError` for what still cannot be mapped.
    """
    result = RetryResult()
    for item in store.quarantined():
        if platform is not None and item.platform != platform:
            continue
        if ids is not None and item.id not in ids:
            continue
        if _retry_one(store, item):
            result.fixed += 1
        else:
            result.still_failing += 1
    return result


def _retry_one(store: Store, item: QuarantinedRecord) -> bool:
    map_record = getattr(adapter_class(item.platform), "map_record", None)
    if map_record is None:
        raise ConfigurationError(f"adapter {item.platform!r} cannot re-map quarantined records")
    try:
        record = map_record(item.resource, item.raw, item.shop)
    except InvalidRecordError as exc:
        store.quarantine(
            item.platform, item.shop, [Rejected(item.resource, item.record_id, item.raw, str(exc))]
        )
        return False
    with store.transaction() as tx:
        store.upsert([record], conn=tx)
        store.resolve_quarantined(item.id, conn=tx)
    return True
