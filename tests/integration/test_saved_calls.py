"""What Fourthwall and Luigi's Box offer to save calls, end to end. Artwork a producer hosts:
the service fetches it from an allowed host, uploads it to the shop's Fourthwall media library
as documented (upload URL, PUT, save) and makes the product from it; the same artwork is
uploaded once, also across a retry and another design. A design pinned on many items: one bulk
create and one listing."""

from __future__ import annotations

import httpx
import msgspec
import pytest

from contracts.events import DesignRegion, PinsCreatedV1, ProductFailedV1, Recommendations
from service.broker.codec import event_message
from service.samples import design_event, sample_design
from service.settings import Settings
from service.testing.broker import publish, watching
from service.testing.inprocess import running_service
from service.testing.polling import eventually
from service.testing.sandbox import SandboxHandle

pytestmark = pytest.mark.integration

UPLOAD_URL = "/open-api/v1.0/media/upload-url"
SAVE_IMAGE = "/open-api/v1.0/media/images"
CUSTOMIZATIONS = "/open-api/v1.0/customizations"


def with_artwork(design_id: str, *urls: str) -> object:
    design = sample_design("shop-1", 0, design_id)
    fields = {f: getattr(design, f) for f in design.__struct_fields__}
    regions = [
        DesignRegion(region=r, image_url=u) for r, u in zip(("front", "back"), urls, strict=False)
    ]
    return type(design)(**{**fields, "regions": regions})


def allowing(settings: Settings, sandbox: SandboxHandle) -> Settings:
    return msgspec.structs.replace(
        settings, artwork_hosts=(f"{httpx.URL(sandbox.url).host}:{httpx.URL(sandbox.url).port}",)
    )


async def _refused_once(sandbox: SandboxHandle) -> bool | None:
    calls = (await sandbox.records())["calls"]
    return any(c["endpoint"] == CUSTOMIZATIONS and c["status"] == 503 for c in calls) or None


async def test_hosted_artwork_is_uploaded_once_and_made_into_the_product(
    settings: Settings, sandbox: SandboxHandle, amqp_url: str
) -> None:
    logo = f"{sandbox.url}/_sandbox/artwork/logo?w=800&h=600"
    back = f"{sandbox.url}/_sandbox/artwork/back"
    # the customization call fails (503s) until the faults are lifted: the retries must not
    # upload again. The heavy limit is lifted: how many 503s there are is a race.
    sandbox.config.heavy_calls = 100
    roomy = msgspec.structs.replace(allowing(settings, sandbox), fourthwall_heavy_calls=100)
    await sandbox.set_faults(error_rate_5xx=1.0, endpoints=[CUSTOMIZATIONS])
    async with watching(amqp_url) as watcher, running_service(roomy):
        await publish(amqp_url, event_message(design_event(with_artwork("art-1", logo, back))))
        await eventually(lambda: _refused_once(sandbox), what="a refused customization call")
        await sandbox.set_faults()
        await watcher.wait_for("product.created", 1)
        await publish(amqp_url, event_message(design_event(with_artwork("art-2", logo))))
        await watcher.wait_for("product.created", 2)
    records = await sandbox.records()
    endpoints = [c["endpoint"] for c in records["calls"] if c["status"] < 300]
    assert endpoints.count(UPLOAD_URL) == 2 and endpoints.count(SAVE_IMAGE) == 2
    assert endpoints.count("PUT /_sandbox/storage/{token}") == 2
    images = records["media_images"]
    assert sorted((i["width"], i["height"]) for i in images.values()) == [(64, 64), (800, 600)]
    used = [c["image_ids"] for c in records["customizations"].values()]
    assert sorted(map(len, used)) == [1, 2] and {i for u in used for i in u} == set(images)


async def test_artwork_on_a_host_not_allowed_is_refused_without_fetching_it(
    settings: Settings, sandbox: SandboxHandle, amqp_url: str
) -> None:
    elsewhere = "http://localhost:9/_sandbox/artwork/logo"
    async with watching(amqp_url) as watcher, running_service(allowing(settings, sandbox)):
        await publish(amqp_url, event_message(design_event(with_artwork("art-3", elsewhere))))
        (failed,) = [e.data for e in await watcher.wait_for("product.failed", 1)]
    assert isinstance(failed, ProductFailedV1)
    assert (failed.stage, failed.code) == ("customization", "ARTWORK_HOST_NOT_ALLOWED")
    records = await sandbox.records()
    assert records["artwork_fetches"] == []
    endpoints = {c["endpoint"] for c in records["calls"]}
    assert endpoints == {"/open-api/v1.0/product-templates/{productId}"}  # no upload, no heavy


async def test_a_design_pinned_on_many_items_is_pinned_in_one_bulk_call(
    settings: Settings, sandbox: SandboxHandle, amqp_url: str
) -> None:
    """Six items: "Bulk Create Customizations" once and one listing by the product's tag,
    instead of six creates; pins.created names every scope by the id Luigi's Box gave it."""
    design = sample_design("shop-1", 0, "many-pins")
    items = [f"/p/many-{n}" for n in range(6)]
    many = msgspec.structs.replace(
        design, recommendations=Recommendations(pin_on_items=items, tags=["demo"])
    )
    async with watching(amqp_url) as watcher, running_service(settings):
        await publish(amqp_url, event_message(design_event(many)))
        (pins,) = [e.data for e in await watcher.wait_for("pins.created", 1)]
    assert isinstance(pins, PinsCreatedV1)
    records = await sandbox.records()
    held = {s["id"]: s["request"]["target_identity"] for s in records["scopes"]}
    assert {s.scope_id: s.target_identity for s in pins.scopes} == held
    assert sorted(held.values()) == sorted(items)
    scope_calls = [c["endpoint"] for c in records["calls"] if "/recommender/" in c["endpoint"]]
    assert scope_calls == [
        "/v1/recommender/pin/{tracker}/scopes/_bulk",
        "/v1/recommender/pin/{tracker}/scopes",
    ]
