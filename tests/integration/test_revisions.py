"""A product follows its design: a newer revision's product retires the older revision's
(hidden on Fourthwall, unpinned, out of the Luigi's Box catalogue, ``product.withdrawn``), and
an approval of a revision older than one recorded changes nothing."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from contracts.events import (
    DesignApprovedV1,
    PinsCreatedV1,
    ProductCreatedV1,
    ProductWithdrawnV1,
)
from service.broker.codec import event_message
from service.samples import design_event, sample_design
from service.settings import Settings
from service.testing.broker import EventWatcher, publish, watching
from service.testing.inprocess import running_service
from service.testing.polling import eventually
from service.testing.sandbox import SandboxHandle

pytestmark = pytest.mark.integration


def revision(design: DesignApprovedV1, n: int) -> DesignApprovedV1:
    product = msgspec.structs.replace(design.product, name=f"{design.product.name} r{n}")
    spec = msgspec.structs.replace(product, publish_on_create=True)
    return msgspec.structs.replace(design, revision=n, product=spec)


def _visible(records: dict[str, Any]) -> set[str]:
    """The products a shopper can see and Luigi's Box can recommend: public, indexed, pinned."""
    public = {p for p, v in records["products"].items() if v["access"] == "PUBLIC"}
    indexed = {i for c in records["content"].values() for i in c}
    pinned = {s["request"]["pin_definitions"][0]["pin_identity"] for s in records["scopes"]}
    return public | indexed | pinned


async def _created(watcher: EventWatcher, revision: int) -> ProductCreatedV1:
    async def found() -> ProductCreatedV1 | None:
        for seen in watcher.of_type("product.created"):
            if isinstance(seen.data, ProductCreatedV1) and seen.data.revision == revision:
                return seen.data
        return None

    return await eventually(found, what=f"product.created of revision {revision}")


async def test_revision_2_retires_the_revision_1_product(
    ledger_settings: Settings, sandbox: SandboxHandle, amqp_url: str
) -> None:
    first = revision(sample_design("shop-1", 0, "rev"), 1)
    async with watching(amqp_url) as watcher, running_service(ledger_settings):
        await publish(amqp_url, event_message(design_event(first)))
        await watcher.wait_for("pins.created", 1)
        old = (await _created(watcher, 1)).product_id
        assert _visible(await sandbox.records()) == {old}
        await publish(amqp_url, event_message(design_event(revision(first, 2))))
        withdrawn = (await watcher.wait_for("product.withdrawn", 1))[0].data
        new = (await _created(watcher, 2)).product_id
        # the same revision approved again (a producer's retry) resumes: nothing comes back
        await publish(amqp_url, event_message(design_event(first)))
        await watcher.wait_for("product.created", 3)
    assert isinstance(withdrawn, ProductWithdrawnV1)
    assert (withdrawn.product_id, withdrawn.revision, withdrawn.reason) == (old, 1, "superseded")
    pins = [p.data for p in watcher.of_type("pins.created") if isinstance(p.data, PinsCreatedV1)]
    assert [p.product_id for p in pins] == [old, new]  # the redelivery pinned nothing
    records = await sandbox.records()
    assert _visible(records) == {new}  # one visible, indexed, pinned product
    assert records["products"][old]["access"] == "HIDDEN"


async def test_an_older_revision_approved_later_changes_nothing(
    settings: Settings, sandbox: SandboxHandle, amqp_url: str
) -> None:
    design = sample_design("shop-2", 1, "rev-late")
    async with watching(amqp_url) as watcher, running_service(settings):
        await publish(amqp_url, event_message(design_event(revision(design, 3))))
        await watcher.wait_for("pins.created", 1)
        calls = len((await sandbox.records())["calls"])
        await publish(amqp_url, event_message(design_event(revision(design, 2))))

        detail = await eventually(
            lambda: _design_state(settings, design.shop_id, design.design_id, 2),
            what="revision 2 recorded",
        )
    assert detail == "superseded"
    records = await sandbox.records()
    assert len(records["calls"]) == calls  # no Fourthwall or Luigi's Box call for it
    assert watcher.of_type("product.withdrawn") == []


async def _design_state(settings: Settings, shop: str, design: str, rev: int) -> str | None:
    from service.store.database import open_database

    db = await open_database(settings.database_url)
    try:
        row = await db.fetchone(
            "SELECT state FROM designs WHERE shop_id = ? AND design_id = ? AND revision = ?",
            (shop, design, rev),
        )
    finally:
        await db.close()
    return str(row[0]) if row and row[0] != "received" else None
