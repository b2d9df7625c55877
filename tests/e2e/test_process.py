"""The service as a real process: `merch-pipeline sandbox` and `merch-pipeline run`, a plain
aio-pika producer, SIGTERM, and a bad configuration."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from importlib.metadata import version
from pathlib import Path

import aio_pika
import pytest

from service.bootstrap import open_ledger
from service.broker.codec import event_message
from service.cli import EXIT_CONFIG, EXIT_SCHEMA
from service.samples import design_event, sample_design
from service.sandbox.server import free_port
from service.settings import load_settings
from service.store.database import open_database
from service.store.migrations import LATEST, current_version, migrate
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


def test_bad_configuration_stops_start_up_with_one_line_naming_the_key(tmp_path: Path) -> None:
    result = subprocess.run(
        [*CLI, "run"],
        env={**os.environ, "HTTP_PORT": "not-a-port", "LOG_FORMAT": "json"},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == EXIT_CONFIG == 78  # not argparse's usage code 2
    (line,) = result.stderr.decode().splitlines()
    said = json.loads(line)
    assert said["event"] == "settings.invalid" and said["key"] == "HTTP_PORT"
    assert said["level"] == "error" and said["logger"] == "merch_pipeline"


def test_version_names_the_package_version_and_the_revision() -> None:
    result = subprocess.run(
        [*CLI, "--version"],
        env={**os.environ, "MERCH_PIPELINE_REVISION": "1a2b3c4"},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().strip() == (
        f"merch-pipeline {version('merch-pipeline')} (revision 1a2b3c4)"
    )


async def _ledger_at(path: Path, schema: int) -> None:
    db = await open_database(f"sqlite:///{path}")
    try:
        await migrate(db, up_to=min(schema, LATEST))
        if schema > LATEST:  # a newer release's migration
            await db.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)", [schema]
            )
    finally:
        await db.close()


@pytest.mark.parametrize(
    ("schema", "says"),
    [(LATEST - 1, "older than this release's"), (LATEST + 1, "newer than this release knows")],
)
async def test_without_migrate_on_start_a_ledger_of_another_schema_is_refused(
    tmp_path: Path, schema: int, says: str
) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    await _ledger_at(ledger, schema)
    env = {
        "DATABASE_URL": f"sqlite:///{ledger}",
        "MIGRATE_ON_START": "false",
        "LOG_FORMAT": "json",
        "HTTP_PORT": str(free_port()),
        "AMQP_URL": "amqp://guest:guest@127.0.0.1:1/",  # never reached: the ledger is first
    }
    result = await asyncio.to_thread(
        subprocess.run,
        [*CLI, "run"],
        env={**os.environ, **env},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == EXIT_SCHEMA, result.stderr[-2000:]
    (line,) = result.stderr.decode().splitlines()
    said = json.loads(line)
    assert said["event"] == "ledger.schema_mismatch"
    assert (said["found"], said["known"]) == (schema, LATEST)
    assert says in said["error"] and f"version {schema}" in said["error"]
    db = await open_database(f"sqlite:///{ledger}")
    try:
        assert await current_version(db) == schema  # nothing was migrated
    finally:
        await db.close()


async def test_without_migrate_on_start_the_known_schema_is_accepted(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    await _ledger_at(ledger, LATEST)
    settings = load_settings({"DATABASE_URL": f"sqlite:///{ledger}", "MIGRATE_ON_START": "false"})
    db, _ = await open_ledger(settings)
    await db.close()


def test_unknown_consumer_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [*CLI, "run", "--consumers", "design-aproved"], capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 2  # argparse's usage error
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
