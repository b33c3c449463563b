"""Switchable, seeded faults: what a real shop does to a client on a bad day.

Rates make a soak test meet failures at random but reproducibly (one seeded
``random.Random``); one-shot queues make a unit test meet exactly the failure it is about
(``faults.inject("429", count=3)``). The server asks :meth:`Faults.draw` once per request;
renderers read :attr:`Faults.invalid_records` to corrupt chosen records in their output.
"""

from __future__ import annotations

import random
import threading
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Literal

__all__ = ["FAULT_KINDS", "FaultKind", "Faults"]

FaultKind = Literal["429", "5xx", "slow", "drop", "truncate"]
FAULT_KINDS: tuple[FaultKind, ...] = ("429", "5xx", "slow", "drop", "truncate")


class Faults:
    """Fault switches shared by the server (per request) and the renderers (per record).

    ``drop`` closes the socket without answering; ``truncate`` sends the headers with the
    full Content-Length, then half the body, then closes; ``slow`` waits ``slow_seconds``
    and then answers normally. ``counts`` tallies what was injected, by kind, plus
    ``invalid`` for every corrupted record a renderer reported through :meth:`corrupt`.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        rate_429: float = 0.0,
        rate_5xx: float = 0.0,
        rate_slow: float = 0.0,
        slow_seconds: float = 1.0,
        rate_drop: float = 0.0,
        rate_truncate: float = 0.0,
        retry_after: float = 1.0,
        invalid_records: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.rate_429 = rate_429
        self.rate_5xx = rate_5xx
        self.rate_slow = rate_slow
        self.slow_seconds = slow_seconds
        self.rate_drop = rate_drop
        self.rate_truncate = rate_truncate
        self.retry_after = retry_after
        """Seconds the 429 answer asks the client to wait."""
        self.invalid_records: set[tuple[str, str]] = set(invalid_records)
        """(resource, id) pairs the platform renderer must corrupt in its output."""
        self.counts: Counter[str] = Counter()
        self.enabled = True
        self._rng = random.Random(seed)
        self._status_rng = random.Random(seed + 1)  # keeps draw() a function of seed alone
        self._queue: deque[FaultKind] = deque()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        rates = {k: getattr(self, f"rate_{k}") for k in FAULT_KINDS if getattr(self, f"rate_{k}")}
        return f"Faults(rates={rates}, queued={list(self._queue)}, counts={dict(self.counts)})"

    def inject(self, kind: FaultKind, count: int = 1) -> None:
        """Make the next ``count`` requests fail with ``kind`` (after anything queued)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; choose from {', '.join(FAULT_KINDS)}")
        with self._lock:
            self._queue.extend([kind] * count)

    def clear(self) -> None:
        """Switch every fault off (rates, queue and invalid records); keep the counts."""
        with self._lock:
            self._queue.clear()
            for kind in FAULT_KINDS:
                setattr(self, f"rate_{kind}", 0.0)
            self.invalid_records.clear()

    @property
    def pending(self) -> int:
        """One-shot faults still queued."""
        return len(self._queue)

    @contextmanager
    def suspended(self) -> Iterator[None]:
        """Serve requests cleanly inside the block (e.g. while a test sets the shop up)."""
        previous, self.enabled = self.enabled, False
        try:
            yield
        finally:
            self.enabled = previous

    def draw(self) -> FaultKind | None:
        """The fault for the next request: a queued one first, else one drawn by the rates."""
        if not self.enabled:
            return None
        with self._lock:
            kind: FaultKind | None = self._queue.popleft() if self._queue else None
            if kind is None:
                roll = self._rng.random()
                for candidate in FAULT_KINDS:
                    rate = getattr(self, f"rate_{candidate}")
                    if roll < rate:
                        kind = candidate
                        break
                    roll -= rate
            if kind is not None:
                self.counts[kind] += 1
            return kind

    def server_error_status(self) -> int:
        with self._lock:
            return self._status_rng.choice((500, 502, 503, 504))

    def is_invalid(self, resource: str, record_id: str) -> bool:
        return (resource, str(record_id)) in self.invalid_records

    def corrupt(self, resource: str, record_id: str) -> bool:
        """True when a renderer must corrupt this record; counts it as ``invalid`` if so."""
        hit = self.enabled and self.is_invalid(resource, record_id)
        if hit:
            with self._lock:
                self.counts["invalid"] += 1
        return hit
