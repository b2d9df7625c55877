"""Starting on a broker and a ledger of the previous version: the deferral ladder's delay queues
are still there with messages on them (carrying their quota tickets), and the ledger is at
schema 8. The service starts, leaves those queues alone, and the waiting design is done."""

from __future__ import annotations

from pathlib import Path

import aio_pika
import msgspec
import pytest

from contracts.events import DESIGN_WITHDRAWN
from service.broker import headers
from service.broker.codec import event_message
from service.broker.topology import DESIGN_APPROVED_QUEUE, PRODUCT_CREATED_QUEUE, declare_queues
from service.samples import design_event, sample_design, withdrawal
from service.settings import Settings
from service.store.database import open_database
from service.store.migrations import MIGRATIONS, current_version, migrate
from service.testing.broker import publish, watching
from service.testing.inprocess import running_service

pytestmark = pytest.mark.integration

OLD_LADDER = (1.0, 2.0, 4.0)  # rungs of the retired DEFER_DELAYS_S


async def test_a_design_waiting_on_the_old_ladder_is_done_after_the_upgrade(
    settings: Settings, amqp_url: str, tmp_path: Path
) -> None:
    database_url = f"sqlite:///{tmp_path / 'previous.sqlite3'}"
    db = await open_database(database_url)
    assert await migrate(db, up_to=8) == list(range(1, 9))  # the previous version's ledger
    await db.close()
    design = sample_design("shop-1", 0, "upgrade")
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        # the previous version's topology: the ladder's rungs beside the retry tiers
        await declare_queues(channel, DESIGN_APPROVED_QUEUE, (*OLD_LADDER, 0.2, 0.5))
        waiting = event_message(design_event(design))
        waiting.headers.update({headers.QUOTA_TICKET: "a-ticket-of-the-old-version"})
        waiting.headers.update({headers.DEFERRALS: 3})
        await channel.default_exchange.publish(
            waiting, DESIGN_APPROVED_QUEUE.retry(1.0), mandatory=True
        )
    upgraded = msgspec.structs.replace(settings, database_url=database_url)
    async with watching(amqp_url) as watcher, running_service(upgraded):
        # the rung's TTL hands it back to the queue; the new version takes it, ticket and all
        (pins,) = await watcher.wait_for("pins.created", 1, timeout=30)
    assert pins.data.design_id == design.design_id  # type: ignore[union-attr]
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        rung = await channel.declare_queue(DESIGN_APPROVED_QUEUE.retry(4.0), passive=True)
        assert rung.declaration_result.message_count == 0  # left in place, to drain and delete


async def test_the_withdrawal_release_starts_on_a_ledger_and_broker_of_the_release_before(
    settings: Settings, amqp_url: str, tmp_path: Path
) -> None:
    """Schema 11 with a promoted design, a broker with only the two queues of the release
    before: the service starts, declares the new queues, migrates to the newest schema, and a
    withdrawal of that design retires the product made before the upgrade."""
    database_url = f"sqlite:///{tmp_path / 'previous.sqlite3'}"
    db = await open_database(database_url)
    assert await migrate(db, up_to=11) == list(range(1, 12))
    await db.close()
    design = sample_design("shop-1", 1, "upgrade-wd")
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        for names in (DESIGN_APPROVED_QUEUE, PRODUCT_CREATED_QUEUE):
            await declare_queues(channel, names, (0.2, 0.5))
    before = msgspec.structs.replace(settings, database_url=database_url)
    async with watching(amqp_url) as watcher:
        async with running_service(before, ("design-approved", "product-created")):
            await publish(amqp_url, event_message(design_event(design)))
            (pinned,) = await watcher.wait_for("pins.created", 1)
        async with running_service(before):
            message = event_message(design_event(withdrawal(design)))
            await publish(amqp_url, message, routing_key=DESIGN_WITHDRAWN.routing_key)
            (gone,) = await watcher.wait_for("product.withdrawn", 1)
    assert gone.data.product_id == pinned.data.product_id  # type: ignore[union-attr]
    db = await open_database(database_url)
    try:
        assert await current_version(db) == MIGRATIONS[-1][0]
    finally:
        await db.close()


async def test_schema_15_moves_each_fourthwall_change_to_the_axis_it_belongs_to(
    tmp_path: Path,
) -> None:
    """The previous version kept one value read from a product's ``state.type``: a visibility
    (as its sandbox sent) or a stock value (as the real Fourthwall does). Each lands in its own
    column; ``state`` is kept for replicas of the previous version."""
    db = await open_database(f"sqlite:///{tmp_path / 'previous.sqlite3'}")
    try:
        assert await migrate(db, up_to=14) == list(range(1, 15))
        for product_id, state in (("prd_a", "PUBLIC"), ("prd_b", "SOLD_OUT"), ("prd_c", "HIDDEN")):
            await db.execute(
                "INSERT INTO fourthwall_changes (product_id, shop_id, changed_at, state, name, "
                "event_id, applied_at) VALUES (?, 'shop-1', 1.0, ?, 'Tee', 'weve_1', 1.0)",
                (product_id, state),
            )
        assert await migrate(db) == [v for v, _ in MIGRATIONS if v >= 15]
        rows = await db.fetchall(
            "SELECT product_id, state, access, stock FROM fourthwall_changes ORDER BY product_id"
        )
    finally:
        await db.close()
    assert [tuple(r) for r in rows] == [
        ("prd_a", "PUBLIC", "PUBLIC", None),
        ("prd_b", "SOLD_OUT", None, "SOLD_OUT"),
        ("prd_c", "HIDDEN", "HIDDEN", None),
    ]
