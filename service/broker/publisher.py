"""Publishing with publisher confirms: a publish returns only once the broker has the message."""

from __future__ import annotations

from typing import Protocol

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection

from contracts.cloudevents import CloudEvent
from service.broker.codec import event_message
from service.broker.topology import CONSUMED_ROUTING_KEYS, declare_exchange


class Publishes(Protocol):
    """What the consume loop and the operator's actions need to put messages on the broker."""

    async def publish_event(self, event: CloudEvent, routing_key: str) -> None: ...
    async def send_to_queue(self, queue: str, message: aio_pika.Message) -> None: ...


class Publisher:
    def __init__(
        self, channel: AbstractChannel, events: AbstractExchange, timeout_s: float
    ) -> None:
        self._channel = channel
        self._events = events
        self._timeout_s = timeout_s

    async def publish_event(self, event: CloudEvent, routing_key: str) -> None:
        """Publish to ``merch.events``; raises unless the broker confirmed it. An event one of
        our own queues consumes must be routed (``mandatory``: an unroutable one raises instead
        of vanishing); a notification nobody subscribes to yet may go nowhere."""
        await self._events.publish(
            event_message(event),
            routing_key=routing_key,
            mandatory=routing_key in CONSUMED_ROUTING_KEYS,
            timeout=self._timeout_s,
        )

    async def send_to_queue(self, queue: str, message: aio_pika.Message) -> None:
        """Put a message straight into a queue (retry tiers, dead letters). ``mandatory`` makes a
        missing queue an error instead of a silent drop."""
        await self._channel.default_exchange.publish(
            message, routing_key=queue, mandatory=True, timeout=self._timeout_s
        )


async def open_publisher(connection: AbstractRobustConnection, timeout_s: float) -> Publisher:
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    events = await declare_exchange(channel)
    return Publisher(channel, events, timeout_s)
