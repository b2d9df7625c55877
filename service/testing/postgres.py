"""A throwaway PostgreSQL database per test or benchmark run."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


@contextlib.asynccontextmanager
async def throwaway_postgres() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards (POSTGRES_TEST_URL names the
    server; a container is started where none answers and a Docker engine exists)."""
    import asyncpg

    base = os.environ.get("POSTGRES_TEST_URL") or DEFAULT_POSTGRES_URL
    container = None
    try:
        admin = await asyncpg.connect(base, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        try:
            from testcontainers.postgres import PostgresContainer

            container = PostgresContainer("postgres:16-alpine", driver=None)
            container.start()
            base = container.get_connection_url()
            admin = await asyncpg.connect(base, timeout=30)
        except Exception as fallback:
            raise RuntimeError(
                f"no PostgreSQL answers at {base} ({exc}) and no container could start "
                f"({fallback}); start one or set POSTGRES_TEST_URL"
            ) from fallback
    name = f"merch_test_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(base)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, "/" + name, "", ""))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        if container is not None:
            container.stop()
