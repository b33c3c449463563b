"""Routing a bulk result's lines into partition files by their root record, for
:mod:`._bulk` (a file larger than ``bulk_partition_bytes``), in memory flat in the file's
size."""

from __future__ import annotations

import contextlib
import tempfile
import zlib
from typing import IO, Any

from shopsync._collector import collector_paused
from shopsync.adapter_kit import PageLoop
from shopsync_shopify._jsonl import _loads, _parent_at_end, _root_ids, _tail_parent

try:  # compiled, typed decoding of bulk orders (issue 20 item 3.1)
    from shopsync_shopify import _bulk_structs
except ImportError:  # pragma: no cover - msgspec is not installed
    _bulk_structs = None  # type: ignore[assignment]

__all__ = ["partitions", "route"]

_BLOCK = 4 << 20
"""Bytes of lines read (and then written) at once."""
_EMBEDDED = ("refunds", "fulfillments")
"""Lists inside a root line whose items children may name as their parent."""


def partitions(size: int, partition_bytes: int) -> int:
    """How many partition files a bulk file of ``size`` bytes is routed into: one for each
    ``partition_bytes``, while they and :func:`route`'s bucket files take no more than half
    the files the process may open; past that, partitions grow instead (at the usual limit
    of 1,024 open files, a 10M-order shop's file of some 32 GB wanted 980 partitions)."""
    wanted = max(1, size // max(1, partition_bytes) + 1)
    most = (_file_budget() - 2) * _PARTS_A_BUCKET // (_PARTS_A_BUCKET + 2)
    return max(1, min(wanted, most))


def _file_budget() -> int:
    """Files the routing may hold open at once: half the process's limit, however small (a
    floor of 16 took a limit of 16 whole: the read ended "Too many open files"; under a limit
    of 10, no routing at all)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Unix
        return 512
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 512 if soft == resource.RLIM_INFINITY else soft // 2


def route(spool: IO[bytes], files: list[IO[bytes]], loop: PageLoop[Any]) -> None:
    """Every line of ``spool`` into the partition file of its root record (by a hash of the
    root's id). A child of an order goes to its order's partition at once (:data:`_ORDER_GID`);
    a child of an embedded object (a refund, a fulfilment) waits in a bucket file by a hash of
    its parent's id, and each root line notes its embedded objects' ids, with its partition,
    in the bucket file of each id (:func:`_split`). Once every line is routed, each bucket's
    waiting lines go to their parent's partition by the ids noted in that bucket alone
    (:func:`_settle`): so no more than one bucket's ids are ever held, and the reader's memory
    is flat in the number of orders (an index of every refund and fulfilment, held for the
    whole file, grew some 90 bytes an order: 1 GB at 10M orders, issue 20). Only root lines
    are parsed here, and child lines that do not end with their ``__parentId``. Lines go some
    megabytes at a time: line by line this pass cost 28 us an order at 20k orders."""
    buckets = len(files) // _PARTS_A_BUCKET + 1
    with contextlib.ExitStack() as stack, collector_paused():
        noted: list[IO[bytes]] = [
            stack.enter_context(tempfile.TemporaryFile()) for _ in range(buckets)
        ]
        waiting: list[IO[bytes]] = [
            stack.enter_context(tempfile.TemporaryFile()) for _ in range(buckets)
        ]
        for block in iter(lambda: spool.readlines(_BLOCK), []):
            _split(block, files, noted, waiting)
        for ids, kids in zip(noted, waiting, strict=True):
            _settle(ids, kids, files, loop)


_PARTS_A_BUCKET = 8
"""Partitions a bucket of :func:`route` serves: a bucket's ids (a few tens of bytes each,
some per order) hold a small part of what its partitions' lines hold."""


def _split(
    block: list[bytes], files: list[IO[bytes]], noted: list[IO[bytes]], waiting: list[IO[bytes]]
) -> None:
    """Write the lines of ``block`` to their root's partition file, or (a child of an object
    embedded in a root) to its parent's bucket in ``waiting``; a root line notes the ids of
    the objects embedded in it (and its own, if it is not an order) with its partition in
    their buckets in ``noted`` (:func:`_note`)."""
    parts, buckets = len(files), len(noted)
    held: list[list[bytes]] = [[] for _ in files]
    notes: list[list[bytes]] = [[] for _ in noted]
    later: list[list[bytes]] = [[] for _ in waiting]
    for raw in block:
        value = _tail_parent(raw)
        if value is not None:  # most child lines
            if value.startswith(_ORDER_GID):
                held[zlib.crc32(value) % parts].append(raw)
            else:
                later[zlib.crc32(value) % buckets].append(raw)
            continue
        if raw[-1:] != b"\n":
            raw += b"\n"  # the file's last line
        ids = (None if _bulk_structs is None else _bulk_structs.root_ids(raw)) or _root_ids(raw)
        if ids is None:
            parent = _parent_at_end(raw)
            if parent is None:
                if not raw.strip():
                    continue
                line = _loads(raw)
                parent = line.get("__parentId")
                if parent is None:  # a root line, parsed for its ids
                    ids = [_key(line.get("id"))]
                    for key in _EMBEDDED:
                        for item in line.get(key) or ():
                            if isinstance(item, dict) and item.get("id"):
                                ids.append(_key(item["id"]))
        if ids is not None:
            part = zlib.crc32(ids[0]) % parts
            held[part].append(raw)
            for gid in ids[1:] if ids[0].startswith(_ORDER_GID) else ids:
                notes[zlib.crc32(gid) % buckets].append(_note(part, gid))
            continue
        value = _key(parent)
        if value.startswith(_ORDER_GID):
            held[zlib.crc32(value) % parts].append(raw)
        else:
            later[zlib.crc32(value) % buckets].append(raw)
    for targets, lines in ((files, held), (noted, notes), (waiting, later)):
        for file, some in zip(targets, lines, strict=True):
            if some:
                file.write(b"".join(some))


def _key(value: Any) -> bytes:
    """A parsed id as the routing keys it, in bytes: UTF-8, a lone surrogate (JSON's
    ``\\ud800``) kept as it came (strict UTF-8 raised, and ended the whole read)."""
    return str(value).encode("utf-8", "surrogatepass")


def _note(part: int, gid: bytes) -> bytes:
    """A line of a bucket's ids: ``gid`` is in partition ``part`` (in hex, should the id hold
    a line break: it came from a decoded string)."""
    if gid.find(b"\n") < 0:
        return b"%d %s\n" % (part, gid)
    return b"%dx %s\n" % (part, gid.hex().encode())


def _settle(
    noted: IO[bytes], waiting: IO[bytes], files: list[IO[bytes]], loop: PageLoop[Any]
) -> None:
    """The lines waiting in one bucket into the partition files of their parents, by the ids
    noted in that bucket; a line whose parent no root named is rejected."""
    owner: dict[bytes, int] = {}  # the bucket's ids -> their root's partition
    noted.seek(0)
    for block in iter(lambda: noted.readlines(_BLOCK), []):
        for line in block:
            at, _, gid = line[:-1].partition(b" ")
            if at[-1:] == b"x":
                owner[bytes.fromhex(gid.decode())] = int(at[:-1])
            else:
                owner[gid] = int(at)
    waiting.seek(0)
    for block in iter(lambda: waiting.readlines(_BLOCK), []):
        held: list[list[bytes]] = [[] for _ in files]
        for raw in block:
            parent = _tail_parent(raw)
            if parent is None:  # as _split read it
                found = _parent_at_end(raw)
                parent = _key(_loads(raw).get("__parentId") if found is None else found)
            part = owner.get(parent)
            if part is None:
                text = raw.decode("utf-8", "replace").strip()
                shown = parent.decode("utf-8", "replace")
                loop.reject(text, f"bulk line without a known parent ({shown})")
            else:
                held[part].append(raw)
        for file, lines in zip(files, held, strict=True):
            if lines:
                file.write(b"".join(lines))


_ORDER_GID = b"gid://shopify/Order/"
"""A parent that is an order is the root of its own partition (by a hash of its id): its
child goes there whether or not its root line was seen yet (if it has none, the partition
rejects it). Only the children of embedded objects (refunds, fulfilments) wait for the ids
their roots note (:func:`route`)."""
