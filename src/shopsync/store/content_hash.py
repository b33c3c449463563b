"""The content hash of a stored order, defined over its store rows (issue 20).

The hash tells two versions with one ``updated_at`` apart (a platform that keeps whole
seconds stamps two quick changes alike). Until this module it was a hash of the order
model's JSON, so only a path that built the model could compute it; the columnar ingest path
(:mod:`shopsync.store._fast`) builds rows without a model. Now both paths hash the rows they
write, in this one function, so the hash is what the store holds, whichever path wrote it.

Versions: a hash written by this definition starts with ``2:`` (32 characters in all, the
column's width). A hash without a prefix was written by an older shopsync from the model's
JSON (:func:`is_legacy`). Stored rows are not rewritten on upgrade: a same-stamp version is
compared with the legacy hash of its model on the row path (``_rows.matches``), and the fast
path hands such a record to the row path, so an upgrade records no false change.

The hashed columns are the tables' own (:data:`_COLUMNS`): a migration that adds a column to
these tables changes every order's hash, so it must bump :data:`VERSION` and treat the older
version as legacy is treated here (or leave the new column out of the hash).
"""

from __future__ import annotations

import codecs
import hashlib
import sys
from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - the "fast" extra is not installed
    _orjson = None  # type: ignore[assignment]

from shopsync.store._json_text import dumps_like
from shopsync.store.schema import fulfillments, line_items, orders, refunds

__all__ = ["VERSION", "is_legacy", "order_hash"]

VERSION = "2"
_PREFIX = VERSION + ":"
_TABLES = ("orders", "line_items", "refunds", "fulfillments")
_SKIP = frozenset({"shop_id", "order_id", "content_hash", "seq"})
_COLUMNS = {
    table.name: tuple(sys.intern(str.__str__(c.name)) for c in table.c if c.name not in _SKIP)
    for table in (orders, line_items, refunds, fulfillments)
}
"""Each table's hashed columns, in the schema's order: the keys the store adds (shop, order
id) and what the write itself sets are left out. As plain interned ``str``, not SQLAlchemy's
``quoted_name``: a dict looks a ``str`` subclass up the slow way (half of this hash's item
getting, measured)."""
_GET = {table: itemgetter(*names) for table, names in _COLUMNS.items()}
_dumps = dumps_like(sort_keys=True, separators=(",", ":"), default=str)
"""``json.dumps`` with these options: the text hashed is the definition's, byte for byte."""
_ORJSON_OPTIONS = (
    (_orjson.OPT_SORT_KEYS | _orjson.OPT_PASSTHROUGH_DATETIME | _orjson.OPT_PASSTHROUGH_DATACLASS)
    if _orjson is not None
    else 0
)


def order_hash(tables: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """The hash of an order's rows (``orders`` with one row and its child tables): their
    column values in the schema's column order (JSON values with sorted keys)."""
    content = [list(map(_GET[table], tables[table])) for table in _TABLES]
    return _PREFIX + hashlib.blake2b(_text(content), digest_size=15).hexdigest()


def _text(content: Any) -> bytes:
    """The definition's JSON text, by orjson when it is installed (twice as quick) and its
    text is the same: compact separators and sorted keys alike, a date or a ``Decimal``
    through ``str`` alike (passed through to ``default``). json escapes what is not ASCII,
    and DEL, which orjson writes as they are: they are escaped afterwards as json escapes
    them (:func:`_escaped`; keys sort alike, UTF-8 keeping the code points' order). What
    orjson refuses (an integer past 64 bits, a lone surrogate) json writes. A float would
    differ (``1e+16`` against ``1e16``): no row holds one (money and quantities are integer
    units, rates and values decimal text), and tests/store/test_content_hash.py holds both to
    the same text on real orders."""
    if _orjson is not None:
        try:
            data: bytes = _orjson.dumps(content, default=str, option=_ORJSON_OPTIONS)
        except TypeError:  # orjson.JSONEncodeError
            pass
        else:
            if not data.isascii():  # a name or a city of a shop abroad
                data = data.decode().encode("ascii", _ESCAPE)
            return data.replace(b"\x7f", b"\\u007f") if b"\x7f" in data else data
    return _dumps(content).encode()


_ESCAPE = "shopsync.json_escape"


def _escaped(error: UnicodeError) -> tuple[str, int]:
    """The ``\\uXXXX`` escapes (UTF-16 pairs past the BMP, lower-case hex) ``json.dumps``
    writes for the characters ``error`` could not encode in ASCII."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    out = []
    for char in error.object[error.start : error.end]:
        code = ord(char)
        if code > 0xFFFF:
            code -= 0x10000
            out.append(f"\\u{0xD800 | (code >> 10):04x}\\u{0xDC00 | (code & 0x3FF):04x}")
        else:
            out.append(f"\\u{code:04x}")
    return "".join(out), error.end


codecs.register_error(_ESCAPE, _escaped)


def is_legacy(stored: str | None) -> bool:
    """Whether a stored hash predates this definition (the model-JSON hash of 0005)."""
    return stored is not None and not stored.startswith(_PREFIX)
