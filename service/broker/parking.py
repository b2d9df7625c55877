"""Parking a delivery in the ledger and releasing it back to its queue.

``park`` stores the message as it would be put back (the same bytes, the same properties, the
deferral headers updated) and acks it; ``Releaser`` runs in every replica: it sleeps until the
earliest parked message is due (or ``poll_s``, for the ones other replicas parked), claims the due
ones, puts each back on its queue with a publisher confirm, then deletes them. A crash between the
publish and the delete releases a message twice (the ledger's claim makes the second delivery
harmless); never zero times.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aio_pika
import msgspec
import structlog

from consumers.outcomes import Defer
from consumers.ports import LedgerUnavailable
from service.broker.consumer import LedgerDown, Park
from service.broker.link import NotConnected
from service.broker.publisher import Publishes
from service.store.parking import Claimed, ParkingLot

log = structlog.get_logger("merch_pipeline.parking")

CLAIMED_ELSEWHERE_S = 0.05
_PROPERTIES = ("content_type", "content_encoding", "message_id", "correlation_id", "type", "app_id")


def _tagged(value: Any) -> Any:
    """An AMQP header value as JSON, keeping the types JSON has not (bytes, timestamps)."""
    if isinstance(value, bytes | bytearray):
        return {"$bytes": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, datetime):
        return {"$time": value.timestamp()}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, dict):
        return {k: _tagged(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_tagged(v) for v in value]
    return value


def _untagged(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$bytes"}:  # AMQP's byte array is a bytearray to pamqp
            return bytearray(base64.b64decode(value["$bytes"]))
        if set(value) == {"$decimal"}:
            return Decimal(value["$decimal"])
        if set(value) == {"$time"}:
            return datetime.fromtimestamp(value["$time"], UTC)
        return {k: _untagged(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_untagged(v) for v in value]
    return value


def stored(message: aio_pika.Message) -> tuple[bytes, bytes]:
    """(body, properties) of a message to park."""
    properties: dict[str, Any] = {name: getattr(message, name) for name in _PROPERTIES}
    properties["headers"] = _tagged(dict(message.headers or {}))
    if message.timestamp is not None:
        properties["timestamp"] = message.timestamp.timestamp()
    return message.body, msgspec.json.encode(properties)


def restored(claimed: Claimed) -> aio_pika.Message:
    """The parked message, as it was parked."""
    properties = msgspec.json.decode(claimed.properties)
    stamp = properties.get("timestamp")
    return aio_pika.Message(
        claimed.body,
        headers=_untagged(properties.get("headers") or {}),
        timestamp=datetime.fromtimestamp(stamp, UTC) if stamp is not None else None,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        **{name: properties.get(name) for name in _PROPERTIES},
    )


class Releaser:
    """Puts due parked messages back on their queues; one per replica."""

    def __init__(
        self,
        lot: ParkingLot,
        publisher: Publishes,
        *,
        poll_s: float = 1.0,
        lead_s: float = 0.0,
        batch: int = 100,
        clock: Any = time.time,
        ledger_down: LedgerDown | None = None,
    ) -> None:
        self.lot = lot
        self.publisher = publisher
        self.poll_s = poll_s  # the longest sleep: messages other replicas parked are seen by then
        # Released this early: the consumer holds the rest of the wait (it holds waits up to
        # QUOTA_MAX_HOLD_S), so the trip back through the broker does not make the slot late.
        self.lead_s = lead_s
        self.batch = batch
        self.clock = clock
        # tells the ledger watch, which pauses the consumers and probes (a pod whose designs
        # are all parked notices a lost database here first)
        self.ledger_down = ledger_down
        self.owner = uuid.uuid4().hex
        self.released_total = 0
        self._wake = asyncio.Event()
        self._wake_at = float("inf")  # when the loop means to look again (inf: looking now)

    def parked(self, due_at: float) -> None:
        """This process parked a message: look again earlier if it is due first."""
        if due_at - self.lead_s < self._wake_at:
            self._wake.set()

    async def release_due(self) -> int:
        """Release what is due now, batch after batch; how many."""
        total = 0
        while True:
            claimed = await self.lot.claim_due(self.owner, self.batch, self.lead_s)
            sent: list[str] = []
            try:
                for message in claimed:
                    await self.publisher.send_to_queue(message.queue, restored(message))
                    sent.append(message.id)
            finally:
                await self.lot.released(self.owner, sent)
                left = [m.id for m in claimed if m.id not in set(sent)]
                if left:
                    with contextlib.suppress(LedgerUnavailable):
                        await self.lot.unclaim(self.owner, left)
            total += len(sent)
            self.released_total += len(sent)
            if len(claimed) < self.batch:
                return total

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``: release what is due, sleep until the next is due (at most
        ``poll_s``), again. An absent ledger or broker is waited out, not fatal."""
        while not stop.is_set():
            self._wake_at = float("inf")
            self._wake.clear()
            try:
                next_due = await self.lot.next_due()
                if next_due is not None and next_due - self.lead_s <= self.clock():
                    if await self.release_due():
                        log.debug("parking.released", released=self.released_total)
                    next_due = await self.lot.next_due()
            except (LedgerUnavailable, NotConnected, aio_pika.exceptions.AMQPError) as exc:
                log.warning("parking.release_failed", error=type(exc).__name__)
                if isinstance(exc, LedgerUnavailable) and self.ledger_down is not None:
                    await self.ledger_down(exc)
                next_due = None
            now = self.clock()
            wait = self.poll_s
            if next_due is not None:
                # a due row left after releasing is another replica's, being released: a
                # moment, not a busy loop
                wait = min(wait, max(CLAIMED_ELSEWHERE_S, next_due - self.lead_s - now))
            self._wake_at = now + wait
            if wait > 0 and not self._wake.is_set():  # set: parked meanwhile, look again now
                await _first_of(stop, self._wake, wait)


async def _first_of(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()


def parker(lot: ParkingLot, releaser: Releaser, queue: str) -> Park:
    """The consume loop's ``park`` for ``queue``: store the message until its wait is over and
    tell this replica's releaser when that is."""

    async def park(message: aio_pika.Message, data: Any, outcome: Defer) -> None:
        due_at = lot.clock() + outcome.delay_s
        body, properties = stored(message)
        await lot.park(
            queue=queue,
            key=(data.shop_id, data.design_id, data.revision),
            reason=outcome.reason,
            due_at=due_at,
            body=body,
            properties=properties,
        )
        releaser.parked(due_at)

    return park
