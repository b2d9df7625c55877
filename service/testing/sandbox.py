"""The sandbox (fake Fourthwall + Luigi's Box) for tests: accounts, the service's CONFIG_FILE
for them, and the sandbox served in this process on loopback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from service.sandbox.config import SandboxConfig, ShopAccount, Tracker
from service.sandbox.server import free_port, sandbox_server
from service.testing.polling import eventually


@dataclass
class SandboxHandle:
    url: str
    config: SandboxConfig

    async def records(self) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.url) as http:
            records: dict[str, Any] = (await http.get("/_sandbox/records")).json()
            return records

    async def change_product(self, product_id: str, **change: Any) -> dict[str, Any]:
        """Do what a shop owner does in Fourthwall's dashboard (``access``: PUBLIC, HIDDEN,
        PRIVATE, ARCHIVED; ``stock``: AVAILABLE, SOLD_OUT; ``name``; ``image_url``) and have the
        sandbox deliver the signed webhook: what it sent and the answer it got."""
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
            response = await http.post(f"/_sandbox/fourthwall/products/{product_id}", json=change)
            response.raise_for_status()
            sent: dict[str, Any] = response.json()
            return sent

    async def set_webhook_url(self, url: str) -> None:
        async with httpx.AsyncClient(base_url=self.url) as http:
            (await http.post("/_sandbox/webhook-url", json={"url": url})).raise_for_status()

    async def app_grant(self, shop_id: str, action: str, **query: str) -> None:
        """``revoke`` the shop's app installation, ``expire`` its access tokens now, or
        ``install`` the app again (``refresh_token=``)."""
        async with httpx.AsyncClient(base_url=self.url) as http:
            response = await http.post(f"/_sandbox/fourthwall/app/{shop_id}/{action}", params=query)
            response.raise_for_status()

    async def set_faults(self, **faults: Any) -> None:
        async with httpx.AsyncClient(base_url=self.url) as http:
            (await http.post("/_sandbox/faults", json=faults)).raise_for_status()


def sandbox_config(shops: int = 3, **overrides: Any) -> SandboxConfig:
    config = SandboxConfig(**overrides)
    for n in range(1, shops + 1):
        config.shops.append(
            ShopAccount(
                shop_id=f"shop-{n}",
                username=f"user-{n}",
                password=f"fw-password-{n}",
                fourthwall_shop_id=f"sh_sandbox-{n:04d}",
                webhook_secret=f"fw-webhook-secret-{n}",
            )
        )
        config.trackers.append(Tracker(tracker_id=f"{n:04d}-5678", private_key=f"lb-key-{n}"))
    return config


def config_toml(config: SandboxConfig) -> str:
    """A CONFIG_FILE giving every sandbox shop its own credentials."""
    lines: list[str] = []
    for shop, tracker in zip(config.shops, config.trackers, strict=True):
        credentials = (
            [f'fourthwall_app_refresh_token = "{shop.app_refresh_token}"']
            if shop.app_refresh_token
            else [
                f'fourthwall_username = "{shop.username}"',
                f'fourthwall_password = "{shop.password}"',
            ]
        )
        lines += [
            "[[shops]]",
            f'shop_id = "{shop.shop_id}"',
            *credentials,
            f'luigisbox_tracker_id = "{tracker.tracker_id}"',
            f'luigisbox_private_key = "{tracker.private_key}"',
        ]
        if shop.fourthwall_shop_id and shop.webhook_secret:
            lines += [
                f'fourthwall_shop_id = "{shop.fourthwall_shop_id}"',
                f'fourthwall_webhook_secret = "{shop.webhook_secret}"',
            ]
        elif shop.fourthwall_shop_id and config.app is not None:
            lines.append(f'fourthwall_shop_id = "{shop.fourthwall_shop_id}"')
        lines.append("")
    return "\n".join(lines)


@contextlib.asynccontextmanager
async def running_sandbox(config: SandboxConfig) -> AsyncIterator[SandboxHandle]:
    port = free_port()
    server = sandbox_server(config, "127.0.0.1", port)
    task = asyncio.create_task(server.serve())
    await eventually(lambda: _started(server, task), what="sandbox start")
    try:
        yield SandboxHandle(f"http://127.0.0.1:{port}", config)
    finally:
        server.should_exit = True
        await task


async def _started(server: Any, task: asyncio.Task[Any]) -> bool:
    if task.done():
        task.result()
    return bool(server.started)
