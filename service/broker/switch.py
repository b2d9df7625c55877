"""Whether a consumer takes messages: the one owner of that decision.

Several reasons can stop a consumer at once (an operator's pause, the ledger being away, the
process shutting down). The consumer runs only while no reason holds, so lifting one reason
never undoes another: an automatic resume cannot end an operator's pause.
"""

from __future__ import annotations

import asyncio
import time

import msgspec
import structlog
from aio_pika.abc import AbstractQueue

from service.broker.consumer import Consumer

log = structlog.get_logger("merch_pipeline.consumer")

OPERATOR = "operator"  # an operator's pause (admin API)
LEDGER = "ledger"  # the ledger's database is away (service/ledger_watch.py)
SHUTDOWN = "shutdown"  # the process is stopping


class ConsumerHealth(msgspec.Struct, frozen=True):
    name: str
    attached: bool
    in_flight: int
    paused: bool = False
    prefetch: int = 0
    paused_for: list[str] = []  # the reasons that hold the consumer, e.g. ["operator"]


class ConsumerSwitch:
    def __init__(self, consumer: Consumer, prefetch: int) -> None:
        self.consumer = consumer
        self.prefetch = prefetch
        self.queue: AbstractQueue | None = None
        self._tag: str | None = None
        self._reasons: set[str] = set()
        self._lock = asyncio.Lock()
        self._held_since: dict[str, float] = {}
        self._held_s: dict[str, float] = {}  # time held, per reason, over finished holds

    @property
    def name(self) -> str:
        return self.consumer.names.consumer

    @property
    def reasons(self) -> frozenset[str]:
        return frozenset(self._reasons)

    @property
    def consuming(self) -> bool:
        return self._tag is not None

    async def attach(self, queue: AbstractQueue) -> None:
        """The queue to consume from; consuming starts now unless a reason holds."""
        async with self._lock:
            self.queue = queue
            await self._apply()

    async def hold(self, reason: str) -> None:
        """Stop taking messages for ``reason`` (in-flight ones finish). A cancelled consumer
        stays cancelled across reconnects: the robust queue forgets it."""
        async with self._lock:
            if reason not in self._reasons:
                self._reasons.add(reason)
                self._held_since[reason] = time.monotonic()
                report = log.info if reason == SHUTDOWN else log.warning
                report("consumer.paused", consumer=self.name, reason=reason)
            await self._apply()

    async def lift(self, reason: str) -> None:
        """``reason`` no longer holds; consuming resumes if no other reason does."""
        async with self._lock:
            if reason in self._reasons:
                self._reasons.discard(reason)
                held = time.monotonic() - self._held_since.pop(reason)
                self._held_s[reason] = self._held_s.get(reason, 0.0) + held
                log.warning(
                    "consumer.resumed" if not self._reasons else "consumer.still_paused",
                    consumer=self.name,
                    reason=reason,
                    still_paused_for=sorted(self._reasons),
                )
            await self._apply()

    async def _apply(self) -> None:
        if self.queue is None:
            return
        if not self._reasons and self._tag is None:
            self._tag = await self.queue.consume(self.consumer.on_message)
        elif self._reasons and self._tag is not None:
            tag, self._tag = self._tag, None
            await self.queue.cancel(tag)

    def paused_seconds(self) -> dict[str, float]:
        """How long the consumer has been held for each reason, ongoing holds included."""
        now = time.monotonic()
        totals = dict(self._held_s)
        for reason, since in self._held_since.items():
            totals[reason] = totals.get(reason, 0.0) + now - since
        return totals

    def health(self, broker_connected: bool) -> ConsumerHealth:
        attached = broker_connected and self.queue is not None and not self.queue.channel.is_closed
        return ConsumerHealth(
            name=self.name,
            attached=attached,
            in_flight=self.consumer.in_flight,
            paused=bool(self._reasons),
            prefetch=self.prefetch,
            paused_for=sorted(self._reasons),
        )
