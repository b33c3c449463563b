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

import hashlib
import hmac
import random
from collections.abc import Sequence
from typing import Any

__all__ = [
    "EXPIRED_BODY",
    "URL_TTL",
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
