"""Benchmark: what one design costs the service, against a bare script doing the same work.

For each shape (every design from 1 shop; designs spread over 40 shops) it runs, in the same
invocation and each on a throwaway vhost against its own sandbox with every quota lifted:

- ``bench/baseline.py``: straight-line aio-pika + httpx, nothing else;
- ``merch-pipeline run``: the service as deployed (its limiter on, limits lifted), one replica.

N designs are published; the run ends when N ``pins.created`` were seen. Figures: process CPU
ms per design (utime + stime of the target and its waited-for children, from /proc), designs per
second (first publish to last pins.created), RSS idle and after, and, for the service, SQL
statements, broker publishes and deliveries per design (from its /metrics), and the ratios.

    uv run python -m bench.overhead                 # 400 designs, both shapes, SQLite ledger
    uv run python -m bench.overhead --runs 3 --ledger postgresql
    uv run python -m bench.overhead --runs 3 --shapes 1 --tracing   # + the service traced

With ``--tracing`` a third target runs in each round: the service with
``OTEL_EXPORTER_OTLP_ENDPOINT`` set to an OTLP/HTTP receiver in this process (every delivery,
publish and upstream call traced and exported), and the summary adds its CPU per design
against the untraced service's of the same round (issue 19's goal: within 5 %).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import httpx

from contracts.events import EXCHANGE
from service.broker.codec import event_message
from service.samples import design_event, sample_design
from service.testing import processes
from service.testing.broker import DEFAULT_AMQP_URL, throwaway_vhost, watching
from service.testing.otlp import otlp_receiver
from service.testing.polling import eventually
from service.testing.postgres import throwaway_postgres
from service.testing.sandbox import sandbox_config

TICKS = os.sysconf("SC_CLK_TCK")
LIFTED = {"heavy_calls": 1_000_000, "heavy_window_s": 1.0, "calls": 1_000_000, "window_s": 1.0}
GOALS = {"cpu_ratio": "<= 1.25", "throughput_ratio": ">= 0.8", "tracing_cpu_ratio": "<= 1.05"}


def cpu_ms(pid: int) -> float:
    """utime + stime of ``pid`` and its waited-for children, in ms."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return (utime + stime + cutime + cstime) * 1000 / TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def counters(text: str) -> dict[str, float]:
    """The service's own counts, summed over labels: statements, publishes, deliveries."""
    wanted = {
        "merch_ledger_statements_total": "statements",
        "merch_broker_publishes_total": "publishes",
        "merch_messages_total": "deliveries",
    }
    found = dict.fromkeys(wanted.values(), 0.0)
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in wanted:
            found[wanted[name]] += float(line.rsplit(" ", 1)[1])
    return found


@dataclass
class Target:
    proc: subprocess.Popen[bytes]
    metrics_url: str | None  # the service's /metrics; None for the baseline

    async def counts(self) -> dict[str, float]:
        if self.metrics_url is None:
            return {}
        async with httpx.AsyncClient() as http:
            return counters((await http.get(self.metrics_url)).text)


def _popen(args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, **kwargs)


async def start_baseline(amqp_url: str, sandbox_url: str, workdir: Path) -> Target:
    proc = _popen(
        [
            sys.executable,
            "-m",
            "bench.baseline",
            "--amqp-url",
            amqp_url,
            "--api-url",
            sandbox_url,
            "--sandbox-config",
            str(workdir / "sandbox.json"),
        ],
        stdout=subprocess.PIPE,
        stderr=(workdir / "baseline.log").open("ab"),
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)
    if line.strip() != b"ready":
        raise RuntimeError(f"the baseline did not start: {line!r}")
    return Target(proc, None)


