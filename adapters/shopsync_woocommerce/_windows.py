"""A large keyset read in windows of modification time, read side by side (issue 20).

A keyset read (:class:`._paging.Keyset`) can ask for a page only once it holds the page
before: the store waits while the reader decodes an answer and sends the next request, and the
reader waits while the store renders. Measured against the emulator (30,000 orders, pages of
100, 2 cores): the plain loop of the ``woocommerce`` client reads them in 10.8-11.2 s, and the
same loop with two requests at once in 8.6-9.2 s, the store then busy all the time.

So once the first page of a read says how many pages are left, the rest is cut into windows
of equal time, from the newest row read to the newest row of the read, and ``readers``
threads each read one window at a time in order, taking the next when theirs ends. Each window
is a keyset read of its own, bounded above; the last has no bound, so a record saved during
the read moves there and is read again, as in a read of one window. When the last window
ends before another, it is read on once they have all ended: a record of theirs saved
meanwhile has moved past its end.

The pages reach the caller as they come. Each says where the whole read is complete up to
(``RawPage.complete_to``, and the cursor's ``since``): where the earliest window not yet
finished has got to, so that a checkpoint taken after any page misses nothing of a window
still behind. Only the page that finishes the last window to finish is marked last.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable, Iterator

from shopsync.adapter_kit import RawPage
from shopsync_woocommerce._keyset import Keyset, shift
from shopsync_woocommerce._transport import AHEAD
from shopsync_woocommerce.mapping import parse_date

__all__ = ["PAGES_PER_WINDOW", "WINDOWS_PER_READER", "in_windows", "split"]

PAGES_PER_WINDOW = 4
"""A read is cut into a window per this many pages left after its first (two at least):
a window's last page is seldom full, so each costs about half a request more."""

WINDOWS_PER_READER = 4
"""At most this many windows a reader thread: equal times hold unequal numbers of records
(a growing shop changes more orders lately), and smaller windows even the threads' shares."""

THREAD_NAME = "shopsync-woocommerce-window"


