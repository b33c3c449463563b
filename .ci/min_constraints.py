"""Print a pip constraints file pinning every ``>=`` bound of pyproject.toml to its lowest.

Used by ``.ci/min-deps``: the runtime dependencies and the ``postgres`` extra, markers kept,
so the lower bounds pyproject.toml declares are the versions installed and tested.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

BOUND = re.compile(r"^\s*([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*>=\s*([^,;\s]+)\s*(;.*)?$")


def constraints(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    lines = []
    for spec in [*project["dependencies"], *project["optional-dependencies"]["postgres"]]:
        found = BOUND.match(spec)
        if found is None:
            raise SystemExit(f"no lower bound to pin in {spec!r}: give it one (name>=version)")
        name, _, version, marker = found.groups()
        lines.append(f"{name}=={version}{marker or ''}")
    return lines


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1]
    print("\n".join(constraints(root / "pyproject.toml")))
