"""Which database errors mean the ledger is away, not that a statement is wrong.

Connection refused or reset, a server shutting down or starting up (57P01-03), a read-only
primary after a failover (25006), too many connections (53300), a database not accepting
connections, a connection cut mid-operation, a timeout while connecting or waiting for a pooled
connection, SQLite's
``database is locked`` past its busy timeout: each becomes ``LedgerUnavailable``. Anything else
(a bug in a statement, a constraint) passes through unchanged.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator

from consumers.ports import LedgerUnavailable

_SQLSTATES = {"57P01", "57P02", "57P03", "25006", "53300"}
_CLOSED = ("connection is closed", "pool is closing", "pool is closed", "connection was closed")
_SQLITE_AWAY = ("locked", "busy", "disk i/o error", "unable to open", "readonly database")


def is_outage(exc: BaseException) -> bool:
    if isinstance(exc, LedgerUnavailable | OSError | TimeoutError):
        return True
    message = str(exc).lower()
    if isinstance(exc, sqlite3.OperationalError):
        return any(sign in message for sign in _SQLITE_AWAY)
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str):
        if sqlstate.startswith("08") or sqlstate in _SQLSTATES:
            return True
        return sqlstate == "55000" and "not currently accepting connections" in message
    # asyncpg's own errors carry no SQLSTATE: a closed connection, or one whose protocol was cut
    # mid-operation by a terminated backend ("cannot switch to state …; another operation is in
    # progress": the pool drops such a connection, the next one works).
    kind = type(exc).__name__
    if kind == "InterfaceError":
        return any(sign in message for sign in _CLOSED)
    return kind == "InternalClientError" and "another operation" in message


def describe(exc: BaseException) -> str:
    code = getattr(exc, "sqlstate", None)
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}{f' {code}' if code else ''}: {text}".rstrip(": ")


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Re-raise an outage as ``LedgerUnavailable`` (the original is its cause)."""
    try:
        yield
    except LedgerUnavailable:
        raise
    except Exception as exc:
        if is_outage(exc):
            raise LedgerUnavailable(describe(exc)) from exc
        raise
