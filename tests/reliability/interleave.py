"""Deterministic interleavings on PostgreSQL: another writer commits between two statements.

PostgreSQL (READ COMMITTED) reads committed data afresh at each statement, so a check made of
several statements, or a read followed by a write, can be split by a writer that does not take
the same lock. :class:`Interleave` runs ``writer`` in another thread right after the ``after``-th
statement the calling thread sends through ``engine`` (SQLAlchemy's cursor events), and lets the
calling thread go on once the writer has finished or is waiting for a lock the calling thread
holds (``pg_stat_activity`` says so): no sleeps, the same order every run. Loop ``after`` over
``range(count)`` (count from a run with ``after=None``) to try every gap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, create_engine, event, text

__all__ = ["Interleave"]


class Interleave:
    """``with Interleave(engine, writer, after=k) as run: <the operation under test>``."""

    def __init__(self, engine: Engine, writer: Callable[[], Any], *, after: int | None) -> None:
        self.engine, self.writer, self.after = engine, writer, after
        self.seen = 0  # statements the calling thread sent
        self.me = threading.get_ident()
        self.thread: threading.Thread | None = None
        self.pid: int | None = None
        self.error: BaseException | None = None
        self.result: Any = None
        self.waited = False  # the writer had to wait for the calling thread's lock
        self._monitor: Engine | None = None

    def __enter__(self) -> Interleave:
        event.listen(self.engine, "before_cursor_execute", self._before)
        event.listen(self.engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *exc: Any) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)
        if self.after is not None and self.thread is None and exc[0] is None:
            self._run_beside()  # fewer statements this time: the writer comes after them all
        try:
            if self.thread is not None:
                self.thread.join(60)
                assert not self.thread.is_alive(), "the concurrent writer never finished"
        finally:
            if self._monitor is not None:
                self._monitor.dispose()
        if self.error is not None and exc[0] is None:
            raise self.error

    def run_now(self) -> None:
        """Run the writer beside the calling thread now (``after=None``: the caller's own
        cursor events decide the moment), and return as ``after`` would."""
        if self.thread is None:
            self._run_beside()

    def _before(self, conn: Any, *args: Any) -> None:
        if self.thread is not None and threading.get_ident() == self.thread.ident:
            self.pid = int(conn.connection.dbapi_connection.info.backend_pid)  # its latest

    def _after(self, *args: Any) -> None:
        if threading.get_ident() != self.me:
            return
        if self.after is not None and self.seen == self.after and self.thread is None:
            self._run_beside()
        self.seen += 1

    def _work(self) -> None:
        try:
            self.result = self.writer()
        except BaseException as exc:  # reported by __exit__
            self.error = exc

    def _run_beside(self) -> None:
        self._monitor = create_engine(self.engine.url, isolation_level="AUTOCOMMIT")
        self.thread = threading.Thread(target=self._work, daemon=True)
        self.thread.start()
        with self._monitor.connect() as monitor:
            while self.thread.is_alive():
                self.thread.join(0.002)
                if self.pid is None or not self.thread.is_alive():
                    continue
                waiting = monitor.execute(
                    text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :p"),
                    {"p": self.pid},
                ).scalar()
                if waiting == "Lock":
                    self.waited = True
                    return
