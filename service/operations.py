"""What an operator does to the running process, for the admin API: pause and resume a
consumer, publish an event, send a design back to its queue, take a broker channel for the
dead-letter tools. Broker failures become ``service.errors`` the API maps to problems."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping

import msgspec
import structlog
from aio_pika.abc import AbstractChannel
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Tracer

from contracts.cloudevents import CloudEvent
from contracts.events import EVENT_TYPES
from service.broker.codec import event_message
from service.broker.headers import RETRY_BY, TRACEPARENT
from service.broker.link import BrokerLink
from service.broker.switch import OPERATOR, ConsumerHealth, ConsumerSwitch
from service.broker.topology import DESIGN_APPROVED_QUEUE
from service.errors import ActionError, NotFound, Unavailable
from service.observability.tracing import context_of, send_attributes, traceparent_of

log = structlog.get_logger("merch_pipeline.admin")


class Operations:
    def __init__(
        self,
        link: BrokerLink,
        switches: Mapping[str, ConsumerSwitch],
        timeout_s: float,
        tracer: Tracer | None = None,
    ) -> None:
        self._link = link
        self._switches = switches
        self.timeout_s = timeout_s  # for a publish the action waits on (a replay's confirms)
        self._tracer = tracer or trace.NoOpTracer()

    def connected(self) -> bool:
        return self._link.connected()

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

    async def publish_producer_event(
        self, event: CloudEvent, caller_traceparent: str | None = None
    ) -> None:
        """Publish a producer's event (design.approved, design.withdrawn, a Fourthwall change:
        checked against its contract already) to merch.events with its type's routing key (its
        correlation id is its own id when it has none), under a PRODUCER span in the event's
        trace. An event without a ``traceparent`` gets the span's, a child of the HTTP
        request's SERVER span; an event with one links that request (or, untraced, the
        caller's ``traceparent`` header)."""
        if event.correlationid is None:
            event = msgspec.structs.replace(event, correlationid=event.id)
        routing_key = EVENT_TYPES[event.type].routing_key
        request = trace.get_current_span().get_span_context()
        caller = None if request.is_valid else context_of(caller_traceparent)
        parent = context_of(event.traceparent) or caller  # None: the request's span
        links = []
        if parent is not None and parent is not caller:
            cause = request if request.is_valid else None
            if cause is None and caller is not None:
                cause = trace.get_current_span(caller).get_span_context()
            links = [Link(cause)] if cause is not None else []
        with self._tracer.start_as_current_span(
            f"{routing_key} publish",
            context=parent,
            kind=SpanKind.PRODUCER,
            links=links,
            attributes=send_attributes("merch.events", event.id, routing_key=routing_key),
        ) as span:
            if event.traceparent is None:
                event = msgspec.structs.replace(event, traceparent=traceparent_of(span))
            await self._link.publish_event(event, routing_key)

    async def send_design_to_queue(self, event: CloudEvent, operator: str) -> None:
        """Put a design.approved event straight on our queue as an operator's retry, a first
        attempt (other subscribers of merch.events had it already). The retry is a PRODUCER
        span in the design's trace (its ``traceparent``); the copy carries the span's context
        in its AMQP header only, its body is the event as it was. The operator's HTTP request
        (its SERVER span), when traced, is a link."""
        queue = DESIGN_APPROVED_QUEUE.queue
        request = trace.get_current_span().get_span_context()
        with self._tracer.start_as_current_span(
            f"{queue} retry",
            context=context_of(event.traceparent),
            kind=SpanKind.PRODUCER,
            links=[Link(request)] if request.is_valid else [],
            attributes={**send_attributes(queue, event.id), "merch.operator": operator},
        ) as span:
            message = event_message(event)
            message.headers[RETRY_BY] = operator
            traceparent = traceparent_of(span)
            if traceparent is not None:
                message.headers[TRACEPARENT] = traceparent
            await self._link.send_to_queue(queue, message)

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
