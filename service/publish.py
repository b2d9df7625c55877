"""``merch-pipeline publish KIND FILE``: validate a producer's event (``design-approved`` or
``design-withdrawn``) and publish it to ``merch.events`` with a publisher confirm (for
producers with broker access)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import aio_pika
import msgspec

from contracts.cloudevents import CloudEvent, decode_structured
from contracts.errors import ContractError
from contracts.events import (
    DESIGN_APPROVED,
    DESIGN_WITHDRAWN,
    EXCHANGE,
    EventType,
    decode_data,
    make_event,
)
from contracts.timestamps import now_iso
from service.broker.codec import event_message

# What a producer may send, by the name its doors use (CLI kind, webhook and admin paths).
PRODUCER_EVENTS: dict[str, EventType] = {
    "design-approved": DESIGN_APPROVED,
    "design-withdrawn": DESIGN_WITHDRAWN,
}


def load_event(path: Path, expected: EventType = DESIGN_APPROVED) -> CloudEvent:
    """A whole CloudEvent envelope, or just the ``data`` of one (then wrapped here)."""
    body = path.read_bytes()
    try:
        raw = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise ContractError("invalid_json", f"{path}: {exc}") from None
    if isinstance(raw, dict) and "specversion" in raw:
        event = decode_structured(body)
    else:
        try:
            data = msgspec.json.decode(body, type=expected.data)
        except msgspec.ValidationError as exc:
            raise ContractError("schema_violation", f"{exc} (in {path})") from None
        event_id = str(uuid.uuid4())
        event = make_event(
            data,
            event_id=event_id,
            correlation_id=event_id,
            traceparent=None,
            time=now_iso(),
            subject=getattr(data, "design_id", None),
        )
        event = msgspec.structs.replace(event, source="urn:merch-pipeline:cli")
    decode_data(event, expected)
    return event


async def publish_file(amqp_url: str, path: Path, kind: str = "design-approved") -> str:
    expected = PRODUCER_EVENTS[kind]
    event = load_event(path, expected)
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        await exchange.publish(event_message(event), routing_key=expected.routing_key)
    finally:
        await connection.close()
    return json.dumps(
        {"published": event.id, "type": event.type, "routing_key": expected.routing_key}
    )
