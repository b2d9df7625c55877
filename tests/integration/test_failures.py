"""Upstream failures: permanent ones fail the design at once, transient ones are retried through
the broker's delay queues and either recover or end as product.failed after the last attempt."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.events import DesignRegion, ProductFailedV1
from service.broker.codec import event_message
from service.broker.topology import DESIGN_APPROVED_QUEUE, PRODUCT_CREATED_QUEUE
from service.samples import design_event, sample_design
from service.settings import Settings, load_settings
from service.testing.broker import publish, queue_messages, watching
from service.testing.inprocess import running_service
from service.testing.polling import eventually
from service.testing.sandbox import SandboxHandle

pytestmark = pytest.mark.integration


async def test_permanent_fourthwall_error_fails_the_design_once(
    settings: Settings, sandbox: SandboxHandle, amqp_url: str
) -> None:
    design = sample_design("shop-1", 0, "perm")
    broken = type(design)(
        **{
            **{f: getattr(design, f) for f in design.__struct_fields__},
            "regions": [DesignRegion(region="front", image_id="img_missing_1")],
        }
    )
    async with watching(amqp_url) as watcher, running_service(settings):
        await publish(amqp_url, event_message(design_event(broken)))
        failed = (await watcher.wait_for("product.failed", 1))[0].data
        parked = await eventually(
            lambda: queue_messages(amqp_url, DESIGN_APPROVED_QUEUE.dead_letter)
        )
    assert isinstance(failed, ProductFailedV1)
    assert (failed.stage, failed.code, failed.retryable) == (
        "customization",
        "MEDIA_FILE_DO_NOT_EXISTS",
        False,
    )
    assert parked[0].headers["x-merch-code"] == "MEDIA_FILE_DO_NOT_EXISTS"
    calls = (await sandbox.records())["calls"]
    heavy = [c for c in calls if c["endpoint"] == "/open-api/v1.0/customizations"]
    assert len(heavy) == 1  # no retry of a permanent error


async def test_a_design_that_does_not_fit_its_template_costs_no_heavy_call(
    settings: Settings, sandbox: SandboxHandle, amqp_url: str
) -> None:
    """Checked against "Get product template" first: a placement the region does not have is
    refused with Fourthwall's own code and no heavy call spent; a retry reads the template from
    memory, so the design that fits after it costs one template read in all."""
    design = sample_design("shop-1", 0, "misfit")
    fields = {f: getattr(design, f) for f in design.__struct_fields__}
    wrong = DesignRegion(
        region="front", image_id="img_1", placement_strategy="PLACEMENT_ID", placement_id="sleeve"
    )
    misfit = type(design)(**{**fields, "regions": [wrong]})
    fitting = type(design)(**{**fields, "design_id": "fits"})
    async with watching(amqp_url) as watcher, running_service(settings):
        await publish(amqp_url, event_message(design_event(misfit)))
        (failed,) = [e.data for e in await watcher.wait_for("product.failed", 1)]
        await publish(amqp_url, event_message(design_event(fitting)))
        await watcher.wait_for("product.created", 1)
    assert isinstance(failed, ProductFailedV1)
    assert (failed.stage, failed.code, failed.retryable) == (
        "customization",
        "DESIGN_PIPELINE_INVALID_REGIONS",
        False,
    )
    assert "placement 'sleeve'" in failed.detail and "before any heavy call" in failed.detail
    endpoints = [c["endpoint"] for c in (await sandbox.records())["calls"]]
    assert (
        endpoints
        == [
            "/open-api/v1.0/product-templates/{productId}",  # once: then kept
            "/open-api/v1.0/customizations",  # the fitting design's, only
            "/open-api/v1.0/products",
        ]
        + [e for e in endpoints[3:] if not e.startswith("/open-api")]
    )


async def test_transient_errors_are_retried_until_the_upstream_recovers(
    settings: Settings, sandbox: SandboxHandle, amqp_url: str
) -> None:
    await sandbox.set_faults(error_rate_5xx=1.0)
    design = sample_design("shop-2", 0, "flaky")
    async with watching(amqp_url) as watcher, running_service(settings):
        await publish(amqp_url, event_message(design_event(design)))

        async def saw_a_503() -> bool:
            return any(c["status"] == 503 for c in (await sandbox.records())["calls"])

        await eventually(saw_a_503, what="a 503 from the sandbox")
        await sandbox.set_faults(error_rate_5xx=0.0)
        await watcher.wait_for("pins.created", 1)
    records = await sandbox.records()
    assert len(records["products"]) == 1
    assert not watcher.of_type("product.failed")


async def test_attempts_are_bounded_then_product_failed_is_retryable(
    settings: Settings, sandbox: SandboxHandle, amqp_url: str
) -> None:
    await sandbox.set_faults(error_rate_5xx=1.0)
    async with watching(amqp_url) as watcher, running_service(settings):
        await publish(amqp_url, event_message(design_event(sample_design("shop-1", 1, "down"))))
        failed = (await watcher.wait_for("product.failed", 1))[0].data
        parked = await eventually(
            lambda: queue_messages(amqp_url, DESIGN_APPROVED_QUEUE.dead_letter)
        )
    assert isinstance(failed, ProductFailedV1)
    assert (failed.retryable, failed.attempts, failed.code) == (True, 3, "SERVICE_UNAVAILABLE")
    assert parked[0].headers["x-merch-reason"] == "attempts_exhausted"
    assert parked[0].headers["x-merch-attempts"] == 3
    calls = (await sandbox.records())["calls"]
    assert len([c for c in calls if c["endpoint"] == "/open-api/v1.0/customizations"]) == 3


async def test_shop_without_credentials_is_a_clear_per_message_error(
    settings: Settings, sandbox: SandboxHandle, amqp_url: str
) -> None:
    async with watching(amqp_url) as watcher, running_service(settings):
        await publish(amqp_url, event_message(design_event(sample_design("unknown-shop", 0, "nc"))))
        failed = (await watcher.wait_for("product.failed", 1))[0].data
        # the service keeps serving other shops
        await publish(amqp_url, event_message(design_event(sample_design("shop-1", 0, "ok"))))
        await watcher.wait_for("pins.created", 1)
    assert failed.code == "MISSING_CREDENTIALS"  # type: ignore[union-attr]
    assert "unknown-shop" in failed.detail  # type: ignore[union-attr]


async def test_wrong_luigisbox_key_fails_at_the_pins_stage(
    service_env: dict[str, str], sandbox: SandboxHandle, amqp_url: str, tmp_path: Path
) -> None:
    config = Path(service_env["CONFIG_FILE"])
    config.write_text(config.read_text().replace('"lb-key-1"', '"not-the-key"'))
    settings = load_settings(service_env)
    async with watching(amqp_url) as watcher, running_service(settings):
        await publish(amqp_url, event_message(design_event(sample_design("shop-1", 0, "lb"))))
        failed = (await watcher.wait_for("product.failed", 1))[0].data
        parked = await eventually(
            lambda: queue_messages(amqp_url, PRODUCT_CREATED_QUEUE.dead_letter)
        )
    # the first Luigi's Box call is the product's content update: it names the call that failed
    assert (failed.stage, failed.code, failed.retryable) == (  # type: ignore[union-attr]
        "pins",
        "LUIGISBOX_CONTENT_HTTP_401",
        False,
    )
    assert parked[0].headers["x-merch-code"] == "LUIGISBOX_CONTENT_HTTP_401"
