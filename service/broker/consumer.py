"""The generic consume loop: decode, dispatch, and map each outcome to broker actions.

This is the one place that decides ack / retry / dead-letter. A message is acked only after its
outgoing events (and any retry or dead-letter copy) are confirmed by the broker; if anything on
that path fails, the message stays unacked and the broker redelivers it.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import structlog
from aio_pika.abc import AbstractIncomingMessage
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode, Tracer

from consumers.outcomes import Defer, Done, Outcome, Outgoing, Reject, Retry
from consumers.ports import Delivery, LedgerUnavailable
from contracts.cloudevents import CloudEvent, encode_structured
from contracts.errors import ContractError
from contracts.events import EXCHANGE, EventData, decode_data, event_type_of, make_event
from contracts.timestamps import now_iso
from service.broker import headers
from service.broker.codec import copy_message, decode_message, message_traceparent
from service.broker.publisher import Publishes
from service.broker.topology import QueueNames
from service.observability.metrics import Metrics
from service.observability.tracing import context_of, send_attributes, traceparent_of

log = structlog.get_logger("merch_pipeline.consumer")

Handler = Callable[[Any, Delivery], Awaitable[Outcome]]
Exhausted = Callable[[Any, Retry, int], list[Outgoing]]
AfterPublish = Callable[[Any], Awaitable[None]]
LedgerDown = Callable[[LedgerUnavailable], Awaitable[None]]
# Parks a deferred message (as it would be put back) until its wait is over; see parking.py.
Park = Callable[[aio_pika.Message, Any, Defer], Awaitable[None]]
PARKED_REASONS = frozenset({"quota", "throttled"})  # waits for the shop's quota
# A message whose outcome could not be settled (its events' publish failed: the publishing
# channel was away) is handed back after this pause, while its own channel is open; a channel
# that is gone hands it back by itself.
UNSETTLED_BACKOFF_S = 2.0


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff over broker-side delay queues. Each delay ``d`` has three queues, ``d`` and
    ``d * (1 ± jitter)``; a retry picks one at random, so retries that failed together do not
    come back together (a queue's TTL is fixed: jitter has to be a choice of queue)."""

    max_attempts: int
    delays_s: tuple[float, ...]
    jitter: float = 0.0
    rng: random.Random = field(default_factory=random.Random)

    def variants(self, delay: float) -> tuple[float, ...]:
        if not self.jitter:
            return (delay,)
        return tuple(sorted({round(delay * f, 3) for f in (1 - self.jitter, 1, 1 + self.jitter)}))

    def queue_delays(self) -> tuple[float, ...]:
        """Every delay queue the topology needs."""
        return tuple(sorted({v for d in self.delays_s for v in self.variants(d)}))

    def defer_delay(self, wait_s: float) -> float:
        """A deferral that is not parked (a busy design, a lease lost) takes the longest delay
        queue that does not overshoot its wait: back early rather than late."""
        ladder = self.queue_delays()
        shorter = [d for d in ladder if d <= wait_s]
        return max(shorter) if shorter else ladder[0]

    def delay_for(self, attempt: int, retry_after_s: float | None) -> float:
        """The delay after failed attempt ``attempt`` (1-based), at least ``Retry-After``."""
        base = self.delays_s[min(attempt - 1, len(self.delays_s) - 1)]
        delay = self.rng.choice(self.variants(base))
        if retry_after_s is not None and retry_after_s > delay:
            delay = self.tier_at_least(retry_after_s)
        return delay

    def tier_at_least(self, seconds: float) -> float:
        delays = self.queue_delays()
        longer = [d for d in delays if d >= seconds]
        return min(longer) if longer else max(delays)


def _identity(data: EventData) -> dict[str, Any]:
    return {
        k: getattr(data, k)
        for k in ("shop_id", "design_id", "product_id")
        if getattr(data, k, None) is not None
    }


