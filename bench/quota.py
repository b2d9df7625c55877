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
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
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


async def run(
    limiter: bool, workdir: Path, window_s: float = WINDOW_S, hot: int = HOT
) -> dict[str, Any]:
    shops = 1 + COLD_SHOPS
    config = sandbox_config(
        shops, heavy_calls=CALLS, heavy_window_s=window_s, calls=100_000, window_s=10.0
    )
    sandbox_proc, sandbox_url, config_file = await processes.start_sandbox(config, workdir)
    hot_designs = [sample_design("shop-1", n, f"hot-{limiter}") for n in range(hot)]
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
                    heavy_window_s=window_s,
                    QUOTA_ENABLED="true" if limiter else "false",
                    RETRY_DELAYS_S="0.5,1,2",
                    MAX_ATTEMPTS="10",
                    LOG_LEVEL="warning",
                )
                for design in hot_designs + cold:
                    published[design.design_id] = time.time()
                    await publish(amqp_url, event_message(design_event(design)))
                await watcher.wait_for("product.created", hot + len(cold), timeout=900)
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
    hot_rate = len(hot_calls) / (span + window_s) * window_s / CALLS if hot_calls else 0.0
    cold_latency = sorted(seen_at[d.design_id] - published[d.design_id] for d in cold)
    return {
        "limiter": limiter,
        "429s": sum(1 for c in records["calls"] if c["status"] == 429),
        "max_heavy_in_window": max(max_in_any_window(t, window_s) for t in heavy.values()),
        "hot_rate_of_limit": round(hot_rate, 3),
        "hot_span_s": round(span, 2),
        "cold_p50_s": round(statistics.median(cold_latency), 3),
        "cold_p100_s": round(cold_latency[-1], 3),
        "products": len(records["products"]),
        "designs": hot + len(cold),
    }


KEYS = [
    "429s",
    "max_heavy_in_window",
    "hot_rate_of_limit",
    "hot_span_s",
    "cold_p50_s",
    "cold_p100_s",
    "products",
    "designs",
]


@contextlib.contextmanager
def cpu_hogs(count: int) -> Iterator[None]:
    """``count`` processes that spin on a core each until the block ends."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait(10)


def goals(window_s: float, rate: float) -> dict[str, str]:
    return {
        "429s": "0",
        "max_heavy_in_window": f"<= {CALLS}",
        "hot_rate_of_limit": f">= {rate}",
        "cold_p100_s": f"<= {2 * window_s / CALLS:.2f} (2 slots)",
    }


def table(results: list[dict[str, Any]], names: list[str], wanted: dict[str, str]) -> None:
    print(f"{'figure':<22}" + "".join(f"{name:>16}" for name in names) + f"{'goal':>22}")
    for key in KEYS:
        cells = "".join(f"{r[key]!s:>16}" for r in results)
        print(f"{key:<22}{cells}{wanted.get(key, ''):>22}")


async def under_load(runs: int, window_s: float, hogs: int) -> None:
    results = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench-quota-") as workdir, cpu_hogs(hogs):
            results.append(await run(True, Path(workdir), window_s))
        print(json.dumps(results[-1]), flush=True)
    print(
        f"\nquota under load: {REPLICAS} replicas, {hogs} CPU hog(s) on 2 cores, limit {CALLS} "
        f"heavy calls / {window_s:g} s per shop, 1 hot shop x {HOT} + {COLD_SHOPS} x "
        f"{COLD_DESIGNS}, {runs} runs"
    )
    table(results, [f"run {n + 1}" for n in range(runs)], goals(window_s, 0.9))
    rates = [r["hot_rate_of_limit"] for r in results]
    print(
        f"spread: 429s total {sum(r['429s'] for r in results)}, most in any window "
        f"{max(r['max_heavy_in_window'] for r in results)}, hot rate min {min(rates)} "
        f"median {statistics.median(rates)} max {max(rates)}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--window-s", type=float, default=WINDOW_S)
    parser.add_argument("--under-load", type=int, default=0, metavar="RUNS")
    parser.add_argument(
        "--hogs", type=int, default=1, help="busy-looping processes, with --under-load"
    )
    args = parser.parse_args()
    if not shutil.which("rabbitmqctl"):
        raise SystemExit("bench/quota.py needs a local RabbitMQ with rabbitmqctl")
    if args.under_load:
        await under_load(args.under_load, args.window_s, args.hogs)
        return
    results = []
    for limiter in (True, False)[: 1 if args.skip_baseline else 2]:
        with tempfile.TemporaryDirectory(prefix="bench-quota-") as workdir:
            results.append(await run(limiter, Path(workdir), args.window_s))
    print(
        f"\nquota benchmark: {REPLICAS} replicas, limit {CALLS} heavy calls / {args.window_s:g} s "
        f"per shop, 1 hot shop x {HOT} designs + {COLD_SHOPS} shops x {COLD_DESIGNS}"
    )
    names = ["limiter", "baseline"][: len(results)]
    table(results, names, goals(args.window_s, 0.95))
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
