"""File sinks: JSON Lines, CSV, and hashed ad audiences.

Each file sink writes inside one directory (``root``, the current directory by default) and
refuses a path that resolves outside it (``../``, an absolute path elsewhere, a symlink out),
so a path taken from a config file cannot overwrite something else.

They are exactly once: on first use a sink reads the keys already in its file, skips an
action whose key is there, and syncs each line to disk (``fsync``) before reporting it
written, so a run killed after writing but before the outbox settled does not write the
line again. Before its first append a sink truncates the file back to the end of its last
complete row: a row cut short by a crash (or a full disk) is removed and its action written
again whole. Appending after the cut instead would glue the new row to the fragment, and in
a CSV file a fragment that ends inside a quoted cell swallows every row after it. The bytes
cut off are appended to ``<file>.cut`` beside it, so nothing is lost. A write
that fails halfway is truncated away at once, so the next row never lands behind a half one.
Repair and append happen under an exclusive ``flock`` of the file, so two processes writing
one file (the nightly job and a webhook worker) never interleave rows or cut each other's.

The ad-audience sink writes the customer-match / suppression upload format of the ad
platforms: emails trimmed and lower-cased, phones in E.164, each SHA-256-hashed (hex), one
row per customer, never the plain values.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import re
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Literal

from shopsync.core.actions import Action
from shopsync.errors import ConfigurationError
from shopsync.models import Customer
from shopsync.sinks._base import Cancelled, DeliveryContext, Guarantee

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("shopsync.sinks")

__all__ = [
    "AdAudience",
    "Csv",
    "JsonLines",
    "audience_row",
    "hash_identifier",
    "normalize_email",
    "normalize_phone",
]


def _exclusive(handle: BinaryIO) -> None:
    """An exclusive advisory lock on the open file (POSIX ``flock``): two processes appending
    to one file (the nightly job and a webhook worker) never interleave, and one's repair
    never cuts the row the other is writing. Without ``fcntl`` (Windows) it does nothing."""
    if fcntl is not None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)


def _undo(handle: BinaryIO, size: int) -> None:
    """Cut a failed append off (best effort: the next first use repairs what is left)."""
    try:
        handle.truncate(size)
        handle.flush()
        os.fsync(handle.fileno())
    except OSError:
        pass


def _inside(path: str | os.PathLike[str], root: str | os.PathLike[str] | None) -> Path:
    base = Path(root if root is not None else os.getcwd()).resolve()
    target = (base / path).resolve()
    if target != base and base not in target.parents:
        raise ConfigurationError(f"{path} is outside the sink's directory {base}")
    if target == base or target.is_dir():
        raise ConfigurationError(f"{path} is a directory, not a file")
    return target


class _FileSink:
    guarantee: ClassVar[Guarantee] = "exactly_once"
    stage: ClassVar[int] = 1
    contacts_customer: ClassVar[bool] = False
    suffix: ClassVar[str] = ""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        root: str | os.PathLike[str] | None = None,
        name: str | None = None,
        kinds: Iterable[str] | None = None,
    ) -> None:
        self.path = _inside(path, root)
        self.name = name or self.suffix  # not the file: renaming it must not write again
        self.kinds = frozenset(kinds) if kinds is not None else None
        self._seen: set[str] | None = None
        self._end = 0  # the file's size when ``_seen`` was last true of it
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    def accepts(self, action: Action) -> bool:
        return self.kinds is None or action.kind in self.kinds

    def close(self) -> None:
        self._seen = None

    def _keys_in_file(self) -> set[str]:
        raise NotImplementedError

    def _complete(self, data: bytes) -> int:
        """Length of the prefix of ``data`` made of whole rows (each ends with a newline)."""
        return data.rfind(b"\n") + 1

    def _repair(self, handle: BinaryIO) -> None:
        """Truncate the file back to its last complete row (a crash may have cut one)."""
        handle.seek(0)
        data = handle.read()
        keep = self._complete(data)
        if keep < len(data):
            # What is cut goes to <name>.cut first: usually half a row, but a file an older
            # version left with an open quote mid-file loses every row after it here.
            aside = self.path.with_name(self.path.name + ".cut")
            with open(aside, "ab") as kept:
                kept.write(data[keep:])
                kept.flush()
                os.fsync(kept.fileno())
            log.warning(
                "%s: cut %d bytes after its last complete row (kept in %s)",
                self.path.name,
                len(data) - keep,
                aside.name,
            )
            handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())

    def _line(self, action: Action, context: DeliveryContext) -> tuple[str, str]:
        """(de-duplication key, the text to append)."""
        raise NotImplementedError

    def render(self, action: Action, context: DeliveryContext) -> dict[str, Any]:
        _, text = self._line(action, context)
        return {"path": str(self.path), "line": text.rstrip("\n")}

    def deliver(self, action: Action, context: DeliveryContext) -> dict[str, Any]:
        key, text = self._line(action, context)
        if self.path.resolve() != self.path:
            # Checked again at each write: a symlink put in place after the sink was built
            # must not redirect it outside its directory.
            raise ConfigurationError(f"{self.path} now leads elsewhere (a symlink): not written")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a+b") as handle:
                _exclusive(handle)  # another process appending here waits (released on close)
                if self._seen is None or handle.seek(0, os.SEEK_END) != self._end:
                    # First use, or another process (a worker retrying a killed job) wrote
                    # since: what it wrote counts, and a line it left cut is repaired.
                    self._repair(handle)
                    self._seen = self._keys_in_file()
                    self._end = handle.seek(0, os.SEEK_END)
                if key in self._seen:
                    return {"path": str(self.path), "written": False}
                start = handle.seek(0, os.SEEK_END)
                try:
                    if start == 0:
                        handle.write(self._header().encode())
                    handle.write(text.encode())
                    handle.flush()
                    os.fsync(handle.fileno())
                    self._end = handle.tell()
                except BaseException:
                    self._seen = None  # read the file again before the next append
                    _undo(handle, start)
                    raise
            self._seen.add(key)
        return {"path": str(self.path), "written": True}

    def _header(self) -> str:
        return ""


class JsonLines(_FileSink):
    """One JSON object per line: the action as ``model_dump(mode="json")`` gives it."""

    suffix = "jsonl"

    def _line(self, action: Action, context: DeliveryContext) -> tuple[str, str]:
        record = action.model_dump(mode="json")
        return action.idempotency_key, json.dumps(record, sort_keys=True) + "\n"

    def _keys_in_file(self) -> set[str]:
        keys = set()
        with open(self.path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    keys.add(json.loads(line)["idempotency_key"])
                except (ValueError, KeyError, TypeError):
                    continue  # a line a crash cut short: its action is written again
        return keys


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    """A CSV cell that spreadsheets will not run as a formula (OWASP CSV injection)."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA) else text


