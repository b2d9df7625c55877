"""Fourthwall's own product webhooks keep Luigi's Box true: the sandbox's Fourthwall changes a
product as a shop owner would and delivers the signed webhook to the service, which brings the
product's catalogue object (and scopes) in line; a delivery that should change nothing does not."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
import pytest

from consumers.ports import DesignKey
from contracts.events import DesignApprovedV1, ProductCreatedV1, ProductWithdrawnV1
from contracts.fourthwall_webhooks import SIGNATURE_HEADER, signature
from service.broker.codec import event_message
from service.design_refs import design_link
from service.samples import design_event, sample_design
from service.secrets import Secret
from service.settings import Settings
from service.testing.broker import EventWatcher, publish, watching
from service.testing.inprocess import running_service
from service.testing.polling import eventually
from service.testing.sandbox import SandboxHandle

pytestmark = pytest.mark.integration

TOKEN = "admin-token-for-tests-0123456789"


def _item(records: dict[str, Any], product_id: str) -> dict[str, Any] | None:
    """The product's object in the sandbox's Luigi's Box catalogue, if it is there."""
    for catalogue in records["content"].values():
        for item in catalogue.values():
            if item["fields"].get("product_id") == product_id:
                return dict(item)
    return None


def _scopes(records: dict[str, Any], product_id: str) -> list[dict[str, Any]]:
    return [s for s in records["scopes"] if product_id in str(s["request"])]


async def _promoted(
    watcher: EventWatcher, amqp_url: str, n: int, published: bool
) -> tuple[DesignApprovedV1, str]:
    design = sample_design("shop-1", n, f"fw-{uuid.uuid4().hex[:6]}")
    spec = msgspec.structs.replace(design.product, publish_on_create=published)
    await publish(
        amqp_url, event_message(design_event(msgspec.structs.replace(design, product=spec)))
    )
    await watcher.wait_for("pins.created", len(watcher.of_type("pins.created")) + 1)
    created = [e.data for e in watcher.of_type("product.created")]
    product = next(
        c for c in created if isinstance(c, ProductCreatedV1) and c.design_id == design.design_id
    )
    return design, product.product_id


async def _until_item(sandbox: SandboxHandle, product_id: str, **fields: Any) -> dict[str, Any]:
    async def matches() -> dict[str, Any] | None:
        item = _item(await sandbox.records(), product_id)
        if item is not None and all(item["fields"].get(k) == v for k, v in fields.items()):
            return item
        return None

    return await eventually(matches, what=f"the catalogue object with {fields}")


async def test_published_renamed_hidden_and_archived_reach_luigis_box(
    settings: Settings, sandbox: SandboxHandle, amqp_url: str
) -> None:
    settings = msgspec.structs.replace(settings, admin_token=Secret(TOKEN))
    await sandbox.set_webhook_url(f"http://127.0.0.1:{settings.http_port}/webhooks/fourthwall")
    async with watching(amqp_url) as watcher, running_service(settings):
        design, product_id = await _promoted(watcher, amqp_url, 0, published=False)
        dormant = _item(await sandbox.records(), product_id)
        assert dormant is not None and dormant["fields"]["availability"] == 0

        sent = await sandbox.change_product(product_id, access="PUBLIC")
        assert sent["status"] == 200
        await _until_item(sandbox, product_id, availability=1)  # its pins now show

        await sandbox.change_product(product_id, name="Renamed tee", image_url="https://img/2.png")
        await _until_item(sandbox, product_id, title="Renamed tee", image_link="https://img/2.png")

        await sandbox.change_product(product_id, stock="SOLD_OUT")  # public, but sold out
        await _until_item(sandbox, product_id, availability=0)
        assert _scopes(await sandbox.records(), product_id)  # the pins are kept

        await sandbox.change_product(product_id, stock="AVAILABLE")  # restocked
        await _until_item(sandbox, product_id, availability=1)

        await sandbox.change_product(product_id, access="HIDDEN")
        await _until_item(sandbox, product_id, availability=0)
        assert _scopes(await sandbox.records(), product_id)  # the pins are kept

        await sandbox.change_product(product_id, access="ARCHIVED")
        (gone,) = await watcher.wait_for("product.withdrawn", 1)
        records = await sandbox.records()
        link = design_link(DesignKey(design.shop_id, design.design_id, design.revision))
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{settings.http_port}",
            headers={"authorization": f"Bearer {TOKEN}"},
        ) as admin:
            detail = (await admin.get(link)).json()
    # each change is on the design's history, in the operator's view, once
    steps = [s for s in detail["steps"] if s["step"].startswith("fourthwall_")]
    assert [s["step"] for s in steps] == [
        "fourthwall_public",
        "fourthwall_public",
        "fourthwall_public",
        "fourthwall_public",
        "fourthwall_hidden",
        "fourthwall_archived",
    ]
    assert "stock SOLD_OUT" in steps[2]["detail"] and "stock AVAILABLE" in steps[3]["detail"]
    # one partial update per change that is not an archive: nothing applied twice
    patches = [c for c in records["calls"] if c["endpoint"] == "PATCH /v1/content"]
    assert len(patches) == 5, patches
    assert isinstance(gone.data, ProductWithdrawnV1)
    assert (gone.data.product_id, gone.data.reason) == (product_id, "archived_upstream")
    assert _item(records, product_id) is None
    assert all(s.get("deleted") for s in _scopes(records, product_id)) or not [
        s for s in records["scopes"] if not s.get("deleted") and product_id in str(s["request"])
    ]


