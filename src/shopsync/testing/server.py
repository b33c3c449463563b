"""The thin HTTP layer: a real server on 127.0.0.1 that hands each request to an emulator.

A real socket (not an in-process transport) is the point: the adapters' own sessions,
retries, keep-alive and timeouts are exercised exactly as against a live shop, and faults
such as a dropped connection or a truncated body can only be produced at this level. The
server knows nothing about any platform: it parses the request into a :class:`Request`,
lets the :class:`PlatformEmulator` answer, and applies :class:`~shopsync.testing.Faults`
around that.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable
from urllib.parse import parse_qsl, urlsplit

from shopsync.testing.faults import Faults

if TYPE_CHECKING:
    from shopsync.testing.state import Event, ShopState, Subscription
    from shopsync.testing.webhooks import Delivery

__all__ = ["EmulatorServer", "PlatformEmulator", "Request", "Response"]


@dataclass(frozen=True)
class Request:
    """An HTTP request as the emulator sees it."""

    method: str
    path: str
    query: dict[str, str]
    """Decoded query parameters; the last value wins (the woocommerce client repeats them)."""
    query_string: str
    """The raw query string, for signature checks (OAuth 1.0a)."""
    headers: dict[str, str]
    """Lower-case header names."""
    body: bytes
    base_url: str
    """``http://127.0.0.1:PORT``, for absolute links (``Link`` headers, next-page URLs)."""

    def json(self) -> Any:
        """The body parsed as JSON (None when empty)."""
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True)
class Response:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def json(
        cls, obj: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        """A JSON response; Decimals become strings, datetimes ISO 8601."""
        body = json.dumps(obj, default=_json_default, separators=(",", ":")).encode()
        return cls(
            status, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, body
        )


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@runtime_checkable
class PlatformEmulator(Protocol):
    """What a platform package provides to be served (see ``shopsync.emulators``).

    It may also declare ``generation``, a :class:`~shopsync.testing.GenerationProfile`
    of the platform's habits that :func:`~shopsync.testing.generate_shop` follows.
    """

    platform: ClassVar[str]

    @classmethod
    def default_shop(cls, seed: int) -> str: ...

    def __init__(self, state: ShopState, **options: Any) -> None: ...

    def handle(self, request: Request) -> Response: ...

    def settings(self, base_url: str) -> dict[str, Any]: ...

    def rate_limited(self, retry_after: float) -> Response: ...

    def webhook(self, event: Event, subscription: Subscription) -> Delivery | None: ...


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer (a killed sync, a timeout) is the client's
        # business: keep it out of stderr. Anything else is still reported.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class EmulatorServer:
    """Serves ``emulator`` on 127.0.0.1 from a daemon thread (HTTP/1.1, keep-alive).

    ``errors`` collects exceptions the emulator raised (each was answered with a 500), so a
    test can assert the emulator itself did not fail; ``history`` keeps the last requests
    as ``(method, path, status, fault)``.
    """

    def __init__(
        self,
        emulator: PlatformEmulator,
        *,
        faults: Faults | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.emulator = emulator
        state = getattr(emulator, "state", None)
        self.faults = faults or getattr(state, "faults", None) or Faults()
        self.errors: list[BaseException] = []
        self.history: deque[tuple[str, str, int | None, str | None]] = deque(maxlen=10_000)
        self._host = host
        self._port = port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        url = self.url if self._httpd else None
        return f"EmulatorServer({type(self.emulator).__name__}, url={url})"

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the server is not running")
        port = self._httpd.server_address[1]
        return f"http://{self._host}:{port}"

    def start(self) -> EmulatorServer:
        if self._httpd is not None:
            return self
        handler = type("Handler", (_Handler,), {"server_ref": self})
        httpd = _Server((self._host, self._port), handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False  # idle keep-alive connections must not hold stop() up
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"shopsync-emulator-{self.url}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def respond(self, request: Request) -> Response:
        """The emulator's answer, or a 500 when it raised."""
        try:
            return self.emulator.handle(request)
        except Exception as exc:  # an emulator bug must not kill the connection silently
            self.errors.append(exc)
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            return Response.json({"errors": f"emulator error: {detail}"}, status=500)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_ref: ClassVar[EmulatorServer]
    timeout = 30  # idle keep-alive threads give up eventually
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms stalls

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test output is not the place for an access log."""

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        owner = self.server_ref
        split = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=split.path,
            query=dict(parse_qsl(split.query, keep_blank_values=True)),
            query_string=split.query,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self._read_body(),
            base_url=owner.url,
        )
        fault = owner.faults.draw()
        if fault == "drop":
            owner.history.append((request.method, request.path, None, fault))
            self._drop()
            return
        if fault == "slow":
            time.sleep(owner.faults.slow_seconds)
        if fault == "429":
            response = owner.emulator.rate_limited(owner.faults.retry_after)
        elif fault == "5xx":
            response = Response.json(
                {"errors": "Internal Server Error (injected)"},
                status=owner.faults.server_error_status(),
            )
        else:
            response = owner.respond(request)
        owner.history.append((request.method, request.path, response.status, fault))
        self._send(response, truncate=fault == "truncate")

    def _send(self, response: Response, *, truncate: bool) -> None:
        self.send_response(response.status)
        names = {k.lower() for k in response.headers}
        for name, value in response.headers.items():
            if name.lower() not in ("content-length", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if truncate:
            self.send_header("Connection", "close")
        if "content-type" not in names and response.body:
            self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if self.command == "HEAD":
            return
        if truncate:
            self.wfile.write(response.body[: len(response.body) // 2])
            self.wfile.flush()
            self._drop()
            return
        self.wfile.write(response.body)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch
