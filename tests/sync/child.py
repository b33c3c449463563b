"""A sync in its own process, for the crash tests: ``python -m tests.sync.child SETTINGS_JSON``.

It prints one line per committed page, so the parent can kill it at a chosen page.
"""

from __future__ import annotations

import json
import sys

import shopsync
from shopsync.sync import sync


def main() -> None:
    job = json.loads(sys.argv[1])
    adapter = shopsync.connect(job["platform"], **job["settings"])
    store = shopsync.Store(job["store"])
    sync(adapter, store, on_page=lambda resource, page, report: print(resource, flush=True))
    print("done", flush=True)


if __name__ == "__main__":
    main()
