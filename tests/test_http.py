from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shopsync.errors import (
    AuthenticationError,
    NotFoundError,
    RateLimitedError,
    ResponseError,
    ServerError,
    TransportError,
)
from shopsync.http import HttpClient, RetryPolicy, read_at_once


class Script:
    """The answers a tiny local server gives, one per request, in order."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, dict[str, str], bytes]] = []
        self.seen: list[str] = []


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            script.seen.append(self.path)
            status, headers, body = script.answers.pop(0) if script.answers else (200, {}, b"{}")
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def client(waits: list[float]) -> Iterator[HttpClient]:
    c = HttpClient(platform="test", timeout=5, policy=RetryPolicy(attempts=4), sleep=waits.append)
    yield c
    c.close()


def test_429_is_retried_after_retry_after(server, client, waits) -> None:  # type: ignore[no-untyped-def]
    url, script = server
    script.answers = [(429, {"Retry-After": "2.0"}, b"{}"), (200, {}, b'{"ok": true}')]
    assert client.json("GET", url + "/x") == {"ok": True}
    assert waits == [2.0]
    assert (client.stats.requests, client.stats.retries, client.stats.throttle_waits) == (2, 1, 1)


def test_5xx_is_retried_with_backoff(server, client, waits) -> None:  # type: ignore[no-untyped-def]
    url, script = server
    script.answers = [(503, {}, b""), (502, {}, b""), (200, {}, b"[]")]
    assert client.json("GET", url) == []
    assert len(waits) == 2 and all(w > 0 for w in waits)


def test_retries_stop_at_the_limit(server, client) -> None:  # type: ignore[no-untyped-def]
    url, script = server
    script.answers = [(500, {"X-Request-Id": "r-9"}, b"")] * 4
    with pytest.raises(ServerError) as info:
        client.json("GET", url)
    assert info.value.status == 500 and info.value.request_id == "r-9"
    assert len(script.seen) == 4


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AuthenticationError), (403, AuthenticationError), (404, NotFoundError)],
)
def test_auth_and_not_found_are_never_retried(server, client, status, error) -> None:  # type: ignore[no-untyped-def]
    url, script = server
    script.answers = [(status, {}, b"{}")]
    with pytest.raises(error):
        client.json("GET", url)
    assert len(script.seen) == 1


def test_a_truncated_body_is_retried(server, client) -> None:  # type: ignore[no-untyped-def]
    url, script = server
    script.answers = [
        (200, {}, b'{"orders": [1, 2'),
        (200, {}, json.dumps({"orders": [1, 2]}).encode()),
    ]
    assert client.json("GET", url) == {"orders": [1, 2]}


def test_a_body_that_is_never_json_ends_in_a_response_error(server, client) -> None:  # type: ignore[no-untyped-def]
    url, script = server
    script.answers = [(200, {}, b"<html>")] * 4
    with pytest.raises(ResponseError):
        client.json("GET", url)


def test_connection_refused_is_a_transport_error_without_secrets(client) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/orders?consumer_secret=cs_supersecret"
    with pytest.raises(TransportError) as info:
        client.request("GET", url)
    assert "cs_supersecret" not in str(info.value) and "cs_supersecret" not in repr(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_rate_limited_error_is_raised_when_retries_run_out(server, client) -> None:  # type: ignore[no-untyped-def]
    url, script = server
    script.answers = [(429, {"Retry-After": "1"}, b"")] * 4
    with pytest.raises(RateLimitedError) as info:
        client.request("GET", url + "/?access_token=shpat_x1234")
    assert info.value.retry_after == 1.0
    assert "shpat_x1234" not in str(info.value)


def test_read_at_once_keeps_the_whole_body_where_content_finds_it(server) -> None:  # type: ignore[no-untyped-def]
    import requests

    url, script = server
    body = json.dumps([{"id": str(i), "note": "x" * 200} for i in range(1_000)]).encode()
    script.answers = [(200, {"Content-Type": "application/json"}, body)]
    response = read_at_once(requests.get(url, stream=True, timeout=5))
    assert response.content == body
    assert response.json()[-1]["id"] == "999"
    assert response.raw.closed
