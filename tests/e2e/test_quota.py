"""Two replicas on one PostgreSQL ledger spend a shop's quota together: from the sandbox's own
records, no 429 and no window over the limit."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.broker.codec import event_message
from service.samples import design_event, sample_design
from service.testing.broker import EventWatcher, publish, watching
from service.testing.polling import eventually, max_in_any_window
from service.testing.postgres import throwaway_postgres
from service.testing.processes import (
    Rig,
    heavy_calls_by_shop,
    kill_all,
    log_lines,
    start_replicas,
    start_sandbox,
    stop_replicas,
)
from service.testing.sandbox import sandbox_config

# 17-23 s a test on the CI machine: in `make slow` (CI runs it after `make test`).
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CALLS, WINDOW_S = 5, 2.0


async def test_two_replicas_never_exceed_the_quota_and_never_see_a_429(
    amqp_url: str, tmp_path: Path
) -> None:
    sandbox_proc, sandbox_url, config_file = await start_sandbox(
        sandbox_config(2, heavy_calls=CALLS, heavy_window_s=WINDOW_S), tmp_path
    )
    procs: list[subprocess.Popen[bytes]] = []
    designs = [sample_design(f"shop-{n % 2 + 1}", n, "quota") for n in range(16)]
    try:
        async with throwaway_postgres() as database_url, watching(amqp_url) as watcher:
            rig = Rig(amqp_url, sandbox_url, config_file, database_url, tmp_path)
            await start_replicas(
                rig,
                2,
                procs,
                heavy_calls=CALLS,
                heavy_window_s=WINDOW_S,
                # room for a loaded machine's jitter between our grant and the sandbox's
                # count (production: 2 % of 60 s); the mechanism is what is tested here
                QUOTA_MARGIN_MIN_S="0.25",
            )
            for design in designs:
                await publish(amqp_url, event_message(design_event(design)))
            await watcher.wait_for("pins.created", len(designs), timeout=90)
            assert await stop_replicas(procs, 30) == [0, 0]
        async with httpx.AsyncClient(base_url=sandbox_url) as http:
            records = (await http.get("/_sandbox/records")).json()
    finally:
        kill_all([*procs, sandbox_proc])
    statuses = [c["status"] for c in records["calls"]]
    assert 429 not in statuses
    by_shop = heavy_calls_by_shop(records, lambda status: status != 401)
    assert {shop: len(times) for shop, times in by_shop.items()} == {"shop-1": 16, "shop-2": 16}
    assert max(max_in_any_window(t, WINDOW_S) for t in by_shop.values()) <= CALLS
    # and the quota was used: 16 calls at 5 per 2 s need three windows and a bit
    span = max(max(t) - min(t) for t in by_shop.values())
    assert span < 3 * WINDOW_S * 1.5
    print(
        f"quota e2e: 2 replicas, {len(statuses)} calls, 0 429s, "
        f"max {max(max_in_any_window(t, WINDOW_S) for t in by_shop.values())} heavy calls "
        f"in any {WINDOW_S:.0f} s window (limit {CALLS}), busiest shop span {span:.2f} s"
    )


def _deliveries_by_design(logs: list[Path]) -> dict[str, int]:
    """How many times each design's design.approved message was handled, over every replica."""
    counts: dict[str, int] = {}
    for log in logs:
        for line in log_lines(log):
            if line.get("event") == "message.handled" and "design-approved" in str(
                line.get("queue")
            ):
                design_id = str(line.get("design_id"))
                counts[design_id] = counts.get(design_id, 0) + 1
    return counts


def _timeline(logs: list[Path], design_id: str) -> list[str]:
    """What the replicas logged of one design, in time order: for a failure's message."""
    lines = [
        f"{line.get('timestamp')} {log.stem} {line.get('event')} {line.get('queue', '')} "
        f"{line.get('reason', '')} {line.get('wait_s', '')} {line.get('outcome', '')}"
        for log in logs
        for line in log_lines(log)
        if line.get("design_id") == design_id
    ]
    return sorted(lines)


async def _settled_count(watcher: EventWatcher) -> int:
    return len(
        {s.data.design_id for s in watcher.of_type("pins.created")}  # type: ignore[union-attr]
        | {s.data.design_id for s in watcher.of_type("product.failed")}  # type: ignore[union-attr]
    )


def _most_customizations_waiting(records: dict[str, Any]) -> int:
    """The most customizations made but not yet turned into products, along the call log."""
    waiting = most = 0
    for call in sorted(records["calls"], key=lambda c: c["seq"]):
        if call["api"] == "fourthwall" and call["status"] == 201:
            waiting += 1 if "customizations" in call["endpoint"] else -1
            most = max(most, waiting)
    return most


