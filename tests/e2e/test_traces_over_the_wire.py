"""The service as a process with ``OTEL_EXPORTER_OTLP_ENDPOINT`` set: one design's span tree
reaches an OTLP/HTTP receiver (protobuf, decoded with ``opentelemetry-proto``), in the
producer's trace, each span under the one that caused it."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from service.broker.codec import event_message
from service.samples import design_event, sample_design
from service.testing.broker import publish, watching
from service.testing.otlp import ReceivedSpan, otlp_receiver
from service.testing.polling import eventually
from service.testing.processes import http_ok, service_env, spawn, start_sandbox, wait_exit
from service.testing.sandbox import sandbox_config

pytestmark = pytest.mark.e2e

CONSUMER, CLIENT, PRODUCER = 5, 3, 4  # the protobuf's SpanKind values


async def test_one_designs_span_tree_arrives_over_otlp_http(amqp_url: str, tmp_path: Path) -> None:
    config = sandbox_config()
    sandbox, sandbox_url, config_file = await start_sandbox(config, tmp_path)
    design = sample_design("shop-1", 0, "otlp")
    event = design_event(design)
    assert event.traceparent
    _, trace_id, producer_span, _ = event.traceparent.split("-")
    with otlp_receiver() as receiver:
        env = service_env(
            amqp_url,
            sandbox_url,
            config_file,
            tmp_path,
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
            OTEL_BSP_SCHEDULE_DELAY="200",
        )
        proc = spawn(["run"], env, tmp_path / "service.log")
        try:
            await eventually(
                lambda: http_ok(f"http://127.0.0.1:{env['HTTP_PORT']}/health/ready", proc),
                timeout=30,
                what="service readiness",
            )
            async with watching(amqp_url) as watcher:
                await publish(amqp_url, event_message(event))
                await watcher.wait_for("pins.created", 1, timeout=30)
        finally:
            proc.send_signal(signal.SIGTERM)  # the shutdown exports what is still batched
            code = await wait_exit(proc, 30)
            sandbox.terminate()
            sandbox.wait(10)
        assert code == 0
        spans = receiver.received()
    assert receiver.content_types == {"application/x-protobuf"}
    assert {s.trace_id for s in spans} == {trace_id}
    assert {s.service_name for s in spans} == {"merch-pipeline"}
    first = _one(spans, "merch-pipeline.design-approved process", CONSUMER)
    assert first.parent_span_id == producer_span  # the producer's span is the root
    assert first.attributes["merch.design_id"] == design.design_id
    assert first.events[0] == "ledger.received"
    made = [s for s in spans if s.kind == CLIENT and s.parent_span_id == first.span_id]
    assert [s.attributes["url.template"] for s in made] == [
        "/open-api/v1.0/product-templates/{productId}",  # the design checked before any heavy call
        "/open-api/v1.0/customizations",
        "/open-api/v1.0/products",
    ]
    created = _one(spans, "product.created publish", PRODUCER)
    assert created.parent_span_id == first.span_id
    second = _one(spans, "merch-pipeline.product-created process", CONSUMER)
    assert second.parent_span_id == created.span_id
    calls = [s for s in spans if s.kind == CLIENT and s.parent_span_id == second.span_id]
    routes = {s.attributes["url.template"] for s in calls}
    assert {"/v1/content", "/v1/recommender/pin/{tracker}/scope"} <= routes
    pins = _one(spans, "pins.created publish", PRODUCER)
    assert pins.parent_span_id == second.span_id
    assert all(s.status_code != 2 for s in spans)  # nothing failed


def _one(spans: list[ReceivedSpan], name: str, kind: int) -> ReceivedSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, (name, [s.name for s in spans])
    assert found[0].kind == kind, name
    return found[0]