class Csv(_FileSink):
    """One row per action: ``columns`` taken from the action's fields, then its facts.

    The first column is always ``idempotency_key`` (the de-duplication key). Cells that a
    spreadsheet would run as a formula are prefixed with ``'``.
    """

    suffix = "csv"
    DEFAULT_COLUMNS: ClassVar[tuple[str, ...]] = (
        "kind",
        "platform",
        "shop",
        "customer_id",
        "due_at",
        "reason",
        "facts",
    )

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        columns: Sequence[str] = DEFAULT_COLUMNS,
        root: str | os.PathLike[str] | None = None,
        name: str | None = None,
        kinds: Iterable[str] | None = None,
    ) -> None:
        super().__init__(path, root=root, name=name, kinds=kinds)
        self.columns = ("idempotency_key", *(c for c in columns if c != "idempotency_key"))

    def _header(self) -> str:
        return self._row(self.columns)

    @staticmethod
    def _row(cells: Iterable[str]) -> str:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow(list(cells))
        return out.getvalue()

    def _line(self, action: Action, context: DeliveryContext) -> tuple[str, str]:
        data = action.model_dump(mode="json")
        cells = [_cell(data[c] if c in data else action.facts.get(c)) for c in self.columns]
        cells[0] = action.idempotency_key  # the key as is: it is what de-duplicates
        return action.idempotency_key, self._row(cells)

    def _complete(self, data: bytes) -> int:
        """The end of the last row: a newline outside quotes. Quotes and newlines are ASCII,
        never part of a UTF-8 multi-byte character, so bytes can be scanned as they are;
        a doubled quote inside a cell flips the parity twice."""
        keep, quoted, at = 0, False, 0
        while (end := data.find(b"\n", at)) != -1:
            quoted ^= data.count(b'"', at, end) % 2 == 1
            at = end + 1
            if not quoted:
                keep = at
        return keep

    def _keys_in_file(self) -> set[str]:
        with open(self.path, encoding="utf-8", newline="", errors="replace") as handle:
            text = handle.read()
        rows = list(csv.reader(io.StringIO(text)))
        if not text.endswith("\n"):
            rows = rows[:-1]  # a row a crash cut short (perhaps inside its last cell) is unsent
        return {row[0] for row in rows[1:] if len(row) == len(self.columns)}


# ------------------------------------------------------------------------------ audiences

