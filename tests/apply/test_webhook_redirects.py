"""The webhook sink never follows a redirect: any 3xx parks the row, nothing goes elsewhere."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from shopsync.http import RetryPolicy
from shopsync.outbox import apply, list_outbox
from shopsync.sinks import Webhook
from shopsync.store import Store
from tests.apply.helpers import NOW, Receiver, customer, nudge

SECRET = "webhook-secret-0123456789"
FAST = RetryPolicy(attempts=3, max_elapsed=5, initial_wait=0.01, max_wait=0.02)


class Redirector:
    """Answers every request with ``status`` and a Location on another server."""

    def __init__(self, status: int, location: str) -> None:
        self.hits: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                outer.hits.append(self.command)
                self.send_response(status)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Elsewhere(Receiver):
    """The host a redirect points to: records any request, whatever its method."""

    def __init__(self) -> None:
        super().__init__()
        self.any_request: list[str] = []
        handler = self.server.RequestHandlerClass
        outer = self

        def do_get(this: Any) -> None:
            outer.any_request.append(this.command)
            this.send_response(200)
            this.send_header("Content-Length", "0")
            this.end_headers()

        handler.do_GET = do_get  # type: ignore[attr-defined]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'store.db'}")
    s.upsert([customer("1")])
    return s


@pytest.fixture
def elsewhere() -> Iterator[Elsewhere]:
    with Elsewhere() as receiver:
        yield receiver


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_parks_the_row_and_nothing_reaches_the_other_host(
    store: Store, elsewhere: Elsewhere, status: int
) -> None:
    redirector = Redirector(status, elsewhere.url + "?token=leak-me")
    try:
        hook = Webhook(
            redirector.url,
            SECRET,
            retry_policy=FAST,
            timeout=2,
            headers={"Authorization": "Bearer esp-api-key-123"},
        )
        report = apply([nudge("1")], store, [hook], now=NOW)
    finally:
        redirector.close()
    assert redirector.hits == ["POST"]  # asked once, not retried
    assert elsewhere.received == [] and elsewhere.any_request == []
    assert report.parked == 1 and report.delivered == 0
    (row,) = list_outbox(store)
    assert row.status == "parked"
    reason = row.reason or ""
    assert f"redirect ({status})" in reason and "not followed" in reason
    assert "leak-me" not in reason  # the Location is shown redacted
    assert "esp-api-key-123" not in reason
