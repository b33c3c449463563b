"""Every test that opens a store on the shared test PostgreSQL does so in a schema of its own.

The database outlives runs and is shared by runs at once; a store opened on its URL as it is
writes into the public schema, where another run's rows (same shop names, same ids) mix with
its own. The ``postgres_url`` fixture and :func:`tests.pg_schema.own_schema` give a fresh
schema; this test finds files that read the URL from the environment and make none.
"""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).parent
ALLOWED = {"conftest.py", "pg_schema.py", "test_postgres_embedded.py", "test_pg_isolation.py"}
READS_URL = re.compile(r"SHOPSYNC_TEST_POSTGRES_URL|\bURL_VAR\b|shared_url\(")
ISOLATES = re.compile(r"own_schema\(|HeadSchema\(|CREATE SCHEMA")


def test_tests_reading_the_shared_postgres_url_make_a_schema_of_their_own() -> None:
    raw = []
    for path in sorted(TESTS.rglob("*.py")):
        if path.name in ALLOWED:
            continue
        source = path.read_text()
        if READS_URL.search(source) and not ISOLATES.search(source):
            raw.append(str(path.relative_to(TESTS)))
    assert raw == [], "use the postgres_url fixture or tests.pg_schema.own_schema"


def test_the_check_sees_a_raw_use(tmp_path: Path) -> None:
    raw = 'store = Store(os.environ["SHOPSYNC_TEST_POSTGRES_URL"])\n'
    assert READS_URL.search(raw) and not ISOLATES.search(raw)
    isolated = 'with own_schema(os.environ["SHOPSYNC_TEST_POSTGRES_URL"]) as url:\n'
    assert READS_URL.search(isolated) and ISOLATES.search(isolated)
