"""``backfill-content`` puts products pinned before the catalogue step existed into Luigi's Box,
once each, as the command a user runs."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import pytest

from consumers.content import content_ref
from service.broker.codec import event_message
from service.samples import design_event, sample_design
from service.secrets import Secret
from service.settings import Settings
from service.store.database import open_database
from service.testing.broker import publish, watching
from service.testing.inprocess import running_service
from service.testing.sandbox import SandboxHandle
from service.upstreams.credentials import LuigisBoxAccount
from service.upstreams.http import new_http_client
from service.upstreams.luigisbox import LuigisBoxClient

pytestmark = pytest.mark.integration


async def _backfill(env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        "backfill-content",
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


def _indexed(records: dict[str, Any]) -> list[str]:
    return sorted(identity for catalogue in records["content"].values() for identity in catalogue)


async def test_products_pinned_without_content_are_indexed_once(
    settings: Settings, service_env: dict[str, str], sandbox: SandboxHandle, amqp_url: str
) -> None:
    designs = [sample_design(f"shop-{n + 1}", n, "bf") for n in range(3)]  # a tracker each
    async with watching(amqp_url) as watcher, running_service(settings):
        for design in designs:
            await publish(amqp_url, event_message(design_event(design)))
        pinned = await watcher.wait_for("pins.created", 3)
    products = sorted(p.data.product_id for p in pinned)  # type: ignore[union-attr]
    # As an earlier version left them: pinned, with no catalogue object anywhere.
    db = await open_database(settings.database_url)
    try:
        await db.execute("DELETE FROM product_content")
    finally:
        await db.close()
    assert _indexed(await sandbox.records()) == products
    for n in (1, 2, 3):
        client = LuigisBoxClient(
            new_http_client(sandbox.url, 5),
            lambda shop, n=n: LuigisBoxAccount(f"000{n}-5678", Secret(f"lb-key-{n}")),
        )
        catalogue = (await sandbox.records())["content"][f"000{n}-5678"]
        await client.remove_content(f"shop-{n}", [content_ref(i) for i in catalogue])
    assert _indexed(await sandbox.records()) == []

    code, out, err = await _backfill(service_env)
    assert (code, err) == (0, "") and "3 indexed, 0 not indexed" in out
    records = await sandbox.records()
    assert _indexed(records) == products
    titles = {i["fields"]["title"] for c in records["content"].values() for i in c.values()}
    assert titles == {d.product.name for d in designs}

    code, out, _ = await _backfill(service_env)  # a second run finds nothing left to do
    assert code == 0 and "0 indexed, 0 not indexed" in out
    calls = [c for c in (await sandbox.records())["calls"] if c["endpoint"] == "POST /v1/content"]
    assert len(calls) == 6  # 3 by the consumer, 3 by the first backfill, none by the second
