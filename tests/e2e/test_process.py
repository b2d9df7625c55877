"""The service as a real process: `merch-pipeline sandbox` and `merch-pipeline run`, a plain
aio-pika producer, SIGTERM, and a bad configuration."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import httpx
import pytest

from service.broker.codec import event_message
from service.samples import design_event, sample_design
from service.sandbox.server import free_port
from tests.support import config_toml, eventually, publish, sandbox_config, watching

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-m", "service"]


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*CLI, *args], env={**os.environ, **env}, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )


@pytest.fixture
def sandbox_process(tmp_path: Path) -> Iterator[tuple[str, str]]:
    config = sandbox_config()
    (tmp_path / "sandbox.json").write_text(
        json.dumps(
            {
                "shops": [
                    {"shop_id": s.shop_id, "username": s.username, "password": s.password}
                    for s in config.shops
                ],
                "trackers": [
                    {"tracker_id": t.tracker_id, "private_key": t.private_key}
                    for t in config.trackers
                ],
            }
        )
    )
    (tmp_path / "config.toml").write_text(config_toml(config))
    port = free_port()
    proc = _spawn(
        ["sandbox", "--port", str(port), "--config", str(tmp_path / "sandbox.json")],
        {},
        tmp_path / "sandbox.log",
    )
    try:
        yield f"http://127.0.0.1:{port}", str(tmp_path / "config.toml")
    finally:
        proc.terminate()
        proc.wait(10)


async def _ready(url: str, proc: subprocess.Popen[bytes]) -> bool:
    assert proc.poll() is None, "service exited early"
    try:
        async with httpx.AsyncClient() as http:
            return (await http.get(url)).status_code == 200
    except httpx.HTTPError:
        return False


async def test_service_process_runs_the_pipeline_and_stops_cleanly(
    amqp_url: str, sandbox_process: tuple[str, str], tmp_path: Path
) -> None:
    sandbox_url, config_file = sandbox_process
    port = free_port()
    secret_password = "fw-password-1"
    env = {
        "AMQP_URL": amqp_url,
        "FOURTHWALL_API_URL": sandbox_url,
        "LUIGISBOX_API_URL": sandbox_url,
        "CONFIG_FILE": config_file,
        "HTTP_PORT": str(port),
        "HTTP_HOST": "127.0.0.1",
        "LOG_FORMAT": "json",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
    }
    log = tmp_path / "service.log"
    proc = _spawn(["run"], env, log)
    try:
        await eventually(
            lambda: _ready(f"{sandbox_url}/_sandbox/health", proc), timeout=30, what="sandbox"
        )
        await eventually(
            lambda: _ready(f"http://127.0.0.1:{port}/health/ready", proc),
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
        code = await asyncio.to_thread(proc.wait, 30)
    assert code == 0
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
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
