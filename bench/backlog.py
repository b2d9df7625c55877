"""Benchmark: what a waiting design costs as one shop's backlog grows.

One hot shop with N designs at time-scaled limits (5 heavy calls per 1 s), one replica of the
service against the sandbox; once every backlog design has been delivered once, one design of a
cold shop is published. Per N: deliveries of design.approved per design, CPU ms per design, RSS,
the hot shop's quota utilisation (heavy calls over the span they took, as a fraction of the
limit), the time to the first and the median product, and how long the cold design waited for
its first Fourthwall call.

    uv run python -m bench.backlog                    # N = 100, 500, 2000 (about 20 minutes)
    uv run python -m bench.backlog --sizes 20         # the smoke test's size
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.overhead import cpu_ms, publish_all, rss_mb, start_service
from service.broker.codec import event_message
from service.samples import design_event, sample_design
from service.testing import processes
from service.testing.broker import DEFAULT_AMQP_URL, throwaway_vhost, watching
from service.testing.polling import eventually
from service.testing.sandbox import sandbox_config

CALLS, WINDOW_S = 5, 1.0
SLOT_S = WINDOW_S / CALLS
GOALS = {
    "deliveries_per_design": "flat ±20 %",
    "cpu_ms_per_design": "flat ±20 %",
    "utilisation": ">= 0.9",
    "first_product_s": f"<= {2 * SLOT_S:.1f} (2 slots)",
    "cold_first_call_s": f"<= {2 * SLOT_S:.1f} (2 slots)",
    "rss_after_mb": "flat +10 %",
}


def deliveries(metrics_text: str, queue: str) -> float:
    """merch_messages_total summed over outcomes, for one queue."""
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith("merch_messages_total{") and f'queue="{queue}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


async def run(n: int, workdir: Path) -> dict[str, Any]:
    config = sandbox_config(2, heavy_calls=CALLS, heavy_window_s=WINDOW_S, calls=100_000)
    sandbox, sandbox_url, _ = await processes.start_sandbox(config, workdir)
    target = None
    queue = "merch-pipeline.design-approved"
    try:
        with throwaway_vhost(DEFAULT_AMQP_URL) as amqp_url:
            async with watching(amqp_url, ("product.created",)) as watcher:
                target = await start_service(
                    amqp_url,
                    sandbox_url,
                    workdir,
                    f"sqlite:///{workdir / 'ledger.sqlite3'}",
                    {
                        "FOURTHWALL_HEAVY_CALLS": str(CALLS),
                        "FOURTHWALL_HEAVY_WINDOW_S": str(WINDOW_S),
                        "QUOTA_MARGIN_MIN_S": "0.02",
                        "QUOTA_MAX_HOLD_S": "0.5",
                        "LOG_LEVEL": "warning",
                    },
                )
                pid, metrics_url = target.proc.pid, str(target.metrics_url)
                hot = [
                    event_message(design_event(sample_design("shop-1", i, f"backlog-{n}")))
                    for i in range(n)
                ]
                cold = sample_design("shop-2", 0, f"cold-{n}")
                await asyncio.sleep(1.0)
                rss_idle, cpu_before = rss_mb(pid), cpu_ms(pid)
                started = time.time()
                await publish_all(amqp_url, hot)

                async def all_delivered_once() -> bool:
                    async with httpx.AsyncClient() as http:
                        text = (await http.get(metrics_url)).text
                    return deliveries(text, queue) >= n

                await eventually(all_delivered_once, 600, 0.5, "every design delivered once")
                cold_published = time.time()
                await publish_all(amqp_url, [event_message(design_event(cold))])
                await watcher.wait_for("product.created", n + 1, timeout=n * 2 / CALLS + 120)
                cpu = cpu_ms(pid) - cpu_before
                rss_after = rss_mb(pid)
                async with httpx.AsyncClient() as http:
                    delivered = deliveries((await http.get(metrics_url)).text, queue)
                    records = (await http.get(f"{sandbox_url}/_sandbox/records")).json()
                seen = sorted(
                    s.arrived
                    for s in watcher.of_type("product.created")
                    if s.data.shop_id == "shop-1"  # type: ignore[union-attr]
                )
    finally:
        for proc in (sandbox, *([target.proc] if target else [])):
            processes.kill_all([proc])
    heavy = processes.heavy_calls_by_shop(records, lambda status: status == 201)
    hot_calls = sorted(heavy["shop-1"])
    span = hot_calls[-1] - hot_calls[0]
    return {
        "designs": n,
        "deliveries_per_design": round(delivered / (n + 1), 2),
        "cpu_ms_per_design": round(cpu / (n + 1), 2),
        "rss_idle_mb": round(rss_idle, 1),
        "rss_after_mb": round(rss_after, 1),
        "utilisation": round(len(hot_calls) / (span / WINDOW_S * CALLS + CALLS), 3),
        "first_product_s": round(seen[0] - started, 2),
        "median_product_s": round(statistics.median(seen) - started, 2),
        "cold_first_call_s": round(min(heavy["shop-2"]) - cold_published, 2),
        "429s": sum(1 for c in records["calls"] if c["status"] == 429),
    }


def table(results: list[dict[str, Any]]) -> None:
    keys = [k for k in results[0] if k != "designs"]
    print(f"{'figure':<24}" + "".join(f"{'N=' + str(r['designs']):>12}" for r in results), end="")
    print(f"{'goal':>24}")
    for key in keys:
        cells = "".join(f"{r[key]!s:>12}" for r in results)
        print(f"{key:<24}{cells}{GOALS.get(key, ''):>24}")
    if len(results) > 1:
        first, last = results[0], results[-1]
        for key in ("deliveries_per_design", "cpu_ms_per_design", "rss_after_mb"):
            change = (last[key] - first[key]) / first[key] * 100 if first[key] else 0.0
            print(f"{key} from N={first['designs']} to N={last['designs']}: {change:+.1f} %")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100,500,2000")
    args = parser.parse_args()
    results = []
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="bench-backlog-") as workdir:
            results.append(await run(n, Path(workdir)))
        print(json.dumps(results[-1]), flush=True)
    print(f"\nbacklog: 1 hot shop, limit {CALLS} heavy calls / {WINDOW_S:g} s, 1 replica, SQLite")
    table(results)


if __name__ == "__main__":
    asyncio.run(main())
