"""The toolkit adapters are built from: one way to map a record, one page loop.

Every adapter does the same two things around its platform's quirks, and each used to do
them its own way. This module is the one way, public so that a third-party adapter gets the
same guarantees by using it:

- :class:`RecordReader` reads a wire record field by field. Money, timestamps, ids,
  quantities and nested objects are read with the project's rules (exact ``Decimal`` with
  a currency, aware UTC, strings), and any value of the wrong shape raises
  :class:`~shopsync.errors.InvalidRecordError` naming the dotted path of the field
  (``lineItems[2].originalUnitPriceSet.shopMoney.amount``) and carrying the raw record. A
  record is mapped whole or refused with a reason, never half-mapped.
- :func:`refusals` / :func:`guarded` catch what a mapper did not foresee (``None.get``, an
  ``int`` iterated, nesting too deep: :data:`~shopsync.errors.SHAPE_ERRORS`) and refuse the
  record with the Python error as its reason: no payload escapes as another exception.
- :class:`PageLoop` turns raw pages into :class:`~shopsync.adapter.Page` objects: each raw
  record becomes a record or a :class:`~shopsync.adapter.Rejected` with its reason, the
  high-water mark is the running maximum of ``updated_at`` (or, for an unordered scan, is
  only reported with the last page), and the read stops at the page marked last.
- :func:`create_once` makes a write-back that creates something named by a key (a discount
  code) idempotent; :func:`quarantined_record` reads back a quarantined record's JSON text.

JSON over HTTP goes through :class:`shopsync.http.HttpClient` (``json``, or ``exchange`` /
``receive_json`` for requests a platform's own client sends), so a cut body is a retryable
:class:`~shopsync.errors.ResponseError` everywhere. A sketch of a read::

    def read_orders(self, updated_since=None):
        def pages():
            cursor = None
            while True:
                body = self.http.json("GET", self.url, params={"after": cursor})
                cursor = body["next"]
                yield RawPage(body["orders"], cursor=cursor, last=cursor is None)

        counter = RequestCounter(self.http.stats)
        yield from PageLoop("orders", self._order, stats=counter).run(pages())
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, NoReturn, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from shopsync._currencies import EXPONENTS, refusal
from shopsync._quantity import _quantity
from shopsync._renamed import old_name
from shopsync.adapter import Page, Rejected
from shopsync.errors import SHAPE_ERRORS, InvalidRecordError, PlatformError
from shopsync.models import Money

__all__ = [
    "REASON_CHARS",
    "PageLoop",
    "RawPage",
    "RecordReader",
    "RequestCounter",
    "create_once",
    "guarded",
    "join_path",
    "parse_timestamp",
    "quarantined_record",
    "refusals",
    "rejected_record",
    "short_reason",
    "text_id",
]

T = TypeVar("T")
D = TypeVar("D")
F = TypeVar("F", bound=Callable[..., Any])

REASON_CHARS = 300
"""Characters of a reason a mapper writes: a 1 MB value is quoted, not repeated in full."""


def short_reason(reason: str, limit: int = REASON_CHARS) -> str:
    """``reason`` cut to ``limit`` characters (marked with ``...``)."""
    return reason if len(reason) <= limit else reason[:limit] + "..."


def join_path(path: str, key: str | int) -> str:
    """``path`` one step further: ``a`` + ``b`` -> ``a.b``, ``a`` + ``2`` -> ``a[2]``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _loc_path(loc: Iterable[Any]) -> str | None:
    path = ""
    for part in loc:
        path = join_path(path, part if isinstance(part, int) else str(part))
    return path or None


def parse_timestamp(value: Any, *, assume: dt.tzinfo | None = None) -> dt.datetime:
    """An ISO 8601 date-time as an aware UTC datetime; ``ValueError`` when it is not one.

    ``assume`` is the zone of a value written without an offset (WooCommerce's ``*_gmt``
    fields are UTC without one); without it such a value is refused, since guessing a zone
    would shift every time by hours.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{value!r} is not an ISO 8601 date-time")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        if assume is None:
            raise ValueError(f"{value!r} has no UTC offset and no time zone to assume")
        parsed = parsed.replace(tzinfo=assume)
    return parsed.astimezone(dt.timezone.utc)


def text_id(value: Any) -> str:
    """A record id as a string: a non-blank string (trimmed) or a whole number."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{value!r} is not an id")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise ValueError(f"{value!r} is not an id")


