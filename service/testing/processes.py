"""The sandbox and the service as real processes (e2e tests, benchmarks): spawn, wait for
readiness, read their JSON logs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from service.sandbox.config import SandboxConfig
from service.sandbox.server import free_port
from service.testing.polling import eventually
from service.testing.sandbox import config_toml

CLI = [sys.executable, "-m", "service"]


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*CLI, *args], env={**os.environ, **env}, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )


def write_sandbox_files(config: SandboxConfig, directory: Path) -> tuple[Path, Path]:
    """The sandbox's JSON config and the service's CONFIG_FILE for the same accounts."""
    import msgspec

    sandbox_json = directory / "sandbox.json"
    sandbox_json.write_bytes(msgspec.json.encode(config))
    config_file = directory / "config.toml"
    config_file.write_text(config_toml(config))
    return sandbox_json, config_file


async def http_ok(url: str, proc: subprocess.Popen[bytes] | None = None) -> bool:
    if proc is not None and proc.poll() is not None:
        raise AssertionError(f"process exited early with {proc.returncode}")
    try:
        async with httpx.AsyncClient() as http:
            return (await http.get(url, timeout=2)).status_code == 200
    except httpx.HTTPError:
        return False


async def start_sandbox(
    config: SandboxConfig, directory: Path
) -> tuple[subprocess.Popen[bytes], str, Path]:
    sandbox_json, config_file = write_sandbox_files(config, directory)
    port = free_port()
    proc = spawn(
        ["sandbox", "--port", str(port), "--config", str(sandbox_json)],
        {},
        directory / "sandbox.log",
    )
    url = f"http://127.0.0.1:{port}"
    await eventually(
        lambda: http_ok(f"{url}/_sandbox/health", proc), timeout=30, what="sandbox process"
    )
    return proc, url, config_file


def service_env(
    amqp_url: str, sandbox_url: str, config_file: Path, directory: Path, **extra: str
) -> dict[str, str]:
    return {
        "AMQP_URL": amqp_url,
        "FOURTHWALL_API_URL": sandbox_url,
        "LUIGISBOX_API_URL": sandbox_url,
        "CONFIG_FILE": str(config_file),
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(free_port()),
        "LOG_FORMAT": "json",
        "DATABASE_URL": f"sqlite:///{directory / 'ledger.sqlite3'}",
        "QUOTA_MAX_HOLD_S": "0.1",
        **extra,
    }


async def wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> int:
    return await asyncio.wait_for(asyncio.to_thread(proc.wait), timeout)


def log_lines(path: Path) -> list[dict[str, object]]:
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return lines


async def start_replica(
    env: dict[str, str], log: Path, procs: list[subprocess.Popen[bytes]]
) -> subprocess.Popen[bytes]:
    """Spawn ``merch-pipeline run`` with ``env`` (added to ``procs`` at once, so the caller's
    clean-up sees it) and wait until it reports ready."""
    proc = spawn(["run"], env, log)
    procs.append(proc)
    url = f"http://127.0.0.1:{env['HTTP_PORT']}/health/ready"
    await eventually(lambda: http_ok(url, proc), timeout=60, what="replica ready")
    return proc


@dataclass(frozen=True)
class Rig:
    """Where replicas of one run find their broker, sandbox, shop config, ledger and workdir."""

    amqp_url: str
    sandbox_url: str
    config_file: Path
    database_url: str
    workdir: Path


async def start_replicas(
    rig: Rig,
    count: int,
    procs: list[subprocess.Popen[bytes]],
    *,
    heavy_calls: int,
    heavy_window_s: float,
    **extra: str,
) -> list[str]:
    """``count`` replicas on one ledger, each ready, with the heavy limit scaled down; the base
    URL of each one's HTTP API."""
    urls = []
    for n in range(count):
        env = service_env(
            rig.amqp_url,
            rig.sandbox_url,
            rig.config_file,
            rig.workdir,
            DATABASE_URL=rig.database_url,
            FOURTHWALL_HEAVY_CALLS=str(heavy_calls),
            FOURTHWALL_HEAVY_WINDOW_S=str(heavy_window_s),
            **{"QUOTA_MAX_HOLD_S": "0.05", **extra},
        )
        await start_replica(env, rig.workdir / f"replica-{n}.log", procs)
        urls.append(f"http://127.0.0.1:{env['HTTP_PORT']}")
    return urls


async def stop_replicas(procs: list[subprocess.Popen[bytes]], timeout: float) -> list[int]:
    """SIGTERM each replica and wait for it; their exit codes."""
    codes = []
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        codes.append(await wait_exit(proc, timeout))
    return codes


def kill_all(procs: list[subprocess.Popen[bytes]]) -> None:
    """Whatever is still running (a test that failed half-way) is killed."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


HEAVY_ENDPOINTS = ("/open-api/v1.0/customizations", "/open-api/v1.0/products")


def heavy_calls_by_shop(
    records: dict[str, Any], counted: Callable[[int], bool]
) -> dict[str, list[float]]:
    """When each shop's heavy Fourthwall calls (customizations, products: the 5 per minute)
    reached the sandbox, for calls whose status counts."""
    by_shop: dict[str, list[float]] = {}
    for call in records["calls"]:
        if call["endpoint"] in HEAVY_ENDPOINTS and counted(call["status"]):
            by_shop.setdefault(call["account"], []).append(call["at"])
    return by_shop
