"""The demo's storefront events (issue 22): the signed event endpoint on 127.0.0.1, and the
weekly posts of each demo shop's storefront to it.

A real shop's web pixel (Shopify) or the documented WordPress snippet (WooCommerce) posts
its visitors' product views and adds to cart to :func:`shopsync.events.events_app`; in the
demo each shop's child process plays that relay (:meth:`RemoteSimulation.browse`), so the
events take the same road as a real shop's: signed, over HTTP, refused when wrong. The
endpoint's clock is the simulated one, so a receipt is never dated after the week it
belongs to.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from shopsync.events import events_app
from shopsync.store import Store
from shopsync.testing._browsing import Posted
from shopsync.testing.remote_simulation import RemoteSimulation

__all__ = ["BrowseEndpoint", "browse_endpoint"]


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:  # the demo prints its own summary
        pass


class BrowseEndpoint:
    """The running endpoint: ``/events/<platform>`` takes that platform's shops' events."""

    def __init__(self, server: WSGIServer, keys: dict[str, dict[str, str]]) -> None:
        self._server = server
        self._keys = keys
        self.posted: dict[str, Posted] = {}
        """What each platform's storefront posted over the demo, summed."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/events"

    def post_week(self, sims: Mapping[str, RemoteSimulation], days: int) -> None:
        """Each shop's storefront posts its last ``days`` days of carts."""
        for platform, sim in sims.items():
            key = self._keys.setdefault(platform, {}).setdefault(
                sim.shop.shop, secrets.token_urlsafe(24)
            )
            done = sim.browse(f"{self.url}/{platform}", key, days=days)
            self.posted[platform] = _add(self.posted.get(platform, Posted()), done)


def _add(a: Posted, b: Posted) -> Posted:
    return Posted(*(getattr(a, f.name) + getattr(b, f.name) for f in dataclasses.fields(Posted)))


@contextmanager
def browse_endpoint(
    store: Store, platforms: Iterable[str], clock: Callable[[], dt.datetime]
) -> Iterator[BrowseEndpoint]:
    """Serve the event endpoint of ``platforms``' shops on 127.0.0.1 in a thread; each
    shop's secret is made when its storefront first posts (:meth:`BrowseEndpoint.post_week`)."""
    keys: dict[str, dict[str, str]] = {}
    apps = {
        p: events_app(store, keys.setdefault(p, {}), platform=p, clock=clock) for p in platforms
    }

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        platform = str(environ.get("PATH_INFO", "")).rstrip("/").rsplit("/", 1)[-1]
        if platform not in apps:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"unknown platform"]
        return apps[platform](environ, start_response)

    server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield BrowseEndpoint(server, keys)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
