"""One contract suite for the ledger. What the handlers rely on (the ``DesignLedger`` and
``ProductLedger`` ports) runs against the unit tests' fake and both real backends, so the fake
cannot drift from them; what only the SQL ledger offers (steps, listings, migrations, the
operator's retry and reconcile) runs against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import msgspec
import pytest

from consumers.ports import (
    Delivery,
    DesignKey,
    DesignLedger,
    DesignState,
    LeaseLost,
    ProductLedger,
    ProductRecord,
)
from contracts.cloudevents import CloudEvent, decode_structured
from contracts.events import MAX_REVISION, DesignApprovedV1, ProductCreatedV1
from service import errors, recovery
from service.samples import design_event, sample_design
from service.store.database import Database, open_database
from service.store.ledger import Ledger
from service.store.migrations import MIGRATIONS, current_version, migrate
from service.testing.postgres import throwaway_postgres
from tests.unit.fakes import FakeLedger

pytestmark = pytest.mark.integration
KEY = DesignKey("shop-1", "d-1", 1)


def delivery(token: str | None = None) -> Delivery:
    return Delivery(attempt=1, final=False, token=token or uuid.uuid4().hex, event_id="e-1")


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        database = await open_database(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
        yield database
        await database.close()
        return
    async with throwaway_postgres() as url:
        database = await open_database(url)
        yield database
        await database.close()


@pytest.fixture
async def ledger(db: Database) -> Ledger:
    await migrate(db)
    return Ledger(db, lease_s=60)


class PortLedger(DesignLedger, ProductLedger, Protocol):
    """Both ports, as the handlers see the ledger."""


@pytest.fixture(params=["fake", "sqlite", "postgresql"])
async def port_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PortLedger]:
    if request.param == "fake":
        yield FakeLedger()
        return
    if request.param == "sqlite":
        database = await open_database(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
        await migrate(database)
        yield Ledger(database, lease_s=60)
        await database.close()
        return
    async with throwaway_postgres() as url:
        database = await open_database(url)
        await migrate(database)
        yield Ledger(database, lease_s=60)
        await database.close()


async def test_each_write_survives_a_new_claim(port_ledger: PortLedger) -> None:
    d = delivery()
    record = await port_ledger.claim(KEY, d)
    assert record is not None and record.state == "received" and record.attempts == 1
    await port_ledger.record_customization(KEY, d.token, "cst_1")
    await port_ledger.record_product_requested(KEY, d.token, requested=True)
    await port_ledger.record_product(KEY, d.token, "prd_1", b'{"product_id":"prd_1"}')
    await port_ledger.release(KEY, d.token)
    again = await port_ledger.claim(KEY, delivery())
    assert again is not None
    assert (again.state, again.customization_id, again.product_id, again.product_requested) == (
        "product_created",
        "cst_1",
        "prd_1",
        True,
    )
    assert (again.product_event, again.attempts) == (b'{"product_id":"prd_1"}', 2)


async def test_an_uploaded_artwork_is_found_by_its_shop_and_content(
    port_ledger: PortLedger,
) -> None:
    assert await port_ledger.uploaded_image("shop-1", "ab" * 32) is None
    await port_ledger.record_uploaded_image("shop-1", "ab" * 32, "img_1")
    await port_ledger.record_uploaded_image("shop-1", "ab" * 32, "img_2")  # the first one stays
    assert await port_ledger.uploaded_image("shop-1", "ab" * 32) == "img_1"
    assert await port_ledger.uploaded_image("shop-2", "ab" * 32) is None  # per shop


async def test_a_failed_design_keeps_its_event_and_reopens_only_under_its_lease(
    port_ledger: PortLedger,
) -> None:
    d = delivery()
    await port_ledger.claim(KEY, d)
    await port_ledger.record_customization(KEY, d.token, "cst_1")
    await port_ledger.record_error(KEY, d.token, stage="product", code="E", detail="transient")
    await port_ledger.record_failed(
        KEY, d.token, state="failed", stage="product", code="E", detail="d", failed_event=b"{}"
    )
    await port_ledger.release(KEY, d.token)
    with pytest.raises(LeaseLost):
        await port_ledger.reopen(KEY, "not-the-holder", "ops-x")
    with pytest.raises(LeaseLost):
        await port_ledger.record_error(KEY, "not-the-holder", stage="product", code="E", detail="")
    holder = delivery()
    record = await port_ledger.claim(KEY, holder)
    assert record is not None and (record.state, record.failed_event) == ("failed", b"{}")
    reopened = await port_ledger.reopen(KEY, holder.token, "ops-x")
    assert (reopened.state, reopened.customization_id, reopened.failed_event) == (
        "customization_created",
        "cst_1",
        None,
    )


async def test_migrations_are_versioned_and_idempotent(db: Database) -> None:
    assert await current_version(db) == 0
    assert await migrate(db) == [v for v, _ in MIGRATIONS]
    assert await migrate(db) == []
    assert await current_version(db) == MIGRATIONS[-1][0]


async def test_concurrent_migrators_do_not_collide(db: Database) -> None:
    results = await asyncio.gather(migrate(db), migrate(db), migrate(db))
    assert sorted(v for applied in results for v in applied) == [v for v, _ in MIGRATIONS]


async def test_a_ledger_of_the_previous_version_migrates_and_keeps_its_rows(db: Database) -> None:
    assert await migrate(db, up_to=4) == [1, 2, 3, 4]
    # a design as an earlier version wrote it: its row, and its steps in design_steps
    await db.execute(
        "INSERT INTO designs (shop_id, design_id, revision, state, event_id, correlation_id, "
        "attempts, created_at, updated_at) VALUES (?, ?, ?, 'received', 'e-0', 'c-1', 1, 1, 1)",
        (KEY.shop_id, KEY.design_id, KEY.revision),
    )
    await db.execute(
        "INSERT INTO design_steps (shop_id, design_id, revision, step, at) "
        "VALUES (?, ?, ?, 'received', 1)",
        (KEY.shop_id, KEY.design_id, KEY.revision),
    )
    assert await migrate(db) == [v for v, _ in MIGRATIONS if v > 4]
    ledger = Ledger(db)
    row = await ledger.design(KEY)
    assert row is not None and row.state == "received"
    d = delivery()
    record = await ledger.claim(KEY, d)  # taken up by this version where the other stopped
    assert record is not None and record.attempts == 2
    await ledger.record_customization(KEY, d.token, "cst_1")
    assert [s.step for s in await ledger.steps(KEY)] == ["received", "customization_created"]
    await ledger.heartbeat("replica-1")  # the probe's table is there
    with pytest.raises(Exception, match="correlation_id"):
        await db.fetchone("SELECT correlation_id FROM designs")


async def test_the_contracts_bounds_fit_the_ledger(ledger: Ledger) -> None:
    """The largest revision and the longest, oddest ids the contract lets through are stored
    and read back as they are, on both backends (PostgreSQL: INTEGER, text without NUL)."""
    design = sample_design("shop-1", 0, "bounds")
    odd = ("ü:/%~ \u2603" * 40)[:256]
    bounded = msgspec.structs.replace(
        design, shop_id=odd, design_id=odd[::-1], revision=MAX_REVISION
    )
    data = msgspec.convert(msgspec.to_builtins(bounded), DesignApprovedV1)  # the contract agrees
    key = DesignKey(data.shop_id, data.design_id, data.revision)
    d = delivery()
    assert await ledger.claim(key, d) is not None
    await ledger.record_error(key, d.token, stage="product", code="X", detail="\t" + "é" * 999)
    await ledger.release(key, d.token)
    row = await ledger.design(key)
    assert row is not None and (row.shop_id, row.design_id, row.revision) == (
        odd,
        odd[::-1],
        MAX_REVISION,
    )
    assert [r.design_id for r in await ledger.designs(design_id=odd[::-1])] == [odd[::-1]]


async def test_steps_are_recorded_in_order_and_survive(ledger: Ledger) -> None:
    d = delivery()
    record = await ledger.claim(KEY, d)
    assert record is not None and record.state == "received" and record.attempts == 1
    await ledger.record_customization(KEY, d.token, "cst_1")
    await ledger.record_product_requested(KEY, d.token, requested=True)
    await ledger.record_product(KEY, d.token, "prd_1", b'{"product_id":"prd_1"}')
    await ledger.release(KEY, d.token)
    await ledger.mark_published(KEY)
    again = await ledger.claim(KEY, delivery())
    assert again is not None
    assert (again.state, again.customization_id, again.product_id, again.product_requested) == (
        "published",
        "cst_1",
        "prd_1",
        True,
    )
    assert again.product_event == b'{"product_id":"prd_1"}'
    assert again.attempts == 2
    steps = [s.step for s in await ledger.steps(KEY)]
    assert steps == [
        "received",
        "customization_created",
        "product_requested",
        "product_created",
        "published",
    ]
    assert (await ledger.count_by_state()) == {"published": 1}


async def test_a_held_design_cannot_be_claimed_and_a_stale_holder_cannot_write(
    port_ledger: PortLedger,
) -> None:
    first, second = delivery(), delivery()
    assert await port_ledger.claim(KEY, first) is not None
    assert await port_ledger.claim(KEY, second) is None
    await port_ledger.release(KEY, first.token)
    assert await port_ledger.claim(KEY, second) is not None
    with pytest.raises(LeaseLost):
        await port_ledger.record_customization(KEY, first.token, "cst_stale")


async def test_an_expired_lease_can_be_taken_over(db: Database) -> None:
    await migrate(db)
    now = [1000.0]
    ledger = Ledger(db, lease_s=10, clock=lambda: now[0])
    crashed = delivery()
    assert await ledger.claim(KEY, crashed) is not None
    now[0] += 11  # the holder died; its lease ran out
    assert await ledger.claim(KEY, delivery()) is not None


async def test_concurrent_claims_have_exactly_one_winner(port_ledger: PortLedger) -> None:
    claims = await asyncio.gather(*(port_ledger.claim(KEY, delivery()) for _ in range(12)))
    assert sum(1 for c in claims if c is not None) == 1


async def test_failed_and_reconciliation_states_keep_their_event(ledger: Ledger) -> None:
    d = delivery()
    await ledger.claim(KEY, d)
    await ledger.record_error(
        KEY, d.token, stage="product", code="SQL_CONSTRAINTS_ERROR", detail="race"
    )
    await ledger.record_failed(
        KEY,
        d.token,
        state="needs_reconciliation",
        stage="product",
        code="CUSTOMIZATION_ALREADY_USED_ERROR",
        detail="window",
        failed_event=b'{"code":"CUSTOMIZATION_ALREADY_USED_ERROR"}',
    )
    await ledger.release(KEY, d.token)
    row = await ledger.design(KEY)
    assert row is not None
    assert (row.state, row.last_code) == (
        "needs_reconciliation",
        "CUSTOMIZATION_ALREADY_USED_ERROR",
    )
    record = await ledger.claim(KEY, delivery())
    assert record is not None and record.failed_event is not None
    assert [d.design_id for d in await ledger.designs(state="needs_reconciliation")] == ["d-1"]


async def test_pin_scopes_are_recorded_once_per_rule(port_ledger: PortLedger) -> None:
    token = uuid.uuid4().hex
    assert await port_ledger.claim_product("prd_1", "shop-1", "d-1", token) == ProductRecord()
    assert await port_ledger.claim_product("prd_1", "shop-1", "d-1", "other") is None
    await port_ledger.record_scope_requested("prd_1", token, "item:/p/1")
    await port_ledger.record_scope_requested("prd_1", token, "all")  # asked, answer lost
    await port_ledger.record_scope(
        "prd_1", token, "item:/p/1", "scope-a", b'{"scope_id":"scope-a"}'
    )
    await port_ledger.record_scope(
        "prd_1", token, "item:/p/1", "scope-b", b'{"scope_id":"scope-b"}'
    )
    await port_ledger.finish_product("prd_1", token, "pins_created")
    assert await port_ledger.claim_product("prd_1", "shop-1", "d-1", "next") == ProductRecord(
        scopes={"item:/p/1": b'{"scope_id":"scope-a"}'},
        requested=frozenset({"item:/p/1", "all"}),
        state="pins_created",  # where the last delivery left it
    )
    with pytest.raises(LeaseLost):
        await port_ledger.record_scope("prd_1", token, "all", "scope-c", b"{}")
    with pytest.raises(LeaseLost):
        await port_ledger.record_scope_requested("prd_1", token, "all")


# --- what an operator does: retry (reopen) and reconcile ----------------------------------

EVENT = msgspec.json.encode(design_event(sample_design("shop-1", 0, "ops")))
OPS_KEY = DesignKey("shop-1", sample_design("shop-1", 0, "ops").design_id, 1)


async def _fail(ledger: Ledger, state: DesignState, customization: str | None = "cst_1") -> None:
    d = msgspec.structs.replace(delivery(), cloud_event=EVENT)
    assert await ledger.claim(OPS_KEY, d) is not None
    if customization:
        await ledger.record_customization(OPS_KEY, d.token, customization)
        await ledger.record_product_requested(OPS_KEY, d.token, True)
    await ledger.record_failed(
        OPS_KEY,
        d.token,
        state=state,
        stage="product",
        code="SERVICE_UNAVAILABLE",
        detail="down",
        failed_event=b'{"code":"SERVICE_UNAVAILABLE"}',
    )
    await ledger.release(OPS_KEY, d.token)


async def test_the_event_is_kept_as_first_received(ledger: Ledger) -> None:
    first = msgspec.structs.replace(delivery(), cloud_event=EVENT)
    await ledger.claim(OPS_KEY, first)
    await ledger.release(OPS_KEY, first.token)
    other = msgspec.structs.replace(delivery(), cloud_event=b'{"other": true}')
    await ledger.claim(OPS_KEY, other)
    assert await ledger.design_event(OPS_KEY) == EVENT


async def test_reopen_needs_the_lease_and_keeps_what_was_made(ledger: Ledger) -> None:
    await _fail(ledger, "failed")
    with pytest.raises(LeaseLost):
        await ledger.reopen(OPS_KEY, "not-the-holder", "ops-x")
    d = delivery()
    await ledger.claim(OPS_KEY, d)
    record = await ledger.reopen(OPS_KEY, d.token, "ops-x")
    assert (record.state, record.customization_id, record.failed_event) == (
        "customization_created",
        "cst_1",
        None,
    )
    assert record.product_requested  # a product may exist: the next call will say so
    assert ("retry_requested", "by ops-x") in [
        (s.step, s.detail) for s in await ledger.steps(OPS_KEY)
    ]


async def test_a_retry_the_broker_refuses_changes_nothing(ledger: Ledger) -> None:
    await _fail(ledger, "failed")

    async def refuse(event: CloudEvent, operator: str) -> None:
        raise ConnectionError("broker away")

    with pytest.raises(errors.ActionError) as refused:
        await recovery.retry_design(ledger, OPS_KEY, operator="ops-x", send=refuse)
    assert refused.value.status == 503
    row = await ledger.design(OPS_KEY)
    assert row is not None and row.state == "failed"

    sent: list[tuple[CloudEvent, str]] = []

    async def accept(event: CloudEvent, operator: str) -> None:
        sent.append((event, operator))

    assert await recovery.retry_design(ledger, OPS_KEY, operator="ops-x", send=accept) == "requeued"
    assert [(e.id, op) for e, op in sent] == [(decode_structured(EVENT).id, "ops-x")]


async def test_reconcile_records_the_product_and_survives_a_refused_publish(
    ledger: Ledger,
) -> None:
    await _fail(ledger, "needs_reconciliation")
    with pytest.raises(errors.ActionError) as not_failed:
        await recovery.retry_design(ledger, OPS_KEY, operator="ops-x", send=_never)
    assert not_failed.value.status == 409

    async def refuse(event: CloudEvent, routing_key: str) -> None:
        raise ConnectionError("broker away")

    with pytest.raises(errors.ActionError) as refused:
        await recovery.reconcile_design(
            ledger, OPS_KEY, "prd_found", operator="ops-x", publish=refuse
        )
    assert refused.value.status == 503
    row = await ledger.design(OPS_KEY)
    assert row is not None and (row.state, row.product_id) == ("product_created", "prd_found")

    published: list[tuple[CloudEvent, str]] = []

    async def accept(event: CloudEvent, routing_key: str) -> None:
        published.append((event, routing_key))

    for _ in range(2):  # the repeat the 503 asked for, and one more: same event id
        await recovery.reconcile_design(
            ledger, OPS_KEY, "prd_found", operator="ops-x", publish=accept
        )
    assert [k for _, k in published] == ["product.created", "product.created"]
    assert published[0][0].id == published[1][0].id
    created = msgspec.json.decode(published[0][0].data, type=ProductCreatedV1)  # type: ignore[arg-type]
    assert (created.product_id, created.customization_id) == ("prd_found", "cst_1")
    row = await ledger.design(OPS_KEY)
    assert row is not None and row.state == "published"
    with pytest.raises(errors.ActionError) as other:
        await recovery.reconcile_design(ledger, OPS_KEY, "prd_else", operator="x", publish=accept)
    assert other.value.status == 409


async def test_reconcile_waits_for_a_held_lease(ledger: Ledger) -> None:
    await _fail(ledger, "needs_reconciliation")
    holder = delivery()
    await ledger.claim(OPS_KEY, holder)
    assert not await ledger.reconcile(OPS_KEY, "prd_1", b"{}", "ops-x")
    await ledger.release(OPS_KEY, holder.token)
    assert await ledger.reconcile(OPS_KEY, "prd_1", b"{}", "ops-x")
    assert not await ledger.reconcile(OPS_KEY, "prd_1", b"{}", "ops-x")  # not twice


async def _never(event: CloudEvent, operator: str) -> None:
    raise AssertionError("must not be sent")
