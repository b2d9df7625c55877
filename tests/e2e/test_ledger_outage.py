"""The ledger's database goes away while designs are in flight, and comes back: nothing failed,
nothing lost, nothing done twice, readiness 503 meanwhile, and every design settled soon after.

Replicas run as processes against the sandbox; the machine's shared PostgreSQL keeps running:
each test cuts only its own throwaway database (a TCP proxy in front of it, its backends
terminated with new sessions refused, or switched to read-only), and SQLite is locked by another
connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import asyncpg
import httpx
import pytest

from service.broker.codec import event_message
from service.broker.topology import QUEUES
from service.samples import design_event, sample_design
from service.store.database import open_database
from service.store.migrations import migrate
from service.testing.broker import publish, watching
from service.testing.polling import eventually
from service.testing.postgres import throwaway_postgres
from service.testing.processes import (
    Rig,
    kill_all,
    log_lines,
    start_replicas,
    start_sandbox,
    stop_replicas,
)
from service.testing.proxy import TcpProxy
from service.testing.sandbox import sandbox_config

# 20-30 s a test on the CI machine: in `make slow` (CI runs it after `make test`).
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SHOPS, PER_SHOP = 3, 20
CALLS, WINDOW_S = 10, 1.0  # each shop's heavy limit, scaled down: designs stay in flight
SETTLED_WITHIN_S = 15.0  # after the database is back

Step = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Outage:
    begin: Step
    end: Step
    seconds: float


async def _ready(url: str) -> int:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"{url}/health/ready", timeout=2)).status_code


async def _dead_letters(amqp_url: str) -> int:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        total = 0
        for names in QUEUES.values():
            queue = await channel.declare_queue(names.dead_letter, passive=True)
            total += queue.declaration_result.message_count or 0
        return total
    finally:
        await connection.close()


async def run_through(
    outage: Outage, amqp_url: str, workdir: Path, database_url: str, replicas: int
) -> dict[str, Any]:
    """60 designs over 3 shops through ``replicas`` processes, the outage in the middle."""
    sandbox_proc, sandbox_url, config_file = await start_sandbox(
        sandbox_config(SHOPS, heavy_calls=CALLS, heavy_window_s=WINDOW_S), workdir
    )
    procs: list[subprocess.Popen[bytes]] = []
    designs = [
        sample_design(f"shop-{s}", n, "outage") for n in range(PER_SHOP) for s in range(1, 4)
    ]
    try:
        async with watching(amqp_url) as watcher:
            rig = Rig(amqp_url, sandbox_url, config_file, database_url, workdir)
            urls = await start_replicas(
                rig,
                replicas,
                procs,
                heavy_calls=CALLS,
                heavy_window_s=WINDOW_S,
                LEDGER_TIMEOUT_S="2",
                QUOTA_MARGIN_MIN_S="0.25",
            )
            for design in designs:
                await publish(amqp_url, event_message(design_event(design)))
            await watcher.wait_for(
                "pins.created", 20, timeout=60
            )  # a third done, the rest in flight
            await outage.begin()
            began = time.monotonic()

            async def all_unready() -> bool:
                return all([await _ready(url) == 503 for url in urls])

            # held until every replica has noticed (a replica notices at its next write; on a
            # busy machine that may come late), for twice the outage at most
            await eventually(all_unready, timeout=2 * outage.seconds, what="readiness 503")
            await asyncio.sleep(max(0.0, began + outage.seconds - time.monotonic()))
            await outage.end()
            back = time.monotonic()
            await watcher.wait_for("pins.created", len(designs), timeout=SETTLED_WITHIN_S)
            settled_s = time.monotonic() - back
            failed = watcher.of_type("product.failed")
            dead = await _dead_letters(amqp_url)
            assert await stop_replicas(procs, 30) == [0] * replicas
        async with httpx.AsyncClient(base_url=sandbox_url) as http:
            records = (await http.get("/_sandbox/records")).json()
    finally:
        kill_all([*procs, sandbox_proc])
    logs = [line for n in range(replicas) for line in log_lines(workdir / f"replica-{n}.log")]
    return {
        "designs": designs,
        "records": records,
        "failed": failed,
        "dead_letters": dead,
        "logs": logs,
        "settled_s": settled_s,
    }


def assert_nothing_failed_lost_or_doubled(run: dict[str, Any], replicas: int) -> None:
    designs, records, logs = run["designs"], run["records"], run["logs"]
    names = Counter(p["name"] for p in records["products"].values())
    assert names == Counter(d.product.name for d in designs)  # exactly one product each
    pinned = Counter(s["request"]["pin_definitions"][0]["pin_identity"] for s in records["scopes"])
    assert sorted(pinned) == sorted(records["products"]) and set(pinned.values()) == {1}
    assert 429 not in [c["status"] for c in records["calls"]]
    assert run["failed"] == [] and run["dead_letters"] == 0
    events = Counter(str(line.get("event")) for line in logs)
    # no attempt spent, no crash, nothing left unacked for the broker to redeliver
    for never in ("handler.crashed", "message.retry_scheduled", "message.unsettled"):
        assert events[never] == 0, (never, events[never])
    # (whether a message was handed back or held its answer depends on where the outage hit)
    # each replica saw the outage begin and end, once per outage, not once per message
    assert replicas <= events["ledger.unavailable"] <= 2 * replicas
    assert events["ledger.available"] == events["ledger.unavailable"]
    print(
        f"ledger outage: {len(designs)} designs, {events['message.handed_back']} handed back, "
        f"all settled {run['settled_s']:.1f} s after the database returned"
    )


def _replace_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username or 'postgres'}@127.0.0.1:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@contextlib.asynccontextmanager
async def proxied_postgres() -> AsyncIterator[tuple[str, TcpProxy]]:
    async with throwaway_postgres() as url:
        parts = urlsplit(url)
        proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
        port = await proxy.start()
        try:
            yield _replace_port(url, port), proxy
        finally:
            await proxy.close()


async def _migrated(url: str) -> None:
    db = await open_database(url)
    try:
        await migrate(db)
    finally:
        await db.close()


@pytest.mark.parametrize("seconds", [10.0, pytest.param(60.0, marks=pytest.mark.slow)])
async def test_connections_cut_by_a_proxy(amqp_url: str, tmp_path: Path, seconds: float) -> None:
    async with proxied_postgres() as (url, proxy):
        await _migrated(url)
        run = await run_through(
            Outage(proxy.cut, proxy.restore, seconds), amqp_url, tmp_path, url, 2
        )
    assert_nothing_failed_lost_or_doubled(run, 2)


async def _as_admin(url: str, *statements: str) -> None:
    parts = urlsplit(url)
    admin = await asyncpg.connect(urlunsplit((parts.scheme, parts.netloc, "/postgres", "", "")))
    try:
        for statement in statements:
            await admin.execute(statement)
    finally:
        await admin.close()


def _terminate(name: str) -> str:
    """Every session of our own throwaway database but this one (``name`` is ours, not input)."""
    where = f"datname = '{name}' AND pid <> pg_backend_pid()"
    return f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {where}"  # noqa: S608


async def test_backends_terminated_and_new_sessions_refused(amqp_url: str, tmp_path: Path) -> None:
    async with throwaway_postgres() as url:
        await _migrated(url)
        name = urlsplit(url).path.lstrip("/")

        async def begin() -> None:
            await _as_admin(
                url, f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false', _terminate(name)
            )

        async def end() -> None:
            await _as_admin(url, f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')

        run = await run_through(Outage(begin, end, 10.0), amqp_url, tmp_path, url, 2)
    assert_nothing_failed_lost_or_doubled(run, 2)


async def test_a_read_only_database(amqp_url: str, tmp_path: Path) -> None:
    """As a primary demoted by a failover: sessions are read-only, writes fail with 25006."""
    async with throwaway_postgres() as url:
        await _migrated(url)
        name = urlsplit(url).path.lstrip("/")

        async def begin() -> None:
            await _as_admin(
                url,
                f'ALTER DATABASE "{name}" SET default_transaction_read_only = on',
                _terminate(name),
            )

        async def end() -> None:
            await _as_admin(
                url,
                f'ALTER DATABASE "{name}" RESET default_transaction_read_only',
                _terminate(name),
            )

        run = await run_through(Outage(begin, end, 10.0), amqp_url, tmp_path, url, 2)
    assert_nothing_failed_lost_or_doubled(run, 2)


async def test_a_sqlite_file_locked_by_another_connection(amqp_url: str, tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    url = f"sqlite:///{path}"
    await _migrated(url)
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    async def begin() -> None:
        holder.execute("BEGIN EXCLUSIVE")

    async def end() -> None:
        holder.execute("ROLLBACK")

    try:
        run = await run_through(Outage(begin, end, 10.0), amqp_url, tmp_path, url, 1)
    finally:
        holder.close()
    assert_nothing_failed_lost_or_doubled(run, 1)