def _first_error(exc: ValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return str(exc), None
    return str(errors[0].get("msg")), _loc_path(errors[0].get("loc", ()))


class RecordReader:
    """Reads one raw record; every failure raises :class:`InvalidRecordError` naming the
    field's dotted path and carrying :attr:`raw`.

    ``path`` arguments are where the value sits in the record (``""`` for the top). An
    adapter whose ids need parsing (Shopify's ``gid://`` ids) overrides :meth:`parse_id`.
    """

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    @staticmethod
    def parse_id(value: Any) -> str:
        """The platform's id as a string; ``ValueError`` when it is not one."""
        return text_id(value)

    def fail(self, path: str, reason: str) -> NoReturn:
        """Refuse the record: ``path`` is the field at fault, ``reason`` says why."""
        error = InvalidRecordError(short_reason(reason), raw=self.raw, path=path or None)
        error.__suppress_context__ = True  # the reason says it; a KeyError behind it does not
        raise error

    # ------------------------------------------------------------------ structure

    def get(self, obj: Any, key: str, path: str = "") -> Any:
        """``obj[key]``, ``key`` a dotted path (``shopMoney.amount``); None when a step is
        absent or null; refused when ``obj`` or a step is not an object (``obj`` sits at
        ``path``)."""
        if not isinstance(obj, Mapping):
            self.fail(path, f"expected an object, got {type(obj).__name__}")
        for part in key.split("."):
            if obj is None:
                return None
            if not isinstance(obj, Mapping):
                self.fail(path, f"expected an object, got {type(obj).__name__}")
            obj, path = obj.get(part), join_path(path, part)
        return obj

    def required(self, obj: Any, key: str, path: str = "") -> Any:
        """:meth:`get`, refusing a missing or null value."""
        value = self.get(obj, key, path)
        if value is None:
            self.fail(join_path(path, key), "required field is missing")
        return value

    def obj(self, value: Any, path: str) -> Mapping[str, Any]:
        """An object; null reads as empty (``billing: null``)."""
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(path, f"expected an object, got {type(value).__name__}")
        return value

    def items(self, value: Any, path: str) -> list[Any]:
        """A list; null reads as empty."""
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(path, f"expected a list, got {type(value).__name__}")
        return value

    # ------------------------------------------------------------------ values

    def id(self, value: Any, path: str) -> str:
        """A record id, as a string (:meth:`parse_id`)."""
        try:
            return self.parse_id(value)
        except (ValueError, TypeError) as exc:
            self.fail(path, str(exc))

    def opt_id(self, value: Any, path: str) -> str | None:
        """:meth:`id`, or None for null (a guest order's customer)."""
        return None if value is None else self.id(value, path)

    def amount(self, value: Any, path: str) -> Decimal:
        """An exact decimal: a decimal string, an int, or a JSON float read through its
        shortest repr (the decimal the platform wrote); never NaN or infinite."""
        if isinstance(value, bool) or value is None:
            self.fail(path, f"{value!r} is not an amount")
        if isinstance(value, float):
            value = repr(value)
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            self.fail(path, f"{value!r} is not a decimal amount")
        if not number.is_finite():
            self.fail(path, f"{value!r} is not a finite amount")
        return number

    def amount_or(self, value: Any, path: str, default: D) -> Decimal | D:
        """:meth:`amount`, or ``default`` for null or a blank string (WooCommerce's
        ``wc_format_decimal`` reads ``""`` as zero; a price ``""`` means no price)."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return default
        return self.amount(value, path)

    def currency(self, value: Any, path: str) -> str:
        """A currency code a platform offers (:mod:`shopsync._currencies`), upper case."""
        code = value.strip().upper() if isinstance(value, str) else value
        if not isinstance(code, str) or not code:
            self.fail(path, "missing")
        if code not in EXPONENTS:
            self.fail(path, refusal(value))
        return code

    def money(self, value: Any, currency: str, path: str) -> Money:
        """:meth:`amount` in ``currency``; the currency's and the store's rules apply (a
        code that is not a currency, more than four decimals, an amount past the cap)."""
        try:
            return Money(amount=self.amount(value, path), currency=currency)
        except ValidationError as exc:
            self.fail(path, _first_error(exc)[0])

    def int(self, value: Any, path: str) -> int:
        """A whole number, or its decimal string (``"3"``)."""
        if isinstance(value, bool):
            self.fail(path, f"{value!r} is not an integer")
        try:
            return value if isinstance(value, int) else int(str(value))
        except (TypeError, ValueError):
            self.fail(path, f"{value!r} is not an integer")

    def quantity(self, value: Any, path: str) -> Decimal:
        """An exact non-negative quantity, at most 4 places (stores selling by weight write
        ``1.5``): :data:`shopsync.models.Quantity`'s rules."""
        if value is None:
            self.fail(path, "None is not a quantity")
        try:
            return _quantity(value)
        except (ValueError, ArithmeticError) as exc:
            self.fail(path, str(exc))

    def timestamp(
        self, value: Any, path: str, *, assume: dt.tzinfo | None = None
    ) -> dt.datetime | None:
        """An ISO 8601 date-time as aware UTC (:func:`parse_timestamp`); None for null."""
        if value is None:
            return None
        try:
            return parse_timestamp(value, assume=assume)
        except ValueError as exc:
            self.fail(path, str(exc))

    def timestamp_required(
        self, value: Any, path: str, *, assume: dt.tzinfo | None = None
    ) -> dt.datetime:
        """:meth:`timestamp`, refusing null."""
        parsed = self.timestamp(value, path, assume=assume)
        if parsed is None:
            self.fail(path, "required date-time is missing")
        return parsed

    def date(self, value: Any, path: str) -> dt.date | None:
        """A calendar date (``YYYY-MM-DD``, a birthday); None for null or ``""``."""
        if value in (None, ""):
            return None
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            self.fail(path, f"{value!r} is not a date")

    def build(self, factory: Callable[..., T], path: str, **fields: Any) -> T:
        """``factory(**fields)`` (a model); a field it refuses is named under ``path``."""
        try:
            return factory(**fields)
        except ValidationError as exc:
            reason, where = _first_error(exc)
            self.fail(".".join(p for p in (path, where) if p), reason)

    def validate(self, model: type[BaseModel], data: Mapping[str, Any]) -> Any:
        """``model.model_validate(data)`` for a record built as one dict: a refused field is
        named by its place in ``data`` (``line_items[0].quantity``)."""
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            reason, where = _first_error(exc)
            self.fail(where or "", reason)


@contextlib.contextmanager
def refusals(raw: Any, *, validation_paths: bool = False) -> Iterator[None]:
    """Refuse ``raw`` for whatever goes wrong mapping it in the block.

    An :class:`InvalidRecordError` passes with ``raw`` filled in; a pydantic error becomes
    one (named by its location when ``validation_paths``: the model was built from the whole
    record); any shape error (:data:`~shopsync.errors.SHAPE_ERRORS`) becomes one whose
    reason is the Python error.
    """
    try:
        yield
    except InvalidRecordError as exc:
        if exc.raw is None:
            exc.raw = raw
        raise
    except ValidationError as exc:
        reason, where = _first_error(exc)
        path = where if validation_paths else None
        raise InvalidRecordError(reason, raw=raw, path=path) from None
    except SHAPE_ERRORS as exc:
        reason = short_reason(f"malformed record ({type(exc).__name__}: {exc})")
        raise InvalidRecordError(reason, raw=raw) from None


def guarded(mapper: F) -> F:
    """Decorate a mapper ``(payload, **settings)`` so every failure on a malformed payload
    is an :class:`InvalidRecordError` (:func:`refusals`)."""

    @functools.wraps(mapper)
    def run(payload: Any, **kwargs: Any) -> Any:
        with refusals(payload):
            return mapper(payload, **kwargs)

    return run  # type: ignore[return-value]


# --------------------------------------------------------------------------- the page loop


def _record_id(raw: Any) -> str | None:
    value = raw.get("id") if isinstance(raw, Mapping) else None
    return None if value in (None, "") else str(value)


def rejected_record(
    resource: str,
    raw: Any,
    error: InvalidRecordError,
    *,
    record_id: Callable[[Any], str | None] = _record_id,
) -> Rejected:
    """The quarantine entry of a record that could not be mapped: its id when it has one,
    the record as JSON text (ASCII, so any store can hold it), the path and the reason."""
    found = None
    with contextlib.suppress(*SHAPE_ERRORS):
        found = record_id(raw)
    try:
        text = raw if isinstance(raw, str) else json.dumps(raw, separators=(",", ":"), default=str)
    except (RecursionError, ValueError):  # nested past what JSON text can be written with
        text = json.dumps(short_reason(repr(raw), 100_000))
    reason = f"{error.path}: {error.reason}" if error.path else error.reason
    return Rejected(resource=resource, record_id=found, raw=text, reason=reason)


@dataclass(frozen=True)
class RawPage:
    """One page as the platform sent it: its raw records, the adapter's position after it,
    and whether it is the last (the loop stops there). ``complete_to``, when set, is the
    instant up to which the read is complete whatever its rows' times: a read in windows side
    by side (``shopsync_woocommerce._windows``) sends rows newer than what it has read all
    of, and the page's ``high_water`` is then no later than that."""

    rows: Sequence[Any]
    cursor: str | None = None
    last: bool = False
    complete_to: dt.datetime | None = None


class _HasStats(Protocol):
    def as_dict(self) -> dict[str, int]: ...


class RequestCounter:
    """The HTTP counters of each page: what was sent since the previous page (or since
    :meth:`restart`), so the follow-up requests of mapping count in the page they fed."""

    def __init__(self, stats: _HasStats) -> None:
        self._stats = stats
        self._last = stats.as_dict()

    def restart(self) -> None:
        """Count from now (a read's requests start here)."""
        self._last = self._stats.as_dict()

    def __call__(self) -> dict[str, int]:
        now = self._stats.as_dict()
        delta = {key: value - self._last.get(key, 0) for key, value in now.items()}
        self._last = now
        return delta


class _Dated(Protocol):
    @property
    def updated_at(self) -> dt.datetime: ...


R = TypeVar("R", bound=_Dated)


class PageLoop(Generic[R]):
    """Maps raw pages into :class:`~shopsync.adapter.Page` objects.

    ``mapper`` maps one raw record (None: skip it, e.g. unchanged); ``prepare`` runs first
    (fetching what a page cut off) and the record it returns is the one quarantined if the
    mapper refuses it. ``ordered`` says the pages come in ``updated_at`` order, so every
    page may report the running high-water mark; otherwise only the last page does.
    ``stats`` gives each page's request counters (:class:`RequestCounter`).
    """

    def __init__(
        self,
        resource: str,
        mapper: Callable[[Any], R | None],
        *,
        prepare: Callable[[Any], Any] | None = None,
        record_id: Callable[[Any], str | None] = _record_id,
        ordered: bool = True,
        stats: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self.resource = resource
        self._mapper = mapper
        self._prepare = prepare
        self._record_id = record_id
        self.ordered = ordered
        self._stats = stats
        self.high_water: dt.datetime | None = None
        self._records: list[R] = []
        self._rejected: list[Rejected] = []

    @property
    def pending(self) -> int:
        """Records and rejections gathered since the last page."""
        return len(self._records) + len(self._rejected)

    def add(self, raw: Any) -> None:
        """Map one raw record into the current page, or reject it with its reason."""
        try:
            if self._prepare is not None:
                raw = self._prepare(raw)
            record = self._mapper(raw)
        except InvalidRecordError as exc:
            self._rejected.append(
                rejected_record(self.resource, raw, exc, record_id=self._record_id)
            )
            return
        if record is None:
            return
        self._records.append(record)
        if self.high_water is None or record.updated_at > self.high_water:
            self.high_water = record.updated_at

    def reject(self, raw: str, reason: str, record_id: str | None = None) -> None:
        """Quarantine something the adapter itself found unusable (a bulk line without a
        parent), with ``raw`` as JSON text."""
        self._rejected.append(Rejected(self.resource, record_id, raw, reason))

    def page(
        self,
        *,
        cursor: str | None = None,
        last: bool = False,
        complete_to: dt.datetime | None = None,
    ) -> Page[Any]:
        """The gathered records as a page (the gathering starts again); its ``high_water``
        no later than ``complete_to`` when that is given (:class:`RawPage`)."""
        high_water = self.high_water if self.ordered or last else None
        if complete_to is not None and high_water is not None and high_water > complete_to:
            high_water = complete_to
        page: Page[Any] = Page(
            records=self._records,
            rejected=self._rejected,
            cursor=cursor,
            high_water=high_water,
            stats=self._stats() if self._stats is not None else {},
        )
        self._records, self._rejected = [], []
        return page

    def run(self, pages: Iterable[RawPage]) -> Iterator[Page[Any]]:
        """Map each raw page and yield it; stop after the page marked last."""
        for raw_page in pages:
            for raw in raw_page.rows:
                self.add(raw)
            yield self.page(
                cursor=raw_page.cursor, last=raw_page.last, complete_to=raw_page.complete_to
            )
            if raw_page.last:
                return


# --------------------------------------------------------------------------- write-back


def create_once(
    find: Callable[[], dict[str, Any] | None],
    create: Callable[[], dict[str, Any]],
    *,
    taken: Callable[[PlatformError], bool],
) -> dict[str, Any]:
    """Create what a key names (a discount code) once, however often it is asked.

    Looked up first, so a retry after a crash finds what the first try made instead of
    making a second; a refusal ``taken`` recognises (another writer was quicker) is resolved
    by looking up again, and raised when there is still nothing to find. The answer is what
    ``find`` or ``create`` gave, with ``created`` saying which happened."""
    found = find()
    if found is not None:
        return {**found, "created": False}
    try:
        made = create()
    except PlatformError as exc:
        if not taken(exc):
            raise
        again = find()
        if again is None:
            raise
        return {**again, "created": False}
    return {**made, "created": True}


def quarantined_record(raw: str | Mapping[str, Any]) -> Mapping[str, Any]:
    """A quarantined record to map again: its JSON text (or the object) as an object, else
    :class:`InvalidRecordError` (JSON nested too deep to parse included)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError):
            raise InvalidRecordError("the record is not JSON", raw=raw) from None
    if not isinstance(raw, Mapping):
        raise InvalidRecordError("the record is not a JSON object", raw=raw)
    return raw


def __getattr__(name: str) -> Any:
    return old_name(__name__, name)
