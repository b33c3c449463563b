"""The HTTP side of :class:`~shopsync_woocommerce.adapter.WooCommerceAdapter`.

Requests go through the official ``woocommerce`` client (``woocommerce.API``: OAuth 1.0a over
http, Basic over https) and every call runs under shopsync's one retry policy
(:class:`shopsync.http.HttpClient`): 429 and 5xx, dropped connections, timeouts and cut
bodies are retried with backoff; 401, 403 and 404 are not.

A write, and the permission probe, read the body of a refusal: WooCommerce's error ``code``
(``woocommerce_rest_coupon_code_already_exists``, ``woocommerce_rest_cannot_create``) says
what the refusal means.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests
import woocommerce  # type: ignore[import-untyped]

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - the "fast" extra is not installed
    _orjson = None  # type: ignore[assignment]

from shopsync._collector import collector_paused
from shopsync.errors import ResponseError, TransportError
from shopsync.http import (
    HttpClient,
    decode_json,
    error_for_response,
    read_at_once,
    redact_url,
)
from shopsync_woocommerce.mapping import PLATFORM

__all__ = ["AHEAD", "ReadStopped", "RestTransport", "refusal_body", "wc_time"]


_DIGITS = bytes.maketrans(b"0123456789", b"0000000000")
_LONG_NUMBER = b"0" * 19
_UTF8 = ("utf-8", "utf8")


def _decoded(response: requests.Response, where: str) -> Any:
    """The body as :func:`shopsync.http.decode_json` reads it, by orjson when it is
    installed (the ``fast`` extra: a page of orders decodes several times quicker). A body
    orjson refuses, and one with a run of 19 digits or more (orjson 3.8 reads an integer past
    64 bits as a float), and one labelled other than UTF-8 (``requests`` decodes it by its
    label), go to ``json``, as the Shopify bulk reader does: the result never depends on
    whether orjson is there. The collector is paused while orjson builds the page (a page
    of 100 orders is some 6,000 containers, none in a cycle): with a store's heap alive the
    collections it set off made the decoding two to four times slower (measured: 2-4 ms a
    page of 290 kB paused, 5-11 ms not)."""
    if _orjson is not None and (response.encoding or "utf-8").lower() in _UTF8:
        raw = response.content
        if _LONG_NUMBER not in raw.translate(_DIGITS):
            try:
                with collector_paused():
                    return _orjson.loads(raw)
            except ValueError:
                pass
    return decode_json(response, where=where, platform=PLATFORM)


AHEAD = threading.local()
"""``stop`` in a thread reading pages ahead (:func:`._windows.in_windows`): an Event set when
its reader stopped, which ends that request's retries."""


class ReadStopped(Exception):
    """The reader of a page read ahead stopped: its request is not tried again."""


def _stoppable(sleep: Callable[[float], None], stop: threading.Event) -> Callable[[float], None]:
    """``sleep`` between tries, cut short (by :class:`ReadStopped`) once ``stop`` is set."""

    def wait(seconds: float) -> None:
        if sleep is time.sleep:
            stopped = stop.wait(seconds)
        else:  # the caller's own clock: stop is checked before and after it
            if stop.is_set():
                raise ReadStopped
            sleep(seconds)
            stopped = stop.is_set()
        if stopped:
            raise ReadStopped

    return wait


def wc_time(value: dt.datetime) -> str:
    """An aware instant as WooCommerce's ``*_gmt`` filters take it (UTC, whole seconds)."""
    if value.tzinfo is None:
        raise ValueError("updated_since must be timezone-aware")
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def refusal_body(response: requests.Response) -> Any:
    """The JSON body of a refused request, or ``{}`` when it has none."""
    try:
        return response.json()
    except ValueError:
        return {}


class RestTransport:
    """The base of the adapter's parts: requests through the ``woocommerce`` client under
    the retry policy (the adapter's ``__init__`` sets every attribute declared here)."""

    url: str
    shop: str
    per_page: int
    http: HttpClient
    api: woocommerce.API

    def _get(self, endpoint: str, params: Mapping[str, str]) -> tuple[Any, Mapping[str, str]]:
        """One GET under the retry policy: (decoded JSON, response headers)."""
        where = f"GET {self.url}/wp-json/wc/v3/{endpoint}"
        stop: threading.Event | None = getattr(AHEAD, "stop", None)

        def once() -> tuple[Any, Mapping[str, str]]:
            if stop is not None and stop.is_set():
                raise ReadStopped
            # The woocommerce client signs and sends; HttpClient counts, maps errors (their
            # text carries the signed URL, so it never reaches a message) and decodes. The
            # collector is paused for the decoding alone, never across the wait on the
            # network: the pause is process-wide, and a request hanging until its timeout
            # would keep it off in every thread (tests/woocommerce/
            # test_collector_during_requests.py).
            # The body is read in one call (:func:`shopsync.http.read_at_once`): this runs in
            # the thread reading ahead, beside the one mapping the page before.
            response = self.http.exchange(
                lambda: read_at_once(self.api.get(endpoint, params=dict(params), stream=True)),
                where,
            )
            return _decoded(response, where), response.headers

        if stop is None:
            return self.http.call(once)
        return self.http.call(once, sleep=_stoppable(self.http.sleep, stop))

    def _list(self, endpoint: str, params: Mapping[str, str]) -> tuple[list[Any], int | None]:
        body, headers = self._get(endpoint, params)
        if not isinstance(body, list):
            raise ResponseError(f"expected a JSON list from {endpoint}", platform=PLATFORM)
        pages = headers.get("X-WP-TotalPages")
        return body, int(pages) if pages and pages.isdigit() else None

    def _where(self, method: str, endpoint: str) -> str:
        return f"{method} {redact_url(self.url)}/wp-json/wc/v3/{endpoint}"

    def _sent(
        self, method: str, endpoint: str, send: Callable[[], requests.Response]
    ) -> requests.Response:
        """One request ``send`` makes through the client, counted; a transport failure is
        mapped (its text carries the signed URL, so it never reaches a message), the status
        is left to the caller."""
        self.http.stats.add(requests=1)
        where = self._where(method, endpoint)
        try:
            return send()
        except requests.Timeout:
            raise TransportError(f"timed out: {where}") from None
        except requests.RequestException as exc:
            raise TransportError(f"connection failed: {where} ({type(exc).__name__})") from None

    def _send(self, method: str, endpoint: str, data: Mapping[str, Any]) -> Any:
        """One POST or PUT under the retry policy; the decoded JSON answer. A refusal
        (4xx) raises with ``code``, WooCommerce's error code, set on the error."""

        def once() -> Any:
            call = self.api.post if method == "POST" else self.api.put
            response = self._sent(method, endpoint, lambda: call(endpoint, dict(data)))
            error = error_for_response(response, PLATFORM)
            if error is not None:
                body = refusal_body(response)
                code = body.get("code") if isinstance(body, dict) else None
                error.code = code  # type: ignore[attr-defined]
                if code and not error.retryable:
                    error.message = f"{error.message}: {code}"
                    error.args = (error.message,)
                raise error
            return decode_json(response, where=self._where(method, endpoint), platform=PLATFORM)

        return self.http.call(once)
