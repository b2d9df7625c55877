"""One contract suite for the ledger, run against both real backends: SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from consumers.ports import Delivery, DesignKey, LeaseLost
from service.store.database import Database, open_database
from service.store.ledger import Ledger
from service.store.migrations import MIGRATIONS, current_version, migrate
from tests.support import throwaway_postgres

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


async def test_migrations_are_versioned_and_idempotent(db: Database) -> None:
    assert await current_version(db) == 0
    assert await migrate(db) == [v for v, _ in MIGRATIONS]
    assert await migrate(db) == []
    assert await current_version(db) == MIGRATIONS[-1][0]


async def test_concurrent_migrators_do_not_collide(db: Database) -> None:
    results = await asyncio.gather(migrate(db), migrate(db), migrate(db))
    assert sorted(v for applied in results for v in applied) == [v for v, _ in MIGRATIONS]


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
    ledger: Ledger,
) -> None:
    first, second = delivery(), delivery()
    assert await ledger.claim(KEY, first) is not None
    assert await ledger.claim(KEY, second) is None
    await ledger.release(KEY, first.token)
    assert await ledger.claim(KEY, second) is not None
    with pytest.raises(LeaseLost):
        await ledger.record_customization(KEY, first.token, "cst_stale")


async def test_an_expired_lease_can_be_taken_over(db: Database) -> None:
    await migrate(db)
    now = [1000.0]
    ledger = Ledger(db, lease_s=10, clock=lambda: now[0])
    crashed = delivery()
    assert await ledger.claim(KEY, crashed) is not None
    now[0] += 11  # the holder died; its lease ran out
    assert await ledger.claim(KEY, delivery()) is not None


async def test_concurrent_claims_have_exactly_one_winner(ledger: Ledger) -> None:
    claims = await asyncio.gather(*(ledger.claim(KEY, delivery()) for _ in range(12)))
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


async def test_pin_scopes_are_recorded_once_per_rule(ledger: Ledger) -> None:
    token = uuid.uuid4().hex
    assert await ledger.claim_product("prd_1", "shop-1", "d-1", token) == {}
    assert await ledger.claim_product("prd_1", "shop-1", "d-1", "other") is None
    await ledger.record_scope("prd_1", token, "item:/p/1", "scope-a", b'{"scope_id":"scope-a"}')
    await ledger.record_scope("prd_1", token, "item:/p/1", "scope-b", b'{"scope_id":"scope-b"}')
    await ledger.finish_product("prd_1", token, "pins_created")
    assert await ledger.claim_product("prd_1", "shop-1", "d-1", "next") == {
        "item:/p/1": b'{"scope_id":"scope-a"}'
    }
    with pytest.raises(LeaseLost):
        await ledger.record_scope("prd_1", token, "all", "scope-c", b"{}")
