"""What the PostgreSQL benchmarks (``job_engines.py``, ``workers.py``) share: a fresh schema
per run, and N processes started at one instant, so a wall time measures their work and not
their start-up (spawning and connecting take longer than a small drain)."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, text

__all__ = ["Started", "schema", "started"]


@contextlib.contextmanager
def schema(base: str) -> Iterator[str]:
    """A fresh schema, dropped afterwards: the SQLAlchemy URL whose search_path is it."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options={quote(f'-csearch_path={name}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


class Started:
    """Processes that are ready and waiting for :meth:`go`."""

    def __init__(self, go: Any, pipes: list[Connection]) -> None:
        self._go = go
        self._pipes = pipes

    def go(self) -> tuple[list[Any], float]:
        """Start them all; each one's result (in order) and the seconds until the last."""
        t0 = time.perf_counter()
        self._go.set()
        results = [pipe.recv() for pipe in self._pipes]
        return results, time.perf_counter() - t0


@contextlib.contextmanager
def started(target: Callable[..., None], arglists: Iterable[tuple[Any, ...]]) -> Iterator[Started]:
    """Spawn ``target(*args, ready, go, out)`` for each ``args``: it releases the semaphore
    ``ready`` once set up, waits for the event ``go``, then sends its result on ``out``.
    Yields when every process is ready; joins them on exit (terminates them on an error)."""
    context = mp.get_context("spawn")
    ready, go = context.Semaphore(0), context.Event()
    pipes, procs = [], []
    try:
        for args in arglists:
            parent, child = context.Pipe()
            proc = context.Process(target=target, args=(*args, ready, go, child))
            proc.start()
            pipes.append(parent)
            procs.append(proc)
        for _ in procs:
            ready.acquire()
        yield Started(go, pipes)
    except BaseException:
        for proc in procs:
            proc.terminate()
        raise
    finally:
        for proc in procs:
            proc.join()
