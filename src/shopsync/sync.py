"""Incremental, checkpointed sync of one shop into the store.

For each resource (customers, products, orders) the sync reads from the stored high-water
mark minus an overlap window, and commits every page **together with** its new checkpoint in
one transaction. A crash at any point therefore loses at most the page in flight, and the
next run re-reads it: upserts are idempotent and guarded by ``updated_at``, so re-reading is
harmless, and replacing an order replaces its child rows, so no stale child survives.

Why an overlap: records that share one ``updated_at`` can straddle a page boundary, and a
platform may make a write visible a little after the timestamp it carries. Re-reading the
last few minutes costs little (unchanged records are a primary-key lookup) and skips nothing.

One sync of a shop at a time: a sync holds the store's lease ``sync/<platform>/<shop>`` (on
both engines), so a cron ``shopsync sync`` and a worker's sync job never run one shop at once.
A second sync is refused (:class:`SyncRunning`, retryable) unless asked to wait
(``lock_wait``); a worker's job waits up to its ttl, then goes back to the queue. The lease is
renewed by a thread and lapses ``lock_ttl`` seconds after a sync that died elsewhere (at once
on the same machine). Two syncs at once were already safe for the data (each page is one
guarded transaction); the lease keeps them from doing the work twice and fighting for the
platform's rate limit.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from shopsync._renamed import old_name
from shopsync.adapter import (
    Adapter,
    CheckoutReader,
    Deletion,
    DeletionReader,
    Page,
    Resource,
    capability,
)
from shopsync.errors import ShopSyncError, StoreError
from shopsync.ingest_columns import store_page, taking_rows
from shopsync.models import Customer, Order, Product
from shopsync.store import Cursor, Store, UpsertResult
from shopsync.store.errors import DatabaseError
from shopsync.store.leases import Lease, LeaseHeld, LeaseLost, acquire, release, renew
from shopsync.store.page_commit import PageWriter, lazy_commit

__all__ = ["DEFAULT_OVERLAP", "RESOURCES", "ResourceResult", "SyncResult", "SyncRunning", "sync"]

log = logging.getLogger("shopsync.sync")

RESOURCES: tuple[Resource, ...] = ("customers", "products", "orders")
DEFAULT_OVERLAP = dt.timedelta(minutes=10)
_KINDS: dict[str, type[Customer | Order | Product]] = {
    "customers": Customer,
    "orders": Order,
    "products": Product,
}


class SyncRunning(ShopSyncError):
    """Another sync of the same shop holds its lock; retryable: it ends when that one does."""

    retryable = True


@dataclass
class ResourceResult:
    """What the sync of one resource did."""

    resource: str
    since: dt.datetime | None = None
    """Where the read started (None: from the beginning)."""
    pages: int = 0
    seen: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    """Identical or older than what the store holds (re-read in the overlap, late webhooks)."""
    quarantined: int = 0
    deleted: int = 0
    requests: int = 0
    retries: int = 0
    throttle_waits: int = 0
    duration: float = 0.0


@dataclass
class SyncResult:
    """What a sync did, per resource, with totals."""

    platform: str
    shop: str
    resources: dict[str, ResourceResult] = field(default_factory=dict)
    duration: float = 0.0
    orders_visible_since: dt.datetime | None = None
    """When the platform hid older orders from these credentials (Shopify without
    ``read_all_orders``: the last 60 days), the creation time before which none were read."""
    warnings: list[str] = field(default_factory=list)
    """What the platform withheld, one sentence each naming the fix (the CLI prints them)."""

    def total(self, counter: str) -> int:
        return sum(int(getattr(r, counter)) for r in self.resources.values())

    @property
    def records(self) -> int:
        return self.total("seen")


PageCallback = Callable[[str, Page[Any], ResourceResult], None]


class _ShopLock:
    """The shop's sync lease for the block, renewed every ``ttl / 5`` by a thread: a page can
    keep away for longer than the ttl (a Shopify bulk operation, a long rate-limit wait).
    :meth:`keep`, between pages, stops the sync if the lease was lost meanwhile."""

    def __init__(self, store: Store, platform: str, shop: str, wait: float, ttl: float) -> None:
        name = f"sync/{platform}/{shop}"
        if len(name) > 255:  # the lease name's column; a shop URL can be long
            name = f"sync/{platform}/{hashlib.sha256(shop.encode()).hexdigest()}"
        self.store, self.name, self.wait, self.ttl = store, name, wait, ttl
        self.what = f"{platform} shop {shop}"
        self._lease: Lease | None = None
        self._lost: Exception | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> _ShopLock:
        try:
            self._lease = acquire(self.store.engine, self.name, ttl=self.ttl, wait=self.wait)
        except LeaseHeld as exc:
            held = str(exc).split(";")[0]
            raise SyncRunning(
                f"another sync of {self.what} is running ({held}); this one did not start. "
                "Run it again when that one has finished, or let it wait for that one: "
                "shopsync sync --wait SECONDS (in Python: sync(..., lock_wait=SECONDS))"
            ) from None
        url = self.store.engine.url
        if url.get_backend_name() != "sqlite" or url.database not in (None, "", ":memory:"):
            # (an in-memory SQLite store is one connection no other process can see)
            self._thread = threading.Thread(target=self._renew, daemon=True, name=self.name)
            self._thread.start()
        return self

    def _renew(self) -> None:
        assert self._lease is not None
        while not self._stop.wait(self.ttl / 5):
            try:
                renew(self._lease)
            except LeaseLost as exc:
                self._lost = exc
                return
            except (DatabaseError, StoreError) as exc:  # the pool reconnects next time
                log.warning("lock of %s not renewed, trying again: %s", self.what, exc)

    def keep(self) -> None:
        """Raise ``LeaseLost`` if the lease lapsed and another sync took it: this one stops
        rather than run beside the other."""
        if self._lost is not None:
            raise self._lost

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.ttl)
        lease, self._lease = self._lease, None
        for attempt in range(3):  # a dropped connection: the pool reconnects
            try:
                if lease is not None:
                    release(lease)
                return
            except DatabaseError as error:  # the sync's own outcome matters more
                if attempt == 2:
                    log.warning(
                        "lock of %s not released (lapses in %gs): %s", self.what, self.ttl, error
                    )
                else:
                    time.sleep(0.2)


def _reader(adapter: Adapter, resource: str) -> Callable[[dt.datetime | None], Iterator[Page[Any]]]:
    return getattr(adapter, f"read_{resource}")  # type: ignore[no-any-return]


def sync(
    adapter: Adapter,
    store: Store,
    *,
    resources: Iterable[str] = RESOURCES,
    full: bool = False,
    overlap: dt.timedelta = DEFAULT_OVERLAP,
    on_page: PageCallback | None = None,
    lock_wait: float = 0.0,
    lock_ttl: float = 120.0,
) -> SyncResult:
    """Bring the store up to date with the shop behind ``adapter``.

    ``full=True`` ignores the stored checkpoints and reads everything again (still
    idempotent). ``on_page`` is called after each committed page (progress bars).
    Errors that retries cannot fix (401, a revoked token) propagate; every page committed
    before them stays committed, so the next run continues from there.

    While another sync of the shop runs, this one waits up to ``lock_wait`` seconds for it,
    then raises :class:`SyncRunning` having read nothing. ``lock_ttl``: how long the lock
    outlives a sync that died on another machine.
    """
    started = time.perf_counter()
    report = SyncResult(platform=adapter.platform, shop=adapter.shop)
    resources = list(resources)
    # issue 22: checkouts are read on request (``resources=(*RESOURCES, "checkouts")``), by
    # adapters with the ``checkouts`` capability, after the orders they may turn into
    wants_checkouts = "checkouts" in resources
    resources = [r for r in resources if r != "checkouts"]
    for resource in resources:
        if resource not in _KINDS:
            known = sorted([*_KINDS, "checkouts"])
            raise ValueError(f"unknown resource {resource!r}; expected one of {known}")
    with (
        _ShopLock(store, adapter.platform, adapter.shop, lock_wait, lock_ttl) as lock,
        taking_rows(adapter),
    ):
        for resource in resources:
            report.resources[resource] = _sync_resource(
                adapter, store, resource, full, overlap, on_page, lock
            )
        deletions = capability(adapter, "deletions")
        if deletions is not None:
            report.resources["deletions"] = _sync_deletions(
                adapter, deletions, store, full, overlap, lock
            )
        checkouts = capability(adapter, "checkouts") if wants_checkouts else None
        if checkouts is not None:
            report.resources["checkouts"] = _sync_checkouts(
                adapter, checkouts, store, full, overlap, lock
            )
    if "orders" in report.resources and hasattr(adapter, "order_window"):
        report.orders_visible_since = adapter.order_window()
        report.warnings.extend(getattr(adapter, "read_limits", list)())
    report.duration = time.perf_counter() - started
    return report


def _start(
    store: Store, adapter: Adapter, resource: str, full: bool, overlap: dt.timedelta
) -> tuple[dt.datetime | None, dt.datetime | None]:
    checkpoint = None if full else store.get_cursor(adapter.platform, adapter.shop, resource)
    high_water = checkpoint.high_water if checkpoint else None
    return (high_water - overlap if high_water else None), high_water


def _sync_resource(
    adapter: Adapter,
    store: Store,
    resource: str,
    full: bool,
    overlap: dt.timedelta,
    on_page: PageCallback | None,
    lock: _ShopLock,
) -> ResourceResult:
    started = time.perf_counter()
    since, high_water = _start(store, adapter, resource, full, overlap)
    report = ResourceResult(resource=resource, since=since)
    log.info("sync %s %s %s since %s", adapter.platform, adapter.shop, resource, since)
    mark = [_mark(store.get_cursor(adapter.platform, adapter.shop, resource))]

    def write(page: Page[Any], high_water: dt.datetime | None, tx: Any) -> UpsertResult:
        if resource != "customers":  # consent comes with customers: durable (see below)
            # a crash that loses the page loses its checkpoint with it; the shop's writer lock
            # goes in the same round trip
            shop_id = store.shop_id(adapter.platform, adapter.shop, tx)
            lazy_commit(tx, store._writer_lock(shop_id))
        _still_written(store, adapter, resource, mark[0], tx)
        result = store.upsert(page.records, conn=tx)
        result += store_page(store, adapter.platform, adapter.shop, page, tx)  # issue 20
        if page.completed_checkouts:  # the checkouts its orders were placed from (issue 22)
            from shopsync.store.checkout_rows import complete_checkouts

            complete_checkouts(store, tx, adapter.platform, adapter.shop, page.completed_checkouts)
        store.quarantine(adapter.platform, adapter.shop, page.rejected, conn=tx)
        store.set_cursor(
            adapter.platform,
            adapter.shop,
            resource,
            cursor=page.cursor,
            high_water=high_water,
            conn=tx,
        )
        # the next page checks against this one; should the commit fail, the writer stops and
        # no page reads it
        mark[0] = (page.cursor, high_water)
        return result

    def committed(page: Page[Any], result: UpsertResult) -> None:
        report.pages += 1
        report.seen += len(page.records) + len(page.rejected) + len(getattr(page, "rows", ()))
        report.inserted += result.inserted
        report.updated += result.updated
        report.unchanged += result.unchanged + result.stale
        report.quarantined += len(page.rejected)
        report.requests += page.stats.get("requests", 0)
        report.retries += page.stats.get("retries", 0)
        report.throttle_waits += page.stats.get("throttle_waits", 0)
        if on_page is not None:
            on_page(resource, page, report)

    # page N may be written on a thread of its own while this one reads page N+1 (issue 20:
    # page_commit.DEPTH, off by default)
    with PageWriter(store) as writer:
        for page in _reader(adapter, resource)(since):
            lock.keep()
            if page.high_water is not None and (high_water is None or page.high_water > high_water):
                high_water = page.high_water
            # the shop row durably first (a cache hit after): the process outlives a database
            # crash that loses lazy commits, and must not keep the id of a shop row it lost
            store.shop_id(adapter.platform, adapter.shop)
            writer.submit(
                functools.partial(write, page, high_water),
                functools.partial(committed, page),
            )
    report.duration = time.perf_counter() - started
    return report


def _mark(checkpoint: Cursor | None) -> tuple[str | None, dt.datetime | None] | None:
    return None if checkpoint is None else (checkpoint.cursor, checkpoint.high_water)


def _still_written(
    store: Store,
    adapter: Adapter,
    resource: str,
    written: tuple[str | None, dt.datetime | None] | None,
    tx: Any,
) -> None:
    """Stop unless the stored checkpoint is the one this sync last committed: a PostgreSQL
    crash loses the last lazy pages with their checkpoints while the process runs on, and a
    later page's checkpoint would skip them for good. The next run reads them again."""
    if _mark(store.get_cursor(adapter.platform, adapter.shop, resource, tx)) != written:
        raise StoreError(
            f"the {resource} checkpoint of {adapter.shop} is not the one this sync committed"
            " (a database crash lost the last pages?); run the sync again to read them again"
        )


