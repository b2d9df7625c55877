"""``POST /webhooks/design-approved`` and ``/webhooks/design-withdrawn``: the CloudEvents HTTP
binding, signed per Standard Webhooks, answered 202 only once the broker has confirmed every
event.

Order of checks: size (413), signature (401, the same answer whatever part failed), the
producer's rate (429), content type (415), the events against the same contract the queue
consumer uses (400, naming the field), the broker (503 with Retry-After), the idempotency record
by ``webhook-id`` (a replay answers 202 again and publishes nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog

from consumers.ports import LedgerUnavailable
from contracts.cloudevents import (
    STRUCTURED_CONTENT_TYPE,
    CloudEvent,
    decode_binary,
    decode_structured,
)
from contracts.errors import ContractError
from contracts.events import DESIGN_APPROVED, EventType, decode_data
from service import problems
from service.ledger_watch import LedgerWatch
from service.webhooks.deliveries import Deliveries
from service.webhooks.ratelimit import RateLimit
from service.webhooks.signatures import Producer, verify

BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
BINARY_CONTENT_TYPE = "application/json"
PUBLISH_TIMEOUT_S = 5.0
log = structlog.get_logger("merch_pipeline.webhooks")


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


def problem(status: int, slug: str, detail: str, headers: dict[str, str] | None = None) -> Answer:
    """An RFC 9457 problem details body, of the one ``type`` scheme every route uses."""
    body = msgspec.to_builtins(problems.problem(status, detail, slug=slug))
    return Answer(status, body, headers or {})


UNAUTHORIZED = problem(401, "unauthorized", "The webhook signature could not be verified.")
LEDGER_AWAY = problem(
    503,
    "ledger-unavailable",
    "The service's database is not answering; nothing was published. Retry the delivery.",
    {"Retry-After": "5"},
)


@dataclass
class Ingress:
    producers: tuple[Producer, ...]
    deliveries: Deliveries
    publish: Callable[
        [CloudEvent, str | None], Awaitable[None]
    ]  # the event, the caller's traceparent
    broker_ready: Callable[[], bool]
    ledger: LedgerWatch | None  # where the idempotency record lives; None in unit tests
    rate: RateLimit
    tolerance_s: float
    max_body_bytes: int
    max_batch: int
    event_type: EventType = DESIGN_APPROVED  # what this door accepts

    @property
    def path(self) -> str:
        """``/webhooks/design-approved`` for ``design.approved``."""
        return "/webhooks/" + self.event_type.routing_key.replace(".", "-")

    async def receive(self, headers: Mapping[str, str], body: bytes) -> Answer:
        lowered = {k.lower(): v for k, v in headers.items()}
        if len(body) > self.max_body_bytes:
            return problem(
                413,
                "too-large",
                f"The body is {len(body)} bytes; the limit is {self.max_body_bytes}.",
            )
        producer = verify(self.producers, lowered, body, self.tolerance_s)
        if producer is None:
            log.warning("webhook.unauthorized", webhook_id=lowered.get("webhook-id"))
            return UNAUTHORIZED
        wait = self.rate.admit(producer.name)
        if wait is not None:
            return problem(
                429,
                "rate-limited",
                f"Producer {producer.name!r} is over its request rate.",
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )
        try:
            events = self._events(lowered, body)
        except _Unsupported as exc:
            return problem(415, "unsupported-media-type", str(exc))
        except _TooMany as exc:
            return problem(413, "batch-too-large", str(exc))
        except ContractError as exc:
            return problem(400, exc.reason.replace("_", "-"), exc.detail)
        return await self._publish_once(
            lowered["webhook-id"], producer, events, lowered.get("traceparent")
        )

    def _events(self, headers: dict[str, str], body: bytes) -> list[CloudEvent]:
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == STRUCTURED_CONTENT_TYPE:
            events = [decode_structured(body)]
        elif content_type == BATCH_CONTENT_TYPE:
            events = _batch(body, self.max_batch)
        elif content_type == BINARY_CONTENT_TYPE and "ce-specversion" in headers:
            attributes = {k[3:]: v for k, v in headers.items() if k.startswith("ce-")}
            events = [decode_binary(attributes, headers.get("content-type"), body)]
        else:
            raise _Unsupported(
                f"Content type {content_type or '(none)'!r} is not accepted: send "
                f"{STRUCTURED_CONTENT_TYPE}, {BATCH_CONTENT_TYPE}, or {BINARY_CONTENT_TYPE} "
                "with ce-* headers (binary mode)."
            )
        for index, event in enumerate(events):
            try:
                decode_data(event, self.event_type)
            except ContractError as exc:
                if len(events) == 1:
                    raise
                raise ContractError(exc.reason, f"event [{index}]: {exc.detail}") from None
        return events

    async def _publish_once(
        self,
        webhook_id: str,
        producer: Producer,
        events: list[CloudEvent],
        caller_traceparent: str | None,
    ) -> Answer:
        ids = [e.id for e in events]
        if not self.broker_ready():
            return problem(
                503,
                "broker-unavailable",
                "The broker is not reachable; retry the delivery.",
                {"Retry-After": "5"},
            )
        refused = await self._claim(webhook_id, producer, events)
        if refused is not None:
            return refused
        try:
            for event in events:
                await asyncio.wait_for(self.publish(event, caller_traceparent), PUBLISH_TIMEOUT_S)
        except Exception as exc:  # nothing is acknowledged: the producer's retry carries it
            with contextlib.suppress(LedgerUnavailable):
                await self.deliveries.release(webhook_id)
            log.warning("webhook.publish_failed", webhook_id=webhook_id, error=str(exc))
            return problem(
                503,
                "broker-unavailable",
                "The broker did not confirm the events; retry the delivery.",
                {"Retry-After": "5"},
            )
        try:
            await self.deliveries.published(webhook_id)
        except LedgerUnavailable as exc:  # the events are out: the producer's answer stands
            log.warning("webhook.record_unwritten", webhook_id=webhook_id, error=str(exc))
        log.info(
            "webhook.accepted", webhook_id=webhook_id, producer=producer.name, events=len(events)
        )
        return Answer(202, {"accepted": len(events), "ids": ids, "duplicate": False}, {})

    async def _claim(
        self, webhook_id: str, producer: Producer, events: list[CloudEvent]
    ) -> Answer | None:
        """Claim the webhook-id for this delivery (None), or the answer to give instead."""
        if self.ledger is not None and not self.ledger.available:
            return LEDGER_AWAY
        try:
            seen = await self.deliveries.claim(webhook_id, producer.name, len(events))
        except LedgerUnavailable as exc:
            if self.ledger is not None:
                await self.ledger.down(exc)
            return LEDGER_AWAY
        if seen == "published":
            log.info("webhook.replayed", webhook_id=webhook_id, producer=producer.name)
            ids = [e.id for e in events]
            return Answer(202, {"accepted": len(events), "ids": ids, "duplicate": True}, {})
        if seen is not None:
            return problem(
                409,
                "in-progress",
                "A delivery with this webhook-id is being published; retry.",
                {"Retry-After": "1"},
            )
        return None


class _Unsupported(Exception):
    pass


class _TooMany(Exception):
    pass


def _batch(body: bytes, max_batch: int) -> list[CloudEvent]:
    try:
        raw = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise ContractError("invalid_json", str(exc)) from None
    if not isinstance(raw, list) or not raw:
        raise ContractError("not_a_cloudevent", "a batch is a non-empty JSON array of events")
    if len(raw) > max_batch:
        raise _TooMany(f"The batch holds {len(raw)} events; the limit is {max_batch}.")
    events = []
    for index, item in enumerate(raw):
        try:
            events.append(decode_structured(msgspec.json.encode(item)))
        except ContractError as exc:
            raise ContractError(exc.reason, f"event [{index}]: {exc.detail}") from None
    return events
