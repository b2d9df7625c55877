"""A design withdrawn (``design.withdrawn``) leaves nothing visible and nothing pinned, whatever
the order: after its promotion, while its approval is in flight, before its approval, delivered
twice; and an approval of a withdrawn design made later creates nothing."""

from __future__ import annotations

import aio_pika
import httpx
import msgspec
import pytest

from consumers.ports import DesignKey
from contracts.events import (
    DESIGN_WITHDRAWN,
    DesignWithdrawnV1,
    ProductCreatedV1,
    ProductWithdrawnV1,
)
from service.broker.codec import event_message
from service.design_refs import design_link
from service.samples import design_event, sample_design, withdrawal
from service.secrets import Secret
from service.settings import Settings
from service.testing.broker import EventWatcher, publish, queue_messages, watching
from service.testing.inprocess import running_service
from service.testing.polling import eventually
from service.testing.sandbox import SandboxHandle
from tests.integration.test_revisions import _design_state, _visible, revision

pytestmark = pytest.mark.integration

TOKEN = "admin-token-for-tests-0123456789"


async def _withdraw(amqp_url: str, data: DesignWithdrawnV1) -> None:
    message = event_message(design_event(data))
    await publish(amqp_url, message, routing_key=DESIGN_WITHDRAWN.routing_key)


def _withdrawn(watcher: EventWatcher) -> list[ProductWithdrawnV1]:
    return [
        e.data
        for e in watcher.of_type("product.withdrawn")
        if isinstance(e.data, ProductWithdrawnV1)
    ]


def _created(watcher: EventWatcher) -> list[ProductCreatedV1]:
    return [
        e.data for e in watcher.of_type("product.created") if isinstance(e.data, ProductCreatedV1)
    ]


async def _settled(settings: Settings, shop: str, design: str, rev: int) -> str:
    """The revision's state once it is withdrawn (the test fails on the deadline if never)."""

    async def state() -> str | None:
        found = await _design_state(settings, shop, design, rev)
        return found if found == "withdrawn" else None

    return await eventually(state, what=f"revision {rev} withdrawn")


async def test_a_withdrawal_after_the_promotion_retires_the_product(
    ledger_settings: Settings, sandbox: SandboxHandle, amqp_url: str
) -> None:
    design = revision(sample_design("shop-1", 0, "wd-after"), 1)
    async with watching(amqp_url) as watcher, running_service(ledger_settings):
        await publish(amqp_url, event_message(design_event(design)))
        await watcher.wait_for("pins.created", 1)
        product_id = _created(watcher)[0].product_id
        assert _visible(await sandbox.records()) == {product_id}
        gone = withdrawal(design, reason="rights claim")
        await _withdraw(amqp_url, gone)
        await watcher.wait_for("product.withdrawn", 1)
        # delivered twice (a producer's retry): nothing changes, the same event id again
        await _withdraw(amqp_url, gone)
        await watcher.wait_for("product.withdrawn", 2)
        state = await _settled(ledger_settings, design.shop_id, design.design_id, 1)
    events = _withdrawn(watcher)
    assert {(e.product_id, e.revision, e.reason) for e in events} == {(product_id, 1, "withdrawn")}
    ids = {e.event.id for e in watcher.of_type("product.withdrawn")}
    assert len(ids) == 1
    records = await sandbox.records()
    assert _visible(records) == set()
    assert records["products"][product_id]["access"] == "HIDDEN"
    assert state == "withdrawn"


async def test_a_withdrawal_before_the_approval_leaves_a_tombstone(
    ledger_settings: Settings, sandbox: SandboxHandle, amqp_url: str
) -> None:
    design = revision(sample_design("shop-1", 1, "wd-before"), 1)
    async with watching(amqp_url) as watcher, running_service(ledger_settings):
        await _withdraw(amqp_url, withdrawal(design))
        await eventually(
            lambda: _tombstone(ledger_settings, design.shop_id, design.design_id),
            what="the tombstone",
        )
        await publish(amqp_url, event_message(design_event(design)))
        # a later revision of a design withdrawn whole makes nothing either
        await publish(amqp_url, event_message(design_event(revision(design, 2))))
        for rev in (1, 2):
            assert await _settled(ledger_settings, design.shop_id, design.design_id, rev) == (
                "withdrawn"
            )
    records = await sandbox.records()
    assert records["calls"] == []  # neither Fourthwall nor Luigi's Box was called
    assert _created(watcher) == [] and _withdrawn(watcher) == []
    assert watcher.of_type("product.failed") == []


