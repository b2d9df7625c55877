"""A minimal async database interface with two implementations.

SQL is written once with ``?`` placeholders; the PostgreSQL adapter numbers them. Every
statement runs on its own (autocommit); atomicity comes from single conditional statements
(``INSERT … ON CONFLICT``, ``UPDATE … WHERE lease …``), which both engines execute atomically.
An error that means the database is away (``service/store/outages.py``) is raised as
``LedgerUnavailable``; waiting for it is bounded by ``timeout_s`` (SQLite's busy timeout,
PostgreSQL's connect and pool-acquire timeouts).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Literal, Protocol

from service.store.outages import translated

Row = tuple[Any, ...]
Dialect = Literal["sqlite", "postgresql"]


class Tally:
    """Statements sent to the database by this process (``merch_ledger_statements_total``)."""

    __slots__ = ("statements",)

    def __init__(self) -> None:
        self.statements = 0


class Transaction(Protocol):
    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...
    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...
    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...


class Database(Protocol):
    dialect: Dialect
    tally: Tally

    def transaction(self, lock: str | None = None) -> AbstractAsyncContextManager[Transaction]:
        """One transaction; with ``lock``, serialised with every other holder of that name
        (across processes on PostgreSQL; SQLite has one writer anyway)."""
        ...

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...
    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...
    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...
    async def script(
        self, statements: Sequence[str], lock_key: int | None = None, skip_if: str | None = None
    ) -> bool: ...
    async def close(self) -> None: ...


Run = Callable[..., Awaitable[Any]]  # how a blocking SQLite call is made from the event loop


def _sqlite_execute(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> int:
    return int(conn.execute(sql, tuple(params)).rowcount)


def _sqlite_fetchone(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> Row | None:
    row = conn.execute(sql, tuple(params)).fetchone()
    return tuple(row) if row is not None else None


def _sqlite_fetchall(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[Row]:
    return [tuple(r) for r in conn.execute(sql, tuple(params)).fetchall()]


class _SQLiteStatements:
    """The three statement kinds on one connection, each run through ``run``."""

    def __init__(self, conn: sqlite3.Connection, run: Run, tally: Tally) -> None:
        self._conn = conn
        self._run = run
        self.tally = tally

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self.tally.statements += 1
        with translated():
            return int(await self._run(_sqlite_execute, self._conn, sql, params))

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        self.tally.statements += 1
        with translated():
            row: Row | None = await self._run(_sqlite_fetchone, self._conn, sql, params)
        return row

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self.tally.statements += 1
        with translated():
            rows: list[Row] = await self._run(_sqlite_fetchall, self._conn, sql, params)
        return rows


def _busy(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY or "locked" in str(exc)


class _Inline:
    """Runs a call on the connection right on the event loop while no other connection holds
    the database (``busy_timeout`` 0: SQLite answers at once instead of waiting), which saves
    a worker-thread hop per statement; when another connection (another process, a migration)
    holds it, the same call goes to a worker thread that waits up to the busy timeout, so the
    event loop never waits on a lock. A statement refused with SQLITE_BUSY changed nothing, so
    it can be made again."""

    def __init__(self, conn: sqlite3.Connection, timeout_s: float) -> None:
        self._conn = conn
        self._timeout_ms = int(timeout_s * 1000)

    async def __call__(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise
        return await asyncio.to_thread(self.patiently, fn, *args)

    def patiently(self, fn: Callable[..., Any], *args: Any) -> Any:
        self._conn.execute(f"PRAGMA busy_timeout={self._timeout_ms}")
        try:
            return fn(*args)
        finally:
            self._conn.execute("PRAGMA busy_timeout=0")


class SQLiteDatabase(_SQLiteStatements):
    """One connection, serialised by a lock (SQLite has one writer); statements run on the
    event loop unless another connection holds the database (``_Inline``)."""

    dialect: Dialect = "sqlite"

    def __init__(self, path: str, timeout_s: float = 5.0) -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None, timeout=timeout_s
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=0")
        self._lock = asyncio.Lock()
        self._inline = _Inline(conn, timeout_s)
        super().__init__(conn, self._locked, Tally())

    async def _locked(self, fn: Callable[..., Any], *args: Any) -> Any:
        async with self._lock:
            return await self._inline(fn, *args)

    async def script(
        self, statements: Sequence[str], lock_key: int | None = None, skip_if: str | None = None
    ) -> bool:
        """Run ``statements`` in one transaction unless ``skip_if`` selects a truthy value."""

        def run() -> bool:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                if skip_if is not None:
                    row = self._conn.execute(skip_if).fetchone()
                    if row and row[0]:
                        self._conn.execute("ROLLBACK")
                        return False
                for statement in statements:
                    self._conn.execute(statement)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            return True

        with translated():  # start-up only: waits for another migrator in a worker thread
            async with self._lock:
                return bool(await asyncio.to_thread(self._inline.patiently, run))

    async def close(self) -> None:
        async with self._lock:
            self._conn.close()

    @contextlib.asynccontextmanager
    async def transaction(self, lock: str | None = None) -> AsyncIterator[Transaction]:
        async with self._lock:
            conn = self._conn
            self.tally.statements += 2  # BEGIN, COMMIT
            with translated():
                await self._inline(conn.execute, "BEGIN IMMEDIATE")
            try:
                # The lock is held for the whole transaction: no one else's turn in between.
                yield _SQLiteStatements(conn, self._inline, self.tally)
                with translated():
                    await self._inline(conn.execute, "COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise


_PLACEHOLDER = re.compile(r"\?")


def _numbered(sql: str) -> str:
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


Lend = Callable[[], AbstractAsyncContextManager[Any]]  # lends an asyncpg connection


class _PostgresStatements:
    """The three statement kinds on a connection ``lend`` provides: a pooled one for each
    statement, or a transaction's own."""

    def __init__(self, lend: Lend, tally: Tally) -> None:
        self._lend = lend
        self.tally = tally

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self.tally.statements += 1
        with translated():
            async with self._lend() as conn:
                tail = str(await conn.execute(_numbered(sql), *params)).rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        self.tally.statements += 1
        with translated():
            async with self._lend() as conn:
                row = await conn.fetchrow(_numbered(sql), *params)
        return tuple(row) if row is not None else None

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self.tally.statements += 1
        with translated():
            async with self._lend() as conn:
                rows = await conn.fetch(_numbered(sql), *params)
        return [tuple(r) for r in rows]


