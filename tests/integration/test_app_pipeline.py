"""A shop that installed the Fourthwall app, through the whole service: its designs complete
across an access token's expiry, a refused grant fails its designs at once with its own code
(paused, never asking again), and the app's webhooks (X-Fourthwall-Hmac-Apps-SHA256) are taken."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import msgspec
import pytest
from structlog.testing import capture_logs

from contracts.events import ProductFailedV1
from contracts.fourthwall_webhooks import APP_SIGNATURE_HEADER, SIGNATURE_HEADER, signature
from service.broker.codec import event_message
from service.samples import design_event, sample_design
from service.sandbox.config import App
from service.secrets import Secret
from service.settings import Settings, load_settings
from service.testing.broker import publish, watching
from service.testing.inprocess import running_service
from service.testing.sandbox import SandboxHandle, running_sandbox, sandbox_config
from service.upstreams.app_tokens import GRANT_REFUSED
from tests.integration.test_console import log_in

pytestmark = pytest.mark.integration

TOKEN_PATH = "/open-api/v1.0/platform/token"
APP = App(client_id="app_12345", client_secret="app-client-secret-1", hmac_key="app-hmac-key-1")
REFRESH = "installation-refresh-token-1"
ADMIN = "admin-token-for-tests-0123456789"


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxHandle]:
    """shop-1 installed the app (no shop webhook of its own); shop-2 keeps its API user."""
    config = sandbox_config(2)
    config.app = APP
    config.shops[0] = msgspec.structs.replace(
        config.shops[0], app_refresh_token=REFRESH, webhook_secret=None
    )
    async with running_sandbox(config) as handle:
        yield handle


@pytest.fixture
def settings(service_env: dict[str, str]) -> Settings:
    return load_settings(
        {
            **service_env,
            "FOURTHWALL_APP_CLIENT_ID": APP.client_id,
            "FOURTHWALL_APP_CLIENT_SECRET": APP.client_secret,
            "FOURTHWALL_APP_WEBHOOK_KEY": APP.hmac_key or "",
        }
    )


async def _token_calls(sandbox: SandboxHandle) -> int:
    return sum(c["endpoint"] == TOKEN_PATH for c in (await sandbox.records())["calls"])


async def test_an_expiry_mid_run_is_refreshed_and_the_designs_complete(
    settings: Settings, sandbox: SandboxHandle, amqp_url: str
) -> None:
    run = uuid.uuid4().hex[:6]
    with capture_logs() as logs:
        async with watching(amqp_url) as watcher, running_service(settings):
            await publish(amqp_url, event_message(design_event(sample_design("shop-1", 0, run))))
            await watcher.wait_for("pins.created", 1)
            await sandbox.app_grant("shop-1", "expire")
            await publish(amqp_url, event_message(design_event(sample_design("shop-1", 1, run))))
            await publish(amqp_url, event_message(design_event(sample_design("shop-2", 2, run))))
            await watcher.wait_for("pins.created", 3)
    assert not watcher.of_type("product.failed")
    assert await _token_calls(sandbox) == 2  # the first token, then one refresh after the 401
    row = [c for c in (await sandbox.records())["calls"] if c["status"] == 401]
    assert len(row) == 1
    for secret in (REFRESH, APP.client_secret):
        assert secret not in repr(logs)


async def test_a_refused_grant_fails_the_shops_designs_with_its_code(
    settings: Settings, sandbox: SandboxHandle, amqp_url: str
) -> None:
    await sandbox.app_grant("shop-1", "revoke")  # uninstalled
    run = uuid.uuid4().hex[:6]
    settings = msgspec.structs.replace(settings, admin_token=Secret(ADMIN))
    base = f"http://127.0.0.1:{settings.http_port}"
    async with watching(amqp_url) as watcher, running_service(settings):
        for n in (0, 1):
            design = sample_design("shop-1", n, run)
            await publish(amqp_url, event_message(design_event(design)))
        await publish(amqp_url, event_message(design_event(sample_design("shop-2", 2, run))))
        await watcher.wait_for("product.failed", 2)
        await watcher.wait_for("pins.created", 1)  # another shop is not held back
        async with httpx.AsyncClient(base_url=base) as http:
            grants = await http.get(
                "/admin/shops/app-grants", headers={"Authorization": f"Bearer {ADMIN}"}
            )
            metrics = (await http.get("/metrics")).text
            await log_in(http, ADMIN)
            page = (await http.get("/admin/ui/shops")).text
    assert grants.status_code == 200, grants.text
    (grant,) = grants.json()
    assert (grant["shop_id"], grant["state"]) == ("shop-1", "paused")
    assert "invalid_grant" in grant["refused_reason"] and grant["refused_at"]
    assert "merch_fourthwall_app_paused_shops 1.0" in metrics
    assert "shop-1</td><td>paused" in page and "invalid_grant" in page
    failed = [e.data for e in watcher.of_type("product.failed")]
    assert all(isinstance(f, ProductFailedV1) for f in failed)
    assert {(f.code, f.retryable, f.shop_id) for f in failed if isinstance(f, ProductFailedV1)} == {
        (GRANT_REFUSED, False, "shop-1")
    }
    assert all("invalid_grant" in f.detail for f in failed if isinstance(f, ProductFailedV1))
    assert await _token_calls(sandbox) == 1  # paused: asked once, never looping


async def test_the_apps_webhook_signature_is_accepted_and_a_wrong_one_refused(
    settings: Settings, sandbox: SandboxHandle
) -> None:
    url = f"http://127.0.0.1:{settings.http_port}/webhooks/fourthwall"
    body = msgspec.json.encode(
        {
            "testMode": True,
            "id": f"weve_{uuid.uuid4().hex}",
            "webhookId": "wcon_app",
            "shopId": "sh_sandbox-0001",
            "type": "PRODUCT_UPDATED",
            "apiVersion": "V1",
            "createdAt": "2026-12-05T12:00:00Z",
            "data": {},
        }
    )
    app_key = APP.hmac_key or ""

    async def post(headers: dict[str, str]) -> int:
        async with httpx.AsyncClient() as http:
            response = await http.post(
                url, content=body, headers={"Content-Type": "application/json", **headers}
            )
            return response.status_code

    async with running_service(settings):
        assert await post({APP_SIGNATURE_HEADER: signature(app_key, body)}) == 200
        assert await post({APP_SIGNATURE_HEADER: signature("another-app", body)}) == 401
        # the app's key in the shop's header is not the shop's secret: refused
        assert await post({SIGNATURE_HEADER: signature(app_key, body)}) == 401
        assert await post({}) == 401
        # shop-2 keeps its own webhook secret, and the app's key is good for it as well
        other = body.replace(b"sh_sandbox-0001", b"sh_sandbox-0002")
        async with httpx.AsyncClient() as http:
            own = await http.post(
                url,
                content=other,
                headers={SIGNATURE_HEADER: signature("fw-webhook-secret-2", other)},
            )
            by_app = await http.post(
                url, content=other, headers={APP_SIGNATURE_HEADER: signature(app_key, other)}
            )
        assert (own.status_code, by_app.status_code) == (200, 200)
