"""The admin API on both ledger backends: auth, designs, quota, consumers, problem details."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import msgspec
import pytest

from contracts.events import DesignRegion
from service.broker.codec import event_message
from service.samples import design_event, sample_design
from service.settings import Settings, load_settings
from tests.support import (
    SandboxHandle,
    publish,
    running_service,
    throwaway_postgres,
    watching,
)

pytestmark = pytest.mark.integration
TOKEN = "admin-token-for-tests-0123456789"


@pytest.fixture(params=["sqlite", "postgresql"])
async def admin(
    request: pytest.FixtureRequest,
    service_env: dict[str, str],
    sandbox: SandboxHandle,
    amqp_url: str,
    tmp_path: Path,
) -> AsyncIterator[httpx.AsyncClient]:
    async def run(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
        settings = load_settings(
            {**service_env, "ADMIN_TOKEN": TOKEN, "DATABASE_URL": database_url}
        )
        designs = [sample_design("shop-1", n, "adm") for n in range(3)]
        broken = sample_design("shop-2", 0, "adm")
        broken = type(broken)(
            **{
                **{f: getattr(broken, f) for f in broken.__struct_fields__},
                "regions": [DesignRegion(region="front", image_id="img_missing_x")],
            }
        )
        async with watching(amqp_url) as watcher, running_service(settings):
            for design in designs[:2]:  # two per shop: inside the quota
                await publish(amqp_url, event_message(design_event(design)))
            await publish(amqp_url, event_message(design_event(broken)))
            await watcher.wait_for("pins.created", 2)
            await watcher.wait_for("product.failed", 1)
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{settings.http_port}",
                headers={"Authorization": f"Bearer {TOKEN}"},
            ) as http:
                yield http

    if request.param == "sqlite":
        async for client in run(service_env["DATABASE_URL"]):
            yield client
        return
    async with throwaway_postgres() as url:
        async for client in run(url):
            yield client


async def test_auth_is_required_and_compared(admin: httpx.AsyncClient) -> None:
    url = str(admin.base_url) + "/admin/designs"
    async with httpx.AsyncClient() as anonymous:
        missing = await anonymous.get(url)
        wrong = await anonymous.get(url, headers={"Authorization": "Bearer not-the-token"})
    assert (missing.status_code, wrong.status_code) == (401, 403)
    for response in (missing, wrong):
        assert response.headers["content-type"].startswith("application/problem+json")
        assert TOKEN not in response.text
    assert missing.headers["www-authenticate"] == "Bearer"
    assert (await admin.get("/admin/designs")).status_code == 200
    assert (await admin.get("/health/ready")).status_code == 200  # health stays open


async def test_designs_filter_and_paginate(admin: httpx.AsyncClient) -> None:
    everything = (await admin.get("/admin/designs")).json()
    assert len(everything["items"]) == 3 and everything["next_cursor"] is None
    failed = (await admin.get("/admin/designs", params={"state": "failed"})).json()["items"]
    assert [(d["shop_id"], d["last_code"]) for d in failed] == [
        ("shop-2", "MEDIA_FILE_DO_NOT_EXISTS")
    ]
    shop = (await admin.get("/admin/designs", params={"shop_id": "shop-1"})).json()["items"]
    assert {d["state"] for d in shop} == {"published"}
    first = (await admin.get("/admin/designs", params={"limit": 2})).json()
    second = (
        await admin.get("/admin/designs", params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    seen = [d["design_id"] for d in first["items"] + second["items"]]
    assert seen == [d["design_id"] for d in everything["items"]] and second["next_cursor"] is None
    bad = await admin.get("/admin/designs", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400 and bad.json()["status"] == 400


async def test_one_design_shows_every_step(admin: httpx.AsyncClient) -> None:
    design_id = (await admin.get("/admin/designs", params={"shop_id": "shop-1"})).json()["items"][
        0
    ]["design_id"]
    detail = (await admin.get(f"/admin/designs/shop-1:{design_id}:1")).json()
    assert detail["design"]["product_id"].startswith("prd_")
    assert [s["step"] for s in detail["steps"]] == [
        "received",
        "customization_created",
        "product_requested",
        "product_created",
        "published",
    ]
    missing = await admin.get("/admin/designs/shop-1:nope:1")
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]


async def test_quota_and_consumers(admin: httpx.AsyncClient) -> None:
    quota = (await admin.get("/admin/shops/shop-1/quota")).json()
    assert (quota["heavy_calls"], quota["heavy_window_s"], quota["calls_in_window"]) == (5, 60.0, 4)
    consumers = (await admin.get("/admin/consumers")).json()
    assert {c["name"] for c in consumers} == {"design-approved", "product-created"}
    assert all(c["attached"] for c in consumers)


async def test_without_admin_token_the_admin_routes_are_off(
    settings: Settings, sandbox: SandboxHandle
) -> None:
    url = f"http://127.0.0.1:{settings.http_port}/admin/designs"
    async with running_service(settings), httpx.AsyncClient() as http:
        response = await http.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 404


async def test_pause_stops_a_consumer_and_resume_restarts_it(
    admin: httpx.AsyncClient, amqp_url: str
) -> None:
    paused = await admin.post(
        "/admin/consumers/design-approved/pause", headers={"X-Operator": "ops-alice"}
    )
    assert paused.status_code == 200 and paused.json()["paused"] is True
    assert (await admin.get("/health/ready")).status_code == 200  # paused on purpose: ready
    design = sample_design("shop-3", 0, "paused")
    async with watching(amqp_url) as watcher:
        await publish(amqp_url, event_message(design_event(design)))
        with pytest.raises(AssertionError):  # nothing is consumed while paused
            await watcher.wait_for("product.created", 1, timeout=1.5)
        resumed = await admin.post("/admin/consumers/design-approved/resume")
        assert resumed.json()["paused"] is False
        created = await watcher.wait_for("product.created", 1)
    assert created[0].data.design_id == design.design_id  # type: ignore[union-attr]
    unknown = await admin.post("/admin/consumers/nope/pause")
    assert unknown.status_code == 404


async def test_publish_validates_then_publishes(admin: httpx.AsyncClient, amqp_url: str) -> None:
    event = msgspec.json.encode(design_event(sample_design("shop-3", 1, "admin-publish")))
    async with watching(amqp_url) as watcher:
        accepted = await admin.post("/admin/events/design-approved", content=event)
        assert accepted.status_code == 202, accepted.text
        await watcher.wait_for("product.created", 1)
    doc = msgspec.json.decode(event)
    doc["data"]["revision"] = "two"
    refused = await admin.post("/admin/events/design-approved", content=msgspec.json.encode(doc))
    assert refused.status_code == 400
    assert "$.data.revision" in refused.json()["detail"]
