"""The process lifecycle: connect to the broker, declare the topology, attach the consumers,
serve HTTP, and stop gracefully. What runs is built by the composition root
(``service.bootstrap.wire``); nothing here constructs an adapter."""

from __future__ import annotations

import asyncio
import contextlib

import aio_pika
import structlog
import uvicorn
from aio_pika.abc import AbstractQueue

from service.bootstrap import Wiring, retry_policy, wire
from service.broker.switch import SHUTDOWN, ConsumerSwitch
from service.broker.topology import QUEUES, declare_queues
from service.health import Readiness
from service.settings import Settings

log = structlog.get_logger("merch_pipeline.runtime")


class TopologyMismatch(Exception):
    """A queue or exchange exists on the broker with other arguments than this version declares
    (RabbitMQ refuses to change them in place)."""


class Service:
    def __init__(self, wiring: Wiring) -> None:
        self.wiring = wiring
        self.settings = wiring.settings
        self._delays = retry_policy(wiring.settings).queue_delays()
        self._releasing = asyncio.Event()  # set: the releaser stops
        self._releaser: asyncio.Task[None] | None = None

    def readiness(self) -> Readiness:
        return self.wiring.readiness()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, then stop taking messages and finish in-flight ones."""
        server = uvicorn.Server(
            uvicorn.Config(
                self.wiring.app,
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
            startup = asyncio.create_task(self._start(stop), name="startup")
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
            log.info("service.stopped")

    async def _start(self, stop: asyncio.Event) -> None:
        if not await self.wiring.link.connect(stop):
            return
        try:
            await self._declare_topology()
        except aio_pika.exceptions.ChannelPreconditionFailed as exc:
            raise TopologyMismatch(str(exc)) from None
        self._releaser = asyncio.create_task(
            self.wiring.releaser.run(self._releasing), name="releaser"
        )
        for switch in self.wiring.switches:
            await switch.attach(await self._queue_of(switch))
            log.info(
                "consumer.attached", queue=switch.consumer.names.queue, prefetch=switch.prefetch
            )
        log.info(
            "service.started",
            consumers=[s.name for s in self.wiring.switches],
            http_port=self.settings.http_port,
        )

    async def _declare_topology(self) -> None:
        """Every queue, whatever consumers this process runs: an event published to
        merch.events must find its queue even while the role that consumes it is not up."""
        connection = self.wiring.link.connection
        assert connection is not None
        channel = await connection.channel()
        try:
            for names in QUEUES.values():
                await declare_queues(channel, names, self._delays)
        finally:
            await channel.close()

    async def _queue_of(self, switch: ConsumerSwitch) -> AbstractQueue:
        """The consumer's queue on a channel of its own, with its prefetch."""
        connection = self.wiring.link.connection
        assert connection is not None
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=switch.prefetch)
        return await declare_queues(channel, switch.consumer.names, self._delays)

    async def shutdown(self) -> None:
        """Stop taking messages, let in-flight ones finish within the grace period, close.
        What has not finished by then is requeued by the broker when the connection closes."""
        switches = self.wiring.switches
        for switch in switches:
            with contextlib.suppress(Exception):
                await switch.hold(SHUTDOWN)
        pending = [s.consumer.idle.wait() for s in switches]
        if pending:
            try:
                await asyncio.wait_for(asyncio.gather(*pending), self.settings.shutdown_grace_s)
            except TimeoutError:
                log.warning(
                    "shutdown.grace_exceeded", in_flight=sum(s.consumer.in_flight for s in switches)
                )
        self._releasing.set()  # a release under way finishes; what is left waits in the ledger
        if self._releaser is not None:
            await asyncio.gather(self._releaser, return_exceptions=True)
        await self.wiring.link.close()


async def run_service(
    settings: Settings, consumer_names: tuple[str, ...], stop: asyncio.Event
) -> None:
    """``merch-pipeline run``: wire the process, run it until ``stop``, close what was opened."""
    wiring = await wire(settings, consumer_names)
    try:
        await Service(wiring).run(stop)
    finally:
        await wiring.aclose()
