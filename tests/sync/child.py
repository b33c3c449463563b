"""A sync in its own process, for the crash tests.

The crash test runs :func:`sync_job` in a child forked from the chaos tests' fork server
(:func:`tests.reliability.chaos.run_child`), which imported shopsync once, so a run costs a
fork instead of a fresh interpreter (about 1.7 s of CPU each); the child is a process of its
own all the same, and a SIGKILL ends it as abruptly. ``python -m tests.sync.child JOB_JSON``
runs the same sync in a fresh interpreter, printing one line per committed page.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import shopsync
from shopsync.sync import sync


def sync_job(emit: Callable[[Any], None], job: dict[str, Any]) -> None:
    """Sync ``job``'s shop into ``job``'s store; an event per committed page."""
    adapter = shopsync.connect(job["platform"], **job["settings"])
    store = shopsync.Store(job["store"])
    try:
        sync(adapter, store, on_page=lambda resource, page, report: emit(resource))
    finally:
        store.close()
        adapter.close()


def main() -> None:
    sync_job(lambda resource: print(resource, flush=True), json.loads(sys.argv[1]))
    print("done", flush=True)


if __name__ == "__main__":
    main()
