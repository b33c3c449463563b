"""Store URLs without their secrets: shown masked, refused where a file or shell would keep them.

A database URL can carry a password in two places: the userinfo (``user:pw@host``) and the
query string (``?password=pw``, which psycopg and libpq accept as well, and ``sslpassword``).
SQLAlchemy's ``hide_password`` masks only the first, so every place that shows or checks a
store URL goes through here.
"""

from __future__ import annotations

import re

__all__ = ["is_database_url", "password_problem", "shown_url", "url_secrets"]

_SECRET_QUERY = re.compile(r"password|passwd|pwd|secret|token", re.IGNORECASE)


def is_database_url(url: str) -> bool:
    """Whether SQLAlchemy can parse ``url`` as a database URL (the driver is not checked)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(url)
    except ArgumentError:
        return False
    return True


def url_secrets(url: str) -> list[str]:
    """The secret values ``url`` holds (userinfo password, secret-named query values)."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # unparseable: nothing to extract
        return []
    found = [str(parsed.password)] if parsed.password else []
    for key, value in parsed.query.items():
        if _SECRET_QUERY.search(key):
            found += [value] if isinstance(value, str) else list(value)
    return [s for s in found if s]


def shown_url(url: str) -> str:
    """``url`` as it may appear in a repr, a log line or an error: every secret masked."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # never echo what could not be parsed
        return "<unparseable url>"
    masked = {k: "redacted" if _SECRET_QUERY.search(k) else v for k, v in parsed.query.items()}
    return parsed.set(query=masked).render_as_string(hide_password=True)


def password_problem(url: str, where: str) -> str | None:
    """Why ``url`` must not be written in a file or on a command line, or None.

    A password there ends up in shell history, process listings and version control; the
    configuration asks for literal tokens the same way (``env:NAME`` instead).
    """
    if url.startswith(("env:", "secret:")) or not url_secrets(url):
        return None
    return (
        f"{where}: holds a password (in the URL or its query string); put the whole URL in an "
        'environment variable and write "env:SHOPSYNC_STORE_URL" instead'
    )
