"""Fourthwall app tokens (OAuth) against the sandbox's token endpoint over loopback HTTP, on
both ledgers: one refresh per shop across replicas, the rotated refresh token kept, a 401 answered
by one refresh and one retry, a refused grant pausing the shop, no token in a log line."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from structlog.testing import capture_logs

from consumers.ports import UpstreamError
from contracts.fourthwall import CreateCustomizationRequestV1, ProductDesignRegionV1
from service.sandbox.config import App, SandboxConfig
from service.secrets import Secret
from service.store.app_tokens import AppTokenStore
from service.store.database import Database, open_database
from service.store.migrations import migrate
from service.testing.postgres import throwaway_postgres
from service.testing.sandbox import SandboxHandle, running_sandbox, sandbox_config
from service.upstreams.app_tokens import GRANT_REFUSED, AppTokens
from service.upstreams.credentials import AppGrant
from service.upstreams.fourthwall import FourthwallClient
from service.upstreams.http import new_http_client

pytestmark = pytest.mark.integration

TOKEN_PATH = "/open-api/v1.0/platform/token"
APP = App(client_id="app_12345", client_secret="app-client-secret-1", hmac_key="app-hmac-key-1")
REFRESH = "installation-refresh-token-1"
GRANT = AppGrant("shop-1", Secret(REFRESH))
SKETCH = CreateCustomizationRequestV1(
    product_template_id="pro_tee", regions=[ProductDesignRegionV1(region="front", image_id="img_1")]
)


def app_config(ttl_s: float = 3600.0) -> SandboxConfig:
    config = sandbox_config(1)
    config.app = msgspec.structs.replace(APP, access_token_ttl_s=ttl_s)
    config.shops[0] = msgspec.structs.replace(config.shops[0], app_refresh_token=REFRESH)
    return config


@pytest.fixture(params=["sqlite", "postgresql"])
async def two_ledgers(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Database, Database]]:
    """Two connections (two replicas' worth) to one migrated ledger of each kind."""
    async with contextlib.AsyncExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
        else:
            url = await stack.enter_async_context(throwaway_postgres())
        first, second = await open_database(url), await open_database(url)
        stack.push_async_callback(first.close)
        stack.push_async_callback(second.close)
        await migrate(first)
        yield first, second


def keeper(
    db: Database, sandbox: SandboxHandle, clock: Callable[[], float] = time.time, **kw: Any
) -> AppTokens:
    return AppTokens(
        AppTokenStore(db),
        new_http_client(sandbox.url, 5),
        APP.client_id,
        Secret(APP.client_secret),
        margin_s=kw.pop("margin_s", 60.0),
        lease_s=10.0,
        clock=clock,
        **kw,
    )


async def token_calls(sandbox: SandboxHandle) -> list[dict[str, Any]]:
    return [c for c in (await sandbox.records())["calls"] if c["endpoint"] == TOKEN_PATH]


async def test_concurrent_refreshers_on_one_ledger_make_one_token_call(
    two_ledgers: tuple[Database, Database],
) -> None:
    async with running_sandbox(app_config()) as sandbox:
        a, b = (keeper(db, sandbox) for db in two_ledgers)
        tokens = await asyncio.gather(*(k.bearer(GRANT) for k in (a, b, a, b, b)))
        assert len(set(tokens)) == 1
        assert len(await token_calls(sandbox)) == 1
        # both keep it: no further call, from memory or from the ledger
        assert await a.bearer(GRANT) == await b.bearer(GRANT) == tokens[0]
        assert len(await token_calls(sandbox)) == 1


async def test_a_401_refreshes_once_retries_once_and_the_rotated_token_is_used(
    db: Database,
) -> None:
    async with running_sandbox(app_config()) as sandbox:
        tokens = keeper(db, sandbox)
        client = FourthwallClient(
            new_http_client(sandbox.url, 5), lambda _: GRANT, app_tokens=tokens
        )
        assert (await client.create_customization("shop-1", SKETCH)).customization_id
        await sandbox.app_grant("shop-1", "expire")  # lapsed early, unknown to the client
        assert (await client.create_customization("shop-1", SKETCH)).customization_id
        # and again: the second refresh used the refresh token the first one was given
        await sandbox.app_grant("shop-1", "expire")
        assert (await client.create_customization("shop-1", SKETCH)).customization_id
        calls = (await sandbox.records())["calls"]
    assert [c["status"] for c in calls if c["endpoint"] == TOKEN_PATH] == [200, 200, 200]
    assert [c["status"] for c in calls if c["endpoint"] != TOKEN_PATH] == [
        201, 401, 201, 401, 201
    ]  # fmt: skip


async def test_a_token_is_refreshed_before_it_expires(db: Database) -> None:
    offset = 0.0
    async with running_sandbox(app_config(ttl_s=600)) as sandbox:
        tokens = keeper(db, sandbox, clock=lambda: time.time() + offset, margin_s=60)
        first = await tokens.bearer(GRANT)
        offset = 530.0  # 70 s before it expires: not yet due
        assert await tokens.bearer(GRANT) == first
        offset = 545.0  # within the margin: refreshed, while the old one still works
        second = await tokens.bearer(GRANT)
        assert second != first
        assert len(await token_calls(sandbox)) == 2


async def test_a_refused_refresh_pauses_the_shop_with_its_reason(db: Database) -> None:
    async with running_sandbox(app_config()) as sandbox:
        await sandbox.app_grant("shop-1", "revoke")  # uninstalled before the first refresh
        tokens = keeper(db, sandbox)
        client = FourthwallClient(
            new_http_client(sandbox.url, 5), lambda _: GRANT, app_tokens=tokens
        )
        with capture_logs() as logs:
            for _ in range(3):
                with pytest.raises(UpstreamError) as refused:
                    await client.create_customization("shop-1", SKETCH)
                assert (refused.value.code, refused.value.retryable) == (GRANT_REFUSED, False)
                assert "invalid_grant" in refused.value.detail
        # asked once: the refusal is kept in the ledger, later calls fail at once
        assert len(await token_calls(sandbox)) == 1
        paused = await AppTokenStore(db).refused()
        assert [(shop, "invalid_grant" in why) for shop, why, _ in paused] == [("shop-1", True)]
        # another replica (a fresh keeper) does not ask again either
        with pytest.raises(UpstreamError):
            await keeper(db, sandbox).bearer(GRANT)
        assert len(await token_calls(sandbox)) == 1
        assert any(e["event"] == "fourthwall_app.grant_refused" for e in logs)
        assert REFRESH not in repr(logs) and APP.client_secret not in repr(logs)
        # a new installation's refresh token lifts the pause
        config_refresh = "installation-refresh-token-2"
        await sandbox.app_grant("shop-1", "install", refresh_token=config_refresh)
        fresh = keeper(db, sandbox)
        assert await fresh.bearer(AppGrant("shop-1", Secret(config_refresh)))
        assert await AppTokenStore(db).refused() == []


async def test_no_token_reaches_a_log_line(db: Database) -> None:
    async with running_sandbox(app_config()) as sandbox:
        tokens = keeper(db, sandbox)
        with capture_logs() as logs:
            access = await tokens.bearer(GRANT)
            await sandbox.app_grant("shop-1", "expire")
            await tokens.rejected(GRANT, access)
            again = await tokens.bearer(GRANT)
        row = await AppTokenStore(db).read("shop-1")
    assert row is not None and row.refresh_token not in (REFRESH, "")
    assert any(e["event"] == "fourthwall_app.refreshed" for e in logs)
    for secret in (access, again, REFRESH, row.refresh_token, APP.client_secret):
        assert secret not in repr(logs)


async def test_a_refresher_whose_lease_ran_out_cannot_overwrite_the_newer_token(
    db: Database,
) -> None:
    store = AppTokenStore(db)
    await store.seed("shop-1", REFRESH, 1000.0)
    stalled = await store.claim("shop-1", 1000.0, lease_s=10.0)
    assert stalled is not None
    assert await store.claim("shop-1", 1005.0, lease_s=10.0) is None  # the lease holds
    taken_over = await store.claim("shop-1", 1011.0, lease_s=10.0)  # it ran out
    assert taken_over is not None and taken_over[0] > stalled[0]
    fresh = {"access_token": "new", "refresh_token": "rt-new", "expires_at": 5000.0}
    assert await store.store("shop-1", taken_over[0], **fresh, refresh_after=4000.0, now=1012.0)
    old = {"access_token": "old", "refresh_token": "rt-old", "expires_at": 4900.0}
    assert not await store.store("shop-1", stalled[0], **old, refresh_after=3900.0, now=1013.0)
    assert not await store.refuse("shop-1", stalled[0], "HTTP 400 invalid_grant", 1013.0)
    row = await store.read("shop-1")
    assert row is not None
    assert (row.access_token, row.refresh_token, row.refused_at) == ("new", "rt-new", None)
    # the same configured token again changes nothing; a new installation's starts over
    await store.seed("shop-1", REFRESH, 1014.0)
    assert (await store.read("shop-1")) == row
    await store.seed("shop-1", "installation-refresh-token-2", 1015.0)
    again = await store.read("shop-1")
    assert again is not None and (again.access_token, again.refresh_token) == (
        None,
        "installation-refresh-token-2",
    )
