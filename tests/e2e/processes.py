"""Run the sandbox and the service as real processes for the e2e tests."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from service.sandbox.config import SandboxConfig
from service.sandbox.server import free_port
from tests.support import config_toml, eventually

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
        "DEFER_DELAYS_S": "0.1,0.2,0.4,0.8,1.6,3.2",
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
