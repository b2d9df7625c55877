"""AMQP message ⇄ CloudEvent. Accepts structured and binary mode; emits structured mode."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aio_pika
import msgspec
from aio_pika.abc import AbstractMessage

from contracts.cloudevents import (
    STRUCTURED_CONTENT_TYPE,
    CloudEvent,
    binary_attributes,
    decode_binary,
    decode_structured,
    encode_structured,
)
from contracts.errors import ContractError
from service.broker.headers import TRACEPARENT, traceparent


def decode_message(message: AbstractMessage, max_bytes: int) -> CloudEvent:
    """The CloudEvent a message carries, or ``ContractError`` saying why there is none."""
    body = message.body
    if len(body) > max_bytes:
        raise ContractError("too_large", f"body is {len(body)} bytes, the limit is {max_bytes}")
    content_type = (message.content_type or "").split(";")[0].strip().lower()
    attributes = binary_attributes(message.headers or {})
    if content_type == STRUCTURED_CONTENT_TYPE:
        return decode_structured(body)
    if "specversion" in attributes:
        return decode_binary(attributes, message.content_type, body)
    if content_type in ("", "application/json"):
        # Some producers send the structured envelope without the CloudEvents content type.
        return decode_structured(body)
    raise ContractError(
        "not_a_cloudevent",
        f"content type {message.content_type!r} is neither {STRUCTURED_CONTENT_TYPE} nor a "
        "binary-mode event (no cloudEvents_specversion or ce-specversion header)",
    )


class _TraceOnly(msgspec.Struct):
    traceparent: str | None = None


_trace_only = msgspec.json.Decoder(_TraceOnly)


def message_traceparent(message: AbstractMessage, max_bytes: int) -> str | None:
    """The trace context a delivery continues: its AMQP ``traceparent`` header, else the
    CloudEvent's ``traceparent`` extension (a binary-mode attribute or the structured body's),
    for a producer that sets only the latter. Never raises: a body that is no event has none."""
    found = traceparent(message.headers)
    if found is not None:
        return found
    attribute = binary_attributes(message.headers or {}).get("traceparent")
    if isinstance(attribute, str):
        return attribute
    if len(message.body) > max_bytes:
        return None
    try:
        return _trace_only.decode(message.body).traceparent
    except (msgspec.MsgspecError, ValueError):
        return None


def event_message(event: CloudEvent) -> aio_pika.Message:
    headers: dict[str, Any] = {}
    if event.traceparent:
        headers[TRACEPARENT] = event.traceparent
    return aio_pika.Message(
        encode_structured(event),
        content_type=STRUCTURED_CONTENT_TYPE,
        message_id=event.id,
        correlation_id=event.correlationid,
        type=event.type,
        headers=headers,
        timestamp=datetime.now(UTC),
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        app_id="merch-pipeline",
    )


def copy_message(message: AbstractMessage, headers: dict[str, Any]) -> aio_pika.Message:
    """The same bytes and properties, with ``headers`` merged in (for retries and dead letters);
    a header set to None is removed."""
    merged = {k: v for k, v in {**(message.headers or {}), **headers}.items() if v is not None}
    return aio_pika.Message(
        message.body,
        headers=merged,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        type=message.type,
        timestamp=message.timestamp,
        app_id=message.app_id,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )
