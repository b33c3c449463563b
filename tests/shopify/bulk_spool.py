"""Reading a bulk operation's JSONL file without a server: the adapter's ``_assemble``
over a temporary file holding the bytes given."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import IO, Any

import shopsync


def offline_adapter() -> Any:
    """A Shopify adapter that never reaches a server (port 9 on loopback)."""
    return shopsync.connect(
        "shopify", shop="a.myshopify.com", access_token="shpat_x", base_url="http://127.0.0.1:9"
    )


def assemble(
    adapter: Any,
    spool: bytes,
    page_size: int,
    opener: Callable[[], IO[bytes]] = tempfile.TemporaryFile,
) -> tuple[list[Any], list[tuple[str, str]]]:
    """The nodes ``adapter`` assembles from a file holding ``spool`` (``page_size`` orders a
    page), and the sorted ``(reason, raw)`` of the lines it rejected."""
    nodes: list[Any] = []
    with opener() as f:
        f.write(spool)
        f.seek(0)
        pages = list(adapter._assemble(f, page_size, "orders", nodes.append))
    return nodes, sorted((r.reason, r.raw) for p in pages for r in p.rejected)
