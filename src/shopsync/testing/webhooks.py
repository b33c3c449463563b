"""Webhook delivery: every state change reaches the subscribed addresses, with retries.

The payload is rendered when the event happens (as a platform does), by the emulator's
``webhook(event, subscription)``, which also decides whether the subscription's topic
concerns the event (None means no). Posting happens later on one worker thread, so a slow
or failing receiver never blocks the change that caused it; a non-2xx answer or a
connection error is retried after ``backoff * 2**attempt`` seconds, up to ``max_attempts``.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shopsync.testing.state import DeliveryAttempt, Event, ShopState, Subscription

if TYPE_CHECKING:
    from shopsync.testing.server import PlatformEmulator

__all__ = ["Delivery", "WebhookDispatcher"]


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""Never through a proxy: receivers are local, whatever ``http_proxy`` says."""


@dataclass(frozen=True)
class Delivery:
    """One rendered webhook: the platform's headers (signature included) and raw body.

    ``id`` is the delivery id the platform puts in its headers, when it has one; the
    dispatcher numbers the others.
    """

    headers: dict[str, str]
    body: bytes = field(repr=False)
    id: str | None = None


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    subscription: Subscription = field(compare=False)
    delivery: Delivery = field(compare=False)
    delivery_id: str = field(compare=False)
    attempt: int = field(default=0, compare=False)


class WebhookDispatcher:
    """Renders events into deliveries and posts them from a background thread."""

    def __init__(
        self,
        state: ShopState,
        emulator: PlatformEmulator,
        *,
        backoff: float = 0.5,
        max_attempts: int = 5,
        timeout: float = 5.0,
    ) -> None:
        self.state = state
        self.emulator = emulator
        self.backoff = backoff
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.failed: list[tuple[str, str]] = []
        """(subscription id, delivery id) given up after ``max_attempts``."""
        self._heap: list[_Job] = []
        self._busy = 0
        self._seq = itertools.count(1)
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> WebhookDispatcher:
        if self._thread is None:
            self._stopping = False
            self._unsubscribe = self.state.subscribe(self.on_event)
            self._thread = threading.Thread(target=self._run, name="shopsync-webhooks", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the worker; deliveries still queued are dropped."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 1)
            self._thread = None

    def on_event(self, event: Event) -> None:
        """Render the event for every subscription that wants it, and queue the posts."""
        for subscription in list(self.state.webhooks):
            delivery = self.emulator.webhook(event, subscription)
            if delivery is None:
                continue
            seq = next(self._seq)
            job = _Job(time.monotonic(), seq, subscription, delivery, delivery.id or str(seq))
            with self._cond:
                heapq.heappush(self._heap, job)
                self._cond.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is queued or in flight; False if ``timeout`` ran out first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._heap or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (
                    not self._heap or self._heap[0].due > time.monotonic()
                ):
                    wait = self._heap[0].due - time.monotonic() if self._heap else None
                    self._cond.wait(wait)
                if self._stopping:
                    return
                job = heapq.heappop(self._heap)
                self._busy += 1
            status = self._post(job)
            with self._cond:
                self._busy -= 1
                self.state.deliveries.append(
                    DeliveryAttempt(job.subscription.id, job.delivery_id, status)
                )
                job.attempt += 1
                if not (status is not None and 200 <= status < 300):
                    if job.attempt < self.max_attempts:
                        job.due = time.monotonic() + self.backoff * 2 ** (job.attempt - 1)
                        heapq.heappush(self._heap, job)
                    else:
                        self.failed.append((job.subscription.id, job.delivery_id))
                self._cond.notify_all()

    def _post(self, job: _Job) -> int | None:
        headers = {"Content-Type": "application/json", **job.delivery.headers}
        request = urllib.request.Request(
            job.subscription.address, data=job.delivery.body, headers=headers, method="POST"
        )
        try:
            with _OPENER.open(request, timeout=self.timeout) as answer:
                answer.read()
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            exc.close()
            return int(exc.code)
        except (OSError, ValueError):
            return None
