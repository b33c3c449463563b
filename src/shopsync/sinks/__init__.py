"""Where planned actions go: the shop itself, email, a webhook, files.

==============  ======================  =====================================================
sink            guarantee               how a repeat after a crash is kept from doubling
==============  ======================  =====================================================
``Platform``    exactly once            writes are upserts, codes are looked up before create
``JsonLines``   exactly once            keys already in the file are skipped
``Csv``         exactly once            keys already in the file are skipped
``AdAudience``  exactly once            customers already in the file are skipped
``Email``       at least once           the same Message-ID on every attempt
``Webhook``     at least once           the same ``Idempotency-Key`` header and body
==============  ======================  =====================================================

A sink is any object with the :class:`Sink` protocol; :func:`shopsync.apply` delivers to
them through the outbox (:mod:`shopsync.outbox`). Names are imported lazily, so using the
file sinks does not import Jinja2 or smtplib.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "AdAudience",
    "Brand",
    "Cancelled",
    "Csv",
    "DeliveryContext",
    "DeliveryError",
    "Email",
    "JsonLines",
    "Platform",
    "Sink",
    "Webhook",
]

_HOME = {
    "AdAudience": "files",
    "Brand": "email",
    "Cancelled": "_base",
    "Csv": "files",
    "DeliveryContext": "_base",
    "DeliveryError": "_base",
    "Email": "email",
    "JsonLines": "files",
    "Platform": "platform",
    "Sink": "_base",
    "Webhook": "webhook",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"shopsync.sinks.{_HOME[name]}"), name)
    raise AttributeError(f"module 'shopsync.sinks' has no attribute {name!r}")
