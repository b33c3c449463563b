"""The ``events`` query of the GraphQL Admin API, the part a sync needs: deletions.

Since 2024-10 the GraphQL Admin API lists a shop's events through ``events`` (changelog
"Querying events through the events connection",
https://shopify.dev/changelog/querying-events-through-the-events-connection-and-commentevent-subject-becomes-nullable);
``deletionEvents`` is deprecated in its favour and covers products and collections only
(https://shopify.dev/docs/api/admin-graphql/latest/queries/deletionEvents). A deletion is a
``BasicEvent`` with ``action: "destroy"``, the deleted record's ``subjectId`` (a GID) and
``subjectType``; the search syntax filters on ``action``, ``subject_type`` and
``created_at`` (https://shopify.dev/docs/api/admin-graphql/latest/queries/events).
The emulator keeps destroy events for orders and products, as the REST Events API did.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

from shopsync_shopify import _render as render
from shopsync_shopify._graphql import Connection, QueryError, index_cursor
from shopsync_shopify.mapping import gid

__all__ = ["deletion_events"]

_SUBJECTS = {"orders": ("ORDER", "Order"), "products": ("PRODUCT", "Product")}
_TERM = re.compile(r"""(\w+):(>=|<=|>|<)?('[^']*'|"[^"]*"|\S+)""")


def _when(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.strip("'\"").replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _matcher(query: str | None) -> Callable[[Mapping[str, Any]], bool]:
    tests: list[Callable[[Mapping[str, Any]], bool]] = []
    for name, op, raw in _TERM.findall(query or ""):
        value = raw.strip("'\"")
        if name == "action":
            tests.append(_test("action", operator.eq, value))
        elif name == "subject_type":
            kinds = {k.strip().upper() for k in value.split(",")}
            tests.append(_test("subjectType", operator.contains, kinds, swap=True))
        elif name == "created_at":
            compare = {
                ">": operator.gt,
                ">=": operator.ge,
                "<": operator.lt,
                "<=": operator.le,
                "": operator.eq,
            }[op]
            tests.append(_test("_at", compare, _when(value)))
    return lambda e: all(t(e) for t in tests)


def _test(
    key: str, compare: Callable[[Any, Any], Any], against: Any, *, swap: bool = False
) -> Callable[[Mapping[str, Any]], bool]:
    """``compare(event[key], against)`` (``compare(against, event[key])`` with ``swap``)."""
    if swap:
        return lambda e: bool(compare(against, e[key]))
    return lambda e: bool(compare(e[key], against))


def deletion_events(
    deleted: Mapping[tuple[str, str], dt.datetime], args: Mapping[str, Any]
) -> Connection:
    """One page of ``events`` over the shop's deletions, in id (= time) order."""
    first, last = args.get("first"), args.get("last")
    if first is None and last is None:
        raise QueryError("you must provide one of first or last", "BAD_REQUEST")
    ordered = sorted(deleted.items(), key=lambda item: (item[1], item[0]))
    events = []
    for number, ((resource, record_id), at) in enumerate(ordered, start=1):
        subject = _SUBJECTS.get(resource)
        if subject is None:
            continue
        events.append(
            {
                "__typename": "BasicEvent",
                "id": gid("BasicEvent", str(number)),
                "action": "destroy",
                "createdAt": render.fmt_time(at),
                "message": f"{subject[1]} {record_id} was deleted.",
                "appTitle": None,
                "attributeToApp": False,
                "attributeToUser": True,
                "criticalAlert": False,
                "hasAdditionalContent": False,
                "subjectId": gid(subject[1], record_id),
                "subjectType": subject[0],
                "_at": at,
                "_n": number,
            }
        )
    matches = _matcher(args.get("query"))
    rows = [e for e in events if matches(e)]
    if args.get("reverse"):
        rows.reverse()
    start = 0
    if args.get("after"):
        try:
            start = int(json.loads(base64.b64decode(args["after"]))["i"]) + 1
        except (ValueError, KeyError, TypeError):
            raise QueryError("Invalid cursor", "BAD_REQUEST") from None
    end = len(rows) if first is None else min(len(rows), start + first)
    page = rows[start:end]
    return Connection(
        items=page,
        cursors=[index_cursor(start + i) for i in range(len(page))],
        has_next=end < len(rows),
        has_previous=start > 0,
    )
