"""Rows a ledger holds from before the contract's bounds (a tab in an id) stay readable: the
admin API lists them and their own link leads to them, on both backends."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from consumers.ports import Delivery, DesignKey
from service.api.admin import admin_router
from service.api.app import create_app
from service.broker.link import BrokerLink
from service.health import Readiness
from service.operations import Operations
from service.quota.store import Unlimited
from service.secrets import Secret
from service.store.database import open_database
from service.store.ledger import Ledger
from service.store.migrations import migrate
from service.store.parking import ParkingLot
from service.testing.postgres import throwaway_postgres

pytestmark = pytest.mark.integration
TOKEN = "admin-token-legacy-rows"


@pytest.fixture(params=["sqlite", "postgresql"])
async def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Ledger]:
    async def opened(url: str) -> AsyncIterator[Ledger]:
        db = await open_database(url)
        await migrate(db)
        yield Ledger(db)
        await db.close()

    if request.param == "sqlite":
        async for found in opened(f"sqlite:///{tmp_path / 'ledger.sqlite3'}"):
            yield found
        return
    async with throwaway_postgres() as url:
        async for found in opened(url):
            yield found


async def test_a_row_from_before_the_bounds_is_listed_and_its_link_works(ledger: Ledger) -> None:
    key = DesignKey("shop-1", "legacy\tid", 1)  # written before ids refused control characters
    delivery = Delivery(attempt=1, final=False, token=uuid.uuid4().hex, event_id="e-old")
    await ledger.claim(key, delivery)
    await ledger.release(key, delivery.token)
    operations = Operations(BrokerLink(Secret("amqp://127.0.0.1:1/"), 1.0), {}, 1.0)
    app = create_app(
        lambda: Readiness(ready=True, broker_connected=True, consumers=[]),
        admin=admin_router(Secret(TOKEN), ledger, Unlimited(), operations, ParkingLot(ledger.db)),
    )
    transport = httpx.ASGITransport(app=app)  # in this event loop, with the ledger's pool
    auth = {"authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://admin", headers=auth
    ) as client:
        [listed] = (await client.get("/admin/designs")).json()["items"]
        assert listed["design_id"] == "legacy\tid" and listed["ref"].startswith("~")
        shown = await client.get(listed["link"])
    assert shown.status_code == 200 and shown.json()["design"]["design_id"] == "legacy\tid"
