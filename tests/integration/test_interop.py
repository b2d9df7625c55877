"""Interop checked by code nobody here wrote: the official CloudEvents SDK (PyPI ``cloudevents``)
produces design events in every binding and mode it has, and parses every event the service
emits."""

from __future__ import annotations

import uuid
from typing import Any

import aio_pika
import msgspec
import pytest
from cloudevents.core.bindings import amqp, rabbitmq
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SdkEvent

from contracts.events import DESIGN_APPROVED, EXCHANGE
from service.samples import sample_design
from service.settings import Settings
from service.testing.inprocess import running_service
from service.testing.polling import eventually

pytestmark = pytest.mark.integration


def sdk_event(n: int) -> SdkEvent:
    design = sample_design(f"shop-{n % 3 + 1}", n, f"sdk-{uuid.uuid4().hex[:6]}")
    return SdkEvent(
        attributes={
            "id": str(uuid.uuid4()),
            "source": "urn:example:design-studio",
            "type": DESIGN_APPROVED.name,
            "datacontenttype": "application/json",
        },
        data=msgspec.to_builtins(design),
    )


def rabbitmq_message(message: rabbitmq.RabbitMQMessage) -> aio_pika.Message:
    return aio_pika.Message(
        message.body, headers=dict(message.headers), content_type=message.content_type
    )


def amqp_message(message: amqp.AMQPMessage) -> aio_pika.Message:
    return aio_pika.Message(
        message.application_data,
        headers=dict(message.application_properties),
        content_type=message.properties.get("content-type"),
    )


PRODUCERS = {
    "rabbitmq binary (ce- headers)": lambda e: rabbitmq_message(
        rabbitmq.to_binary(e, JSONFormat())
    ),
    "rabbitmq structured": lambda e: rabbitmq_message(rabbitmq.to_structured(e, JSONFormat())),
    "amqp binary (cloudEvents_ properties)": lambda e: amqp_message(
        amqp.to_binary(e, JSONFormat())
    ),
    "amqp structured": lambda e: amqp_message(amqp.to_structured(e, JSONFormat())),
}


async def test_every_sdk_binding_is_accepted_and_the_sdk_parses_what_comes_out(
    settings: Settings, amqp_url: str
) -> None:
    emitted: list[aio_pika.abc.AbstractIncomingMessage] = []
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        watch = await channel.declare_queue(exclusive=True, auto_delete=True)
        for key in ("product.created", "pins.created", "product.failed"):
            await watch.bind(exchange, key)

        async def keep(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            await message.ack()
            emitted.append(message)

        await watch.consume(keep)
        sent = {name: sdk_event(n) for n, name in enumerate(PRODUCERS)}
        async with running_service(settings):
            for name, event in sent.items():
                await exchange.publish(PRODUCERS[name](event), routing_key="design.approved")

            async def all_pinned() -> bool:
                return sum(1 for m in emitted if m.routing_key == "pins.created") >= len(sent)

            await eventually(all_pinned, timeout=30, what="every SDK-produced design pinned")
    finally:
        await connection.close()
    parsed = [
        rabbitmq.from_structured(
            rabbitmq.RabbitMQMessage(headers={}, content_type=m.content_type, body=m.body),
            JSONFormat(),
        )
        for m in emitted
    ]
    assert not [m for m in emitted if m.routing_key == "product.failed"]
    kinds: dict[str, Any] = {}
    for message, event in zip(emitted, parsed, strict=True):
        assert event.get_id() == message.message_id  # the AMQP message id is the event id
        kinds.setdefault(event.get_type(), []).append(event)
    assert set(kinds) == {"merch.product.created.v1", "merch.pins.created.v1"}
    created_designs = {e.get_data()["design_id"] for e in kinds["merch.product.created.v1"]}
    assert created_designs == {e.get_data()["design_id"] for e in sent.values()}
