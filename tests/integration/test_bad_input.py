"""Malformed messages are dead-lettered with a specific reason; the consumer keeps going."""

from __future__ import annotations

import aio_pika
import msgspec
import pytest

from service.broker.codec import event_message
from service.broker.topology import DESIGN_APPROVED_QUEUE
from service.samples import design_event, sample_design
from service.settings import Settings
from service.testing.broker import publish, queue_messages, watching
from service.testing.inprocess import running_service
from service.testing.polling import eventually
from service.testing.sandbox import SandboxHandle

pytestmark = pytest.mark.integration

GOOD = msgspec.json.decode(msgspec.json.encode(sample_design("shop-1", 0, "x")))


def envelope(**overrides: object) -> bytes:
    return msgspec.json.encode(
        {
            "specversion": "1.0",
            "id": "bad",
            "source": "urn:t",
            "type": "merch.design.approved.v1",
            "data": GOOD,
            **overrides,
        }
    )


BAD = [
    (b"{definitely not json", "application/cloudevents+json", "invalid_json"),
    (b"\xff\xfe\xfa", "application/cloudevents+json", "invalid_json"),
    (b'{"hello":"world"}', "application/cloudevents+json", "not_a_cloudevent"),
    (b"plain text", "text/plain", "not_a_cloudevent"),
    (envelope(type="merch.design.approved.v7"), "application/cloudevents+json", "unknown_type"),
    (
        envelope(data={**GOOD, "revision": "two"}),
        "application/cloudevents+json",
        "schema_violation",
    ),
    (
        b'{"specversion":"1.0","id":"big","source":"s","type":"t","data":"'
        + b"x" * 300_000
        + b'"}',
        "application/cloudevents+json",
        "too_large",
    ),
    # past a bound the ledger could not hold: refused at once, never INTERNAL_ERROR
    (
        envelope(id="huge-revision", data={**GOOD, "revision": 2**63}),
        "application/cloudevents+json",
        "schema_violation",
    ),
    (
        envelope(id="nul-in-id", data={**GOOD, "design_id": "d\u0000x"}),
        "application/cloudevents+json",
        "schema_violation",
    ),
]
DETAILS = {  # the field and the rule, as a producer reads them in x-merch-detail
    "huge-revision": ("$.data.revision", "<= 2147483647"),
    "nul-in-id": ("$.data.design_id", "regex"),
}


async def test_bad_messages_are_dead_lettered_and_the_good_one_still_flows(
    settings: Settings, sandbox: SandboxHandle, amqp_url: str
) -> None:
    good = sample_design("shop-1", 0, "after-bad")
    async with watching(amqp_url) as watcher, running_service(settings):
        for body, content_type, _ in BAD:
            await publish(amqp_url, aio_pika.Message(body, content_type=content_type))
        await publish(amqp_url, event_message(design_event(good)))
        await watcher.wait_for("pins.created", 1)

        async def dead_letters() -> list[aio_pika.abc.AbstractIncomingMessage] | None:
            found = await queue_messages(amqp_url, DESIGN_APPROVED_QUEUE.dead_letter)
            return found if len(found) >= len(BAD) else None

        parked = await eventually(dead_letters, what="dead letters")
    by_body = {m.body: m for m in parked}
    for body, _, reason in BAD:
        message = by_body[body]  # the original bytes, unchanged
        headers = message.headers or {}
        assert headers["x-merch-reason"] == reason
        assert headers["x-merch-source-queue"] == DESIGN_APPROVED_QUEUE.queue
        assert headers["x-merch-original-routing-key"] == "design.approved"
        assert headers["x-merch-detail"]
        assert headers["x-merch-attempts"] == 1  # the first delivery, never a retry
        for name, parts in DETAILS.items():
            if f'"id":"{name}"'.encode() in body:
                assert all(part in str(headers["x-merch-detail"]) for part in parts), parts
    assert not watcher.of_type("product.failed")
