"""``merch-pipeline publish design-approved FILE``: validate a design event and publish it to
``merch.events`` with a publisher confirm (for producers with broker access)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import aio_pika
import msgspec

from contracts.cloudevents import CloudEvent, decode_structured
from contracts.errors import ContractError
from contracts.events import DESIGN_APPROVED, EXCHANGE, DesignApprovedV1, decode_data, make_event
from contracts.timestamps import now_iso
from service.broker.codec import event_message


def load_event(path: Path) -> CloudEvent:
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
            data = msgspec.json.decode(body, type=DesignApprovedV1)
        except msgspec.ValidationError as exc:
            raise ContractError("schema_violation", f"{exc} (in {path})") from None
        event_id = str(uuid.uuid4())
        event = make_event(
            data,
            event_id=event_id,
            correlation_id=event_id,
            traceparent=None,
            time=now_iso(),
            subject=data.design_id,
        )
        event = msgspec.structs.replace(event, source="urn:merch-pipeline:cli")
    decode_data(event, DESIGN_APPROVED)
    return event


async def publish_file(amqp_url: str, path: Path) -> str:
    event = load_event(path)
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        await exchange.publish(event_message(event), routing_key=DESIGN_APPROVED.routing_key)
    finally:
        await connection.close()
    return json.dumps(
        {"published": event.id, "type": event.type, "routing_key": DESIGN_APPROVED.routing_key}
    )