async def test_a_hot_shops_backlog_parks_each_design_and_finishes_designs_in_order(
    amqp_url: str, tmp_path: Path
) -> None:
    """30 designs for one shop at 5 heavy calls a second: each design.approved is delivered at
    most 3 times (first delivery and its releases), and the quota goes design by design
    (customization, then its product) instead of every customization first."""
    window_s, count = 1.0, 30
    sandbox_proc, sandbox_url, config_file = await start_sandbox(
        sandbox_config(1, heavy_calls=CALLS, heavy_window_s=window_s), tmp_path
    )
    procs: list[subprocess.Popen[bytes]] = []
    designs = [sample_design("shop-1", n, "backlog") for n in range(count)]
    try:
        async with throwaway_postgres() as database_url, watching(amqp_url) as watcher:
            rig = Rig(amqp_url, sandbox_url, config_file, database_url, tmp_path)
            await start_replicas(
                rig,
                2,
                procs,
                heavy_calls=CALLS,
                heavy_window_s=window_s,
                QUOTA_MARGIN_MIN_S="0.1",
                # half a window, as production's 1 s is a fraction of its 60 s: waits this
                # short (a call in flight, the trip back from the parking lot) are held
                QUOTA_MAX_HOLD_S="0.5",
                PARKING_POLL_S="0.5",
            )
            for design in designs:
                await publish(amqp_url, event_message(design_event(design)))
            await watcher.wait_for("pins.created", count, timeout=90)
            assert await stop_replicas(procs, 30) == [0, 0]
        async with httpx.AsyncClient(base_url=sandbox_url) as http:
            records = (await http.get("/_sandbox/records")).json()
    finally:
        kill_all([*procs, sandbox_proc])
    logs = [tmp_path / f"replica-{n}.log" for n in range(2)]
    deliveries = _deliveries_by_design(logs)
    assert len(deliveries) == count
    most = max(deliveries, key=lambda design_id: deliveries[design_id])
    assert deliveries[most] <= 3, "\n".join([str(deliveries), *_timeline(logs, most)])
    assert 429 not in [c["status"] for c in records["calls"]]
    assert len(records["products"]) == count
    # all customizations first would leave 30 waiting; design by design leaves a window's worth
    assert _most_customizations_waiting(records) <= CALLS
    print(
        f"backlog e2e: {count} designs, deliveries per design max {max(deliveries.values())}, "
        f"mean {sum(deliveries.values()) / count:.2f}, most customizations waiting for their "
        f"product {_most_customizations_waiting(records)}"
    )


async def test_parked_designs_outlive_a_killed_replica(amqp_url: str, tmp_path: Path) -> None:
    """SIGKILL the only replica while most of a backlog is parked in the ledger; a new replica
    on the same ledger releases them: every design one product, none lost."""
    window_s, count = 1.0, 20
    sandbox_proc, sandbox_url, config_file = await start_sandbox(
        sandbox_config(1, heavy_calls=CALLS, heavy_window_s=window_s), tmp_path
    )
    procs: list[subprocess.Popen[bytes]] = []
    designs = [sample_design("shop-1", n, "parked-kill") for n in range(count)]
    try:
        async with throwaway_postgres() as database_url, watching(amqp_url) as watcher:
            rig = Rig(amqp_url, sandbox_url, config_file, database_url, tmp_path)
            # a killed holder's lease on the design it was working on runs out after LEASE_S
            lease = {"QUOTA_MARGIN_MIN_S": "0.1", "LEASE_S": "3"}
            await start_replicas(rig, 1, procs, heavy_calls=CALLS, heavy_window_s=window_s, **lease)
            for design in designs:
                await publish(amqp_url, event_message(design_event(design)))
            await watcher.wait_for("pins.created", 3, timeout=60)
            procs[0].kill()
            procs[0].wait(10)
            replacement = Rig(amqp_url, sandbox_url, config_file, database_url, tmp_path / "b")
            replacement.workdir.mkdir()
            await start_replicas(replacement, 1, procs, heavy_calls=CALLS, heavy_window_s=window_s)

            async def settled() -> bool:
                return await _settled_count(watcher) == count

            await eventually(settled, 90, what="every design settled")
            assert await stop_replicas(procs[1:], 30) == [0]
        async with httpx.AsyncClient(base_url=sandbox_url) as http:
            records = (await http.get("/_sandbox/records")).json()
    finally:
        kill_all([*procs, sandbox_proc])
    pinned = {s.data.design_id for s in watcher.of_type("pins.created")}  # type: ignore[union-attr]
    # a design the kill caught between Fourthwall's answer and the ledger write is parked for
    # reconciliation (docs/reliability.md), never doubled; every other one has its product
    reconcile = {
        s.data.design_id  # type: ignore[union-attr]
        for s in watcher.of_type("product.failed")
        if s.data.code == "CUSTOMIZATION_ALREADY_USED_ERROR"  # type: ignore[union-attr]
    }
    assert pinned | reconcile == {d.design_id for d in designs}
    assert len(records["products"]) == count
