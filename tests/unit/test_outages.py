"""Which database errors mean "the ledger is away" (never a design's failure), and which are a
statement's own fault (a bug: they must not be hidden as an outage)."""

from __future__ import annotations

import sqlite3

import pytest
from asyncpg import exceptions as pg

from consumers.ports import LedgerUnavailable
from service.store.outages import is_outage, translated


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "Connection refused"),
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError(),
        pg.AdminShutdownError("terminating connection due to administrator command"),
        pg.CannotConnectNowError("the database system is starting up"),
        pg.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"),
        pg.TooManyConnectionsError("sorry, too many clients already"),
        pg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        pg.ObjectNotInPrerequisiteStateError('database "x" is not currently accepting connections'),
        pg.InterfaceError("cannot call Connection.execute(): connection is closed"),
        pg.InternalClientError("cannot switch to state 15; another operation (2) is in progress"),
        sqlite3.OperationalError("database is locked"),
        sqlite3.OperationalError("attempt to write a readonly database"),
    ],
    ids=type,
)
def test_the_ledger_is_away(exc: BaseException) -> None:
    assert is_outage(exc)
    with pytest.raises(LedgerUnavailable) as raised, translated():
        raise exc
    assert raised.value.__cause__ is exc


@pytest.mark.parametrize(
    "exc",
    [
        pg.UniqueViolationError("duplicate key value"),
        pg.UndefinedTableError('relation "designs" does not exist'),
        pg.ObjectNotInPrerequisiteStateError("some other prerequisite"),
        pg.InterfaceError("the number of query arguments cannot exceed 32767"),
        sqlite3.OperationalError('near "SELEC": syntax error'),
        pg.InternalClientError("unexpected error while performing authentication"),
        ValueError("a bug"),
    ],
    ids=lambda e: f"{type(e).__name__}:{str(e)[:20]}",
)
def test_a_statement_that_is_wrong_is_not_an_outage(exc: BaseException) -> None:
    assert not is_outage(exc)
    with pytest.raises(type(exc)), translated():
        raise exc
