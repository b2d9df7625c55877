"""A real RabbitMQ for tests and benchmarks: find one, give each test a vhost of its own,
publish like an outside producer, and watch what the service emits."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit, urlunsplit

import aio_pika
import msgspec

from contracts.cloudevents import CloudEvent, decode_structured
from contracts.events import EVENT_TYPES, EXCHANGE, EventData
from service.testing.polling import eventually

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def broker_answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), 3):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def base_broker_url() -> Iterator[str]:
    """AMQP_URL if it answers, else a RabbitMQ container where a Docker engine exists."""
    url = os.environ.get("AMQP_URL") or DEFAULT_AMQP_URL
    if broker_answers(url):
        yield url
        return
    try:
        from testcontainers.rabbitmq import RabbitMqContainer

        with RabbitMqContainer("rabbitmq:3.13-management") as container:
            host = container.get_container_host_ip()
            yield f"amqp://guest:guest@{host}:{container.get_exposed_port(5672)}/"
    except Exception as exc:  # no Docker engine: say how to get a broker
        raise RuntimeError(
            f"no RabbitMQ answers at {url} and testcontainers could not start one ({exc}); "
            "start one (rabbitmq-server -detached) or set AMQP_URL"
        ) from exc


def _is_local(url: str) -> bool:
    return urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")


@contextlib.contextmanager
def throwaway_vhost(base_url: str) -> Iterator[str]:
    """A fresh vhost for one test (rabbitmqctl on a local broker), so stale messages from
    earlier runs or tests never leak in. Elsewhere (a container per session) the base vhost."""
    ctl = shutil.which("rabbitmqctl")
    if not ctl or not _is_local(base_url) or os.environ.get("MERCH_TEST_NO_VHOSTS"):
        yield base_url
        return
    name = f"merch-test-{uuid.uuid4().hex[:10]}"
    user = urlsplit(base_url).username or "guest"
    subprocess.run([ctl, "add_vhost", name], check=True, capture_output=True)
    subprocess.run(
        [ctl, "set_permissions", "-p", name, user, ".*", ".*", ".*"],
        check=True,
        capture_output=True,
    )
    parts = urlsplit(base_url)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, "/" + quote(name, safe=""), "", ""))
    finally:
        subprocess.run([ctl, "delete_vhost", name], check=False, capture_output=True)


@dataclass
class Seen:
    event: CloudEvent
    data: EventData
    routing_key: str
    message_id: str | None
    correlation_id: str | None
    arrived: float = field(default_factory=time.time)


@dataclass
class EventWatcher:
    """Collects what appears on ``merch.events`` under the given routing keys."""

    seen: list[Seen] = field(default_factory=list)

    def of_type(self, routing_key: str) -> list[Seen]:
        return [s for s in self.seen if s.routing_key == routing_key]

    async def wait_for(
        self,
        routing_key: str,
        count: int,
        timeout: float = 20.0,
        where: Callable[[Seen], bool] = lambda s: True,
    ) -> list[Seen]:
        async def check() -> list[Seen] | None:
            found = [s for s in self.of_type(routing_key) if where(s)]
            return found if len(found) >= count else None

        return await eventually(check, timeout, what=f"{count} x {routing_key}")


@contextlib.asynccontextmanager
async def watching(
    url: str,
    keys: tuple[str, ...] = (
        "product.created",
        "pins.created",
        "product.failed",
        "product.withdrawn",
    ),
    durable_queue: str | None = None,
) -> AsyncIterator[EventWatcher]:
    """Collect events as they appear. With ``durable_queue``, a durable queue and a robust
    connection, so the watcher survives a broker restart without missing an event."""
    watcher = EventWatcher()
    connection = await (aio_pika.connect_robust(url) if durable_queue else aio_pika.connect(url))
    channel = await connection.channel()
    exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    if durable_queue:
        queue = await channel.declare_queue(
            durable_queue, durable=True, arguments={"x-queue-type": "quorum"}
        )
    else:
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    for key in keys:
        await queue.bind(exchange, key)

    async def collect(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            event = decode_structured(message.body)
            data = msgspec.json.decode(event.data, type=EVENT_TYPES[event.type].data)
            watcher.seen.append(
                Seen(
                    event,
                    data,
                    message.routing_key or "",
                    message.message_id,
                    message.correlation_id,
                )
            )

    await queue.consume(collect)
    try:
        yield watcher
    finally:
        await connection.close()


async def publish(
    url: str,
    message: aio_pika.Message,
    routing_key: str = "design.approved",
    exchange_name: str = EXCHANGE,
) -> None:
    """Publish like an outside producer: plain aio-pika, publisher confirms."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        await exchange.publish(message, routing_key=routing_key)
    finally:
        await connection.close()


async def queue_messages(url: str, queue: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Drain a queue without consuming it for good (messages are nacked back)."""
    connection = await aio_pika.connect(url)
    found = []
    try:
        channel = await connection.channel()
        q = await channel.declare_queue(queue, passive=True)
        while (message := await q.get(fail=False, no_ack=False)) is not None:
            found.append(message)
        for message in found:
            await message.nack(requeue=True)
    finally:
        await connection.close()
    return found
