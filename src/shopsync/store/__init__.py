"""The local store: the single source of truth on the user's side.

SQLAlchemy Core over SQLite by default (``sqlite:///shop.db``) or PostgreSQL by URL
(``postgresql+psycopg://user@host/db``). The schema is versioned; opening a store migrates
it forward (:meth:`Store.migrate`). Writes are idempotent upserts keyed by
``(platform, shop, id)`` and guarded by ``updated_at``: a newer version replaces the record
and all its child rows in one transaction, an equal or older one changes nothing.

:class:`Store` keeps the shop keys and the transactions; the bodies of its other concerns
live in private modules beside it, as functions taking the store: the engine and migrations
in :mod:`._engine`, upserts, deletions and tombstones in :mod:`._upsert`, reads of records in
:mod:`._records`, sync cursors in :mod:`._cursors`, the quarantine in
:mod:`._quarantine_rows`, webhook deliveries in :mod:`._webhook_deliveries`, consent in
:mod:`._consent`, the GDPR export and erasure in :mod:`._privacy`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from os import PathLike
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, select

from shopsync.adapter import CustomerChange, Rejected
from shopsync.models import Customer, MarketingConsent, Order, Product
from shopsync.store import (
    _consent,
    _cursors,
    _engine,
    _privacy,
    _quarantine_rows,
    _records,
    _rows,
    _upsert,
    _webhook_deliveries,
    facts,
    incremental,
)
from shopsync.store import changes as _changes  # (a parameter below is named changes)
from shopsync.store._copy import insert_ignoring_duplicates
from shopsync.store._cursors import Cursor
from shopsync.store._engine import Lease, LeaseHeld, LeaseLost
from shopsync.store._quarantine_rows import QuarantinedRecord
from shopsync.store._records import Record
from shopsync.store._upsert import UpsertResult
from shopsync.store.schema import metadata, shops
from shopsync.store.urls import shown_url

__all__ = [
    "NO_SHOP",
    "Cursor",
    "Lease",
    "LeaseHeld",
    "LeaseLost",
    "QuarantinedRecord",
    "Store",
    "UpsertResult",
    "insert_ignoring_duplicates",
    "metadata",
]

DEFAULT_URL = "sqlite:///shopsync.db"
VERSION_TABLE = "shopsync_schema_version"
NO_SHOP = -1
"""The key a read gets for a shop the store does not hold: it matches no row."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Store:
    """A shopsync store at ``url``; the schema is brought up to date on open."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        migrate: bool = True,
        echo: bool = False,
        facts_dir: str | PathLike[str] | bool | None = None,
    ) -> None:
        self.engine: Engine = _engine.open_engine(url, echo=echo)
        self.facts_dir: Path | None = facts.default_dir(url, facts_dir)
        """Where the columnar snapshot of order facts lives (:mod:`.facts`): ``facts_dir``,
        else ``<db>.facts`` beside a SQLite file, the user's cache directory for a server,
        none in memory; ``facts_dir=False``: none."""
        self._shop_ids: dict[tuple[str, str], int] = {}
        self._shop_names: dict[int, tuple[str, str]] = {}
        self.memo: dict[str, Any] = {}
        """Values the layers above derive from this store's data and keep while it lives (the
        planner's shop-wide statistics of the day), each under its owner's name. They die
        with the object: a new Store, even at the address of a closed one, starts empty."""
        if migrate:
            self.migrate()

    def __repr__(self) -> str:
        # Not hide_password alone: a password can also sit in the query string.
        return f"Store({shown_url(self.engine.url.render_as_string(hide_password=False))!r})"

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema ----------------------------------------------------------------------

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to ``revision`` (default: the newest), in one transaction.

        Threads and processes opening one store at once upgrade it once (the others wait,
        then find it current); an upgrade cut short by a kill or Ctrl-C leaves the schema as
        it was, and the next open upgrades it (see :mod:`shopsync.store._engine`).
        """
        _engine.upgrade(self.engine, revision, VERSION_TABLE)
        # the reads' table list (read.table_names) was taken before the tables it added
        self.__dict__.pop("_shopsync_tables", None)

    @contextmanager
    def lease(
        self, name: str, *, holder: str | None = None, ttl: float = 300.0, wait: float = 0.0
    ) -> Iterator[Lease]:
        """Hold the named lease for the block: one holder per store at a time.

        For work that spans many transactions (one apply per store; a worker's job). The
        lease lasts ``ttl`` seconds on the database's clock; call ``renew()`` on it more often
        than that. A holder that dies stops renewing and the lease goes to the next asker once
        it expires. Waits up to ``wait`` seconds, then raises :class:`LeaseHeld` (retryable).
        """
        held = _engine.acquire(self.engine, name, holder=holder, ttl=ttl, wait=wait)
        try:
            yield held
        finally:
            held.release()

    def schema_version(self) -> str | None:
        """The schema revision the database is at, None for an empty database."""
        return _engine.current_revision(self.engine, VERSION_TABLE)

    @staticmethod
    def head_version() -> str:
        """The newest schema revision this version of shopsync knows."""
        return _engine.head_revision()

    # -- transactions and shops ------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction: everything written through the connection lands or nothing does."""
        try:
            with self.engine.begin() as conn:
                _engine.begin_write(conn)
                yield conn
        except BaseException:
            self._forget_shops()  # a rolled-back transaction may have created shop rows we cached
            raise

    def shop_id(
        self, platform: str, shop: str, conn: Connection | None = None, *, create: bool = True
    ) -> int:
        """The store's key for a shop, created on first write. Reads pass ``create=False``:
        an unknown shop then gets :data:`NO_SHOP`, which matches no row, so reading never
        creates a shop (a shop the store knows is one webhooks are accepted for)."""
        key = (platform, shop)
        if key in self._shop_ids:
            return self._shop_ids[key]
        with self._conn(conn) as c:
            found = c.execute(
                select(shops.c.shop_id).where(shops.c.platform == platform, shops.c.shop == shop)
            ).scalar()
            if found is None and not create:
                return NO_SHOP
            if found is None:
                # Two first writers of one shop: the second waits for the first's row.
                row = {"platform": platform, "shop": shop, "created_at": _rows.to_micros(_now())}
                insert_ignoring_duplicates(c, shops, [row])
                found = c.execute(
                    select(shops.c.shop_id).where(
                        shops.c.platform == platform, shops.c.shop == shop
                    )
                ).scalar_one()
        self._shop_ids[key] = found
        self._shop_names[found] = key
        return int(found)

    def shops(self) -> list[tuple[str, str]]:
        """Every (platform, shop) the store holds."""
        with self.engine.connect() as conn:
            return [
                (r.platform, r.shop) for r in conn.execute(select(shops).order_by(shops.c.shop_id))
            ]

    @contextmanager
    def _conn(self, conn: Connection | None) -> Iterator[Connection]:
        if conn is not None:
            yield conn
        else:
            with self.transaction() as own:
                yield own

    # -- upserts ---------------------------------------------------------------------

    def upsert(
        self,
        records: Iterable[Customer | Order | Product],
        conn: Connection | None = None,
        *,
        same_stamp: bool = True,
    ) -> UpsertResult:
        """Insert or replace records; all of them in one transaction.

        A record replaces the stored one if its ``updated_at`` is newer, or, with
        ``same_stamp`` (what a sync reads is the platform's word), if it is equal and the
        content differs; child rows (line items, refunds, fulfilments) are replaced with it.
        Webhook intake passes ``same_stamp=False``: a delivery may be older than the stored
        version yet carry the same whole-second stamp. A failure rolls back the whole batch,
        so no order is ever half written.
        """
        return _upsert.upsert(self, records, conn, same_stamp)

    @staticmethod
    def _writing(c: Connection, shop_id: int) -> None:
        """Writers of one shop take turns: each reads what the one before it committed, so
        two that insert the same new record (two syncs, a sync and a webhook) both succeed.
        Every writer of records takes it (upserts, deletions, erasures, consent): an upsert
        reads the stored row and tombstones before it replaces the row, and a deletion, an
        erasure or a consent change committed in between was undone (PostgreSQL).
        SQLite: the write transaction does it; PostgreSQL: a transaction advisory lock."""
        _engine.exclusive(c, Store._writer_lock(shop_id))

    @staticmethod
    def _writer_lock(shop_id: int) -> str:
        """The name of the lock :meth:`_writing` takes (a sync page takes it with its BEGIN)."""
        return f"shop:{shop_id}"

    def _forget_shops(self) -> None:
        self._shop_ids.clear()
        self._shop_names.clear()

    def delete(
        self,
        kind: type[Customer | Order | Product],
        platform: str,
        shop: str,
        record_id: str,
        conn: Connection | None = None,
        *,
        deleted_at: dt.datetime | None = None,
    ) -> bool:
        """Remove a record (and an order's child rows); True if it existed.

        A tombstone remembers the deletion (at ``deleted_at``, default now), so a version of
        the record updated before it, delivered late, does not bring it back.
        """
        return _upsert.delete(self, kind, platform, shop, record_id, conn, deleted_at)

    # -- reads -----------------------------------------------------------------------

    def get(self, kind: type[Record], platform: str, shop: str, record_id: str) -> Record | None:
        """The stored record, or None."""
        found = list(self._read(kind, platform, shop, [record_id]))
        return found[0] if found else None

    def iter(
        self, kind: type[Record], platform: str, shop: str, *, batch: int = 1000
    ) -> Iterator[Record]:
        """Every stored record of one kind for one shop, in id order, ``batch`` at a time."""
        return _records.iterate(self, kind, platform, shop, batch)

    def count(self, kind: type[Customer | Order | Product], platform: str, shop: str) -> int:
        return _records.count(self, kind, platform, shop)

    def _read(
        self, kind: type[Record], platform: str, shop: str, ids: Sequence[str]
    ) -> Iterator[Record]:
        return _records.read(self, kind, platform, shop, ids)

    # -- sync cursors ----------------------------------------------------------------

    def get_cursor(
        self, platform: str, shop: str, resource: str, conn: Connection | None = None
    ) -> Cursor | None:
        return _cursors.get(self, platform, shop, resource, conn)

    def set_cursor(
        self,
        platform: str,
        shop: str,
        resource: str,
        *,
        cursor: str | None,
        high_water: dt.datetime | None,
        state: dict[str, Any] | None = None,
        conn: Connection | None = None,
    ) -> None:
        """Record where a sync stopped; pass the page's connection to commit both together."""
        _cursors.put(self, platform, shop, resource, (cursor, high_water, state), conn)

    # -- quarantine ------------------------------------------------------------------

    def quarantine(
        self, platform: str, shop: str, rejected: Iterable[Rejected], conn: Connection | None = None
    ) -> int:
        """Keep rejected records with their reason; seeing one again updates it."""
        return _quarantine_rows.add(self, platform, shop, rejected, conn)

    def quarantined(self, *, include_resolved: bool = False) -> list[QuarantinedRecord]:
        """The quarantine, oldest first."""
        return _quarantine_rows.listed(self, include_resolved)

    def resolve_quarantined(self, quarantine_id: int, conn: Connection | None = None) -> None:
        """Mark a quarantined record as dealt with (it stays for the record)."""
        _quarantine_rows.resolve(self, quarantine_id, conn)

    # -- webhook deliveries and privacy ----------------------------------------------

    def record_delivery(
        self, platform: str, shop: str, delivery_id: str, topic: str, conn: Connection | None = None
    ) -> bool:
        """Note a webhook delivery; False if it was noted before (a retried delivery)."""
        return _webhook_deliveries.record(self, platform, shop, delivery_id, topic, conn)

    def prune_deliveries(self, older_than: dt.datetime) -> int:
        """Forget deliveries received before ``older_than`` (platforms stop retrying after
        hours: Shopify after 4, WooCommerce after 5 failures)."""
        return _webhook_deliveries.prune(self, older_than)

    def export_customer(
        self, platform: str, shop: str, customer_id: str, *, order_ids: Iterable[str] = ()
    ) -> dict[str, Any]:
        """Everything the store holds about one customer, as JSON-ready data (GDPR access):
        the customer, their orders and guest orders under their e-mail, consent history,
        loyalty ledger and inputs, referrals naming them, reviews, outbox messages and
        suppressions. ``order_ids`` are further orders the request names."""
        return _privacy.export_customer(self, platform, shop, customer_id, order_ids)

    def redact_customer(
        self,
        platform: str,
        shop: str,
        customer_id: str,
        conn: Connection | None = None,
        *,
        order_ids: Iterable[str] = (),
        contacts: Iterable[str] = (),
    ) -> None:
        """Erase a customer's personal data (GDPR erasure).

        The customer row, consent history, loyalty entries and reviews go; their orders stay
        for the shop's figures but lose email, addresses and refund notes. ``order_ids`` are
        further orders to treat alike (Shopify's ``orders_to_redact``, guest checkouts among
        them) and ``contacts`` the emails and phones the platform names; quarantined
        payloads mentioning the customer, an order or a contact go. Tombstones keep a late
        webhook or a later sync page from bringing any of it back.
        """
        _privacy.redact_customer(self, platform, shop, customer_id, conn, order_ids, contacts)

    def remove_shop(self, platform: str, shop: str, conn: Connection | None = None) -> None:
        """Delete every row of one shop (GDPR shop/redact, or an uninstall)."""
        with self._conn(conn) as c:
            shop_id = self.shop_id(platform, shop, c)
            self._writing(c, shop_id)
            incremental.hold_moments(c, shop_id)  # a settle under way writes no moment
            for table in metadata.sorted_tables:
                if table is not shops and "shop_id" in table.c:
                    c.execute(table.delete().where(table.c.shop_id == shop_id))
            c.execute(shops.delete().where(shops.c.shop_id == shop_id))
        self._forget_shops()
        facts.forget(self.facts_dir, shop_id)  # the files hold its data too

    def customer_ids_by_email(
        self, platform: str, shop: str, emails: Iterable[str]
    ) -> dict[str, list[str]]:
        """Stored customer ids per lower-cased e-mail address (for a consent list import)."""
        shop_id = self.shop_id(platform, shop, create=False)
        with self.engine.connect() as conn:
            return _consent.customer_ids_by_email(conn, shop_id, emails)

    def set_consent(
        self,
        platform: str,
        shop: str,
        customer_id: str,
        channel: str,
        consent: MarketingConsent,
        *,
        source: str,
        now: dt.datetime | None = None,
        lift_suppression: bool = False,
        suppressed_before: dt.datetime | None = None,
        newer_only: bool = False,
    ) -> bool | None:
        """Record a consent that came from outside the platform (an imported list, a double
        opt-in) with its ``source``; see :func:`shopsync.store._consent.set_consent`."""
        shop_id = self.shop_id(platform, shop, create=False)
        at = _rows.to_micros(now or _now())
        with self.transaction() as conn:
            self._writing(conn, shop_id)
            changed = _consent.set_consent(
                conn,
                shop_id,
                customer_id,
                channel,
                consent,
                source=source,
                at=at,
                lift_suppression=lift_suppression,
                suppressed_before=_rows.opt_micros(suppressed_before),
                newer_only=newer_only,
            )
            if changed or (changed is not None and lift_suppression):  # (issue 19)
                _changes.note(conn, shop_id, [customer_id], _now())
            return changed

    def apply_customer_changes(
        self,
        platform: str,
        shop: str,
        changes: Iterable[CustomerChange],
        conn: Connection | None = None,
        *,
        now: dt.datetime | None = None,
    ) -> int:
        """Apply consent and tag changes that arrived without a customer record (see
        :func:`shopsync.store._partial.apply_changes`); returns the customers changed."""
        changes = list(changes)
        if not changes:
            return 0
        from shopsync.store._partial import apply_changes

        at = _rows.to_micros(now or _now())
        with self._conn(conn) as c:
            shop_id = self.shop_id(platform, shop, c)
            self._writing(c, shop_id)
            _changes.note(c, shop_id, [change.customer_id for change in changes], _now())
            return apply_changes(c, shop_id, changes, at)

    def suppressed_at(
        self, platform: str, shop: str, customer_id: str, channel: str = "email"
    ) -> dt.datetime | None:
        """When the customer unsubscribed ``channel`` through shopsync's link, if they did."""
        shop_id = self.shop_id(platform, shop, create=False)
        with self.engine.connect() as conn:
            return _rows.from_micros(_consent.suppressed_at(conn, shop_id, customer_id, channel))

    def consent_counts(self, platform: str, shop: str) -> _consent.ConsentCounts:
        """How many customers e-mail marketing can reach, and why the others cannot."""
        shop_id = self.shop_id(platform, shop, create=False)
        with self.engine.connect() as conn:
            return _consent.consent_counts(conn, shop_id)

    def tombstones(
        self, platform: str, shop: str, resource: str | None = None
    ) -> list[_privacy.Tombstone]:
        """What the store keeps out of one shop (deleted and redacted records)."""
        shop_id = self.shop_id(platform, shop, create=False)
        with self.engine.connect() as conn:
            return _privacy.list_tombstones(conn, shop_id, resource)

    def lift_tombstones(
        self,
        platform: str,
        shop: str,
        resource: str | None = None,
        ids: Iterable[str] | None = None,
    ) -> int:
        """Let records back in (a deletion replayed under another topic, a mistaken erasure):
        the next full sync stores whatever the platform still has. Returns how many."""
        shop_id = self.shop_id(platform, shop, create=False)
        with self.transaction() as conn:
            return _privacy.lift_tombstones(conn, shop_id, resource, ids)

    def last_activity(self, platform: str, shop: str) -> dt.datetime | None:
        """When the shop last synced or delivered a webhook (None: never, or unknown)."""
        shop_id = self.shop_id(platform, shop, create=False)
        with self.engine.connect() as conn:
            return _privacy.last_activity(conn, shop_id)

    def consent_history(
        self, platform: str, shop: str, customer_id: str
    ) -> list[tuple[str, dt.datetime, str]]:
        """(channel, observed_at, state) for every consent change seen, oldest first."""
        shop_id = self.shop_id(platform, shop, create=False)
        with self.engine.connect() as conn:
            return _consent.history(conn, shop_id, customer_id)
