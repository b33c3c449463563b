"""Work run beside the caller's: a plan's loyalty derivation (Python and SQL: one core, mostly)
while the programs' candidates are built (Polars' threads), which read nothing it derives."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["beside"]

_T = TypeVar("_T")


def beside(work: Callable[..., _T], *args: Any, **kwargs: Any) -> Future[_T]:
    """``work(*args, **kwargs)`` in a daemon thread. A caller that stops (an error, Ctrl-C)
    neither waits for it nor keeps the process alive for it: a transaction it had open when
    the process ends is rolled back, as after any crash."""
    done: Future[_T] = Future()

    def run() -> None:
        if done.set_running_or_notify_cancel():
            try:
                done.set_result(work(*args, **kwargs))
            except BaseException as error:  # the caller's to see, whatever it is
                done.set_exception(error)

    threading.Thread(target=run, name="shopsync-loyalty", daemon=True).start()
    return done
