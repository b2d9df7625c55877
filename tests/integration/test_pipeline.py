"""The whole pipeline against a real RabbitMQ and the sandbox over loopback HTTP."""

from __future__ import annotations

import aio_pika
import httpx
import msgspec
import pytest

from contracts.events import PinsCreatedV1, ProductCreatedV1
from service.broker.codec import event_message
from service.samples import design_event, sample_design
from service.settings import Settings
from service.testing.broker import publish, watching
from service.testing.inprocess import running_service
from service.testing.sandbox import SandboxHandle

pytestmark = pytest.mark.integration


async def test_design_becomes_one_product_and_its_pin_scopes(
    settings: Settings, sandbox: SandboxHandle, amqp_url: str
) -> None:
    design = sample_design("shop-1", 0, "it")
    event = design_event(design)
    async with watching(amqp_url) as watcher, running_service(settings):
        await publish(amqp_url, event_message(event))
        created = (await watcher.wait_for("product.created", 1))[0]
        pins = (await watcher.wait_for("pins.created", 1))[0]
    assert isinstance(created.data, ProductCreatedV1) and isinstance(pins.data, PinsCreatedV1)
    assert created.data.design_id == design.design_id
    # correlation and trace context travel through both hops
    assert created.correlation_id == pins.correlation_id == event.id
    assert created.event.traceparent == pins.event.traceparent == event.traceparent
    assert created.message_id == created.event.id
    records = await sandbox.records()
    # the design fits its template before a heavy call is spent; the product is in the shop's
    # Luigi's Box catalogue before its first scope pins it
    assert [(c["endpoint"], c["status"]) for c in records["calls"]] == [
        ("/open-api/v1.0/product-templates/{productId}", 200),
        ("/open-api/v1.0/customizations", 201),
        ("/open-api/v1.0/products", 201),
        ("POST /v1/content", 200),
        ("/v1/recommender/pin/{tracker}/scope", 201),
    ]
    item = records["content"]["0001-5678"][created.data.product_id]
    assert (item["type"], item["fields"]["title"]) == ("item", design.product.name)
    assert item["fields"]["availability"] == (1 if design.product.publish_on_create else 0)
    product = records["products"][created.data.product_id]
    assert product["customization_id"] == created.data.customization_id
    assert (
        records["customizations"][created.data.customization_id]["product_id"]
        == created.data.product_id
    )
    # the scope pins the new product on the item the design asked for, signed for its tracker
    scope = records["scopes"][0]
    assert scope["tracker_id"] == "0001-5678"
    assert scope["request"]["target_identity"] == design.recommendations.pin_on_items[0]  # type: ignore[union-attr]
    assert scope["request"]["pin_definitions"][0]["pin_identity"] == created.data.product_id
    assert [s.scope_id for s in pins.data.scopes] == [scope["id"]]


async def test_binary_mode_event_is_accepted(
    settings: Settings, sandbox: SandboxHandle, amqp_url: str
) -> None:
    design = sample_design("shop-2", 1, "bin")
    body = msgspec.json.encode(design)
    message = aio_pika.Message(
        body,
        content_type="application/json",
        message_id="bin-1",
        headers={
            "cloudEvents_specversion": "1.0",
            "cloudEvents_id": "bin-1",
            "cloudEvents_source": "urn:producer",
            "cloudEvents_type": "merch.design.approved.v1",
        },
    )
    async with watching(amqp_url) as watcher, running_service(settings):
        await publish(amqp_url, message)
        pins = (await watcher.wait_for("pins.created", 1))[0]
    assert pins.data.design_id == design.design_id  # type: ignore[union-attr]
    assert pins.correlation_id == "bin-1"
    # no pin_on_items: one time-boxed "all" scope
    assert [s.target_type for s in pins.data.scopes] == ["all"]  # type: ignore[union-attr]


async def test_presketched_customization_costs_one_heavy_call(
    settings: Settings, sandbox: SandboxHandle, amqp_url: str
) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        sketch = (
            await http.post(
                "/open-api/v1.0/customizations",
                auth=("user-3", "fw-password-3"),
                json={
                    "productTemplateId": "pro_mug",
                    "regions": [{"region": "wrap", "imageId": "img_s"}],
                },
            )
        ).json()["customizationId"]
    design = sample_design("shop-3", 2, "sk", customization_id=sketch)
    async with watching(amqp_url) as watcher, running_service(settings):
        await publish(amqp_url, event_message(design_event(design)))
        created = (await watcher.wait_for("product.created", 1))[0]
    assert created.data.customization_id == sketch  # type: ignore[union-attr]
    calls = [c["endpoint"] for c in (await sandbox.records())["calls"]]
    assert calls.count("/open-api/v1.0/customizations") == 1  # only our own sketch call
    assert calls.count("/open-api/v1.0/products") == 1


async def test_readiness_and_split_consumers(
    settings: Settings, sandbox: SandboxHandle, amqp_url: str
) -> None:
    async with running_service(settings, ("product-created",)) as service:
        async with httpx.AsyncClient() as http:
            response = await http.get(f"http://127.0.0.1:{settings.http_port}/health/ready")
            live = await http.get(f"http://127.0.0.1:{settings.http_port}/health/live")
            schema = await http.get(f"http://127.0.0.1:{settings.http_port}/schema/openapi.json")
        assert response.status_code == 200 and live.status_code == 200
        assert [c["name"] for c in response.json()["consumers"]] == ["product-created"]
        assert "/health/ready" in schema.json()["paths"]
        assert service.readiness().ready


async def test_metrics_and_the_asyncapi_document_are_served(
    settings: Settings, sandbox: SandboxHandle, amqp_url: str
) -> None:
    design = sample_design("shop-1", 1, "metrics")
    base = f"http://127.0.0.1:{settings.http_port}"
    async with watching(amqp_url) as watcher, running_service(settings):
        await publish(amqp_url, event_message(design_event(design)))
        await watcher.wait_for("pins.created", 1)
        async with httpx.AsyncClient(base_url=base) as http:
            metrics = (await http.get("/metrics")).text
            asyncapi = (await http.get("/asyncapi.json")).json()
    assert (
        'merch_messages_total{outcome="done",queue="merch-pipeline.design-approved"} 1.0' in metrics
    )
    assert (
        'merch_upstream_calls_total{api="fourthwall",endpoint="/open-api/v1.0/products",'
        'status="201"} 1.0' in metrics
    )
    assert 'merch_ledger_designs{state="published"} 1.0' in metrics
    assert "merch_broker_connected 1.0" in metrics
    assert "merch_handler_seconds_bucket" in metrics
    assert asyncapi["asyncapi"] == "3.0.0"