def _sync_checkouts(
    adapter: Adapter,
    reader: CheckoutReader,
    store: Store,
    full: bool,
    overlap: dt.timedelta,
    lock: _ShopLock,
) -> ResourceResult:
    """Checkouts page by page, each page and the cursor in one transaction each (a crash
    between them re-reads a page: writing a checkout twice changes nothing)."""
    from shopsync.store.checkout_rows import upsert_checkouts

    started = time.perf_counter()
    since, high_water = _start(store, adapter, "checkouts", full, overlap)
    report = ResourceResult(resource="checkouts", since=since)
    for page in reader.read_checkouts(since):
        lock.keep()
        if page.high_water is not None and (high_water is None or page.high_water > high_water):
            high_water = page.high_water
        result = upsert_checkouts(store, page.records)
        with store.transaction() as tx:
            store.quarantine(adapter.platform, adapter.shop, page.rejected, conn=tx)
            store.set_cursor(
                adapter.platform,
                adapter.shop,
                "checkouts",
                cursor=page.cursor,
                high_water=high_water,
                conn=tx,
            )
        report.pages += 1
        report.seen += len(page.records) + len(page.rejected)
        report.inserted += result.inserted
        report.updated += result.updated
        report.unchanged += result.stale
        report.quarantined += len(page.rejected)
    report.duration = time.perf_counter() - started
    return report


def _sync_deletions(
    adapter: Adapter,
    deletions: DeletionReader,
    store: Store,
    full: bool,
    overlap: dt.timedelta,
    lock: _ShopLock,
) -> ResourceResult:
    started = time.perf_counter()
    since, high_water = _start(store, adapter, "deletions", full, overlap)
    report = ResourceResult(resource="deletions", since=since)
    batch: Iterable[Deletion] = deletions.read_deletions(since)
    # Deletion reads need not be in time order (WooCommerce lists trashed orders by id), so
    # the checkpoint moves only once the whole read is applied; a crash re-reads the window.
    for deletion in batch:
        lock.keep()
        kind = _KINDS[deletion.resource]
        report.deleted += store.delete(
            kind, adapter.platform, adapter.shop, deletion.record_id, deleted_at=deletion.deleted_at
        )
        if high_water is None or deletion.deleted_at > high_water:
            high_water = deletion.deleted_at
        report.seen += 1
    store.set_cursor(
        adapter.platform, adapter.shop, "deletions", cursor=None, high_water=high_water
    )
    report.duration = time.perf_counter() - started
    return report


def __getattr__(name: str) -> Any:
    return old_name(__name__, name)
