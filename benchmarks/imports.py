"""Import time of ``import shopsync`` and ``shopsync --help`` beside ``import requests``.

Each figure is the median wall time of several fresh interpreters (``python -c ...``), so the
interpreter's own start-up is in every row; the ``python -c pass`` row shows how much. The
modules each one loaded are counted too; which ones must stay out is tested in
tests/test_fast_import.py, not here.

    python benchmarks/imports.py            # the figures as JSON, standalone
    python benchmarks/run.py --only imports # the same, in the benchmark table
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from typing import Any

CASES = {
    "python": ["-c", "pass"],
    "requests": ["-c", "import requests"],
    "shopsync": ["-c", "import shopsync"],
    # what the ``shopsync`` console script runs
    "shopsync_help": [
        "-c",
        "import sys; sys.argv = ['shopsync', '--help']; from shopsync.cli import main; main()",
    ],
}
HEAVY = ("scipy", "polars", "numpy", "sqlalchemy", "pandas", "pydantic")


def _modules(args: list[str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *args], capture_output=True, text=True, check=True
    )
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    names.discard("imported package")
    return sorted(names)


def measure(runs: int = 7) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": runs}
    for name, args in CASES.items():
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, *args], capture_output=True, check=True)
            times.append(time.perf_counter() - start)
        modules = _modules(args)
        out[name] = {
            "median_ms": round(statistics.median(times) * 1000, 1),
            "min_ms": round(min(times) * 1000, 1),
            "modules": len(modules),
            "heavy": [h for h in HEAVY if h in {m.split(".")[0] for m in modules}],
        }
    return out


if __name__ == "__main__":
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    print(json.dumps(measure(runs), indent=1))
