"""The event contract as an AsyncAPI 3.0 document, generated from the msgspec Structs.

Each message is a structured-mode CloudEvent (``application/cloudevents+json``) whose ``data``
is the event's Struct; the JSON Schemas under ``components.schemas`` are what producers and
consumers validate against.
"""

from __future__ import annotations

from typing import Any

import msgspec

from contracts.events import (
    DESIGN_APPROVED,
    DESIGN_WITHDRAWN,
    EVENT_TYPES,
    EXCHANGE,
    FOURTHWALL_PRODUCT_CHANGED,
    PINS_CREATED,
    PRODUCT_CREATED,
    PRODUCT_FAILED,
    PRODUCT_WITHDRAWN,
    EventType,
)
from service import __version__

_REF = "#/components/schemas/{name}"
_DIRECTION = {
    DESIGN_APPROVED.name: "receive",
    DESIGN_WITHDRAWN.name: "receive",
    FOURTHWALL_PRODUCT_CHANGED.name: "receive",
    PRODUCT_CREATED.name: "send",
    PINS_CREATED.name: "send",
    PRODUCT_FAILED.name: "send",
    PRODUCT_WITHDRAWN.name: "send",
}
_SUMMARY = {
    DESIGN_APPROVED.name: "A shop approved a design: make it a Fourthwall product and promote it.",
    DESIGN_WITHDRAWN.name: (
        "A shop withdrew a design (with revision: that revision and every lower one; without: "
        "every revision, any approved later included): its products stop being promoted."
    ),
    FOURTHWALL_PRODUCT_CHANGED.name: (
        "A product of ours changed in Fourthwall (published, renamed, hidden, archived): put on "
        "merch.events by the service's own Fourthwall webhook door, consumed by the service."
    ),
    PRODUCT_CREATED.name: "Fourthwall created the product for a design.",
    PRODUCT_FAILED.name: "A design could not become a product (or could not be pinned).",
    PINS_CREATED.name: "Luigi's Box pin scopes now promote the new product.",
    PRODUCT_WITHDRAWN.name: (
        "A product is no longer promoted: hidden on Fourthwall, unpinned and out of the "
        "shop's Luigi's Box catalogue (its design withdrawn, or superseded by a newer "
        "revision)."
    ),
}


def _camel(routing_key: str) -> str:
    head, *rest = routing_key.split(".")
    return head + "".join(part.title() for part in rest)


def envelope_schema(event: EventType) -> dict[str, Any]:
    """The CloudEvent around ``event``'s data, as a JSON Schema."""
    return {
        "type": "object",
        "required": ["specversion", "id", "source", "type", "data"],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {"type": "string", "minLength": 1},
            "source": {"type": "string", "minLength": 1},
            "type": {"const": event.name},
            "subject": {"type": "string"},
            "time": {"type": "string", "format": "date-time"},
            "datacontenttype": {"const": "application/json"},
            "dataschema": {"type": "string"},
            "correlationid": {
                "type": "string",
                "description": "the id of the first design event of this flow",
            },
            "traceparent": {"type": "string", "description": "W3C trace context"},
            "data": {"$ref": _REF.format(name=event.data.__name__)},
        },
    }


def asyncapi_document(version: str = __version__) -> dict[str, Any]:
    events = list(EVENT_TYPES.values())
    _, schemas = msgspec.json.schema_components([e.data for e in events], ref_template=_REF)
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for event in events:
        name = _camel(event.routing_key)
        envelope = f"{event.data.__name__}Event"
        schemas[envelope] = envelope_schema(event)
        messages[name] = {
            "name": event.name,
            "title": event.name,
            "summary": _SUMMARY[event.name],
            "contentType": "application/cloudevents+json",
            "payload": {"$ref": _REF.format(name=envelope)},
            "bindings": {"amqp": {"messageType": event.name, "bindingVersion": "0.3.0"}},
        }
        channels[name] = {
            "address": event.routing_key,
            "description": f"Routing key {event.routing_key!r} on the topic exchange {EXCHANGE!r}.",
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": {
                        "name": EXCHANGE,
                        "type": "topic",
                        "durable": True,
                        "autoDelete": False,
                        "vhost": "/",
                    },
                    "bindingVersion": "0.3.0",
                }
            },
        }
        action = _DIRECTION[event.name]
        operations[f"{action}{name[0].upper()}{name[1:]}"] = {
            "action": action,
            "channel": {"$ref": f"#/channels/{name}"},
            "summary": (
                "merch-pipeline consumes this event"
                if action == "receive"
                else "merch-pipeline publishes this event"
            ),
            "messages": [{"$ref": f"#/channels/{name}/messages/{name}"}],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "merch-pipeline events",
            "version": version,
            "description": (
                "CloudEvents 1.0 (structured mode) on the RabbitMQ topic exchange "
                f"{EXCHANGE!r}. Evolution: new fields get defaults, a field's type "
                "never changes, a breaking change is a new type version."
            ),
        },
        "defaultContentType": "application/cloudevents+json",
        "servers": {
            "rabbitmq": {
                "host": "rabbitmq:5672",
                "protocol": "amqp",
                "description": "the broker named by AMQP_URL",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }
