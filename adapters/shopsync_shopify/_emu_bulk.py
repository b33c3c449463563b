"""Bulk operations as Shopify runs them today, for the emulator.

- **Ungrouped output.** From API version 2026-01 ``groupObjects`` defaults to false: the JSONL
  file holds the same lines (each nested connection's nodes on lines of their own, naming
  their parent in ``__parentId``) but Shopify no longer spends the time to put children right
  under their parent, so they come in no guaranteed order (changelog "Bulk operations group
  objects default changed to false", 2025-10-29,
  https://shopify.dev/changelog/bulk-operations-group-objects-default-changed-to-false;
  ``BulkOperationRunQueryPayload`` 2026-01). The emulator shuffles every line of an ungrouped
  file, so a child may even precede its parent: the worst a client must handle.
- **Concurrency.** Before 2026-01 one bulk query runs at a time per app and shop; from
  2026-01 up to five (``bulkOperationRunQuery`` 2026-01: "the number of concurrent operations
  that an app can run depends on the API version"; bulk operations guide,
  https://shopify.dev/docs/api/usage/bulk-operations/queries).
- **Failure.** A FAILED operation carries ``partialDataUrl``: the lines written before it
  failed (``BulkOperation.partialDataUrl``,
  https://shopify.dev/docs/api/admin-graphql/latest/objects/BulkOperation).
- **Result URLs.** ``url`` is a signed storage URL valid for a limited time; the results stay
  available for seven days, and querying the operation again answers a freshly signed URL.
- **Webhook.** ``bulk_operations/finish`` posts ``admin_graphql_api_id``, ``completed_at``,
  ``created_at``, ``error_code``, ``status`` and ``type``, lower-case
  (https://shopify.dev/docs/api/webhooks?reference=toml#list-of-topics-bulk_operations/finish,
  sample in shared/fixtures/reference/shopify-webhook-samples/).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graphql import FieldNode, get_named_type

from shopsync.testing.server import Request, Response
from shopsync_shopify import _render as render
from shopsync_shopify._graphql import Executor, QueryError
from shopsync_shopify.mapping import gid, parse_gid

if TYPE_CHECKING:
    from shopsync_shopify.emulator import ShopifyEmulator

__all__ = [
    "EXPIRED_BODY",
    "ROOTS",
    "URL_TTL",
    "BulkApi",
    "BulkOperation",
    "arrange",
    "concurrency_limit",
    "default_grouping",
    "finish_payload",
    "sign_url",
    "url_valid",
]

URL_TTL = 7 * 24 * 3600.0
"""Seconds a signed result URL stays valid (the results themselves: seven days)."""
EXPIRED_BODY = (
    b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>ExpiredToken</Code>"
    b"<Message>The provided token has expired.</Message></Error>"
)
"""What the storage answers (403) for a signed URL past its expiry."""
ROOTS = {
    "customers": ("customers", "Customer"),
    "orders": ("orders", "Order"),
    "products": ("products", "Product"),
}
"""The connections a bulk query may select at its root: field -> (resource, node type)."""


def _at_least(version: str, than: str) -> bool:
    # Version names sort as dates; "unstable" is the newest of all.
    return version == "unstable" or version >= than


def concurrency_limit(version: str) -> int:
    return 5 if _at_least(version, "2026-01") else 1


def default_grouping(version: str) -> bool:
    return not _at_least(version, "2026-01")


def arrange(records: Sequence[Sequence[str]], *, grouped: bool, seed: int) -> bytes:
    """The JSONL file of one operation: each record's lines (root first) kept together when
    ``grouped``; otherwise every line of the file in a shuffled order."""
    if grouped:
        return "".join(line for lines in records for line in lines).encode()
    flat = [line for lines in records for line in lines]
    random.Random(seed).shuffle(flat)
    return "".join(flat).encode()


def _signature(secret: str, path: str, expires: int) -> str:
    return hmac.new(secret.encode(), f"{path}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]


def sign_url(base_url: str, path: str, *, secret: str, expires: float) -> str:
    at = int(expires)
    return f"{base_url}{path}?expires={at}&signature={_signature(secret, path, at)}"


def url_valid(path: str, query: dict[str, str], *, secret: str, now: float) -> bool | None:
    """True when the signature holds and has not expired; False when expired; None when the
    signature is missing or wrong."""
    try:
        expires = int(query.get("expires", ""))
    except ValueError:
        return None
    if not hmac.compare_digest(query.get("signature", ""), _signature(secret, path, expires)):
        return None
    return now < expires


def finish_payload(
    op_id: str, status: str, error_code: str | None, created: str, completed: str | None
) -> dict[str, Any]:
    return {
        "admin_graphql_api_id": op_id,
        "completed_at": completed,
        "created_at": created,
        "error_code": error_code.lower() if error_code else None,
        "status": status.lower(),
        "type": "query",
    }


@dataclass
class BulkOperation:
    id: str
    query: str
    resource: str
    created_at: dt.datetime
    status: str = "CREATED"
    completed_at: dt.datetime | None = None
    object_count: int = 0
    root_count: int = 0
    data: bytes | None = field(default=None, repr=False)
    url: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    error: str | None = None
    grouped: bool = False
    partial: bytes | None = field(default=None, repr=False)
    """What a FAILED operation wrote before failing (served at ``partialDataUrl``)."""

    def render(self, url: str | None = None, partial_url: str | None = None) -> dict[str, Any]:
        return {
            "__typename": "BulkOperation",
            "id": gid("BulkOperation", self.id),
            "status": self.status,
            "errorCode": "INTERNAL_SERVER_ERROR" if self.status == "FAILED" else None,
            "createdAt": render.fmt_time(self.created_at),
            "completedAt": render.fmt_time(self.completed_at),
            "objectCount": str(self.object_count),
            "rootObjectCount": str(self.root_count),
            "fileSize": str(len(self.data)) if self.data is not None else None,
            "url": url,
            "partialDataUrl": partial_url,
            "query": self.query,
            "type": "QUERY",
        }


class BulkApi:
    """Bulk operations of one emulator: the mutations, their worker and the result files."""

    def __init__(self, emu: ShopifyEmulator) -> None:
        self.emu = emu

    def run(self, request: Request, version: str, args: dict[str, Any]) -> dict[str, Any]:
        def user_error(
            message: str, code: str | None = None, fld: list[str] | None = None
        ) -> dict[str, Any]:
            return {
                "bulkOperation": None,
                "userErrors": [{"field": fld, "message": message, "code": code}],
            }

        with self.emu._lock:
            running = [
                op
                for op in self.emu.bulk_ops.values()
                if op.status in ("CREATED", "RUNNING", "CANCELING")
            ]
            if len(running) >= concurrency_limit(version):
                return user_error(
                    "A bulk query operation for this app and shop is already in progress: "
                    f"{gid('BulkOperation', running[0].id)}.",
                    "OPERATION_IN_PROGRESS",
                )
            query = args["query"]
            try:
                prepared = self.emu.executor.prepare(query)
                operation = prepared.operation(None)
            except QueryError as exc:
                return user_error(f"Invalid bulk query: {exc.message}", "INVALID", ["query"])
            roots = [s for s in operation.selection_set.selections if isinstance(s, FieldNode)]
            if (
                operation.operation.value != "query"
                or len(roots) != 1
                or roots[0].name.value not in ROOTS
            ):
                return user_error(
                    "Bulk queries must select exactly one top-level connection field "
                    "(customers, orders or products).",
                    "INVALID",
                    ["query"],
                )
            depth = _connection_depth(self.emu.executor, roots[0])
            if depth > 3:
                return user_error(
                    "Bulk queries cannot nest connections more than two levels deep.",
                    "INVALID",
                    ["query"],
                )
            group = args.get("groupObjects")
            op = BulkOperation(
                id=str(next(self.emu._ids)),
                query=query,
                resource=roots[0].name.value,
                created_at=self.emu.state.clock(),
                grouped=default_grouping(version) if group is None else bool(group),
            )
            self.emu.bulk_ops[op.id] = op
            self.emu.stats["bulk"] += 1
        worker = threading.Thread(
            target=self._work,
            args=(op, prepared, roots[0], request.base_url),
            daemon=True,
            name=f"shopify-bulk-{op.id}",
        )
        worker.start()
        return {"bulkOperation": self.render_op(op), "userErrors": []}

    def render_op(self, op: BulkOperation) -> dict[str, Any]:
        """The operation with freshly signed URLs (valid ``bulk_url_ttl`` from now)."""
        expires = self.emu._clock() + self.emu.bulk_url_ttl

        def signed(suffix: str) -> str:
            path = f"/_emulator/bulk/{op.id}{suffix}.jsonl"
            return sign_url(op.url or "", path, secret=self.emu.api_secret, expires=expires)

        return op.render(
            signed("") if op.status == "COMPLETED" and op.data is not None else None,
            signed(".partial") if op.partial is not None else None,
        )

    def _work(self, op: BulkOperation, prepared: Any, root: FieldNode, base_url: str) -> None:
        from graphql.execution.values import get_argument_values

        try:
            op.status = "RUNNING"
            resource, type_name = ROOTS[root.name.value]
            fdef = self.emu.executor.schema.query_type.fields[root.name.value]  # type: ignore[union-attr]
            args = get_argument_values(fdef, root, {})
            rows, _ = self.emu.graphql.rows(resource, args.get("sortKey"), args.get("query"))
            selection = _node_selection(self.emu.executor, root)
            renderer = self.emu.graphql.renderer(resource)
            chunks: list[list[str]] = []
            plans: dict[Any, Any] = {}  # one operation walks one selection: resolve it once
            for record in rows:
                if op.cancel.is_set():
                    op.status = "CANCELED"
                    return
                if (
                    self.emu.bulk_fail_after is not None
                    and op.root_count >= self.emu.bulk_fail_after
                ):
                    op.partial = arrange(chunks, grouped=op.grouped, seed=int(op.id))
                    raise RuntimeError("the operation failed part way (bulk_fail_after)")
                lines = self.emu.executor.bulk_lines(
                    renderer(record), selection, type_name, prepared.fragments, plans
                )
                op.root_count += 1
                op.object_count += len(lines)
                chunks.append(
                    [
                        json.dumps(line, separators=(",", ":"), default=str).replace("/", "\\/")
                        + "\n"
                        for line in lines
                    ]
                )
            if self.emu.bulk_delay:
                time.sleep(self.emu.bulk_delay)
            op.data = arrange(chunks, grouped=op.grouped, seed=int(op.id))
            op.url = base_url
            op.completed_at = self.emu.state.clock()
            op.status = "COMPLETED"
        except Exception as exc:  # the operation fails as Shopify's would, not the server
            op.status = "FAILED"
            op.error = repr(exc)
            op.url = base_url
            op.completed_at = self.emu.state.clock()
        self.emu.state.emit("bulk_operation.finished", "shop", op.id)

    def cancel(self, args: dict[str, Any]) -> dict[str, Any]:
        op = self.emu.bulk_ops.get(parse_gid(args["id"]))
        if op is None:
            return {
                "bulkOperation": None,
                "userErrors": [{"field": ["id"], "message": "Bulk operation does not exist"}],
            }
        if op.status in ("CREATED", "RUNNING"):
            op.cancel.set()
            op.status = "CANCELING"
        return {"bulkOperation": op.render(), "userErrors": []}

    def file(self, request: Request, params: Mapping[str, str]) -> Response:
        """``GET`` a result file at its signed storage URL."""
        return self._file(request, params["id"], partial=False)

    def partial_file(self, request: Request, params: Mapping[str, str]) -> Response:
        """``GET`` what a FAILED operation wrote, at its ``partialDataUrl``."""
        return self._file(request, params["id"], partial=True)

    def _file(self, request: Request, op_id: str, *, partial: bool) -> Response:
        op = self.emu.bulk_ops.get(op_id)
        data = None if op is None else (op.partial if partial else op.data)
        if op is None or data is None:
            return Response(404, {"Content-Type": "text/plain"}, b"NoSuchKey")
        valid = url_valid(
            request.path, request.query, secret=self.emu.api_secret, now=self.emu._clock()
        )
        if not valid:
            body = EXPIRED_BODY if valid is False else b"SignatureDoesNotMatch"
            return Response(403, {"Content-Type": "application/xml"}, body)
        return Response(200, {"Content-Type": "application/jsonl"}, data)


def _node_selection(executor: Executor, root: FieldNode) -> Any:
    """The node selection of a root connection (``edges { node { … } }`` or ``nodes { … }``)."""
    for sel in root.selection_set.selections if root.selection_set else ():
        if isinstance(sel, FieldNode) and sel.name.value == "nodes":
            return sel.selection_set
        if isinstance(sel, FieldNode) and sel.name.value == "edges":
            for inner in sel.selection_set.selections if sel.selection_set else ():
                if isinstance(inner, FieldNode) and inner.name.value == "node":
                    return inner.selection_set
    return None


def _connection_depth(executor: Executor, node: FieldNode, parent: Any = None) -> int:
    """How many connections deep a selection goes (the root counts as one)."""
    schema = executor.schema
    parent = parent or schema.query_type
    fdef = parent.fields.get(node.name.value)
    if fdef is None:
        return 0
    named = get_named_type(fdef.type)
    own = 1 if named.name.endswith("Connection") else 0
    deepest = 0
    for sel in node.selection_set.selections if node.selection_set else ():
        if isinstance(sel, FieldNode) and hasattr(named, "fields"):
            if own and sel.name.value in ("edges", "nodes"):
                target = schema.get_type(named.name[: -len("Connection")])
                inner_sels = list(sel.selection_set.selections) if sel.selection_set else []
                if sel.name.value == "edges":
                    inner_sels = [
                        s2
                        for s in inner_sels
                        if isinstance(s, FieldNode) and s.name.value == "node"
                        for s2 in (s.selection_set.selections if s.selection_set else ())
                    ]
                for s in inner_sels:
                    if isinstance(s, FieldNode):
                        deepest = max(deepest, _connection_depth(executor, s, target))
            elif sel.name.value in named.fields:
                deepest = max(deepest, _connection_depth(executor, sel, named))
    return own + deepest
