"""Masking of dry-run previews: what a sink would send, minus anything secret-looking.

A preview is printed, logged and pasted into tickets, so it must not carry what the sink
authenticates with. Sinks mask what they know (the webhook sink masks its custom header
values); this pass catches the rest for every sink, third-party ones included: a value under
a secret-looking key (``authorization``, ``api_key``, ``password``, ``token``...) becomes
``***``, and so does a secret-looking query parameter of any URL inside a string
(:func:`shopsync.http.redact_url` rules, userinfo dropped). Keys that merely end in ``key``
or ``code`` (``idempotency_key``, a discount ``code``) stay readable: they are what a
preview is for.
"""

from __future__ import annotations

import re
from typing import Any

from shopsync.http import redact_url

__all__ = ["mask_preview"]

MASK = "***"

_SECRET_KEY = re.compile(
    r"(secret|passw|token|authori[sz]ation|api[-_]?key|access[-_]?key|private[-_]?key|"
    r"signature|cookie|credential|^auth$|^key$)",
    re.IGNORECASE,
)
_URL = re.compile(r"https?://[^\s<>\"']+")


def _mask_text(text: str) -> str:
    return _URL.sub(lambda m: redact_url(m.group(0)), text) if "://" in text else text


def mask_preview(value: Any, key: str | None = None) -> Any:
    """``value`` with secret-looking entries masked (a new structure; the input is untouched)."""
    if key is not None and _SECRET_KEY.search(key) and not isinstance(value, (dict, list)):
        return MASK if value not in (None, "") else value
    if isinstance(value, dict):
        return {k: mask_preview(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_preview(v) for v in value]
    if isinstance(value, str):
        return _mask_text(value)
    return value
