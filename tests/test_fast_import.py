"""``import shopsync`` and ``shopsync --help`` stay light (issue 23, item 6).

Small scripts and webhook handlers embed shopsync: they must not pay for SciPy, Polars,
NumPy, SQLAlchemy or pandas until a function needs them. The check is on the set of modules
a fresh interpreter loaded (read from ``-X importtime``), never on a time: benchmarks measure
time (``benchmarks/imports.py``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = {"scipy", "polars", "numpy", "sqlalchemy", "pandas"}


def loaded(*args: str) -> set[str]:
    """Top-level packages a fresh interpreter imported while running ``python <args>``."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":
                names.add(name.split(".")[0])
    assert "shopsync" in names  # the parse saw the imports at all
    return names


def test_import_shopsync_loads_no_heavy_library() -> None:
    assert loaded("-c", "import shopsync") & HEAVY == set()


def test_help_loads_no_heavy_library() -> None:
    names = loaded("-m", "shopsync", "--help")
    assert names & HEAVY == set()


def test_help_of_a_command_loads_no_heavy_library() -> None:
    assert loaded("-m", "shopsync", "plan", "--help") & HEAVY == set()


@pytest.mark.parametrize("name", ["Store", "plan", "sync", "metrics", "clv"])
def test_a_public_name_still_loads_what_it_needs(name: str) -> None:
    """The laziness is real: touching a name imports its home, and the name is the same."""
    code = f"import shopsync, sys; obj = shopsync.{name}; print(sorted(sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "sqlalchemy" in done.stdout or name == "clv"
    assert "scipy" in done.stdout or name != "clv"


def test_importing_the_sync_module_keeps_shopsync_sync_the_function() -> None:
    """``shopsync.sync`` is both a submodule and the function; the import system binds the
    module on the package when it first loads it, which must not shadow the function."""
    code = (
        "import shopsync; from shopsync.sync import RESOURCES; import shopsync.sync; "
        "assert callable(shopsync.sync), shopsync.sync; "
        "assert shopsync.sync.__module__ == 'shopsync.sync'; "
        "from shopsync import sync; assert callable(sync)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_every_public_name_resolves_in_a_fresh_interpreter() -> None:
    code = (
        "import shopsync\n"
        "for n in shopsync.__all__: getattr(shopsync, n)\n"
        "assert set(shopsync.__all__) <= set(dir(shopsync))\n"
        "from shopsync import *\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_one_customer_plan_loads_neither_http_nor_migrations(tmp_path: Path) -> None:
    """A process that re-plans customers (a webhook handler) keeps what it never calls off
    its heap: every full garbage collection walks each object it holds (``plan_customer``'s
    p99). Requests is the platforms' client and Alembic (with Mako and Pygments) upgrades a
    schema that is already current: neither runs. (SciPy's optimisers stay imported with the
    CLV module: importing them inside the first fit put 0.14 s into it.)"""
    from shopsync.store import Store

    url = f"sqlite:///{tmp_path / 'p.db'}"
    Store(url).close()  # created (and migrated) here: the process below opens a current one
    code = (
        "import datetime as dt, sys, shopsync\n"
        f"store = shopsync.Store({url!r})\n"
        "at = dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc)\n"
        "shopsync.plan_customer(store, None, at, 'shopify', 's.myshopify.com', '1')\n"
        "print(sorted(sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    names = set(done.stdout.split("'"))
    assert "shopsync.planning" in names  # the plan ran
    assert {"requests", "alembic", "mako", "pygments"} & names == set()
