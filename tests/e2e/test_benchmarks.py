"""Each benchmark, run with a tiny N so that none can rot: it starts its processes, drives them
to the end and produces every figure its table prints. (The figures themselves are measured
with `make bench`, not asserted here: this machine is shared and noisy.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench import backlog, overhead, quota
from service.testing.otlp import otlp_receiver

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def test_the_overhead_benchmark_runs_every_target() -> None:
    service = await overhead.measure("service", 2, 10, "sqlite")
    baseline = await overhead.measure("baseline", 2, 10, "sqlite")
    with otlp_receiver() as receiver:
        traced = await overhead.measure("service", 2, 10, "sqlite", traces_to=receiver.url)
        spans = receiver.received()
    assert service["statements_per_design"] > 0 and service["deliveries_per_design"] >= 2
    assert baseline["cpu_ms_per_design"] > 0 and baseline["designs_per_s"] > 0
    assert len(spans) >= 10 * 8  # the traced service exported every design's spans
    overhead.summary([baseline, service, {**traced, "target": "traced"}], 1)


async def test_the_backlog_benchmark_runs(tmp_path: Path) -> None:
    result = await backlog.run(10, tmp_path)
    assert result["429s"] == 0 and result["deliveries_per_design"] <= 3
    backlog.table([result])


@pytest.mark.skipif(not shutil.which("rabbitmqctl"), reason="needs a local RabbitMQ")
async def test_the_quota_benchmark_runs(tmp_path: Path) -> None:
    result = await quota.run(True, tmp_path, window_s=0.5, hot=5)
    assert result["429s"] == 0 and result["products"] == result["designs"]
