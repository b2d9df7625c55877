"""The running service: broker connection, consumers, the HTTP app, and a graceful stop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aio_pika
import msgspec
import structlog
import uvicorn
from aio_pika.abc import AbstractChannel, AbstractQueue, AbstractRobustConnection
from litestar import Router

from contracts.cloudevents import CloudEvent
from contracts.events import DESIGN_APPROVED
from service.api.admin import admin_router
from service.api.app import ConsumerHealth, Readiness, create_app
from service.bootstrap import BoundConsumer, Resources, build_consumers, open_resources
from service.broker import dead_letters
from service.broker.codec import event_message
from service.broker.consumer import Consumer, RetryPolicy
from service.broker.headers import RETRY_BY
from service.broker.publisher import Publisher, open_publisher
from service.broker.topology import DESIGN_APPROVED_QUEUE, QUEUES, declare_queues
from service.failpoints import Failpoints, wrap
from service.secrets import redact_url
from service.settings import Settings
from service.webhooks.deliveries import Deliveries
from service.webhooks.ingress import Ingress
from service.webhooks.ratelimit import RateLimit
from service.webhooks.signatures import producers as webhook_producers

log = structlog.get_logger("merch_pipeline.runtime")


class TopologyMismatch(Exception):
    """A queue or exchange exists on the broker with other arguments than this version declares
    (RabbitMQ refuses to change them in place)."""


class Attached:
    def __init__(self, consumer: Consumer, queue: AbstractQueue, tag: str | None) -> None:
        self.consumer = consumer
        self.queue = queue
        self.tag = tag  # None while an operator has paused the consumer


class Service:
    def __init__(self, settings: Settings, consumer_names: tuple[str, ...]) -> None:
        self.settings = settings
        self.consumer_names = consumer_names
        self.connection: AbstractRobustConnection | None = None
        self.publisher: Publisher | None = None
        self.resources: Resources | None = None
        self.attached: list[Attached] = []

    def readiness(self) -> Readiness:
        connected = bool(
            self.connection and self.connection.connected.is_set() and not self.connection.is_closed
        )
        consumers = [
            ConsumerHealth(
                name=a.consumer.names.consumer,
                attached=connected and not a.queue.channel.is_closed,
                in_flight=a.consumer.in_flight,
                paused=a.tag is None,
                prefetch=self.settings.prefetch,
            )
            for a in self.attached
        ]
        ready = (
            connected
            and len(self.attached) == len(self.consumer_names)
            and all(c.attached for c in consumers)
        )
        return Readiness(ready=ready, broker_connected=connected, consumers=consumers)

    async def pause(self, name: str) -> bool:
        """Stop taking messages on consumer ``name`` (in-flight ones finish). False if unknown.
        A paused consumer stays paused across reconnects; the pod stays ready: it was asked to."""
        attached = next((a for a in self.attached if a.consumer.names.consumer == name), None)
        if attached is None:
            return False
        if attached.tag is not None:
            tag, attached.tag = attached.tag, None
            await attached.queue.cancel(tag)
            log.warning("consumer.paused", consumer=name)
        return True

    async def resume(self, name: str) -> bool:
        attached = next((a for a in self.attached if a.consumer.names.consumer == name), None)
        if attached is None:
            return False
        if attached.tag is None:
            attached.tag = await attached.queue.consume(attached.consumer.on_message)
            log.warning("consumer.resumed", consumer=name)
        return True

    async def connect(self, stop: asyncio.Event) -> AbstractRobustConnection | None:
        url = self.settings.amqp_url.reveal()
        delay = 1.0
        while not stop.is_set():
            try:
                return await aio_pika.connect_robust(
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
        return None

    async def render_metrics(self) -> bytes:
        """Gauges are read at scrape time; counters and histograms are kept as things happen."""
        if self.resources is None:
            return b""
        metrics = self.resources.metrics
        state = self.readiness()
        metrics.broker_connected.set(1 if state.broker_connected else 0)
        for consumer in state.consumers:
            metrics.in_flight.labels(consumer.name).set(consumer.in_flight)
        for design_state, count in (await self.resources.ledger.count_by_state()).items():
            metrics.designs.labels(design_state).set(count)
        if state.broker_connected:
            try:
                async with self.broker_channel() as channel:
                    for names in QUEUES.values():
                        depth = await dead_letters.depth(channel, names)
                        metrics.dead_letters.labels(names.dead_letter).set(depth.messages)
            except Exception as exc:  # a scrape must not fail because the broker hiccuped
                log.warning("metrics.dead_letters_unread", error=type(exc).__name__)
        return metrics.render()

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            self.settings.max_attempts,
            self.settings.retry_delays_s,
            self.settings.retry_jitter,
            defer_s=self.settings.defer_delays_s,
        )

    async def declare_topology(self, connection: AbstractRobustConnection) -> None:
        """Every queue, whatever consumers this process runs: an event published to
        merch.events must find its queue even while the role that consumes it is not up."""
        channel = await connection.channel()
        try:
            for names in QUEUES.values():
                await declare_queues(channel, names, self.retry_policy().queue_delays())
        finally:
            await channel.close()

    async def attach(
        self, connection: AbstractRobustConnection, publisher: Publisher, bound: BoundConsumer
    ) -> Attached:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=self.settings.prefetch)
        policy = self.retry_policy()
        queue = await declare_queues(channel, bound.names, policy.queue_delays())
        consumer = Consumer(
            names=bound.names,
            handle=bound.handle,
            exhausted=bound.exhausted,
            publisher=publisher,
            policy=policy,
            max_message_bytes=self.settings.max_message_bytes,
            after_publish=bound.after_publish,
            metrics=self.resources.metrics if self.resources else None,
        )
        tag = await queue.consume(consumer.on_message)
        log.info("consumer.attached", queue=bound.names.queue, prefetch=self.settings.prefetch)
        return Attached(consumer, queue, tag)

    async def run(self, stop: asyncio.Event) -> None:
        resources = await open_resources(self.settings)
        self.resources = resources
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(
                    self.readiness,
                    self._ingress(resources),
                    self.render_metrics,
                    self._admin(resources),
                ),
                host=self.settings.http_host,
                port=self.settings.http_port,
                log_config=None,
                access_log=False,
                lifespan="on",
            )
        )
        server_task = asyncio.create_task(server.serve(), name="http")
        try:
            # Start-up can hang on a broker that accepts TCP but refuses us (a missing vhost,
            # bad credentials): SIGTERM must still stop the process, so start-up races it.
            startup = asyncio.create_task(self._start(stop, resources), name="startup")
            stopping = asyncio.create_task(stop.wait(), name="stop")
            await asyncio.wait({startup, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if startup.done():
                startup.result()
                await stopping
            else:
                startup.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await startup
        finally:
            await self.shutdown()
            server.should_exit = True
            await server_task
            await resources.aclose()
            log.info("service.stopped")

    async def _start(self, stop: asyncio.Event, resources: Resources) -> None:
        self.connection = await self.connect(stop)
        if self.connection is None:
            return
        failpoints = Failpoints(self.settings.failpoints) if self.settings.failpoints else None
        publisher = wrap(
            await open_publisher(self.connection, self.settings.http_timeout_s), failpoints
        )
        self.publisher = publisher
        try:
            await self.declare_topology(self.connection)
        except aio_pika.exceptions.ChannelPreconditionFailed as exc:
            raise TopologyMismatch(str(exc)) from None
        for bound in build_consumers(self.settings, resources, self.consumer_names, failpoints):
            self.attached.append(await self.attach(self.connection, publisher, bound))
        log.info(
            "service.started",
            consumers=list(self.consumer_names),
            http_port=self.settings.http_port,
        )

    def _admin(self, resources: Resources) -> Router | None:
        """The admin routes, when an ADMIN_TOKEN is configured (otherwise off: 404)."""
        if not self.settings.admin_token:
            return None
        return admin_router(
            self.settings.admin_token,
            resources.ledger,
            resources.quota,
            self,
            timeout_s=self.settings.http_timeout_s,
            metrics=resources.metrics,
        )

    def _ingress(self, resources: Resources) -> Ingress | None:
        """The webhook ingress, when at least one producer secret is configured."""
        producers = webhook_producers(self.settings)
        if not producers:
            return None
        return Ingress(
            producers=producers,
            deliveries=Deliveries(resources.db),
            publish=self.publish_design_event,
            broker_ready=lambda: self.readiness().broker_connected,
            rate=RateLimit(self.settings.webhook_rate_per_minute),
            tolerance_s=self.settings.webhook_tolerance_s,
            max_body_bytes=self.settings.max_message_bytes,
            max_batch=self.settings.webhook_max_batch,
        )

    def _connected_publisher(self) -> Publisher:
        if self.publisher is None:
            raise RuntimeError("not connected to the broker yet")
        return self.publisher

    async def publish_design_event(self, event: CloudEvent) -> None:
        publisher = self._connected_publisher()
        if event.correlationid is None:
            event = msgspec.structs.replace(event, correlationid=event.id)
        await publisher.publish_event(event, DESIGN_APPROVED.routing_key)

    async def send_design_to_queue(self, event: CloudEvent, operator: str) -> None:
        """Put a design.approved event straight on our queue as an operator's retry, a first
        attempt (other subscribers of merch.events had it already)."""
        message = event_message(event)
        message.headers[RETRY_BY] = operator
        await self._connected_publisher().send_to_queue(DESIGN_APPROVED_QUEUE.queue, message)

    async def publish_event(self, event: CloudEvent, routing_key: str) -> None:
        await self._connected_publisher().publish_event(event, routing_key)

    @contextlib.asynccontextmanager
    async def broker_channel(self) -> AsyncIterator[AbstractChannel]:
        """A channel with publisher confirms for one admin operation, closed after it."""
        if self.connection is None or not self.readiness().broker_connected:
            raise RuntimeError("not connected to the broker")
        channel = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
        try:
            yield channel
        finally:
            with contextlib.suppress(Exception):
                await channel.close()

    async def shutdown(self) -> None:
        """Stop taking messages, let in-flight ones finish within the grace period, close.
        What has not finished by then is requeued by the broker when the connection closes."""
        for attached in self.attached:
            if attached.tag is None:
                continue
            with contextlib.suppress(Exception):
                await attached.queue.cancel(attached.tag)
        pending = [a.consumer.idle.wait() for a in self.attached]
        if pending:
            try:
                await asyncio.wait_for(asyncio.gather(*pending), self.settings.shutdown_grace_s)
            except TimeoutError:
                log.warning(
                    "shutdown.grace_exceeded",
                    in_flight=sum(a.consumer.in_flight for a in self.attached),
                )
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.connection.close(), 10)
