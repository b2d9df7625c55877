"""A consumer runs only while no reason holds it: lifting one reason never undoes another."""

from __future__ import annotations

from service.broker.consumer import Consumer, RetryPolicy
from service.broker.switch import OPERATOR, ConsumerSwitch
from service.broker.topology import DESIGN_APPROVED_QUEUE
from tests.unit.fakes import RecordingQueue


def switch() -> ConsumerSwitch:
    consumer = Consumer(
        names=DESIGN_APPROVED_QUEUE,
        handle=None,  # type: ignore[arg-type]
        exhausted=None,  # type: ignore[arg-type]
        publisher=None,  # type: ignore[arg-type]
        policy=RetryPolicy(5, (1.0,)),
        max_message_bytes=1024,
    )
    return ConsumerSwitch(consumer, prefetch=4)


async def test_an_automatic_resume_does_not_undo_an_operators_pause() -> None:
    queue, s = RecordingQueue(), switch()
    await s.attach(queue)  # type: ignore[arg-type]
    await s.hold(OPERATOR)
    await s.hold("ledger")
    await s.lift("ledger")  # the outage is over, the operator's pause still holds
    assert queue.calls == ["consume", "cancel tag-1"] and not s.consuming
    assert s.health(broker_connected=True).paused_for == ["operator"]
    await s.lift(OPERATOR)
    assert queue.calls == ["consume", "cancel tag-1", "consume"] and s.consuming
    assert s.health(broker_connected=True).paused is False


async def test_an_operators_resume_does_not_start_a_consumer_held_for_another_reason() -> None:
    queue, s = RecordingQueue(), switch()
    await s.hold("ledger")  # before the queue is attached: attaching does not start it
    await s.attach(queue)  # type: ignore[arg-type]
    await s.hold(OPERATOR)
    await s.lift(OPERATOR)
    assert queue.calls == [] and s.reasons == {"ledger"}
    await s.lift("unknown")  # lifting a reason that does not hold changes nothing
    assert queue.calls == []
    health = s.health(broker_connected=True)
    assert (health.attached, health.paused, health.prefetch) == (True, True, 4)