async def test_a_withdrawal_racing_its_approval_wins(
    ledger_settings: Settings, sandbox: SandboxHandle, amqp_url: str
) -> None:
    designs = [revision(sample_design("shop-1", n, "wd-race"), 1) for n in range(4)]
    async with watching(amqp_url) as watcher, running_service(ledger_settings):
        for design in designs:  # each withdrawal a few ms after its approval
            await publish(amqp_url, event_message(design_event(design)))
            await _withdraw(amqp_url, withdrawal(design))
        states = [await _settled(ledger_settings, d.shop_id, d.design_id, 1) for d in designs]

        async def every_product_retired() -> bool:
            made = {c.product_id for c in _created(watcher)}
            return made <= {w.product_id for w in _withdrawn(watcher)}

        await eventually(every_product_retired, what="every product made retired")
        records = await sandbox.records()
    assert states == ["withdrawn"] * len(designs)
    assert _visible(records) == set()
    assert watcher.of_type("product.failed") == []


async def test_a_withdrawal_of_revision_1_keeps_revision_2(
    settings: Settings, sandbox: SandboxHandle, amqp_url: str
) -> None:
    keeps = msgspec.structs.replace(
        settings,
        shops=[msgspec.structs.replace(s, supersede_revisions=False) for s in settings.shops],
    )
    keeps = msgspec.structs.replace(keeps, admin_token=Secret(TOKEN))
    design = revision(sample_design("shop-1", 2, "wd-rev"), 1)
    async with watching(amqp_url) as watcher, running_service(keeps):
        await publish(amqp_url, event_message(design_event(design)))
        await publish(amqp_url, event_message(design_event(revision(design, 2))))
        await watcher.wait_for("pins.created", 2)
        await _withdraw(amqp_url, withdrawal(design, revision=1))
        await watcher.wait_for("product.withdrawn", 1)
        await _settled(keeps, design.shop_id, design.design_id, 1)
        link = design_link(DesignKey(design.shop_id, design.design_id, 2))
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{keeps.http_port}",
            headers={"authorization": f"Bearer {TOKEN}"},
        ) as admin:
            detail = (await admin.get(link)).json()
    by_revision = {c.revision: c.product_id for c in _created(watcher)}
    assert [(w.revision, w.product_id) for w in _withdrawn(watcher)] == [(1, by_revision[1])]
    assert _visible(await sandbox.records()) == {by_revision[2]}
    # the operator sees every product of the design, its revision, status and records
    products = {p["revision"]: p for p in detail["products"]}
    assert (products[1]["status"], products[2]["status"]) == ("withdrawn", "active")
    assert products[1]["scopes"] and products[1]["content"]["removed_at"] is not None
    assert products[2]["content"]["removed_at"] is None
    assert detail["withdrawal"]["up_to_revision"] == 1


async def _tombstone(settings: Settings, shop: str, design: str) -> bool:
    from service.store.database import open_database

    db = await open_database(settings.database_url)
    try:
        row = await db.fetchone(
            "SELECT COUNT(*) FROM design_withdrawals WHERE shop_id = ? AND design_id = ?",
            (shop, design),
        )
    finally:
        await db.close()
    return bool(row and row[0])


async def test_a_bad_withdrawal_is_dead_lettered_with_its_reason_and_changes_nothing(
    settings: Settings, sandbox: SandboxHandle, amqp_url: str
) -> None:
    design = revision(sample_design("shop-1", 3, "wd-bad"), 1)
    doc = msgspec.json.decode(msgspec.json.encode(design_event(withdrawal(design))))
    doc["data"]["revision"] = 0
    async with watching(amqp_url) as watcher, running_service(settings):
        await publish(amqp_url, event_message(design_event(design)))
        await watcher.wait_for("pins.created", 1)
        bad = aio_pika.Message(
            msgspec.json.encode(doc), content_type="application/cloudevents+json"
        )
        await publish(amqp_url, bad, routing_key=DESIGN_WITHDRAWN.routing_key)

        async def dead() -> list[aio_pika.abc.AbstractIncomingMessage]:
            return await queue_messages(amqp_url, "merch-pipeline.design-withdrawn.dead-letter")

        (letter,) = await eventually(dead, what="the bad withdrawal dead-lettered")
    assert letter.headers["x-merch-reason"] == "schema_violation"
    assert "$.data.revision" in str(letter.headers["x-merch-detail"])
    assert not await _tombstone(settings, design.shop_id, design.design_id)
    assert _withdrawn(watcher) == []
    assert _visible(await sandbox.records()) == {_created(watcher)[0].product_id}
