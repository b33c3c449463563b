"""Store URLs without their secrets, for the modules that must not load the store to show one.

The parsing lives in :mod:`shopsync.store.urls` (the store owns SQLAlchemy); these functions
import it on first call, so ``import shopsync`` and ``shopsync --help`` stay light.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["password_problem", "redact", "shown_url", "url_secrets"]


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every occurrence of each (non-trivial) secret replaced by ``***``.

    Here rather than in :mod:`shopsync.http` (which re-exports it): the store masks its
    errors with it, and loading Requests for that put some 12,000 objects on the heap of
    every process that opens a store (each full garbage collection walks them)."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def url_secrets(url: str) -> list[str]:
    """The secret values ``url`` holds (userinfo password, secret-named query values)."""
    from shopsync.store.urls import url_secrets as secrets

    return secrets(url)


def shown_url(url: str) -> str:
    """``url`` as it may appear in a repr, a log line or an error: every secret masked."""
    from shopsync.store.urls import shown_url as shown

    return shown(url)


def password_problem(url: str, where: str) -> str | None:
    """Why ``url`` must not be written in a file or on a command line, or None."""
    if url.startswith(("env:", "secret:")):
        return None  # decided without loading the store
    from shopsync.store.urls import password_problem as problem

    return problem(url, where)
