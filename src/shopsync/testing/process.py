"""An emulated shop in a process of its own.

:func:`shopsync.testing.emulate` serves the shop from a thread of the caller's process,
which is what tests want (the state is right there to inspect and change). A demo or a
benchmark that syncs a large shop wants the opposite: the emulator rendering JSON on one
core while the sync parses and stores on the other, instead of both taking turns on one
interpreter lock. :func:`emulate_in_process` gives that; the state stays in the child.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing as mp
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from shopsync.errors import ConfigurationError

__all__ = ["RemoteShop", "emulate_in_process", "emulate_in_processes"]


@dataclass(frozen=True)
class RemoteShop:
    """Where a shop served by another process is, and how to connect to it."""

    platform: str
    url: str
    shop: str
    settings: dict[str, Any] = field(repr=False)
    customers: int
    orders: int


def _serve(platform: str, options: dict[str, Any], conn: Connection) -> None:
    from shopsync.testing import emulate

    try:
        with emulate(platform, **options) as shop:
            # The shop lives as long as this process: kept out of the collector's full
            # collections, which would otherwise walk every record (one took 5 s of the
            # serving process's CPU at 100,000 WooCommerce orders).
            gc.freeze()
            conn.send(
                RemoteShop(
                    platform=platform,
                    url=shop.url,
                    shop=shop.state.shop,
                    settings=dict(shop.settings),
                    customers=len(shop.state.customers),
                    orders=len(shop.state.orders),
                )
            )
            conn.recv()  # anything, or the parent closing the pipe, means stop
    except EOFError:
        pass
    except Exception as exc:  # the parent must hear about it, not wait forever
        conn.send(ConfigurationError(f"emulated {platform} shop failed to start: {exc}"))


@contextmanager
def emulate_in_process(platform: str, **options: Any) -> Iterator[RemoteShop]:
    """Like :func:`shopsync.testing.emulate`, but served by a child process."""
    with emulate_in_processes({platform: options}) as shops:
        yield shops[platform]


@contextmanager
def emulate_in_processes(shops: Mapping[str, dict[str, Any]]) -> Iterator[dict[str, RemoteShop]]:
    """Several shops (platform: options), each served by a child process; the children
    generate their shops side by side."""
    context = mp.get_context("spawn")
    children: dict[str, tuple[Any, Connection]] = {}
    try:
        for platform, options in shops.items():
            parent, child = context.Pipe()
            process = context.Process(target=_serve, args=(platform, options, child), daemon=True)
            process.start()
            child.close()
            children[platform] = (process, parent)
        yield {platform: _answer(platform, parent) for platform, (_, parent) in children.items()}
    finally:
        for _, parent in children.values():
            with contextlib.suppress(OSError):
                parent.send("stop")
            parent.close()
        for process, _ in children.values():
            process.join(timeout=10)
            if process.is_alive():
                process.kill()


def _answer(platform: str, parent: Connection) -> RemoteShop:
    try:
        answer = parent.recv()
    except EOFError:
        raise ConfigurationError(f"emulated {platform} shop exited before serving") from None
    if isinstance(answer, Exception):
        raise answer
    return answer  # type: ignore[no-any-return]
