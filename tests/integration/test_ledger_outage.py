"""The ledger's real backends when their database goes away: PostgreSQL behind a TCP proxy the
test cuts (the shared server keeps running), SQLite locked by another connection."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from consumers.ports import Delivery, DesignKey, LedgerUnavailable
from service.store.database import open_database
from service.store.ledger import Ledger
from service.store.migrations import migrate
from service.testing.postgres import throwaway_postgres
from service.testing.proxy import TcpProxy

pytestmark = pytest.mark.integration
KEY = DesignKey("shop-1", "d-outage", 1)


def delivery() -> Delivery:
    return Delivery(attempt=1, final=False, token=uuid.uuid4().hex, event_id="e-1")


def through(proxy_port: int, url: str) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username or 'postgres'}@127.0.0.1:{proxy_port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@pytest.fixture
async def proxied() -> AsyncIterator[tuple[Ledger, TcpProxy, asyncio.Event]]:
    async with throwaway_postgres() as url:
        parts = urlsplit(url)
        proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
        port = await proxy.start()
        db = await open_database(through(port, url), timeout_s=1.0)
        await migrate(db)
        told = asyncio.Event()

        async def on_unavailable(exc: LedgerUnavailable) -> None:
            told.set()

        try:
            yield Ledger(db, lease_s=30, on_unavailable=on_unavailable), proxy, told
        finally:
            await proxy.close()
            await db.close()


async def test_a_cut_database_is_unavailable_and_an_effect_is_held_until_it_is_back(
    proxied: tuple[Ledger, TcpProxy, asyncio.Event],
) -> None:
    ledger, proxy, told = proxied
    holder = delivery()
    assert await ledger.claim(KEY, holder) is not None
    await proxy.cut()
    with pytest.raises(LedgerUnavailable):
        await ledger.claim(DesignKey("shop-1", "other", 1), delivery())
    # Fourthwall made the customization: its record waits for the database, not dropped.
    held = asyncio.create_task(ledger.record_customization(KEY, holder.token, "cst_made"))
    await asyncio.wait_for(told.wait(), 10)  # the write told the watch at its first failure
    assert not held.done()
    await ledger.release(KEY, holder.token)  # remembered, not raised
    await proxy.restore()
    await asyncio.wait_for(held, 20)
    assert await ledger.release_pending() == 1
    record = await ledger.claim(KEY, delivery())  # released: a new delivery takes it at once
    assert record is not None and record.customization_id == "cst_made"


async def test_a_locked_sqlite_file_is_unavailable_past_its_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    db = await open_database(f"sqlite:///{path}", timeout_s=0.3)
    await migrate(db)
    ledger = Ledger(db, lease_s=30)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(LedgerUnavailable, match="locked"):
            await ledger.claim(KEY, delivery())
        with pytest.raises(LedgerUnavailable):
            await ledger.heartbeat("probe")
    finally:
        other.execute("ROLLBACK")
        other.close()
    await ledger.heartbeat("probe")  # the lock is gone: the probe's write goes through
    assert await ledger.claim(KEY, delivery()) is not None
    await db.close()