class PostgresDatabase(_PostgresStatements):
    dialect: Dialect = "postgresql"

    def __init__(self, pool: Any, timeout_s: float = 5.0) -> None:
        super().__init__(lambda: pool.acquire(timeout=timeout_s), Tally())
        self._pool = pool
        self._timeout_s = timeout_s

    @classmethod
    async def connect(
        cls, url: str, max_size: int = 10, timeout_s: float = 5.0
    ) -> PostgresDatabase:
        import asyncpg

        pool = await asyncpg.create_pool(
            url, min_size=1, max_size=max_size, command_timeout=30, timeout=timeout_s
        )
        return cls(pool, timeout_s)

    async def script(
        self, statements: Sequence[str], lock_key: int | None = None, skip_if: str | None = None
    ) -> bool:
        with translated():
            async with self._pool.acquire(timeout=self._timeout_s) as conn, conn.transaction():
                if lock_key is not None:
                    # Several replicas may migrate at once: one at a time.
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_key)
                if skip_if is not None and await conn.fetchval(skip_if):
                    return False
                for statement in statements:
                    await conn.execute(statement)
                return True

    async def close(self) -> None:
        await self._pool.close()

    @contextlib.asynccontextmanager
    async def transaction(self, lock: str | None = None) -> AsyncIterator[Transaction]:
        with translated():
            async with self._pool.acquire(timeout=self._timeout_s) as conn, conn.transaction():
                self.tally.statements += 2  # BEGIN, COMMIT
                if lock is not None:
                    self.tally.statements += 1
                    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", lock)
                yield _PostgresStatements(lambda: contextlib.nullcontext(conn), self.tally)


async def open_database(url: str, timeout_s: float = 5.0) -> Database:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db``, ``sqlite:///:memory:``, or
    ``postgresql://…``; ``timeout_s`` bounds waiting for a database that does not answer."""
    if url.startswith("sqlite:///"):
        return SQLiteDatabase(url.removeprefix("sqlite:///"), timeout_s)
    if url.startswith(("postgresql://", "postgres://")):
        return await PostgresDatabase.connect(url, timeout_s=timeout_s)
    raise ValueError("DATABASE_URL must start with sqlite:/// or postgresql://")
