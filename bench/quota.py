"""Benchmark: the shared Fourthwall quota under a hot shop, with 3 replicas.

3 service processes against the sandbox (heavy limit scaled down to CALLS per WINDOW_S), one
PostgreSQL ledger, 20 shops: one hot shop with 100 designs and 19 cold shops with 2 each,
published hot shop first. Figures come from the sandbox's own records. The same load runs a
second time with the limiter switched off (QUOTA_ENABLED=false) as the baseline, and both are
printed side by side.

    uv run python -m bench.quota            # needs RabbitMQ, PostgreSQL and rabbitmqctl locally
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from service.broker.codec import event_message
from service.samples import design_event, sample_design
from service.testing import processes
from service.testing.broker import DEFAULT_AMQP_URL, publish, throwaway_vhost, watching
from service.testing.polling import max_in_any_window
from service.testing.postgres import throwaway_postgres
from service.testing.sandbox import sandbox_config

CALLS, WINDOW_S = 5, 2.0
HOT, COLD_SHOPS, COLD_DESIGNS = 100, 19, 2
REPLICAS = 3


async def run(limiter: bool, workdir: Path) -> dict[str, Any]:
    shops = 1 + COLD_SHOPS
    config = sandbox_config(
        shops, heavy_calls=CALLS, heavy_window_s=WINDOW_S, calls=100_000, window_s=10.0
    )
    sandbox_proc, sandbox_url, config_file = await processes.start_sandbox(config, workdir)
    hot = [sample_design("shop-1", n, f"hot-{limiter}") for n in range(HOT)]
    cold = [
        sample_design(f"shop-{s}", n, f"cold-{limiter}")
        for s in range(2, shops + 1)
        for n in range(COLD_DESIGNS)
    ]
    procs: list[subprocess.Popen[bytes]] = []
    published: dict[str, float] = {}
    try:
        with throwaway_vhost(DEFAULT_AMQP_URL) as amqp_url:
            async with throwaway_postgres() as database_url, watching(amqp_url) as watcher:
                rig = processes.Rig(amqp_url, sandbox_url, config_file, database_url, workdir)
                await processes.start_replicas(
                    rig,
                    REPLICAS,
                    procs,
                    heavy_calls=CALLS,
                    heavy_window_s=WINDOW_S,
                    QUOTA_ENABLED="true" if limiter else "false",
                    DEFER_DELAYS_S="0.05,0.1,0.2,0.4,0.8,1.6,3.2,6.4,12.8",
                    RETRY_DELAYS_S="0.5,1,2",
                    MAX_ATTEMPTS="10",
                    LOG_LEVEL="warning",
                )
                for design in hot + cold:
                    published[design.design_id] = time.time()
                    await publish(amqp_url, event_message(design_event(design)))
                await watcher.wait_for("product.created", HOT + len(cold), timeout=900)
                seen_at: dict[str, float] = {}
                for seen in watcher.of_type("product.created"):
                    design_id = seen.data.design_id  # type: ignore[union-attr]
                    seen_at[design_id] = min(seen_at.get(design_id, seen.arrived), seen.arrived)
                await processes.stop_replicas(procs, 60)
        async with httpx.AsyncClient(base_url=sandbox_url) as http:
            records = (await http.get("/_sandbox/records")).json()
    finally:
        processes.kill_all([*procs, sandbox_proc])

    heavy = processes.heavy_calls_by_shop(records, lambda status: status == 201)
    hot_calls = sorted(heavy.get("shop-1", []))
    span = hot_calls[-1] - hot_calls[0] if len(hot_calls) > 1 else 0.0
    # calls per window over the windows they occupied, as a fraction of the limit
    hot_rate = len(hot_calls) / (span + WINDOW_S) * WINDOW_S / CALLS if hot_calls else 0.0
    cold_latency = sorted(seen_at[d.design_id] - published[d.design_id] for d in cold)
    return {
        "limiter": limiter,
        "429s": sum(1 for c in records["calls"] if c["status"] == 429),
        "max_heavy_in_window": max(max_in_any_window(t, WINDOW_S) for t in heavy.values()),
        "hot_rate_of_limit": round(hot_rate, 3),
        "hot_span_s": round(span, 2),
        "cold_p50_s": round(statistics.median(cold_latency), 3),
        "cold_p100_s": round(cold_latency[-1], 3),
        "products": len(records["products"]),
        "designs": HOT + len(cold),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    if not shutil.which("rabbitmqctl"):
        raise SystemExit("bench/quota.py needs a local RabbitMQ with rabbitmqctl")
    results = []
    for limiter in (True, False)[: 1 if args.skip_baseline else 2]:
        with tempfile.TemporaryDirectory(prefix="bench-quota-") as workdir:
            results.append(await run(limiter, Path(workdir)))
    slot = WINDOW_S / CALLS
    print(
        f"\nquota benchmark: {REPLICAS} replicas, limit {CALLS} heavy calls / {WINDOW_S:g} s "
        f"per shop, 1 hot shop x {HOT} designs + {COLD_SHOPS} shops x {COLD_DESIGNS}"
    )
    names = {True: "limiter", False: "baseline (no limiter)"}
    keys = [
        "429s",
        "max_heavy_in_window",
        "hot_rate_of_limit",
        "hot_span_s",
        "cold_p50_s",
        "cold_p100_s",
        "products",
        "designs",
    ]
    goals = {
        "429s": "0",
        "max_heavy_in_window": f"<= {CALLS}",
        "hot_rate_of_limit": ">= 0.95",
        "cold_p100_s": f"<= {2 * slot:.2f} (2 slots)",
    }
    print(
        f"{'figure':<22}" + "".join(f"{names[r['limiter']]:>24}" for r in results) + f"{'goal':>22}"
    )
    for key in keys:
        print(
            f"{key:<22}" + "".join(f"{r[key]!s:>24}" for r in results) + f"{goals.get(key, ''):>22}"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
