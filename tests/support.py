"""Test helpers: broker isolation, the sandbox on loopback, event watching, polling."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import aio_pika
import httpx
import msgspec
from standardwebhooks.webhooks import Webhook

from contracts.cloudevents import CloudEvent, decode_structured
from contracts.events import EVENT_TYPES, EXCHANGE, EventData
from service.sandbox.config import SandboxConfig, ShopAccount, Tracker
from service.sandbox.server import free_port, sandbox_server

T = TypeVar("T")
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def max_in_any_window(times: list[float], window: float) -> int:
    """The most of ``times`` that fall in any half-open interval of ``window`` seconds."""
    times = sorted(times)
    return max((sum(1 for u in times if t <= u < t + window) for t in times), default=0)


async def eventually(
    check: Callable[[], Awaitable[T | None]],
    timeout: float = 20.0,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll ``check`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


def broker_answers(url: str) -> bool:
    parts = urlsplit(url)
    import socket

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
class SandboxHandle:
    url: str
    config: SandboxConfig

    async def records(self) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.url) as http:
            return (await http.get("/_sandbox/records")).json()  # type: ignore[no-any-return]

    async def set_faults(self, **faults: Any) -> None:
        async with httpx.AsyncClient(base_url=self.url) as http:
            (await http.post("/_sandbox/faults", json=faults)).raise_for_status()


def sandbox_config(shops: int = 3, **overrides: Any) -> SandboxConfig:
    config = SandboxConfig(**overrides)
    for n in range(1, shops + 1):
        config.shops.append(
            ShopAccount(shop_id=f"shop-{n}", username=f"user-{n}", password=f"fw-password-{n}")
        )
        config.trackers.append(Tracker(tracker_id=f"{n:04d}-5678", private_key=f"lb-key-{n}"))
    return config


def config_toml(config: SandboxConfig) -> str:
    """A CONFIG_FILE giving every sandbox shop its own credentials."""
    lines: list[str] = []
    for shop, tracker in zip(config.shops, config.trackers, strict=True):
        lines += [
            "[[shops]]",
            f'shop_id = "{shop.shop_id}"',
            f'fourthwall_username = "{shop.username}"',
            f'fourthwall_password = "{shop.password}"',
            f'luigisbox_tracker_id = "{tracker.tracker_id}"',
            f'luigisbox_private_key = "{tracker.private_key}"',
            "",
        ]
    return "\n".join(lines)


@contextlib.asynccontextmanager
async def running_sandbox(config: SandboxConfig) -> AsyncIterator[SandboxHandle]:
    port = free_port()
    server = sandbox_server(config, "127.0.0.1", port)
    task = asyncio.create_task(server.serve())
    await eventually(lambda: _started(server, task), what="sandbox start")
    try:
        yield SandboxHandle(f"http://127.0.0.1:{port}", config)
    finally:
        server.should_exit = True
        await task


async def _started(server: Any, task: asyncio.Task[Any]) -> bool:
    if task.done():
        task.result()
    return bool(server.started)


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
    keys: tuple[str, ...] = ("product.created", "pins.created", "product.failed"),
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


@contextlib.asynccontextmanager
async def running_service(
    settings: Any, consumers: tuple[str, ...] | None = None
) -> AsyncIterator[Any]:
    """The service in this process (same code path as ``merch-pipeline run``)."""
    from service.runtime import Service
    from service.settings import CONSUMERS

    stop = asyncio.Event()
    service = Service(settings, consumers or CONSUMERS)
    task = asyncio.create_task(service.run(stop))

    async def ready() -> bool:
        if task.done():
            task.result()
        return service.readiness().ready

    await eventually(ready, what="service readiness")
    try:
        yield service
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


@contextlib.asynccontextmanager
async def throwaway_postgres() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards (POSTGRES_TEST_URL names the
    server; a container is started where none answers and a Docker engine exists)."""
    import asyncpg

    base = os.environ.get("POSTGRES_TEST_URL") or DEFAULT_POSTGRES_URL
    container = None
    try:
        admin = await asyncpg.connect(base, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        try:
            from testcontainers.postgres import PostgresContainer

            container = PostgresContainer("postgres:16-alpine", driver=None)
            container.start()
            base = container.get_connection_url()
            admin = await asyncpg.connect(base, timeout=30)
        except Exception as fallback:
            raise RuntimeError(
                f"no PostgreSQL answers at {base} ({exc}) and no container could start "
                f"({fallback}); start one or set POSTGRES_TEST_URL"
            ) from fallback
    name = f"merch_test_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(base)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, "/" + name, "", ""))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        if container is not None:
            container.stop()


def cached_tool(script: str, what: str) -> str:
    """Run one of scripts/ensure-*.sh (it fetches a tool once into ~/.cache) and return the path
    it prints. Where it cannot be had, skip on a developer's machine and fail in CI."""
    import pytest

    root = Path(__file__).resolve().parents[1]
    try:
        return subprocess.run(
            [str(root / "scripts" / script)],
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        ).stdout.strip()
    except subprocess.CalledProcessError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"{what} could not be fetched: {exc.stderr}")


def signed(
    secret: str,
    body: bytes,
    *,
    webhook_id: str | None = None,
    timestamp: float | None = None,
    content_type: str = "application/cloudevents+json",
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    moment = datetime.fromtimestamp(timestamp or time.time(), tz=UTC)
    return {
        "content-type": content_type,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, moment, body.decode()),
        **(extra or {}),
    }
