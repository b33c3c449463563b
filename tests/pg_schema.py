"""A schema of its own in the shared test PostgreSQL, for tests that cannot take the
``postgres_url`` fixture (module-wide stores, loops over engines inside one test).

The test database outlives every run and is shared by runs at once (xdist workers, two
worktrees, a CI job beside a local run): a test that writes into its public schema mixes its
rows with theirs, and a row left by a killed run lingers for the next. A fresh schema per
store, dropped afterwards, shares nothing.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from shopsync.store import Store, facts

__all__ = ["URL_VAR", "HeadSchema", "own_schema", "shared_url"]

URL_VAR = "SHOPSYNC_TEST_POSTGRES_URL"


def shared_url() -> str | None:
    """The shared test database (None: no PostgreSQL for this run). Never open a store on
    it directly: pass it to :func:`own_schema`."""
    return os.environ.get(URL_VAR) or None


@contextmanager
def own_schema(base: str, prefix: str = "t") -> Iterator[str]:
    """``base`` with its search_path set to a fresh schema, dropped (with what it holds)
    when the block ends; close the stores opened on it first."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in base else "?"
        try:
            yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


_SHAPE = """
SELECT md5(concat_ws('|',
  (SELECT string_agg(c.relname || '.' || a.attname || ':' || format_type(a.atttypid, a.atttypmod)
                     || ':' || a.attnotnull, ',' ORDER BY c.relname, a.attnum)
     FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    WHERE c.relnamespace = current_schema()::regnamespace AND a.attnum > 0
      AND NOT a.attisdropped),
  (SELECT string_agg(conname || contype::text, ',' ORDER BY conname)
     FROM pg_constraint WHERE connamespace = current_schema()::regnamespace),
  (SELECT string_agg(t.tgname, ',' ORDER BY t.tgname)
     FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid
    WHERE r.relnamespace = current_schema()::regnamespace),
  (SELECT string_agg(version_num, ',' ORDER BY version_num) FROM shopsync_schema_version)))
"""


class HeadSchema:
    """A schema at the newest revision that the ``store`` fixture empties for each test
    instead of creating and migrating one (about 0.6 s each, several times that on a loaded
    machine; emptying takes a few ms). A test that changed the schema itself (a downgrade, a
    dropped table) or left a lock that blocks the emptying gets a newly built one."""

    def __init__(self, base: str) -> None:
        self._base = base
        self._admin = create_engine(base, pool_size=1)
        self._schema = ""
        self.url = ""
        self._build()

    def fresh(self) -> str:
        """The URL, its tables as the migrations left them, its snapshot directory gone."""
        try:
            with self._engine.begin() as conn:
                conn.execute(text("SET LOCAL lock_timeout = '2s'"))
                if conn.execute(text(_SHAPE)).scalar() != self._shape:
                    raise LookupError("the schema was changed")
                used = ", ".join(f'"{t}"' for t in conn.execute(self._used).scalars())
                if used:
                    conn.execute(text(f"TRUNCATE {used} CASCADE"))
                conn.execute(self._restart)
        except (LookupError, DBAPIError):
            self._build()
        shutil.rmtree(facts.default_dir(self.url, None) or "/nonexistent", ignore_errors=True)
        return self.url

    def close(self) -> None:
        self._drop()
        self._admin.dispose()

    def _build(self) -> None:
        self._drop()
        self._schema = f"head_{uuid.uuid4().hex[:12]}"
        with self._admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{self._schema}"'))
        sep = "&" if "?" in self._base else "?"
        self.url = f"{self._base}{sep}options={quote(f'-csearch_path={self._schema}')}"
        Store(self.url, facts_dir=False).close()
        self._engine = create_engine(self.url, pool_size=1)
        with self._engine.begin() as conn:
            self._shape = conn.execute(text(_SHAPE)).scalar()
            tables = conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            ).scalars()
            # the tables the migrations filled (the version table) keep their rows
            empty = [t for t in tables if not conn.execute(text(f'SELECT 1 FROM "{t}"')).first()]
            seqs = conn.execute(
                text(
                    "SELECT sequencename, start_value FROM pg_sequences"
                    " WHERE schemaname = current_schema()"
                )
            ).all()
        self._used = text(
            " UNION ALL ".join(f"SELECT '{t}' WHERE EXISTS (SELECT 1 FROM \"{t}\")" for t in empty)
        )
        self._restart = text(
            "SELECT " + ", ".join(f"setval('\"{name}\"', {start}, false)" for name, start in seqs)
        )

    def _drop(self) -> None:
        if not self._schema:
            return
        self._engine.dispose()
        try:
            with self._admin.begin() as conn:
                conn.execute(text("SET LOCAL lock_timeout = '2s'"))
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{self._schema}" CASCADE'))
        except DBAPIError:  # a lock a test left: the schema stays, as own_schema's would
            pass
