"""CloudEvents 1.0 over AMQP: the structured-mode envelope and the binary-mode headers.

Spec: CloudEvents 1.0 core, the AMQP protocol binding and the RabbitMQ protocol binding (Knative
Eventing RabbitMQ). Binary mode puts each attribute in an application property named
``cloudEvents_<attr>`` (AMQP binding; older producers use ``cloudEvents:<attr>``) or
``ce-<attr>`` (RabbitMQ binding), and ``data`` in the body, with ``datacontenttype`` as the
message content type.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

from contracts.errors import ContractError, from_msgspec

SPEC_VERSION = "1.0"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
JSON_CONTENT_TYPE = "application/json"
BINARY_PREFIXES = ("cloudEvents_", "cloudEvents:", "ce-")

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]


class CloudEvent(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A CloudEvent whose ``data`` is kept raw until its ``type`` says how to decode it.

    ``correlationid`` (the first design event's id) and ``traceparent`` (W3C trace context)
    are extension attributes carried through every hop.
    """

    specversion: NonEmpty
    id: NonEmpty
    source: NonEmpty
    type: NonEmpty
    subject: str | None = None
    time: str | None = None
    datacontenttype: str | None = None
    dataschema: str | None = None
    correlationid: str | None = None
    traceparent: str | None = None
    data: msgspec.Raw = msgspec.Raw(b"null")


_envelope_decoder = msgspec.json.Decoder(CloudEvent)
_encoder = msgspec.json.Encoder()
_ATTRIBUTES = frozenset(f for f in CloudEvent.__struct_fields__ if f != "data")


def _check_version(event: CloudEvent) -> CloudEvent:
    if event.specversion != SPEC_VERSION:
        raise ContractError(
            "unsupported_specversion",
            f"specversion {event.specversion!r} is not supported (expected {SPEC_VERSION!r})",
        )
    return event


def decode_structured(body: bytes) -> CloudEvent:
    """Decode a structured-mode envelope (the whole event in the body)."""
    try:
        return _check_version(_envelope_decoder.decode(body))
    except msgspec.ValidationError as exc:
        raise from_msgspec("not_a_cloudevent", exc) from None
    except msgspec.DecodeError as exc:
        raise ContractError("invalid_json", str(exc)) from None


def binary_attributes(headers: Mapping[str, Any]) -> dict[str, str]:
    """The CloudEvent attributes found in AMQP application properties (binary mode)."""
    found: dict[str, str] = {}
    for key, value in headers.items():
        for prefix in BINARY_PREFIXES:
            if key.startswith(prefix):
                raw = value.decode() if isinstance(value, bytes | bytearray) else value
                found[key[len(prefix) :]] = raw if isinstance(raw, str) else str(raw)
    return found


def decode_binary(
    attributes: Mapping[str, str], content_type: str | None, body: bytes
) -> CloudEvent:
    """Build a CloudEvent from binary-mode attributes and a JSON body."""
    if content_type and content_type.split(";")[0].strip() != JSON_CONTENT_TYPE:
        raise ContractError(
            "unsupported_content_type",
            f"binary-mode data must be {JSON_CONTENT_TYPE}, got {content_type!r}",
        )
    try:
        msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise ContractError("invalid_json", str(exc)) from None
    known = {k: v for k, v in attributes.items() if k in _ATTRIBUTES}
    known.setdefault("datacontenttype", content_type or JSON_CONTENT_TYPE)
    try:
        event = msgspec.convert(known, CloudEvent)
    except msgspec.ValidationError as exc:
        raise from_msgspec("not_a_cloudevent", exc) from None
    return _check_version(msgspec.structs.replace(event, data=msgspec.Raw(body)))


def encode_structured(event: CloudEvent) -> bytes:
    return _encoder.encode(event)
