"""The ledger's real backends when their database goes away: PostgreSQL behind a TCP proxy the
test cuts (the shared server keeps running), SQLite locked by another connection."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import msgspec
import pytest

from consumers.ports import Delivery, DesignKey, LedgerUnavailable
from service.broker.codec import event_message
from service.samples import design_event, sample_design
from service.settings import CONSUMERS, load_settings
from service.store.database import open_database
from service.store.ledger import Ledger
from service.store.migrations import migrate
from service.testing.broker import publish, watching
from service.testing.inprocess import running_service
from service.testing.polling import eventually
from service.testing.postgres import throwaway_postgres
from service.testing.proxy import TcpProxy
from tests.support import signed

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
    # the held design's release, and the failed claim's (its lease may have been taken with
    # the answer lost: a claim is one statement now)
    assert await ledger.release_pending() == 2
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


async def test_while_the_ledger_is_away_the_http_doors_say_so_and_nothing_is_lost(
    service_env: dict[str, str], amqp_url: str
) -> None:
    secret = "whsec_" + base64.b64encode(b"outage-webhook-secret-0123456789").decode()
    token = "admin-token-outage"
    async with throwaway_postgres() as url, watching(amqp_url) as watcher:
        parts = urlsplit(url)
        proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
        port = await proxy.start()
        env = {
            **service_env,
            "DATABASE_URL": through(port, url),
            "ADMIN_TOKEN": token,
            "WEBHOOK_SECRETS": secret,
            "LEDGER_TIMEOUT_S": "1",
        }
        base = f"http://127.0.0.1:{env['HTTP_PORT']}"
        admin = {"authorization": f"Bearer {token}"}
        try:
            async with (
                running_service(load_settings(env)) as service,
                httpx.AsyncClient(base_url=base) as http,
            ):
                await proxy.cut()
                design = design_event(sample_design("shop-1", 0, "doors"))
                await publish(amqp_url, event_message(design))

                async def unready() -> bool:
                    return not service.readiness().ready

                await eventually(unready, timeout=10, what="the consumer to notice the outage")
                ready = await http.get("/health/ready")
                assert ready.status_code == 503
                assert ready.json()["ledger_available"] is False and ready.json()["ledger_error"]

                async def all_held() -> bool:  # the switches are held one after the other
                    consumers = (await http.get("/admin/consumers", headers=admin)).json()
                    held = {c["name"]: c["paused_for"] for c in consumers}
                    return held == {name: ["ledger"] for name in CONSUMERS}

                await eventually(all_held, timeout=5, what="every consumer held for the ledger")
                body = msgspec.json.encode(design_event(sample_design("shop-1", 1, "doors")))
                for answer in (
                    await http.get("/admin/designs", headers=admin),
                    await http.post(
                        "/webhooks/design-approved", content=body, headers=signed(secret, body)
                    ),
                ):
                    assert answer.status_code == 503 and answer.headers["retry-after"]
                    assert answer.json()["type"] == "urn:merch-pipeline:problem:ledger-unavailable"
                # the console says so too, as a page (its sessions live in the ledger)
                form = await http.get("/admin/ui/login")
                csrf = form.cookies["mp_console_login"]
                login = await http.post(
                    "/admin/ui/login", data={"csrf": csrf, "operator": "ops", "token": token}
                )
                assert login.status_code == 503 and "not answering" in login.text
                assert login.headers["content-security-policy"]
                await proxy.restore()
                await watcher.wait_for("pins.created", 1, timeout=20)
                assert service.readiness().ready
                assert watcher.of_type("product.failed") == []
        finally:
            await proxy.close()