@dataclass
class Consumer:
    names: QueueNames
    handle: Handler
    exhausted: Exhausted
    publisher: Publishes
    policy: RetryPolicy
    max_message_bytes: int
    after_publish: AfterPublish | None = None
    metrics: Metrics | None = None
    ledger_down: LedgerDown | None = None  # pauses the process's consumers (LedgerWatch.down)
    tracer: Tracer = field(default_factory=trace.NoOpTracer)
    park: Park | None = None  # where quota waits go instead of the delay queues
    in_flight: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.idle.set()

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        self.in_flight += 1
        self.idle.clear()
        started = time.monotonic()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            queue=self.names.queue, message_id=message.message_id
        )
        outcome = "unsettled"
        try:
            with self._span(message) as span:
                outcome = await self._process(message)
                span.set_attribute("merch.outcome", outcome)
            log.info(
                "message.handled",
                outcome=outcome,
                duration_ms=round((time.monotonic() - started) * 1000, 1),
            )
        except Exception:
            # Publishing or acking failed (broker gone, confirm refused). The handlers are
            # idempotent: hand the message back for a redelivery that resumes. Left unacked on
            # a consumer channel that stayed open, it would wait there for good.
            log.exception(
                "message.unsettled", duration_ms=round((time.monotonic() - started) * 1000, 1)
            )
            await _hand_back(message)
        finally:
            if self.metrics is not None:
                self.metrics.messages.labels(self.names.queue, outcome).inc()
                self.metrics.handler_seconds.labels(self.names.queue).observe(
                    time.monotonic() - started
                )
            self.in_flight -= 1
            if self.in_flight == 0:
                self.idle.set()
            structlog.contextvars.clear_contextvars()

    def _span(self, message: AbstractIncomingMessage) -> Any:
        """The delivery's CONSUMER span, a child of the span that published the message (its
        AMQP ``traceparent`` header, or the CloudEvent's when a producer set only that)."""
        return self.tracer.start_as_current_span(
            f"{self.names.queue} process",
            context=context_of(message_traceparent(message, self.max_message_bytes)),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.operation.type": "process",
                "messaging.operation.name": "process",
                "messaging.destination.name": self.names.queue,
                "messaging.message.id": message.message_id or "",
            },
        )

    async def _process(self, message: AbstractIncomingMessage) -> str:
        seen = headers.received(message.headers)
        try:
            event = decode_message(message, self.max_message_bytes)
            structlog.contextvars.bind_contextvars(event_id=event.id, type=event.type)
            data = decode_data(event, self.names.event)
        except ContractError as exc:
            log.warning("message.invalid", reason=exc.reason, detail=exc.detail)
            _mark_failed("input", exc.reason)
            await self._dead_letter(message, self._failure(message, seen, exc.reason, exc))
            await message.ack()
            return "dead-lettered"
        structlog.contextvars.bind_contextvars(attempt=seen.attempt, **_identity(data))
        trace.get_current_span().set_attributes(
            {"merch.attempt": seen.attempt, **{f"merch.{k}": v for k, v in _identity(data).items()}}
        )
        delivery = Delivery(
            attempt=seen.attempt,
            final=seen.attempt >= self.policy.max_attempts,
            token=uuid.uuid4().hex,
            event_id=event.id,
            quota_ticket=seen.quota_ticket,
            cloud_event=encode_structured(event),
            retry_by=seen.retry_by,
        )
        try:
            try:
                outcome = await self.handle(data, delivery)
            except LedgerUnavailable:
                raise
            except Exception as exc:  # a bug, not an input: retry with backoff, then dead-letter
                log.exception("handler.crashed")
                outcome = Retry(
                    stage="input",
                    code="INTERNAL_ERROR",
                    detail=f"{type(exc).__name__}: {exc}"[:500],
                )
            if isinstance(outcome, Retry | Reject):
                _mark_failed(outcome.stage, outcome.code)
            return await self._settle(message, event, data, outcome, seen)
        except LedgerUnavailable as exc:
            return await self._hand_back(message, seen, exc)

    async def _hand_back(
        self, message: AbstractIncomingMessage, seen: headers.Received, exc: LedgerUnavailable
    ) -> str:
        """The ledger is away: not the message's fault. Pause the consumers, then put the
        message back on its queue as it came (same attempt, no failure recorded) with a
        confirm, and ack it: a nack would raise the quorum queue's delivery count instead."""
        if self.ledger_down is not None:
            await self.ledger_down(exc)
        routing_key = seen.original_routing_key or message.routing_key or ""
        copy = copy_message(message, {headers.ORIGINAL_ROUTING_KEY: routing_key})
        await self.publisher.send_to_queue(self.names.queue, copy)
        await message.ack()
        log.warning("message.handed_back", reason="ledger_unavailable", error=str(exc))
        return "handed-back"

    async def _settle(
        self,
        message: AbstractIncomingMessage,
        event: CloudEvent,
        data: EventData,
        outcome: Outcome,
        seen: headers.Received,
    ) -> str:
        attempt = seen.attempt
        match outcome:
            case Done():
                if outcome.note:
                    log.info("message.no_effect", note=outcome.note)
                await self._publish(event, outcome.events)
                if self.after_publish is not None:
                    await self.after_publish(data)
                await message.ack()
                return "no_effect" if outcome.note else "done"
            case Defer():
                # Not a failure: the attempt count stays, only the deferral count grows.
                moved = {
                    headers.DEFERRALS: seen.deferrals + 1,
                    headers.ATTEMPT: attempt,
                    headers.QUOTA_TICKET: outcome.quota_ticket,
                }
                if self.park is not None and outcome.reason in PARKED_REASONS:
                    await self.park(copy_message(message, moved), data, outcome)
                    await message.ack()
                    self._count_deferral(outcome)
                    log.info(
                        "message.parked", reason=outcome.reason, wait_s=round(outcome.delay_s, 3)
                    )
                    return "parked"
                delay = self.policy.defer_delay(outcome.delay_s)
                await self._delay(
                    message,
                    delay,
                    moved,
                    "message.deferred",
                    reason=outcome.reason,
                    wait_s=round(outcome.delay_s, 3),
                )
                self._count_deferral(outcome)
                return "deferred"
            case Reject():
                await self._publish(event, outcome.events)
                reason = "attempts_exhausted" if outcome.exhausted else "permanent_failure"
                await self._dead_letter(message, self._failure(message, seen, reason, outcome))
                await message.ack()
                log.warning(
                    "message.rejected",
                    stage=outcome.stage,
                    code=outcome.code,
                    detail=outcome.detail,
                    reason=reason,
                )
                return "rejected"
            case Retry() if attempt < self.policy.max_attempts:
                delay = self.policy.delay_for(attempt, outcome.retry_after_s)
                failure = self._failure(message, seen, "transient_failure", outcome)
                moved = {**failure.to_headers(), headers.ATTEMPT: attempt + 1}
                await self._delay(
                    message,
                    delay,
                    moved,
                    "message.retry_scheduled",
                    stage=outcome.stage,
                    code=outcome.code,
                    next_attempt=attempt + 1,
                )
                return "retry-scheduled"
            case Retry():
                await self._publish(event, self.exhausted(data, outcome, attempt))
                failure = self._failure(message, seen, "attempts_exhausted", outcome)
                await self._dead_letter(message, failure)
                await message.ack()
                log.warning(
                    "message.exhausted", stage=outcome.stage, code=outcome.code, attempts=attempt
                )
                return "exhausted"

    async def _delay(
        self,
        message: AbstractIncomingMessage,
        delay_s: float,
        changed: dict[str, Any],
        log_event: str,
        **fields: Any,
    ) -> None:
        """Copy the message to the delay queue of ``delay_s`` with ``changed`` headers, ack it,
        and log ``log_event``: the broker hands it back when the delay has passed."""
        await self.publisher.send_to_queue(
            self.names.retry(delay_s), copy_message(message, changed)
        )
        await message.ack()
        log.info(log_event, delay_s=delay_s, **fields)

    def _count_deferral(self, outcome: Defer) -> None:
        if self.metrics is None:
            return
        self.metrics.deferrals.labels(self.names.queue, outcome.reason).inc()
        if outcome.reason == "quota":
            self.metrics.quota_wait_seconds.observe(outcome.delay_s)

    async def _publish(self, cause: CloudEvent, events: list[Outgoing]) -> None:
        """Each event under a PRODUCER span whose context it carries (the CloudEvents
        distributed tracing extension, and the AMQP header); without tracing, the cause's."""
        for outgoing in events:
            routing_key = event_type_of(outgoing.data).routing_key
            with self.tracer.start_as_current_span(
                f"{routing_key} publish",
                kind=SpanKind.PRODUCER,
                attributes=send_attributes(EXCHANGE, outgoing.event_id, routing_key),
            ) as span:
                cloud_event = make_event(
                    outgoing.data,
                    event_id=outgoing.event_id,
                    time=now_iso(),
                    correlation_id=cause.correlationid or cause.id,
                    traceparent=traceparent_of(span) or cause.traceparent,
                    subject=outgoing.subject,
                )
                await self.publisher.publish_event(cloud_event, routing_key)

    def _failure(
        self,
        message: AbstractIncomingMessage,
        seen: headers.Received,
        reason: str,
        cause: Retry | Reject | ContractError,
    ) -> headers.Failure:
        now = now_iso()
        code = cause.reason if isinstance(cause, ContractError) else cause.code
        return headers.Failure(
            reason=reason,
            code=code,
            detail=cause.detail,
            attempts=seen.attempt,
            first_failure=seen.first_failure or now,
            last_failure=now,
            source_queue=self.names.queue,
            original_routing_key=seen.original_routing_key or message.routing_key or "",
        )

    async def _dead_letter(
        self, message: AbstractIncomingMessage, failure: headers.Failure
    ) -> None:
        written = {**failure.to_headers(), headers.DEAD_LETTER_ID: uuid.uuid4().hex}
        await self.publisher.send_to_queue(self.names.dead_letter, copy_message(message, written))


async def _hand_back(message: AbstractIncomingMessage) -> None:
    """Requeue an unsettled message after a pause (so a broker link being restored is not met
    by a burst of redeliveries, each counted against the queue's delivery limit)."""
    await asyncio.sleep(UNSETTLED_BACKOFF_S)
    try:
        await message.nack(requeue=True)
    except Exception as exc:  # its channel is gone: the broker requeued it already
        log.info("message.hand_back_skipped", error=type(exc).__name__)


def _mark_failed(stage: str, code: str) -> None:
    """The delivery's span ends in error, with the failure's code (``error.type``)."""
    span = trace.get_current_span()
    span.set_attributes({"error.type": code, "merch.error.stage": stage})
    span.set_status(StatusCode.ERROR, f"{stage}.{code}")
