"""One design, one trace: the spans of both consumers, both Fourthwall calls, the Luigi's Box
calls and the events published share the producer's trace id (the design event's
``traceparent``), a retried attempt included; no attribute holds a secret."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import msgspec
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from consumers.ports import DesignKey
from contracts.fourthwall import CUSTOMIZATIONS_PATH, PRODUCTS_PATH
from service.broker.codec import event_message
from service.design_refs import design_ref
from service.observability.tracing import install_propagator
from service.samples import design_event, sample_design
from service.settings import Settings, load_settings
from service.testing.broker import publish, watching
from service.testing.inprocess import running_service
from service.testing.polling import eventually
from service.testing.sandbox import SandboxHandle
from tests.support import signed

pytestmark = pytest.mark.integration
TOKEN = "admin-token-for-the-traced-retry"
SECRET = "whsec_" + base64.b64encode(b"secret-of-the-traced-producer!!!").decode()


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
    # the failed attempt's span is in error with the failure's code; the ledger's steps are
    # span events of the delivery that recorded them
    failed = next(s for s in consumed if s.attributes.get("merch.outcome") == "retry-scheduled")  # type: ignore[union-attr]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes["error.type"] == "SERVICE_UNAVAILABLE"  # type: ignore[index]
    assert failed.status.description == "customization.SERVICE_UNAVAILABLE"
    steps = [e.name for e in design_span.events]
    assert steps[:1] == ["ledger.received"] and "ledger.product_created" in steps
    # no attribute anywhere (spans, their events and links) holds a configured secret
    values = [str(v) for s in finished for v in _attribute_values(s)]
    assert not [v for v in values for secret in _secrets(sandbox) if secret in v]


def _all(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return list(exporter.get_finished_spans())


def _attribute_values(span: ReadableSpan) -> list[object]:
    found = list((span.attributes or {}).values())
    found += [v for e in span.events for v in (e.attributes or {}).values()]
    return found + [v for link in span.links for v in (link.attributes or {}).values()]


async def test_a_webhook_delivery_and_an_operators_retry_continue_the_designs_trace(
    service_env: dict[str, str],
    sandbox: SandboxHandle,
    amqp_url: str,
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    settings = load_settings({**service_env, "ADMIN_TOKEN": TOKEN, "WEBHOOK_SECRETS": SECRET})
    design = sample_design("shop-3", 0, "traced-retry")
    event = design_event(design)
    assert event.traceparent
    trace_id = _trace_id(event.traceparent)
    caller = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"  # the HTTP caller's own trace
    body = msgspec.json.encode(event)
    base = f"http://127.0.0.1:{settings.http_port}"
    ref = design_ref(DesignKey("shop-3", design.design_id, design.revision))
    await sandbox.set_faults(error_rate_5xx=1.0, endpoints=[PRODUCTS_PATH])
    async with (
        watching(amqp_url) as watcher,
        running_service(settings, tracing=provider),
        httpx.AsyncClient(base_url=base) as http,
    ):
        sent = await http.post(
            "/webhooks/design-approved",
            content=body,
            headers=signed(SECRET, body, extra={"traceparent": caller}),
        )
        assert sent.status_code == 202, sent.text
        await watcher.wait_for("product.failed", 1)
        await sandbox.set_faults()
        retried = await http.post(
            f"/admin/designs/{ref}/retry",
            headers={"Authorization": f"Bearer {TOKEN}", "X-Operator": "ops-eve"},
        )
        assert retried.status_code == 202, retried.text
        (pins,) = await watcher.wait_for("pins.created", 1)
    assert pins.event.traceparent and _trace_id(pins.event.traceparent) == trace_id
    finished = _all(exporter)
    servers = {s.name: s for s in finished if s.kind == SpanKind.SERVER}
    assert {s.context.trace_id for s in finished if s.kind != SpanKind.SERVER} == {trace_id}
    # the webhook's request is a SERVER span continuing the caller's trace; the publish is in
    # the design's trace, linked to that request
    request = servers["POST /webhooks/design-approved"]
    assert request.context.trace_id == int("ab" * 16, 16)
    assert request.parent is not None and request.parent.span_id == int("cd" * 8, 16)
    assert request.attributes["http.response.status_code"] == 202  # type: ignore[index]
    (webhook,) = [s for s in finished if s.name == "design.approved publish"]
    assert [link.context.span_id for link in webhook.links] == [request.context.span_id]
    # the operator's retry is a span of the design's trace, the parent of the next delivery,
    # linked to the operator's request
    (retry,) = [s for s in finished if s.name == "merch-pipeline.design-approved retry"]
    assert retry.attributes["merch.operator"] == "ops-eve"  # type: ignore[index]
    (operator,) = [s for name, s in servers.items() if name.endswith("/retry")]
    assert operator.name == "POST /admin/designs/{design_ref}/retry"
    assert [link.context.span_id for link in retry.links] == [operator.context.span_id]
    after = [s for s in finished if s.parent and s.parent.span_id == retry.context.span_id]
    assert [s.attributes["merch.outcome"] for s in after] == ["done"]  # type: ignore[index]
    values = [str(v) for s in finished for v in _attribute_values(s)]
    assert not [v for v in values if TOKEN in v or SECRET in v]


async def test_a_producer_that_sets_only_the_cloudevents_traceparent_is_continued(
    settings: Settings, amqp_url: str, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    event = design_event(sample_design("shop-2", 0, "ce-only"))
    assert event.traceparent
    message = event_message(event)
    del message.headers["traceparent"]  # only the CloudEvent's extension attribute is left
    async with watching(amqp_url) as watcher, running_service(settings, tracing=provider):
        await publish(amqp_url, message)
        await watcher.wait_for("pins.created", 1)
    first = next(
        s
        for s in _all(exporter)
        if s.kind == SpanKind.CONSUMER
        and s.attributes.get("messaging.destination.name") == "merch-pipeline.design-approved"  # type: ignore[union-attr]
    )
    assert first.context.trace_id == _trace_id(event.traceparent)
    assert first.parent is not None and first.parent.span_id == int(event.traceparent[36:52], 16)


async def test_an_admin_publish_hangs_under_its_server_span_down_to_the_consumers(
    service_env: dict[str, str],
    amqp_url: str,
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    settings = load_settings({**service_env, "ADMIN_TOKEN": TOKEN})
    event = msgspec.structs.replace(
        design_event(sample_design("shop-2", 0, "admin-traced")), traceparent=None
    )
    caller = "00-" + "12" * 16 + "-" + "34" * 8 + "-01"
    async with (
        watching(amqp_url) as watcher,
        running_service(settings, tracing=provider),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}") as http,
    ):
        sent = await http.post(
            "/admin/events/design-approved",
            content=msgspec.json.encode(event),
            headers={
                "Authorization": f"Bearer {TOKEN}",
                "X-Operator": "ops-ann",
                "Content-Type": "application/json",
                "traceparent": caller,
            },
        )
        assert sent.status_code == 202, sent.text
        await watcher.wait_for("pins.created", 1)
    finished = _all(exporter)
    (server,) = [s for s in finished if s.kind == SpanKind.SERVER]
    assert server.name == "POST /admin/events/design-approved"
    assert server.attributes["http.route"] == "/admin/events/design-approved"  # type: ignore[index]
    assert server.context.trace_id == int("12" * 16, 16)  # the caller's trace, continued
    (publish_span,) = [s for s in finished if s.name == "design.approved publish"]
    assert publish_span.parent is not None
    assert publish_span.parent.span_id == server.context.span_id  # the admin call's work
    (delivery,) = [
        s
        for s in finished
        if s.kind == SpanKind.CONSUMER
        and s.attributes.get("messaging.destination.name") == "merch-pipeline.design-approved"  # type: ignore[union-attr]
    ]
    assert delivery.parent is not None and delivery.parent.span_id == publish_span.context.span_id
    assert {s.context.trace_id for s in finished} == {server.context.trace_id}


async def test_the_server_span_reads_the_caller_with_the_configured_propagators(
    service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``OTEL_PROPAGATORS=baggage``: a W3C ``traceparent`` header is not read, the request
    starts a trace of its own (with the default, the caller's trace is continued)."""
    settings = load_settings({**service_env, "ADMIN_TOKEN": TOKEN})
    caller = "00-" + "56" * 16 + "-" + "78" * 8 + "-01"
    headers = {"Authorization": f"Bearer {TOKEN}", "traceparent": caller}
    for propagators, continued in (("tracecontext,baggage", True), ("baggage", False)):
        monkeypatch.setenv("OTEL_PROPAGATORS", propagators)
        exporter = InMemorySpanExporter()
        provider = TracerProvider()  # the service shuts it down on its way out
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        async with (
            running_service(settings, tracing=provider),
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}") as http,
        ):
            assert (await http.get("/admin/consumers", headers=headers)).status_code == 200
        (server,) = [s for s in _all(exporter) if s.kind == SpanKind.SERVER]
        assert (server.context.trace_id == int("56" * 16, 16)) is continued, propagators
    monkeypatch.delenv("OTEL_PROPAGATORS")
    install_propagator({})
