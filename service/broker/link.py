"""The process's one broker connection: connect with backoff, publish through one confirmed
channel once connected, hand out a short-lived channel for an operator's action, close."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from contracts.cloudevents import CloudEvent
from service.broker.publisher import Publisher, open_publisher
from service.secrets import Secret, redact_url

log = structlog.get_logger("merch_pipeline.broker")


class NotConnected(RuntimeError):
    """The broker is not connected (yet, or any more)."""


class BrokerLink:
    """Implements ``Publishes`` for everything that sends; raises ``NotConnected`` until
    ``connect`` has succeeded."""

    def __init__(
        self, url: Secret, timeout_s: float, published: Callable[[str], None] | None = None
    ) -> None:
        self._url = url
        self._timeout_s = timeout_s
        self._published = published  # counts each confirmed publish by kind (event, queue)
        self.connection: AbstractRobustConnection | None = None
        self._publisher: Publisher | None = None

    def connected(self) -> bool:
        connection = self.connection
        return bool(connection and connection.connected.is_set() and not connection.is_closed)

    async def connect(self, stop: asyncio.Event) -> bool:
        """Connect (robust: it reconnects by itself afterwards), retrying with backoff until the
        broker answers or ``stop`` is set; False if stopped first."""
        url = self._url.reveal()
        delay = 1.0
        while not stop.is_set():
            try:
                self.connection = await aio_pika.connect_robust(
                    url,
                    reconnect_interval=2.0,
                    client_properties={"connection_name": "merch-pipeline"},
                )
            except (OSError, aio_pika.exceptions.AMQPError) as exc:
                log.error(
                    "broker.unreachable", url=redact_url(url), error=str(exc), retry_in_s=delay
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, 30.0)
                continue
            self._publisher = await open_publisher(self.connection, self._timeout_s)
            return True
        return False

    def _connected_publisher(self) -> Publisher:
        if self._publisher is None:
            raise NotConnected("not connected to the broker yet")
        return self._publisher

    async def publish_event(self, event: CloudEvent, routing_key: str) -> None:
        await self._connected_publisher().publish_event(event, routing_key)
        if self._published is not None:
            self._published("event")

    async def send_to_queue(self, queue: str, message: aio_pika.Message) -> None:
        await self._connected_publisher().send_to_queue(queue, message)
        if self._published is not None:
            self._published("queue")

    @contextlib.asynccontextmanager
    async def channel(self) -> AsyncIterator[AbstractChannel]:
        """A channel with publisher confirms for one operation, closed after it."""
        if self.connection is None or not self.connected():
            raise NotConnected("not connected to the broker")
        channel = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
        try:
            yield channel
        finally:
            with contextlib.suppress(Exception):
                await channel.close()

    async def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.connection.close(), 10)
