"""A minimal async database interface with two implementations.

SQL is written once with ``?`` placeholders; the PostgreSQL adapter numbers them. Every
statement runs on its own (autocommit); atomicity comes from single conditional statements
(``INSERT … ON CONFLICT``, ``UPDATE … WHERE lease …``), which both engines execute atomically.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Literal, Protocol

Row = tuple[Any, ...]
Dialect = Literal["sqlite", "postgresql"]


class Transaction(Protocol):
    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...
    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...
    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...


class Database(Protocol):
    dialect: Dialect

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


class SQLiteDatabase:
    """One connection used from a worker thread, serialised by a lock (SQLite has one writer)."""

    dialect: Dialect = "sqlite"

    def __init__(self, path: str) -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None, timeout=10.0
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=10000")
        self._lock = asyncio.Lock()

    async def _run(self, fn: Any, *args: Any) -> Any:
        async with self._lock:
            return await asyncio.to_thread(fn, *args)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(await self._run(lambda: self._conn.execute(sql, tuple(params)).rowcount))

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row = await self._run(lambda: self._conn.execute(sql, tuple(params)).fetchone())
        return tuple(row) if row is not None else None

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        rows = await self._run(lambda: self._conn.execute(sql, tuple(params)).fetchall())
        return [tuple(r) for r in rows]

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

        return bool(await self._run(run))

    async def close(self) -> None:
        await self._run(self._conn.close)

    @contextlib.asynccontextmanager
    async def transaction(self, lock: str | None = None) -> AsyncIterator[Transaction]:
        async with self._lock:
            conn = self._conn
            await asyncio.to_thread(conn.execute, "BEGIN IMMEDIATE")
            try:
                yield _SQLiteTransaction(conn)
            except BaseException:
                await asyncio.to_thread(conn.execute, "ROLLBACK")
                raise
            await asyncio.to_thread(conn.execute, "COMMIT")


class _SQLiteTransaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int((await asyncio.to_thread(self._conn.execute, sql, tuple(params))).rowcount)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        cursor = await asyncio.to_thread(self._conn.execute, sql, tuple(params))
        row = cursor.fetchone()
        return tuple(row) if row is not None else None

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = await asyncio.to_thread(self._conn.execute, sql, tuple(params))
        return [tuple(r) for r in cursor.fetchall()]


_PLACEHOLDER = re.compile(r"\?")


def _numbered(sql: str) -> str:
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


class PostgresDatabase:
    dialect: Dialect = "postgresql"

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    @classmethod
    async def connect(cls, url: str, max_size: int = 10) -> PostgresDatabase:
        import asyncpg

        pool = await asyncpg.create_pool(url, min_size=1, max_size=max_size, command_timeout=30)
        return cls(pool)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        status = await self._pool.execute(_numbered(sql), *params)
        tail = str(status).rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row = await self._pool.fetchrow(_numbered(sql), *params)
        return tuple(row) if row is not None else None

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return [tuple(r) for r in await self._pool.fetch(_numbered(sql), *params)]

    async def script(
        self, statements: Sequence[str], lock_key: int | None = None, skip_if: str | None = None
    ) -> bool:
        async with self._pool.acquire() as conn, conn.transaction():
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
        async with self._pool.acquire() as conn, conn.transaction():
            if lock is not None:
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", lock)
            yield _PostgresTransaction(conn)


class _PostgresTransaction:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        tail = str(await self._conn.execute(_numbered(sql), *params)).rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row = await self._conn.fetchrow(_numbered(sql), *params)
        return tuple(row) if row is not None else None

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return [tuple(r) for r in await self._conn.fetch(_numbered(sql), *params)]


async def open_database(url: str) -> Database:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db``, ``sqlite:///:memory:``, or
    ``postgresql://…``."""
    if url.startswith("sqlite:///"):
        return SQLiteDatabase(url.removeprefix("sqlite:///"))
    if url.startswith(("postgresql://", "postgres://")):
        return await PostgresDatabase.connect(url)
    raise ValueError("DATABASE_URL must start with sqlite:/// or postgresql://")
