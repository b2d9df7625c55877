"""The parking lot on both ledgers and the releaser on a real broker: a parked message comes
back byte for byte, once, when due; replicas never release one twice; a claim left by a dead
replica runs out and another releases the message."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import aio_pika
import pytest

from service.broker.parking import Releaser, restored, stored
from service.observability.metrics import TOP_WAITING_SHOPS, Metrics
from service.store.database import Database
from service.store.parking import ParkingLot

pytestmark = pytest.mark.integration

QUEUE = "parking-test"


class Collected:
    """What the releasers sent, instead of a broker (the broker path is tested below)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, aio_pika.Message]] = []

    async def publish_event(self, event: object, routing_key: str) -> None:
        raise AssertionError("a release sends to a queue")

    async def send_to_queue(self, queue: str, message: aio_pika.Message) -> None:
        await asyncio.sleep(0)  # let the other replicas interleave
        self.sent.append((queue, message))


def _message(n: int) -> aio_pika.Message:
    return aio_pika.Message(
        f'{{"n": {n}}}'.encode(),
        headers={
            "x-merch-deferrals": 3,
            "x-merch-quota-ticket": f"t{n}",
            "raw": bytearray(b"\x00\xff"),
        },
        content_type="application/cloudevents+json",
        message_id=f"m{n}",
        timestamp=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


async def _park(lot: ParkingLot, n: int, due_at: float, shop_id: str = "shop-1") -> None:
    body, properties = stored(_message(n))
    await lot.park(
        queue=QUEUE,
        key=(shop_id, f"d{n}", 1),
        reason="quota",
        due_at=due_at,
        body=body,
        properties=properties,
    )


async def test_three_replicas_release_each_due_message_exactly_once(db: Database) -> None:
    lot = ParkingLot(db)
    now = lot.clock()
    for n in range(60):
        await _park(lot, n, now - 1 + n * 0.001)
    await _park(lot, 999, now + 3600)  # not due
    sent = Collected()
    releasers = [Releaser(ParkingLot(db), sent, batch=7) for _ in range(3)]
    await asyncio.gather(*(r.release_due() for r in releasers))
    ids = [m.message_id for _, m in sent.sent]
    assert sorted(ids) == sorted(f"m{n}" for n in range(60))  # each once, none not due
    assert await lot.counts() == (1, 0)
    queue, first = next((q, m) for q, m in sent.sent if m.message_id == "m0")
    original = _message(0)
    assert queue == QUEUE and first.body == original.body
    assert first.headers == original.headers  # bytes stay bytes, numbers stay numbers
    assert (first.content_type, first.timestamp) == (original.content_type, original.timestamp)


async def test_the_waiting_gauges_name_only_the_shops_waiting_longest(db: Database) -> None:
    lot = ParkingLot(db, clock=lambda: 1000.0)
    for shop in range(TOP_WAITING_SHOPS + 5):  # shop k's last design is due k minutes out
        for n in range(shop % 3 + 1):
            await _park(lot, shop * 10 + n, 1000.0 + shop * 60 - n, f"shop-{shop}")
    metrics = Metrics()
    metrics.report_waiting(await lot.longest_waits(TOP_WAITING_SHOPS))
    shown = _gauge(metrics, "merch_quota_shop_wait_ahead_seconds")
    longest = [f"shop-{k}" for k in range(TOP_WAITING_SHOPS + 4, 4, -1)]
    assert list(shown) == longest  # the top N only, longest first
    assert shown["shop-14"] == 14 * 60
    assert _gauge(metrics, "merch_quota_shop_waiting_designs")["shop-14"] == 14 % 3 + 1
    metrics.report_waiting([("shop-1", 1, 5.0)])  # a later scrape: the others' series are gone
    assert _gauge(metrics, "merch_quota_shop_wait_ahead_seconds") == {"shop-1": 5.0}


def _gauge(metrics: Metrics, name: str) -> dict[str, float]:
    (family,) = [f for f in metrics.registry.collect() if f.name == name]
    return {s.labels["shop_id"]: s.value for s in family.samples}


async def test_a_claim_left_by_a_dead_replica_runs_out_and_another_releases(db: Database) -> None:
    lot = ParkingLot(db, claim_s=0.2)
    await _park(lot, 1, lot.clock() - 1)
    claimed = await lot.claim_due("dead-replica", 10)  # claimed, then the replica died
    assert [c.id for c in claimed] and await lot.claim_due("other", 10) == []
    await asyncio.sleep(0.3)
    sent = Collected()
    assert await Releaser(lot, sent).release_due() == 1
    assert [m.message_id for _, m in sent.sent] == ["m1"]
    assert await lot.counts() == (0, 0)


async def test_the_releaser_puts_due_messages_back_on_their_queue(
    db: Database, amqp_url: str
) -> None:
    lot = ParkingLot(db)
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(
            QUEUE, durable=True, arguments={"x-queue-type": "quorum"}
        )

        class ToBroker:
            async def publish_event(self, event: object, routing_key: str) -> None:
                raise AssertionError

            async def send_to_queue(self, name: str, message: aio_pika.Message) -> None:
                await channel.default_exchange.publish(message, name, mandatory=True)

        releaser = Releaser(lot, ToBroker(), poll_s=0.2)
        stop = asyncio.Event()
        running = asyncio.create_task(releaser.run(stop))
        try:
            await _park(lot, 7, lot.clock() + 0.3)
            releaser.parked(lot.clock() + 0.3)
            got = await queue.get(timeout=5, fail=False)
            for _ in range(50):
                if got is not None:
                    break
                await asyncio.sleep(0.1)
                got = await queue.get(fail=False)
            assert got is not None and got.message_id == "m7"
            assert got.headers["x-merch-quota-ticket"] == "t7"
            await got.ack()
        finally:
            stop.set()
            await running
    assert await lot.counts() == (0, 0)


def test_a_parked_message_keeps_every_property() -> None:
    message = _message(5)
    body, properties = stored(message)
    from service.store.parking import Claimed

    back = restored(Claimed(id="x", queue=QUEUE, body=body, properties=properties))
    assert back.body == message.body and back.headers == message.headers
    assert back.message_id == message.message_id and back.timestamp == message.timestamp


async def test_a_claim_whose_answer_was_lost_is_taken_again_by_its_own_releaser(
    db: Database,
) -> None:
    """The database went away while the UPDATE … RETURNING was in flight: the rows are
    claimed, but the releaser never heard. It claims them again at once, not after claim_s."""
    lot = ParkingLot(db, claim_s=3600)
    await _park(lot, 3, lot.clock() - 1)
    sent = Collected()
    releaser = Releaser(lot, sent)
    await lot.claim_due(releaser.owner, 10)  # the claim whose answer never arrived
    assert await releaser.release_due() == 1
    assert [m.message_id for _, m in sent.sent] == ["m3"]


async def test_a_releaser_that_cannot_reach_the_ledger_says_so() -> None:
    """A pod whose designs are all parked touches the ledger only through its releaser: that is
    where a lost database is noticed, so the consumers pause and readiness fails."""
    from consumers.ports import LedgerUnavailable

    class Away:
        clock = staticmethod(lambda: 0.0)

        async def next_due(self) -> float | None:
            raise LedgerUnavailable("connection refused")

    told: list[str] = []
    stop = asyncio.Event()

    async def down(exc: LedgerUnavailable) -> None:
        told.append(str(exc))
        stop.set()

    releaser = Releaser(Away(), Collected(), poll_s=0.05, ledger_down=down)  # type: ignore[arg-type]
    await asyncio.wait_for(releaser.run(stop), 5)
    assert told == ["connection refused"]
