"""Exchange, queues and their arguments, declared explicitly (RabbitMQ 3.x and 4.x differ in
defaults, so nothing is left to them).

For each consumer queue Q:
- ``Q``                   quorum, bound to ``merch.events`` by its routing key, ``x-delivery-limit``
                          as the last guard against a message that crashes the process; what passes
                          the limit is dead-lettered by the broker to ``Q.dead-letter``.
- ``Q.retry.<N>s``        one quorum delay queue per retry tier, fixed ``x-message-ttl`` (quorum
                          queues expire only at the head, so one TTL per queue keeps order = expiry
                          order), dead-lettering back to ``Q`` through the default exchange.
- ``Q.dead-letter``       quorum, where the service parks what it will not retry, with reason
                          headers; a delivery limit far out of reach (see below).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange

from contracts.events import (
    DESIGN_APPROVED,
    DESIGN_WITHDRAWN,
    EXCHANGE,
    FOURTHWALL_PRODUCT_CHANGED,
    PRODUCT_CREATED,
    EventType,
)

DELIVERY_LIMIT = 10
# A dead-letter queue is only read by operators (peek returns what it looked at, and before
# RabbitMQ 4.3 every return counts as a delivery). 4.x quorum queues default to a limit of 20
# and drop what passes it; -1 ("no limit" on 4.x) drops every returned message on 3.x. So the
# limit is explicit and out of reach.
DEAD_LETTER_DELIVERY_LIMIT = 1_000_000


@dataclass(frozen=True)
class QueueNames:
    consumer: str  # "design-approved"
    queue: str
    event: EventType

    @property
    def dead_letter(self) -> str:
        return f"{self.queue}.dead-letter"

    def retry(self, delay_s: float) -> str:
        return f"{self.queue}.retry.{_tier_name(delay_s)}"


def _tier_name(delay_s: float) -> str:
    return f"{int(delay_s)}s" if float(delay_s).is_integer() else f"{round(delay_s * 1000)}ms"


DESIGN_APPROVED_QUEUE = QueueNames(
    "design-approved", "merch-pipeline.design-approved", DESIGN_APPROVED
)
PRODUCT_CREATED_QUEUE = QueueNames(
    "product-created", "merch-pipeline.product-created", PRODUCT_CREATED
)
DESIGN_WITHDRAWN_QUEUE = QueueNames(
    "design-withdrawn", "merch-pipeline.design-withdrawn", DESIGN_WITHDRAWN
)
FOURTHWALL_CHANGES_QUEUE = QueueNames(
    "fourthwall-changes", "merch-pipeline.fourthwall-changes", FOURTHWALL_PRODUCT_CHANGED
)
QUEUES = {
    q.consumer: q
    for q in (
        DESIGN_APPROVED_QUEUE,
        PRODUCT_CREATED_QUEUE,
        DESIGN_WITHDRAWN_QUEUE,
        FOURTHWALL_CHANGES_QUEUE,
    )
}
CONSUMED_ROUTING_KEYS = frozenset(q.event.routing_key for q in QUEUES.values())


def _quorum(**extra: Any) -> dict[str, Any]:
    return {"x-queue-type": "quorum", **extra}


def _dead_lettering_to(queue: str) -> dict[str, Any]:
    # at-least-once dead-lettering (RabbitMQ >= 3.10) needs reject-publish overflow.
    return {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": queue,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


async def declare_exchange(channel: AbstractChannel) -> AbstractExchange:
    return await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)


async def declare_queues(
    channel: AbstractChannel, names: QueueNames, retry_delays_s: tuple[float, ...]
) -> aio_pika.abc.AbstractQueue:
    """Declare Q, its delay tiers and its dead-letter queue; return Q."""
    exchange = await declare_exchange(channel)
    await channel.declare_queue(
        names.dead_letter,
        durable=True,
        arguments=_quorum(**{"x-delivery-limit": DEAD_LETTER_DELIVERY_LIMIT}),
    )
    for delay in retry_delays_s:
        await channel.declare_queue(
            names.retry(delay),
            durable=True,
            arguments=_quorum(
                **{"x-message-ttl": int(delay * 1000)}, **_dead_lettering_to(names.queue)
            ),
        )
    queue = await channel.declare_queue(
        names.queue,
        durable=True,
        arguments=_quorum(
            **{"x-delivery-limit": DELIVERY_LIMIT}, **_dead_lettering_to(names.dead_letter)
        ),
    )
    await queue.bind(exchange, routing_key=names.event.routing_key)
    return queue
