"""A schema of its own in the shared test PostgreSQL, for tests that cannot take the
``postgres_url`` fixture (module-wide stores, loops over engines inside one test).

The test database outlives every run and is shared by runs at once (xdist workers, two
worktrees, a CI job beside a local run): a test that writes into its public schema mixes its
rows with theirs, and a row left by a killed run lingers for the next. A fresh schema per
store, dropped afterwards, shares nothing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

from sqlalchemy import create_engine, text

__all__ = ["URL_VAR", "own_schema", "shared_url"]

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