def split(first: Keyset, parts: int) -> list[Keyset]:
    """``first`` bounded to the first of ``parts`` windows of equal time, from its newest row
    read to the newest row of its read, and a read of each other window, the last with no
    end; none (``first`` untouched) when the read holds under two seconds. One request, of
    one row."""
    lo, top = first.newest, first.newest_stamp()
    if lo is None or top is None:
        return []
    try:
        span = int((parse_date(top) - parse_date(lo)).total_seconds())
    except ValueError:
        return []
    parts = min(parts, span)  # a second at least each, so the bounds rise
    if parts < 2:
        return []
    bounds = [shift(lo, span * k // parts) for k in range(1, parts)]
    first.before = bounds[0]
    ends: list[str | None] = [*bounds[1:], None]
    return [first.window(after, before) for after, before in zip(bounds, ends, strict=True)]


def in_windows(first: Keyset, readers: int) -> Iterator[RawPage]:
    """The pages of ``first`` read by ``readers`` threads in windows (see the module), up
    to two pages ahead of the caller a thread: the next request is on the wire while the
    caller maps and stores a page, and the store is not left idle while a page waits for a
    caller still busy with the one before. Nothing is asked past the last page. An error of
    a request is raised where its page would be, and stops the other threads; a caller that
    stops waits for the requests on the wire, not for their retries (``_transport.AHEAD``).

    While the threads run, the process's switch interval is short
    (``page_commit.quick_switches``): a thread wakes with each answer needing the GIL back
    from the caller, busy mapping, and at Python's 5 ms it waited that long at every wake-up
    of a page's exchange (measured with one thread: 10,000 orders stored, 3,100-3,750
    orders/s at 5 ms, 4,000-4,500 at 0.5 ms, load 1.1-1.4)."""
    from shopsync.store.page_commit import quick_switches  # (SQLAlchemy: not at import)

    windows = [first]
    reached: list[str | None] = [first.after]  # complete up to, as of each one's last page out
    finished = [False]
    taken = [1]  # windows handed to a thread so far
    again: list[int] = []  # the last window, to read on (see hand_on)
    threads: list[threading.Thread] = []
    lock = threading.Lock()
    want = threading.Semaphore(2 * readers)
    ready = threading.Semaphore(0)
    box: deque[tuple[RawPage | None, BaseException | None]] = deque()
    stop = threading.Event()

    def hand_on(k: int, page: RawPage) -> bool:
        """``page`` of window ``k`` to the caller; whether ``k`` goes on (decided here, under
        the lock: the last window may be reopened for another thread)."""
        with lock:
            reached[k], finished[k] = windows[k].resume, windows[k].finished
            tail = len(windows) - 1
            if k != tail and finished[tail] and all(finished):
                # the last window ended before this one: an order of this one saved since
                # moved past its end, so it is read on from there (by the next thread free)
                finished[tail] = windows[tail].finished = False
                again.append(tail)
            behind = next((j for j, done in enumerate(finished) if not done), None)
            since = reached[-1 if behind is None else behind]
            alone = len(windows) == 1
            out = _as_read(page, first.resource, since, last=behind is None, alone=alone)
            box.append((out, None))
            ready.release()
            return not finished[k]

    def read(k: int) -> bool:
        """Window ``k`` to its end; False once the caller stopped."""
        reader = windows[k]
        going = not reader.finished
        while going:
            want.acquire()
            if stop.is_set():
                return False
            going = hand_on(k, next(reader))
        return True

    def take() -> int | None:
        with lock:
            if again:
                return again.pop()
            k = taken[0]
            if k >= len(windows):
                return None
            taken[0] += 1
            return k

    def run(opening: bool) -> None:
        AHEAD.stop = stop
        try:
            with quick_switches():
                if opening and not _open(first):
                    return
                k: int | None = 0 if opening else take()
                while k is not None and read(k):
                    k = take()
        except BaseException as exc:  # handed to the caller, who raises it
            stop.set()
            box.append((None, exc))
            ready.release()

    def _open(reader: Keyset) -> bool:
        """The first page; the windows cut when it leaves enough to share, and the other
        threads started once it is out (a page of theirs must not come before it)."""
        want.acquire()
        if stop.is_set():
            return False
        page = next(reader)
        left = (reader.pages or 0) - 1
        if not reader.finished and readers > 1 and left >= 2 * PAGES_PER_WINDOW:
            rest = split(reader, min(left // PAGES_PER_WINDOW, WINDOWS_PER_READER * readers))
            with lock:
                windows.extend(rest)
                reached.extend(w.after for w in rest)
                finished.extend(False for _ in rest)
        hand_on(0, page)
        with lock:
            for _ in range(min(readers, len(windows)) - 1):
                threads.append(_started(run, False))
        return True

    threads.append(_started(run, True))
    try:
        while True:
            ready.acquire()
            page, error = box.popleft()
            if error is not None:
                raise error
            if page is None:  # pragma: no cover - only errors come without a page
                return
            if not page.last:
                want.release()  # the next request goes out while this page is mapped
            yield page
            if page.last:
                return
    finally:
        stop.set()
        for _ in range(readers):
            want.release()
        while threads:  # the opening thread first: it starts the others
            threads.pop(0).join()


def _started(target: Callable[[bool], None], opening: bool) -> threading.Thread:
    thread = threading.Thread(target=target, args=(opening,), name=THREAD_NAME, daemon=True)
    thread.start()
    return thread


def _as_read(
    page: RawPage, resource: str, since: str | None, *, last: bool, alone: bool
) -> RawPage:
    """``page`` as a page of the whole read, complete up to ``since``. A read left in one
    window (``alone``) comes in order: its pages are as the window made them. ``since`` is
    None only then (a first window that has read no row yet)."""
    if alone or since is None:
        return RawPage(page.rows, cursor=page.cursor, last=last)
    cursor = json.dumps({"resource": resource, "since": since})
    if last:  # complete: the loop's newest row is the read's high water
        return RawPage(page.rows, cursor=cursor, last=True)
    return RawPage(page.rows, cursor=cursor, complete_to=parse_date(since))
