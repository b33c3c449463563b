"""A sync page's transaction commits without waiting for the disk (PostgreSQL, issue 20).

A durable commit waits for its WAL to be flushed: measured 2.5 ms for a one-row write on the
benchmark machine and 3-6 ms for a page of 250 orders with their lines, a fifth of the page's
time on the COPY path. ``SET LOCAL synchronous_commit = off`` lets the commit return before
the flush (the WAL writer flushes within ``3 * wal_writer_delay``, 600 ms by default). It
changes what an operating-system, power or PostgreSQL crash can lose (WAL not yet written
lives in the server's shared memory, which a crash restart discards), never what a crash of
shopsync's process can. A PostgreSQL crash leaves the process running, so nothing it keeps
in memory may rest on a lazy commit: a sync creates its shop's row (whose id the store
caches) durably, before the first page, and each page first checks that the stored
checkpoint is the one the sync last committed (else it stops: running on, the next page's
checkpoint would skip the lost ones for good).

- the commit is of the whole page: its records, quarantined rows, change notes and the
  cursor checkpoint. What such a crash loses is the page *and* its checkpoint together, so
  the next sync starts from the checkpoint before it and fetches that page again; nothing is
  lost that is not read again, and nothing is half-written;
- WAL is flushed in order: any later durable commit (an outbox row, a ledger entry, a
  consent change, a webhook's write, the sync's lease release) flushes every commit before it.
  So nothing durable can ever rest on a page that a crash then loses (a plan made from a page
  and recorded in the outbox makes the page durable first);
- ``SET LOCAL`` lasts until the transaction ends: the pooled connection's next transaction
  is durable again. Only the sync's record pages of orders and products take it; a webhook's
  write does not (the platform does not deliver an acknowledged event again), nor outbox,
  ledger or consent writes, nor customer pages: they carry consent, and a withdrawal lost in
  a database crash would let an apply running beside the sync send marketing on the consent
  before it until the next sync read it again.

SQLite already commits every transaction this way (``synchronous=NORMAL`` in WAL mode: an
operating-system crash may undo the last commits, never corrupt the file).
"""

from __future__ import annotations

from sqlalchemy import Connection

__all__ = ["lazy_commit"]


def lazy_commit(conn: Connection) -> None:
    """Let ``conn``'s transaction, a sync page's, commit without waiting for the WAL flush."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
