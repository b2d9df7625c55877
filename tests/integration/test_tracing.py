"""One design, one trace: the spans of both consumers, both Fourthwall calls, the Luigi's Box
calls and the events published share the producer's trace id (the design event's
``traceparent``), a retried attempt included; no attribute holds a secret."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from contracts.fourthwall import CUSTOMIZATIONS_PATH
from service.broker.codec import event_message
from service.samples import design_event, sample_design
from service.settings import Settings
from service.testing.broker import publish, watching
from service.testing.inprocess import running_service
from service.testing.polling import eventually
from service.testing.sandbox import SandboxHandle

pytestmark = pytest.mark.integration


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def _trace_id(traceparent: str) -> int:
    return int(traceparent.split("-")[1], 16)


def _secrets(sandbox: SandboxHandle) -> list[str]:
    config = sandbox.config
    found = [s.password or "" for s in config.shops] + [t.private_key for t in config.trackers]
    return [s for s in found + [s.webhook_secret or "" for s in config.shops] if s]


async def test_one_design_is_one_trace_from_its_producer_to_its_pins(
    settings: Settings,
    sandbox: SandboxHandle,
    amqp_url: str,
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    design = sample_design("shop-1", 0, "traced")
    event = design_event(design)
    assert event.traceparent
    trace_id = _trace_id(event.traceparent)
    # the first customization call fails (503): the retried attempt belongs to the same trace
    await sandbox.set_faults(error_rate_5xx=1.0, endpoints=[CUSTOMIZATIONS_PATH])
    async with watching(amqp_url) as watcher, running_service(settings, tracing=provider):
        await publish(amqp_url, event_message(event))

        async def failed_once() -> bool:
            return any(s.kind == SpanKind.CLIENT and not s.status.is_ok for s in _all(exporter))

        await eventually(failed_once, what="the first customization call failing")
        await sandbox.set_faults(error_rate_5xx=0.0)
        (pins,) = await watcher.wait_for("pins.created", 1)
    assert pins.event.traceparent and _trace_id(pins.event.traceparent) == trace_id
    finished = _all(exporter)
    assert {s.context.trace_id for s in finished} == {trace_id}
    consumed = [s for s in finished if s.kind == SpanKind.CONSUMER]
    by_queue = [s.attributes["messaging.destination.name"] for s in consumed]  # type: ignore[index]
    assert by_queue.count("merch-pipeline.design-approved") == 2  # the first attempt and its retry
    assert by_queue.count("merch-pipeline.product-created") == 1
    routes = [s.attributes["url.template"] for s in finished if s.kind == SpanKind.CLIENT]  # type: ignore[index]
    assert routes.count(CUSTOMIZATIONS_PATH) == 2
    assert "/open-api/v1.0/products" in routes and "/v1/content" in routes
    assert "/v1/recommender/pin/{tracker}/scope" in routes
    published = [s.name for s in finished if s.kind == SpanKind.PRODUCER]
    assert "product.created publish" in published and "pins.created publish" in published
    design_span = next(s for s in consumed if s.attributes.get("merch.outcome") == "done")  # type: ignore[union-attr]
    assert design_span.attributes["merch.design_id"] == design.design_id  # type: ignore[index]
    # no attribute anywhere holds a configured secret
    values = [str(v) for s in finished for v in (s.attributes or {}).values()]
    assert not [v for v in values for secret in _secrets(sandbox) if secret in v]


def _all(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return list(exporter.get_finished_spans())
