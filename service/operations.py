"""What an operator does to the running process, for the admin API: pause and resume a
consumer, publish an event, send a design back to its queue, take a broker channel for the
dead-letter tools. Broker failures become ``service.errors`` the API maps to problems."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping

import msgspec
import structlog
from aio_pika.abc import AbstractChannel

from contracts.cloudevents import CloudEvent
from contracts.events import EVENT_TYPES
from service.broker.codec import event_message
from service.broker.headers import RETRY_BY
from service.broker.link import BrokerLink
from service.broker.switch import OPERATOR, ConsumerHealth, ConsumerSwitch
from service.broker.topology import DESIGN_APPROVED_QUEUE
from service.errors import ActionError, NotFound, Unavailable

log = structlog.get_logger("merch_pipeline.admin")


class Operations:
    def __init__(
        self, link: BrokerLink, switches: Mapping[str, ConsumerSwitch], timeout_s: float
    ) -> None:
        self._link = link
        self._switches = switches
        self.timeout_s = timeout_s  # for a publish the action waits on (a replay's confirms)

    def consumers(self) -> list[ConsumerHealth]:
        connected = self._link.connected()
        return [switch.health(connected) for switch in self._switches.values()]

    def _switch(self, name: str) -> ConsumerSwitch:
        switch = self._switches.get(name)
        if switch is None:
            raise NotFound(f"this process runs no consumer {name!r}")
        return switch

    async def pause(self, name: str) -> ConsumerHealth:
        """Stop taking messages on consumer ``name`` (in-flight ones finish), until resumed."""
        switch = self._switch(name)
        await switch.hold(OPERATOR)
        return switch.health(self._link.connected())

    async def resume(self, name: str) -> ConsumerHealth:
        """Lift the operator's pause; other reasons to stop (if any) still hold."""
        switch = self._switch(name)
        await switch.lift(OPERATOR)
        return switch.health(self._link.connected())

    async def publish_producer_event(self, event: CloudEvent) -> None:
        """Publish a producer's event (design.approved, design.withdrawn: checked against its
        contract already) to merch.events with its type's routing key (its correlation id is
        its own id when it has none)."""
        if event.correlationid is None:
            event = msgspec.structs.replace(event, correlationid=event.id)
        await self._link.publish_event(event, EVENT_TYPES[event.type].routing_key)

    async def send_design_to_queue(self, event: CloudEvent, operator: str) -> None:
        """Put a design.approved event straight on our queue as an operator's retry, a first
        attempt (other subscribers of merch.events had it already)."""
        message = event_message(event)
        message.headers[RETRY_BY] = operator
        await self._link.send_to_queue(DESIGN_APPROVED_QUEUE.queue, message)

    async def publish_event(self, event: CloudEvent, routing_key: str) -> None:
        await self._link.publish_event(event, routing_key)

    @contextlib.asynccontextmanager
    async def broker_channel(self) -> AsyncIterator[AbstractChannel]:
        """A confirmed channel for one action. A broker that does not answer, now or during
        the action, is ``Unavailable``; the action's own errors pass through unchanged."""
        try:
            async with self._link.channel() as channel:
                yield channel
        except ActionError:
            raise
        except Exception as exc:
            log.warning("admin.broker_error", error=type(exc).__name__)
            raise Unavailable(
                f"the broker did not answer ({type(exc).__name__})", slug="broker-unavailable"
            ) from None
