from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from service.sandbox.server import free_port
from service.settings import Settings, load_settings
from service.testing.broker import base_broker_url, throwaway_vhost
from service.testing.sandbox import SandboxHandle, config_toml, running_sandbox, sandbox_config


@pytest.fixture(scope="session")
def broker_url() -> Iterator[str]:
    with base_broker_url() as url:
        yield url


@pytest.fixture
def amqp_url(broker_url: str) -> Iterator[str]:
    """A vhost of this test's own on the real broker."""
    with throwaway_vhost(broker_url) as url:
        yield url


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxHandle]:
    async with running_sandbox(sandbox_config()) as handle:
        yield handle


@pytest.fixture
def service_env(tmp_path: Path, amqp_url: str, sandbox: SandboxHandle) -> dict[str, str]:
    """Environment for a service wired to this test's vhost and sandbox."""
    config_file = tmp_path / "config.toml"
    config_file.write_text(config_toml(sandbox.config))
    return {
        "AMQP_URL": amqp_url,
        "FOURTHWALL_API_URL": sandbox.url,
        "LUIGISBOX_API_URL": sandbox.url,
        "CONFIG_FILE": str(config_file),
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(free_port()),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
        "RETRY_DELAYS_S": "0.2,0.5",
        "MAX_ATTEMPTS": "3",
        "QUOTA_MAX_HOLD_S": "0.1",
        "LOG_FORMAT": "json",
    }


@pytest.fixture
def settings(service_env: dict[str, str]) -> Settings:
    return load_settings(service_env)