async def start_service(
    amqp_url: str, sandbox_url: str, workdir: Path, database_url: str, extra: dict[str, str]
) -> Target:
    lifted = {
        "FOURTHWALL_HEAVY_CALLS": str(LIFTED["heavy_calls"]),
        "FOURTHWALL_HEAVY_WINDOW_S": "1",
        "FOURTHWALL_CALLS": str(LIFTED["calls"]),
        "FOURTHWALL_WINDOW_S": "1",
        "LOG_LEVEL": "info",
    }
    env = processes.service_env(
        amqp_url,
        sandbox_url,
        workdir / "config.toml",
        workdir,
        DATABASE_URL=database_url,
        **{**lifted, **extra},
    )
    log = (workdir / "service.log").open("ab")
    proc = _popen(
        [*processes.CLI, "run"], env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{env['HTTP_PORT']}"
    await eventually(lambda: processes.http_ok(f"{url}/health/ready", proc), 60, what="ready")
    return Target(proc, f"{url}/metrics")


async def publish_all(amqp_url: str, messages: list[aio_pika.Message]) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        for start in range(0, len(messages), 50):
            batch = messages[start : start + 50]
            await asyncio.gather(*(exchange.publish(m, "design.approved") for m in batch))


@contextlib.asynccontextmanager
async def ledger_url(kind: str, workdir: Path) -> AsyncIterator[str]:
    if kind == "postgresql":
        async with throwaway_postgres() as url:
            yield url
    else:
        yield f"sqlite:///{workdir / 'ledger.sqlite3'}"


def start_profile(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling ``pid`` (threads included) into collapsed stacks at ``out``."""
    return _popen(
        [
            "py-spy",
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--rate",
            "200",
            "--output",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def profile_summary(collapsed: Path, top: int = 25) -> list[tuple[str, float]]:
    """The functions holding most samples (self time), as fractions of all samples."""
    own: dict[str, int] = {}
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frame = stack.rsplit(";", 1)[-1]
        own[frame] = own.get(frame, 0) + int(count)
        total += int(count)
    ranked = sorted(own.items(), key=lambda kv: -kv[1])[:top]
    return [(frame, count / total) for frame, count in ranked] if total else []


async def measure(
    target_kind: str,
    shops: int,
    designs: int,
    ledger: str,
    profile: Path | None = None,
    traces_to: str | None = None,
) -> dict[str, Any]:
    config = sandbox_config(shops, **LIFTED)
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        workdir = Path(tmp)
        sandbox, sandbox_url, _ = await processes.start_sandbox(config, workdir)
        target: Target | None = None
        try:
            with throwaway_vhost(DEFAULT_AMQP_URL) as amqp_url:
                async with (
                    ledger_url(ledger, workdir) as database_url,
                    watching(amqp_url, ("pins.created",)) as watcher,
                ):
                    if target_kind == "baseline":
                        target = await start_baseline(amqp_url, sandbox_url, workdir)
                    else:
                        extra = {"OTEL_EXPORTER_OTLP_ENDPOINT": traces_to} if traces_to else {}
                        target = await start_service(
                            amqp_url, sandbox_url, workdir, database_url, extra
                        )
                    pid = target.proc.pid
                    run_id = f"{target_kind}-{time.time_ns()}"
                    messages = [
                        event_message(
                            design_event(sample_design(f"shop-{n % shops + 1}", n, run_id))
                        )
                        for n in range(designs)
                    ]
                    await asyncio.sleep(1.0)  # let start-up settle before the idle reading
                    rss_idle = rss_mb(pid)
                    counts_before = await target.counts()
                    cpu_before = cpu_ms(pid)
                    sampler = start_profile(pid, profile) if profile else None
                    started = time.monotonic()
                    await publish_all(amqp_url, messages)
                    await watcher.wait_for("pins.created", designs, timeout=600)
                    wall = time.monotonic() - started
                    if sampler is not None:
                        sampler.send_signal(signal.SIGINT)  # py-spy writes its file and exits
                        sampler.wait(60)
                    cpu = cpu_ms(pid) - cpu_before
                    rss_after = rss_mb(pid)
                    counts_after = await target.counts()
        finally:
            for proc in (sandbox, *([target.proc] if target else [])):
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(10)
    result: dict[str, Any] = {
        "target": target_kind,
        "shops": shops,
        "designs": designs,
        "cpu_ms_per_design": round(cpu / designs, 2),
        "designs_per_s": round(designs / wall, 1),
        "rss_idle_mb": round(rss_idle, 1),
        "rss_after_mb": round(rss_after, 1),
    }
    for key, before in counts_before.items():
        result[f"{key}_per_design"] = round((counts_after[key] - before) / designs, 2)
    return result


def summary(rows: list[dict[str, Any]], runs: int) -> None:
    keys = [
        "cpu_ms_per_design",
        "designs_per_s",
        "rss_idle_mb",
        "rss_after_mb",
        "statements_per_design",
        "publishes_per_design",
        "deliveries_per_design",
    ]
    for shops in sorted({r["shops"] for r in rows}):
        print(f"\n{shops} shop(s), {rows[0]['designs']} designs, {runs} run(s)")
        print(f"{'figure':<24}{'service':>22}{'baseline':>22}")
        service = [r for r in rows if r["shops"] == shops and r["target"] == "service"]
        baseline = [r for r in rows if r["shops"] == shops and r["target"] == "baseline"]
        for key in keys:
            cells = [_spread([r.get(key) for r in group]) for group in (service, baseline)]
            print(f"{key:<24}{cells[0]:>22}{cells[1]:>22}")
        cpu = [
            s["cpu_ms_per_design"] / b["cpu_ms_per_design"]
            for s, b in zip(service, baseline, strict=True)
        ]
        rate = [
            s["designs_per_s"] / b["designs_per_s"] for s, b in zip(service, baseline, strict=True)
        ]
        print(f"{'cpu_ratio':<24}{_spread(cpu):>22}{GOALS['cpu_ratio']:>22}")
        print(f"{'throughput_ratio':<24}{_spread(rate):>22}{GOALS['throughput_ratio']:>22}")
        traced = [r for r in rows if r["shops"] == shops and r["target"] == "traced"]
        if traced:
            on = [
                t["cpu_ms_per_design"] / s["cpu_ms_per_design"]
                for t, s in zip(traced, service, strict=True)
            ]
            cells = _spread([t["cpu_ms_per_design"] for t in traced])
            print(f"{'traced cpu_ms_per_design':<24}{cells:>22}")
            print(f"{'tracing_cpu_ratio':<24}{_spread(on):>22}{GOALS['tracing_cpu_ratio']:>22}")


def _spread(values: list[Any]) -> str:
    present = [float(v) for v in values if v is not None]
    if not present:
        return "-"
    if len(present) == 1:
        return f"{present[0]:.2f}"
    return f"{min(present):.2f}/{statistics.median(present):.2f}/{max(present):.2f}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--designs", type=int, default=400)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--shapes", default="1,40", help="shop counts, comma-separated")
    parser.add_argument("--ledger", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--tracing", action="store_true", help="also run the service traced (OTLP/HTTP)"
    )
    parser.add_argument(
        "--profile", type=Path, help="sample the service with py-spy; collapsed stacks here"
    )
    args = parser.parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        for shops in (int(s) for s in args.shapes.split(",")):
            out = args.profile / f"service-{shops}-shops.txt"
            with otlp_receiver() as receiver:  # with --tracing, the traced service's profile
                sink = receiver.url if args.tracing else None
                await measure("service", shops, args.designs, args.ledger, out, traces_to=sink)
            print(f"\nprofile of the service, {shops} shop(s) ({out}), self time:")
            for frame, share in profile_summary(out):
                print(f"{share * 100:6.1f} %  {frame}")
        return
    rows = []
    targets = ("baseline", "service", "traced") if args.tracing else ("baseline", "service")
    with otlp_receiver() as receiver:
        for _ in range(args.runs):
            for shops in (int(s) for s in args.shapes.split(",")):
                for target in targets:  # interleaved: all see the same machine
                    kind = "service" if target == "traced" else target
                    sink = receiver.url if target == "traced" else None
                    row = await measure(kind, shops, args.designs, args.ledger, traces_to=sink)
                    rows.append({**row, "target": target})
                    print(json.dumps(rows[-1]), flush=True)
        if args.tracing:
            print(f"spans received by the OTLP receiver: {len(receiver.received())}")
    print(f"\noverhead: min/median/max over {args.runs} run(s), ledger {args.ledger}")
    summary(rows, args.runs)


if __name__ == "__main__":
    asyncio.run(main())
