"""The database's own errors, named here so that no module outside ``store/`` imports SQLAlchemy.

A caller that must tell a database failure (a lost connection, a lock timeout, a constraint
the engine enforced) from a bug catches :data:`DatabaseError`; it is SQLAlchemy's base class
itself, so catching it catches exactly what catching ``SQLAlchemyError`` did.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

__all__ = ["DatabaseError", "IntegrityError", "is_database_error"]

DatabaseError = SQLAlchemyError


def is_database_error(exc: BaseException) -> bool:
    """Whether ``exc`` came from the database layer (for callers that hold it untyped)."""
    return isinstance(exc, SQLAlchemyError)