_COUNTRY_CODES = {
    "US": "1", "CA": "1", "GB": "44", "IE": "353", "DE": "49", "AT": "43", "CH": "41",
    "FR": "33", "BE": "32", "NL": "31", "LU": "352", "ES": "34", "PT": "351", "IT": "39",
    "DK": "45", "SE": "46", "NO": "47", "FI": "358", "PL": "48", "CZ": "420", "AU": "61",
    "NZ": "64", "JP": "81", "BR": "55", "MX": "52", "IN": "91", "ZA": "27", "SG": "65",
}  # fmt: skip
"""Calling codes for national numbers of these countries (others need a ``+`` already)."""


def normalize_email(email: str, *, gmail_dots: bool = False) -> str | None:
    """Trimmed and lower-cased; None if it is not an address. ``gmail_dots`` also drops dots
    before ``@gmail.com``/``@googlemail.com`` (Google Customer Match asks for it)."""
    value = email.strip().lower()
    local, at, domain = value.partition("@")
    if not (local and at and domain) or " " in value:
        return None
    if gmail_dots and domain in ("gmail.com", "googlemail.com"):
        local = local.replace(".", "")
    return f"{local}@{domain}"


def normalize_phone(phone: str, country: str | None = None) -> str | None:
    """E.164 (``+4915123456789``): ``+``/``00`` international numbers as they are, national
    ones (leading trunk ``0`` dropped, except Italy) with the country's calling code;
    None when the number cannot be placed or has the wrong length (8-15 digits)."""
    text = phone.strip()
    digits = re.sub(r"\D", "", text)
    if text.startswith("+"):
        full = digits
    elif digits.startswith("00"):
        full = digits[2:]
    else:
        code = _COUNTRY_CODES.get((country or "").upper())
        if code is None:
            return None
        national = digits
        if code == "1" and len(national) == 11 and national.startswith("1"):
            national = national[1:]
        elif code != "39":
            national = national.lstrip("0")
        full = code + national
    if not 8 <= len(full) <= 15 or full.startswith("0"):
        return None
    return "+" + full


def hash_identifier(value: str) -> str:
    """SHA-256 of the normalised value, hex (what Google and Meta accept)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def audience_row(
    customer: Customer, *, platform: Literal["google", "meta"] = "google"
) -> dict[str, str] | None:
    """The hashed identifiers of one customer, or None when there is none to send.

    Google wants E.164 with the ``+`` before hashing and gmail dots removed; Meta wants the
    phone as digits with the country code and no ``+``.
    """
    country = customer.default_address.country_code if customer.default_address else None
    email = normalize_email(customer.email or "", gmail_dots=platform == "google")
    phone = normalize_phone(customer.phone or "", country) if customer.phone else None
    if phone is not None and platform == "meta":
        phone = phone[1:]
    if email is None and phone is None:
        return None
    return {
        "email_sha256": hash_identifier(email) if email else "",
        "phone_sha256": hash_identifier(phone) if phone else "",
    }


class AdAudience(_FileSink):
    """A customer-match (or suppression) list: one row of hashed identifiers per customer.

    Columns are Google's upload names (``Email``, ``Phone``) or Meta's (``email``,
    ``phone``). A customer is written once, however many actions name them. Ad targeting is
    marketing whatever the action, so every row needs the customer's consent.
    """

    requires_consent: ClassVar[bool] = True

    suffix = "audience"
    contacts_customer = True  # ad targeting is marketing: it needs consent

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        platform: Literal["google", "meta"] = "google",
        root: str | os.PathLike[str] | None = None,
        name: str | None = None,
        kinds: Iterable[str] | None = None,
    ) -> None:
        super().__init__(path, root=root, name=name, kinds=kinds)
        if platform not in ("google", "meta"):
            raise ConfigurationError("AdAudience platform must be 'google' or 'meta'")
        self.platform = platform
        self.columns = ("Email", "Phone") if platform == "google" else ("email", "phone")

    def _header(self) -> str:
        return ",".join(self.columns) + "\n"

    def _line(self, action: Action, context: DeliveryContext) -> tuple[str, str]:
        if context.customer is None:
            raise Cancelled("no customer to add to the audience")
        row = audience_row(context.customer, platform=self.platform)
        if row is None:
            raise Cancelled("the customer has no usable email or phone for an audience")
        key = f"{row['email_sha256']},{row['phone_sha256']}"
        return key, key + "\n"

    def _keys_in_file(self) -> set[str]:
        with open(self.path, encoding="utf-8", errors="replace") as handle:
            return {line.strip() for line in list(handle)[1:] if line.count(",") == 1}
