"""The one place where shopsync talks HTTP: sessions, the retry policy, and redaction.

Every adapter sends its requests through :class:`HttpClient`, so every platform gets the
same behaviour: 429 and 5xx are retried with exponential backoff and jitter, honouring
``Retry-After``; connection errors, timeouts and truncated bodies are retried; 401, 403 and
404 never are. Credentials never reach a log line, a repr or an exception: URLs pass
through :func:`redact_url` and headers are never formatted into messages.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
)

from shopsync._urls import redact
from shopsync.errors import (
    AuthenticationError,
    NotFoundError,
    PlatformError,
    RateLimitedError,
    ResponseError,
    ServerError,
    ShopSyncError,
    TransportError,
)

__all__ = [
    "HttpClient",
    "RetryPolicy",
    "decode_json",
    "read_at_once",
    "redact",
    "redact_url",
    "retrying",
]

log = logging.getLogger("shopsync.http")

_SECRET_PARAMS = re.compile(
    r"(token|secret|signature|password|key|auth|hmac|code|nonce)", re.IGNORECASE
)

T = TypeVar("T")


def redact_url(url: str) -> str:
    """The URL with credentials removed: userinfo dropped, secret-looking query values masked."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    query = urlencode(
        [(k, "***" if _SECRET_PARAMS.search(k) else v) for k, v in parse_qsl(parts.query, True)],
        safe="*:",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts, total time, and the backoff between tries."""

    attempts: int = 8
    max_elapsed: float = 120.0
    """Seconds after which no further attempt starts."""
    initial_wait: float = 0.5
    max_wait: float = 30.0
    """Cap on one backoff; a longer ``Retry-After`` is still honoured up to this."""


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            return min(max(error.retry_after, 0.0), policy.max_wait)
        # Exponential backoff with full jitter on top, so clients that failed together
        # do not come back together.
        backoff = policy.initial_wait * 2.0 ** (state.attempt_number - 1)
        return min(backoff + random.uniform(0, policy.initial_wait), policy.max_wait)

    return wait


def retrying(
    policy: RetryPolicy = RetryPolicy(),
    *,
    on_retry: Callable[[BaseException, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Retrying:
    """A tenacity ``Retrying`` that retries exactly the errors whose ``retryable`` is true."""

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        if error is not None:
            log.info(
                "retrying after %s (attempt %d, waiting %.2fs)", error, state.attempt_number, delay
            )
            if on_retry:
                on_retry(error, delay)

    return Retrying(
        retry=retry_if_exception(lambda e: isinstance(e, ShopSyncError) and e.retryable),
        stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.max_elapsed),
        wait=_wait(policy),
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=True,
    )


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def error_for_response(response: requests.Response, platform: str) -> PlatformError | None:
    """The error a non-2xx response stands for, or None for success."""
    status = response.status_code
    if status < 400:
        return None
    request_id = response.headers.get("X-Request-Id")
    where = f"{response.request.method} {redact_url(response.url)}" if response.request else ""
    kw: dict[str, Any] = {"status": status, "request_id": request_id, "platform": platform}
    if status == 429:
        return RateLimitedError(
            f"rate limited: {where}", retry_after=_retry_after(response.headers), **kw
        )
    if status in (401, 403):
        return AuthenticationError(f"credentials refused: {where}", **kw)
    if status == 404:
        return NotFoundError(f"not found: {where}", **kw)
    if status >= 500:
        return ServerError(f"server error: {where}", **kw)
    return PlatformError(f"request refused: {where}", **kw)


def _redact_where(where: str) -> str:
    method, _, url = where.partition(" ")
    return f"{method} {redact_url(url)}" if url else redact_url(where)


def decode_json(response: requests.Response, *, where: str, platform: str) -> Any:
    """The response body as JSON; a body that is not (cut off, an HTML error page) is a
    retryable :class:`ResponseError`. ``where`` names the request, credentials removed."""
    try:
        return response.json()
    except (ValueError, RecursionError):  # RecursionError: nested deeper than json can go
        raise ResponseError(
            f"response is not valid JSON: {_redact_where(where)}",
            status=response.status_code,
            platform=platform,
        ) from None


def read_at_once(response: requests.Response) -> requests.Response:
    """``response``, sent with ``stream=True``, with its whole body read by one call and
    kept where ``response.content`` finds it; the connection is closed. A failed read
    raises as ``content`` would (``requests.ChunkedEncodingError``, ``ConnectionError``).

    ``content`` reads 10 kB at a time: for a page of 290 kB that is some 75 socket calls
    (``poll`` and ``recvfrom``, counted by strace), each of which lets go of the GIL. A thread
    reading pages beside one that maps them then waits for the GIL back after each, up to the
    switch interval every time. Read at once, the same page takes about ten."""
    try:
        body = b"".join(response.iter_content(chunk_size=None))
    finally:
        response.close()
    # what Response.content stores once read (requests reads ``_content`` back from then on)
    response._content = body
    return response


@dataclass
class HttpStats:
    """Request counters of a client. Counted through :meth:`add`, as a read's pages may be
    asked for on several threads at once (``shopsync_woocommerce._windows``)."""

    requests: int = 0
    retries: int = 0
    throttle_waits: int = 0
    throttle_seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(
        self,
        *,
        requests: int = 0,
        retries: int = 0,
        throttle_waits: int = 0,
        throttle_seconds: float = 0.0,
    ) -> None:
        with self._lock:
            self.requests += requests
            self.retries += retries
            self.throttle_waits += throttle_waits
            self.throttle_seconds += throttle_seconds

    def as_dict(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "retries": self.retries,
            "throttle_waits": self.throttle_waits,
        }


@dataclass
class HttpClient:
    """A ``requests`` session with shopsync's timeouts, retry policy and error mapping."""

    platform: str
    timeout: float = 30.0
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    session: requests.Session = field(default_factory=requests.Session)
    stats: HttpStats = field(default_factory=HttpStats)
    sleep: Callable[[float], None] = time.sleep

    def __repr__(self) -> str:
        return f"HttpClient(platform={self.platform!r}, timeout={self.timeout})"

    def _note_retry(self, error: BaseException, delay: float) -> None:
        if isinstance(error, RateLimitedError):
            self.stats.add(retries=1, throttle_waits=1, throttle_seconds=delay)
        else:
            self.stats.add(retries=1)

    def call(self, fn: Callable[[], T], *, sleep: Callable[[float], None] | None = None) -> T:
        """Run ``fn`` under the retry policy (for clients that send requests themselves);
        ``sleep`` waits between tries instead of :attr:`sleep` (one that raises ends them)."""
        wait = sleep or self.sleep
        for attempt in retrying(self.policy, on_retry=self._note_retry, sleep=wait):
            with attempt:
                return fn()
        raise AssertionError("unreachable")  # pragma: no cover

    def exchange(self, send: Callable[[], requests.Response], where: str) -> requests.Response:
        """One request sent by ``send`` (this session, or a platform's own client), no
        retry: counted, its transport failure or error status mapped. ``where`` is
        ``"METHOD url"``, redacted before it reaches a message."""
        self.stats.add(requests=1)
        try:
            response = send()
        # "from None": the requests exception's text carries the full URL, credentials included.
        except requests.Timeout:
            raise TransportError(f"timed out: {_redact_where(where)}") from None
        except requests.RequestException as exc:
            raise TransportError(
                f"connection failed: {_redact_where(where)} ({type(exc).__name__})"
            ) from None
        error = error_for_response(response, self.platform)
        if error is not None:
            with contextlib.suppress(Exception):  # closing must not hide the error it answers
                response.close()  # a streamed one would hold its connection open
            raise error
        return response

    def receive_json(self, send: Callable[[], requests.Response], where: str) -> Any:
        """:meth:`exchange`, then the decoded body (:func:`decode_json`); no retry: run it
        under :meth:`call` so a cut body is asked again."""
        return decode_json(self.exchange(send, where), where=where, platform=self.platform)

    def send_once(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One request, no retry: the response if it succeeded, else the mapped error."""
        kwargs.setdefault("timeout", self.timeout)
        return self.exchange(lambda: self.session.request(method, url, **kwargs), f"{method} {url}")

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send with retries; raise the mapped :class:`~shopsync.errors.ShopSyncError`."""
        return self.call(lambda: self.send_once(method, url, **kwargs))

    def json(self, method: str, url: str, **kwargs: Any) -> Any:
        """Send with retries and return the decoded JSON body (a cut body is retried too)."""

        kwargs.setdefault("timeout", self.timeout)
        send = lambda: self.session.request(method, url, **kwargs)  # noqa: E731
        return self.call(lambda: self.receive_json(send, f"{method} {url}"))

    def close(self) -> None:
        self.session.close()