async def _post(url: str, body: bytes, signed: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signed is not None:
        headers[SIGNATURE_HEADER] = signed
    async with httpx.AsyncClient() as http:
        return await http.post(url, content=body, headers=headers)


def _envelope(shop: str, product_id: str, name: str, at: datetime, access: str = "PUBLIC") -> bytes:
    return msgspec.json.encode(
        {
            "id": f"weve_{uuid.uuid4().hex}",
            "webhookId": "wcon_test",
            "shopId": shop,
            "type": "PRODUCT_UPDATED",
            "apiVersion": "V1",
            "createdAt": at.isoformat(),
            "testMode": False,
            "data": {  # as "PRODUCT_UPDATED" documents it: a page of one product
                "product": {
                    "results": [
                        {
                            "id": product_id,
                            "name": name,
                            "state": {"type": "AVAILABLE"},
                            "access": {"type": access},
                            "images": [],
                            "updatedAt": at.isoformat(),
                        }
                    ]
                }
            },
        }
    )


async def test_what_should_change_nothing_changes_nothing(
    settings: Settings, sandbox: SandboxHandle, amqp_url: str
) -> None:
    url = f"http://127.0.0.1:{settings.http_port}/webhooks/fourthwall"
    account = sandbox.config.shops[0]
    assert account.fourthwall_shop_id and account.webhook_secret
    fw_shop, secret = account.fourthwall_shop_id, account.webhook_secret
    keys = ("product.created", "pins.created", "fourthwall.product.changed")
    async with watching(amqp_url, keys) as watcher, running_service(settings):
        _, product_id = await _promoted(watcher, amqp_url, 1, published=True)
        now = datetime.now(UTC)
        newer = _envelope(fw_shop, product_id, "Newer name", now)
        older = _envelope(fw_shop, product_id, "Older name", now - timedelta(minutes=5))
        # unsigned, signed wrong, an unknown shop: 401, nothing published
        assert (await _post(url, newer, None)).status_code == 401
        assert (await _post(url, newer, signature("not-the-secret", newer))).status_code == 401
        stranger = _envelope("sh_unknown", product_id, "X", now)
        assert (await _post(url, stranger, signature(secret, stranger))).status_code == 401
        # the newer change, then an older one delivered late: the newer stays
        assert (await _post(url, newer, signature(secret, newer))).status_code == 200
        await _until_item(sandbox, product_id, title="Newer name")
        assert (await _post(url, older, signature(secret, older))).status_code == 200
        # replayed: answered 200, published once
        replay = await _post(url, newer, signature(secret, newer))
        assert replay.status_code == 200 and replay.json()["duplicate"] is True
        # a product this service did not make: accepted, then ignored
        foreign = _envelope(fw_shop, "prd_not_ours", "Someone else's", now)
        assert (await _post(url, foreign, signature(secret, foreign))).status_code == 200
        await watcher.wait_for("fourthwall.product.changed", 3)
        await eventually(
            lambda: _no_effects(settings.http_port, 2), what="two changes that changed nothing"
        )
        item = _item(await sandbox.records(), product_id)
    assert item is not None and item["fields"]["title"] == "Newer name"
    assert len(watcher.of_type("fourthwall.product.changed")) == 3  # newer, older, foreign


async def _no_effects(port: int, at_least: int) -> bool:
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    wanted = ("merch_messages_total", 'outcome="no_effect"', "fourthwall-changes")
    counts = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if all(part in line for part in wanted) and not line.startswith("#")
    ]
    return bool(counts) and counts[0] >= at_least


async def test_without_a_shop_secret_the_endpoint_is_off(
    settings: Settings, sandbox: SandboxHandle
) -> None:
    shops = [
        msgspec.structs.replace(s, fourthwall_shop_id=None, fourthwall_webhook_secret=None)
        for s in settings.shops
    ]
    async with running_service(msgspec.structs.replace(settings, shops=shops)):
        response = await _post(
            f"http://127.0.0.1:{settings.http_port}/webhooks/fourthwall", b"{}", "x"
        )
    assert response.status_code == 404


async def test_a_change_throttled_by_luigis_box_waits_and_is_applied(
    settings: Settings, sandbox: SandboxHandle, amqp_url: str
) -> None:
    """A 429 from Luigi's Box while a Fourthwall change is applied is a wait, not a failure. A
    change names no design, so it cannot wait in the parking lot (keyed by design and
    revision): it waits on the broker's delay queue and is applied after."""
    await sandbox.set_webhook_url(f"http://127.0.0.1:{settings.http_port}/webhooks/fourthwall")
    async with watching(amqp_url) as watcher, running_service(settings):
        _, product_id = await _promoted(watcher, amqp_url, 2, published=False)
        await sandbox.set_faults(rate_429=1.0, endpoints=["PATCH /v1/content"])
        await sandbox.change_product(product_id, access="PUBLIC")

        async def throttled() -> bool:
            calls = (await sandbox.records())["calls"]
            return any(c["endpoint"] == "PATCH /v1/content" and c["status"] == 429 for c in calls)

        await eventually(throttled, what="Luigi's Box's 429")
        await sandbox.set_faults()
        await _until_item(sandbox, product_id, availability=1)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}") as http:
            metrics = (await http.get("/metrics")).text
    queue = 'queue="merch-pipeline.fourthwall-changes"'
    settled = [line for line in metrics.splitlines() if line.startswith("merch_messages_total{")]
    assert any('outcome="deferred"' in line and queue in line for line in settled), settled
    assert not any('outcome="unsettled"' in line and queue in line for line in settled), settled
