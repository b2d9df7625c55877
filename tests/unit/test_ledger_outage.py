"""The ledger away is not the design's fault: the message goes back as it came, the consumers
pause, a probe that writes brings them back, and an operator's pause outlives it all."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from consumers.outcomes import Done
from consumers.ports import LedgerUnavailable
from service.broker import headers
from service.broker.consumer import Consumer, RetryPolicy
from service.broker.switch import LEDGER, OPERATOR, ConsumerSwitch
from service.broker.topology import DESIGN_APPROVED_QUEUE
from service.ledger_watch import LedgerWatch
from service.observability.metrics import Metrics
from service.samples import design_event, sample_design
from service.testing.polling import eventually
from tests.unit.fakes import FakeMessage, RecordingPublisher, RecordingQueue

BODY = msgspec.json.encode(design_event(sample_design("shop-1", 0, "outage")))
AWAY = LedgerUnavailable("ConnectionRefusedError: [Errno 111] Connection refused")


def consumer(handle: Any, downs: list[LedgerUnavailable], **extra: Any) -> Consumer:
    async def ledger_down(exc: LedgerUnavailable) -> None:
        downs.append(exc)

    return Consumer(
        names=DESIGN_APPROVED_QUEUE,
        handle=handle,
        exhausted=lambda data, retry, attempts: [],
        publisher=RecordingPublisher(),
        policy=RetryPolicy(5, (1.0, 5.0)),
        max_message_bytes=64 * 1024,
        ledger_down=ledger_down,
        **extra,
    )


async def test_a_message_the_ledger_could_not_take_goes_back_unchanged() -> None:
    async def handle(data: Any, delivery: Any) -> Any:
        raise AWAY

    downs: list[LedgerUnavailable] = []
    loop = consumer(handle, downs)
    message = FakeMessage(BODY, "application/cloudevents+json", {headers.ATTEMPT: 3})
    await loop.on_message(message)  # type: ignore[arg-type]
    publisher = loop.publisher
    assert isinstance(publisher, RecordingPublisher)
    assert message.settled == ["ack"] and downs == [AWAY]
    assert publisher.copies == [DESIGN_APPROVED_QUEUE.queue] and publisher.events == []
    (copy,) = publisher.copied
    assert copy.body == BODY and copy.headers[headers.ATTEMPT] == 3  # no attempt spent
    assert copy.headers[headers.ORIGINAL_ROUTING_KEY] == "design.approved"
    assert not set(copy.headers) & {headers.REASON, headers.CODE, headers.DEAD_LETTER_ID}


async def test_a_publish_the_ledger_could_not_record_is_handed_back_after_its_events() -> None:
    async def handle(data: Any, delivery: Any) -> Any:
        return Done(events=[])

    async def after_publish(data: Any) -> None:
        raise AWAY

    downs: list[LedgerUnavailable] = []
    loop = consumer(handle, downs, after_publish=after_publish)
    message = FakeMessage(BODY, "application/cloudevents+json", {})
    await loop.on_message(message)  # type: ignore[arg-type]
    assert message.settled == ["ack"] and downs == [AWAY]
    assert loop.publisher.copies == [DESIGN_APPROVED_QUEUE.queue]  # type: ignore[attr-defined]


@dataclass
class FlakyLedger:
    """Its heartbeat fails ``away`` times, then answers."""

    away: int
    beats: int = 0
    released: list[int] = field(default_factory=list)

    async def heartbeat(self, replica: str) -> None:
        self.beats += 1
        if self.beats <= self.away:
            raise AWAY

    async def release_pending(self) -> int:
        self.released.append(self.beats)
        return 0


def switch() -> ConsumerSwitch:
    return ConsumerSwitch(consumer(None, []), prefetch=2)


async def test_the_watch_pauses_probes_and_resumes_but_leaves_an_operators_pause() -> None:
    ledger, metrics = FlakyLedger(away=2), Metrics()
    watch = LedgerWatch(ledger, probe_interval_s=0.01, metrics=metrics)  # type: ignore[arg-type]
    paused, running = switch(), switch()
    for s in (paused, running):
        await s.attach(RecordingQueue())  # type: ignore[arg-type]
    await paused.hold(OPERATOR)
    watch.watch([paused, running])

    await watch.down(AWAY)
    await watch.down(AWAY)  # the second report of the same outage changes nothing
    assert not watch.available and watch.error == str(AWAY)
    assert running.reasons == {LEDGER} and paused.reasons == {OPERATOR, LEDGER}
    assert metrics.ledger_up._value.get() == 0

    async def back() -> bool:
        return watch.available

    await eventually(back, timeout=5, what="the probe to find the ledger back")
    assert ledger.beats == 3 and ledger.released == [3]  # releases made before resuming
    assert running.reasons == set() and running.consuming
    assert paused.reasons == {OPERATOR} and not paused.consuming
    assert metrics.ledger_up._value.get() == 1
    assert running.paused_seconds()[LEDGER] > 0
    await watch.close()
