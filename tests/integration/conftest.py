"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from service.settings import Settings
from service.store.database import Database, open_database
from service.store.migrations import migrate
from service.testing.postgres import throwaway_postgres


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated ledger database of each kind: a SQLite file, a throwaway PostgreSQL one."""
    if request.param == "sqlite":
        database = await open_database(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
        await migrate(database)
        yield database
        await database.close()
        return
    async with throwaway_postgres() as url:
        database = await open_database(url)
        await migrate(database)
        yield database
        await database.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def ledger_settings(
    request: pytest.FixtureRequest, settings: Settings
) -> AsyncIterator[Settings]:
    """The service's settings on each kind of ledger (a throwaway PostgreSQL database)."""
    if request.param == "sqlite":
        yield settings
        return
    async with throwaway_postgres() as url:
        yield msgspec.structs.replace(settings, database_url=url)
