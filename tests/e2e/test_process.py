"""The service as a real process: `merch-pipeline sandbox` and `merch-pipeline run`, a plain
aio-pika producer, SIGTERM, and a bad configuration."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from pathlib import Path

import aio_pika
import pytest

from service.broker.codec import event_message
from service.samples import design_event, sample_design
from service.sandbox.server import free_port
from service.testing.broker import publish, watching
from service.testing.polling import eventually
from service.testing.processes import (
    CLI,
    http_ok,
    log_lines,
    service_env,
    spawn,
    start_sandbox,
    wait_exit,
)
from service.testing.sandbox import sandbox_config

pytestmark = pytest.mark.e2e


async def test_service_process_runs_the_pipeline_and_stops_cleanly(
    amqp_url: str, tmp_path: Path
) -> None:
    config = sandbox_config()
    sandbox, sandbox_url, config_file = await start_sandbox(config, tmp_path)
    secret_password = config.shops[0].password
    assert secret_password
    env = service_env(amqp_url, sandbox_url, config_file, tmp_path)
    log = tmp_path / "service.log"
    proc = spawn(["run"], env, log)
    try:
        await eventually(
            lambda: http_ok(f"http://127.0.0.1:{env['HTTP_PORT']}/health/ready", proc),
            timeout=30,
            what="service readiness",
        )
        design = sample_design("shop-1", 0, "e2e")
        async with watching(amqp_url) as watcher:
            await publish(amqp_url, event_message(design_event(design)))
            pins = (await watcher.wait_for("pins.created", 1, timeout=30))[0]
        assert pins.data.design_id == design.design_id  # type: ignore[union-attr]
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await wait_exit(proc, 30)
        sandbox.terminate()
        sandbox.wait(10)
    assert code == 0
    text = log.read_text()
    every = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert every and all(line.get("logger") and line.get("timestamp") for line in every)
    loggers = {str(line["logger"]) for line in every}
    assert "uvicorn.error" in loggers  # a library's line, routed through the same formatter
    assert any(name.startswith("merch_pipeline") for name in loggers)
    lines = log_lines(log)
    handled = [line for line in lines if line.get("event") == "message.handled"]
    assert {line["queue"] for line in handled} == {
        "merch-pipeline.design-approved",
        "merch-pipeline.product-created",
    }
    assert all(line["outcome"] == "done" and "duration_ms" in line for line in handled)
    assert lines[-1]["event"] == "service.stopped"
    assert secret_password not in log.read_text()


def test_bad_configuration_stops_start_up_naming_the_key(tmp_path: Path) -> None:
    result = subprocess.run(
        [*CLI, "run"],
        env={**os.environ, "HTTP_PORT": "not-a-port"},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert b"HTTP_PORT" in result.stderr


def test_unknown_consumer_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [*CLI, "run", "--consumers", "design-aproved"], capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert b"unknown consumer design-aproved" in result.stderr


async def test_a_queue_declared_with_other_arguments_stops_start_up_with_a_clear_error(
    amqp_url: str, tmp_path: Path
) -> None:
    # An older version declared the dead-letter queue without a delivery limit.
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    await channel.declare_queue(
        "merch-pipeline.design-approved.dead-letter",
        durable=True,
        arguments={"x-queue-type": "quorum"},
    )
    await connection.close()
    env = {
        "AMQP_URL": amqp_url,
        "HTTP_PORT": str(free_port()),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
    }
    result = await asyncio.to_thread(
        subprocess.run,
        [*CLI, "run"],
        env={**os.environ, **env},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3, result.stderr[-2000:]
    assert b"the broker's queues do not match" in result.stderr
    assert b"merch-pipeline.design-approved.dead-letter" in result.stderr
