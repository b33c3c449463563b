"""Fake installed distributions: how tests register plugins without pip."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def installed(
    where: Path, module: str, source: str, entry_points: dict[str, dict[str, str]]
) -> Iterator[None]:
    """Put ``module`` (with ``source``) on sys.path as distribution ``module`` 1.0 whose
    ``entry_points.txt`` declares ``{group: {name: "module:attr"}}``, the way pip leaves it."""
    (where / f"{module}.py").write_text(source)
    info = where / f"{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "".join(
            f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in names.items())
            for group, names in entry_points.items()
        )
    )
    sys.path.insert(0, str(where))
    try:
        yield
    finally:
        sys.path.remove(str(where))
        sys.modules.pop(module, None)
