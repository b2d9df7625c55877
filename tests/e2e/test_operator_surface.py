"""The service as a process, seen by an operator: no secret in any log line through a run full of
failures and admin actions, and schemathesis against the published OpenAPI document."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import httpx
import msgspec
import pytest

from contracts.events import DesignApprovedV1, DesignRegion
from service.broker.codec import event_message
from service.samples import design_event, sample_design
from service.sandbox.config import App, SandboxConfig, ShopAccount, Tracker
from service.testing.broker import publish, watching
from service.testing.processes import (
    log_lines,
    service_env,
    start_replica,
    start_sandbox,
    wait_exit,
)
from service.testing.sandbox import config_toml
from tests.support import signed

pytestmark = pytest.mark.e2e


@dataclass
class Operated:
    url: str
    admin_token: str
    webhook_secret: str
    secrets: dict[str, str]  # what must never be logged, by what it is
    proc: subprocess.Popen[bytes]
    log: Path
    sandbox_url: str
    ledger: Path


def _app_tokens_kept(ledger: Path) -> dict[str, str]:
    """The access and refresh tokens the service kept for its app shops (they must not be
    logged either)."""
    with contextlib.closing(sqlite3.connect(ledger)) as db:
        rows = db.execute(
            "SELECT shop_id, access_token, refresh_token FROM fourthwall_app_tokens"
        ).fetchall()
    kept = {f"{shop} refresh token": refresh for shop, _, refresh in rows}
    kept |= {f"{shop} access token": access for shop, access, _ in rows if access}
    return kept


def _secret(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


@pytest.fixture
async def operated(amqp_url: str, tmp_path: Path) -> AsyncIterator[Operated]:
    """Sandbox and service processes. Shop 3's Fourthwall password and shop 2's Luigi's Box key
    are wrong on the service's side (a 401 each), shops 4 and 5 installed the Fourthwall app (5
    will uninstall it), and every secret is unique and greppable."""
    shops = [
        ShopAccount(shop_id=f"shop-{n}", username=f"user-{n}", password=_secret("fwpass"))
        for n in (1, 2, 3)
    ]
    app_shops = [
        ShopAccount(shop_id=f"shop-{n}", app_refresh_token=_secret("apprefresh")) for n in (4, 5)
    ]
    trackers = [
        Tracker(tracker_id=f"{n:04d}-5678", private_key=_secret("lbkey")) for n in (1, 2, 3, 4, 5)
    ]
    app = App(client_id="app_e2e", client_secret=_secret("appsecret"), hmac_key=_secret("apphmac"))
    sandbox = SandboxConfig(shops=[*shops, *app_shops], trackers=trackers, heavy_calls=100, app=app)
    proc_sandbox, sandbox_url, _ = await start_sandbox(sandbox, tmp_path)
    wrong_password, wrong_key = _secret("fwwrong"), _secret("lbwrong")
    service_side = SandboxConfig(
        shops=[
            *shops[:2],
            msgspec.structs.replace(shops[2], password=wrong_password),
            *app_shops,
        ],
        trackers=[
            trackers[0],
            msgspec.structs.replace(trackers[1], private_key=wrong_key),
            *trackers[2:],
        ],
    )
    config_file = tmp_path / "service-config.toml"
    config_file.write_text(config_toml(service_side))
    admin_token, webhook_secret = (
        _secret("admintoken"),
        "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
    )
    env = service_env(
        amqp_url,
        sandbox_url,
        config_file,
        tmp_path,
        ADMIN_TOKEN=admin_token,
        WEBHOOK_SECRETS=webhook_secret,
        LOG_LEVEL="debug",
        RETRY_DELAYS_S="0.2,0.5",
        MAX_ATTEMPTS="3",
        FOURTHWALL_HEAVY_CALLS="100",
        FOURTHWALL_APP_CLIENT_ID=app.client_id,
        FOURTHWALL_APP_CLIENT_SECRET=app.client_secret,
        FOURTHWALL_APP_WEBHOOK_KEY=app.hmac_key or "",
    )
    log = tmp_path / "service.log"
    procs: list[subprocess.Popen[bytes]] = [proc_sandbox]
    try:
        proc = await start_replica(env, log, procs)
        never_logged = {"admin token": admin_token, "webhook secret": webhook_secret}
        never_logged["webhook secret key"] = webhook_secret.removeprefix("whsec_")
        never_logged["app client secret"] = app.client_secret
        never_logged["app webhook key"] = app.hmac_key or ""
        for account in app_shops:
            never_logged[f"{account.shop_id} app refresh token"] = account.app_refresh_token or ""
        for account in [*shops, service_side.shops[2]]:
            assert account.password
            never_logged[f"{account.shop_id} password {account.password[:6]}"] = account.password
            basic = base64.b64encode(f"{account.username}:{account.password}".encode()).decode()
            never_logged[f"{account.shop_id} basic auth"] = basic
        for tracker in [*trackers, service_side.trackers[1]]:
            never_logged[f"{tracker.tracker_id} key {tracker.private_key[:6]}"] = (
                tracker.private_key
            )
        yield Operated(
            url=f"http://127.0.0.1:{env['HTTP_PORT']}",
            admin_token=admin_token,
            webhook_secret=webhook_secret,
            secrets=never_logged,
            proc=proc,
            log=log,
            sandbox_url=sandbox_url,
            ledger=tmp_path / "ledger.sqlite3",
        )
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)


def _broken(run: str) -> DesignApprovedV1:
    design = sample_design("shop-1", 9, run)
    return msgspec.structs.replace(
        design, regions=[DesignRegion(region="front", image_id="img_missing_x")]
    )


async def test_no_secret_reaches_a_log_line_through_failures_and_admin_actions(
    operated: Operated, amqp_url: str
) -> None:
    auth = {"Authorization": f"Bearer {operated.admin_token}", "X-Operator": "ops-erin"}
    async with (
        watching(amqp_url) as watcher,
        httpx.AsyncClient(base_url=operated.url, headers=auth) as admin,
        httpx.AsyncClient(base_url=operated.sandbox_url) as sandbox,
    ):
        good = [sample_design("shop-1", n, "logs") for n in range(2)]
        for design in good:
            await publish(amqp_url, event_message(design_event(design)))
        await publish(amqp_url, event_message(design_event(_broken("logs"))))
        await publish(amqp_url, event_message(design_event(sample_design("shop-3", 0, "logs"))))
        await publish(amqp_url, event_message(design_event(sample_design("shop-2", 0, "logs"))))
        await publish(amqp_url, event_message(design_event(sample_design("shop-9", 0, "logs"))))
        await publish(amqp_url, aio_pika.Message(b"{not json", message_id="junk"))
        # product.failed: missing image, shop 3's 401, shop 2's pins 401, shop 9 unknown
        await watcher.wait_for("pins.created", 2)
        await watcher.wait_for("product.failed", 4)

        # The app's shops: shop 4's token expires mid-run (a 401, a refresh, a retry), shop 5
        # uninstalled the app (a refused grant: paused, its design fails).
        await publish(amqp_url, event_message(design_event(sample_design("shop-4", 0, "logs"))))
        await watcher.wait_for("pins.created", 3)
        await sandbox.post("/_sandbox/fourthwall/app/shop-4/expire")
        await sandbox.post("/_sandbox/fourthwall/app/shop-5/revoke")
        await publish(amqp_url, event_message(design_event(sample_design("shop-4", 1, "logs"))))
        await publish(amqp_url, event_message(design_event(sample_design("shop-5", 0, "logs"))))
        await watcher.wait_for("pins.created", 4)
        await watcher.wait_for("product.failed", 5)
        grants = await admin.get("/admin/shops/app-grants")
        assert [(g["shop_id"], g["state"]) for g in grants.json()] == [
            ("shop-4", "active"),
            ("shop-5", "paused"),
        ]

        # An outage: every Fourthwall call fails for one design, which runs out of attempts.
        await sandbox.post("/_sandbox/faults", json={"error_rate_5xx": 1.0})
        flaky = sample_design("shop-1", 5, "logs")
        await publish(amqp_url, event_message(design_event(flaky)))
        await watcher.wait_for(
            "product.failed", 1, where=lambda s: getattr(s.data, "design_id", "") == flaky.design_id
        )
        await sandbox.post("/_sandbox/faults", json={})

        # An operator looks around and acts; a stranger knocks with a wrong token.
        assert (await admin.get("/admin/designs", params={"state": "failed"})).status_code == 200
        shop3 = sample_design("shop-3", 0, "logs")
        retried = await admin.post(f"/admin/designs/shop-3:{shop3.design_id}:1/retry")
        assert retried.status_code == 202
        assert (await admin.get("/admin/dead-letters/design-approved/messages")).status_code == 200
        replayed = await admin.post("/admin/dead-letters/product-created/replay")
        assert replayed.status_code == 200
        wrong = await admin.get(
            "/admin/designs", headers={"Authorization": f"Bearer {_secret('guess')}"}
        )
        assert wrong.status_code == 403
        body = msgspec.json.encode(design_event(sample_design("shop-1", 7, "logs")))
        hooked = await admin.post(
            "/webhooks/design-approved",
            content=body,
            headers=signed(operated.webhook_secret, body),
        )
        assert hooked.status_code == 202, hooked.text
        forged = await admin.post(
            "/webhooks/design-approved", content=body, headers=signed("whsec_" + "A" * 32, body)
        )
        assert forged.status_code == 401
        webhook_design = sample_design("shop-1", 7, "logs").design_id
        await watcher.wait_for(
            "pins.created", 1, where=lambda s: getattr(s.data, "design_id", "") == webhook_design
        )

    operated.proc.send_signal(signal.SIGTERM)
    assert await wait_exit(operated.proc, 60) == 0
    text = operated.log.read_text(errors="replace")
    operated.secrets |= _app_tokens_kept(operated.ledger)
    leaked = [what for what, value in operated.secrets.items() if value in text]
    assert leaked == [], f"secrets in the service log: {leaked}"

    # The run did go through the paths that could leak.
    events = log_lines(operated.log)
    codes = {e.get("code") for e in events if e.get("event") == "message.rejected"}
    assert {
        "MEDIA_FILE_DO_NOT_EXISTS",
        "UNAUTHORIZED",
        "MISSING_CREDENTIALS",
        "FOURTHWALL_APP_GRANT_REFUSED",
    } <= codes
    assert any(e.get("event") == "fourthwall_app.refreshed" for e in events)
    assert any(e.get("reason") == "attempts_exhausted" for e in events)
    actions = {e.get("action") for e in events if e.get("event") == "admin.action"}
    assert {"retry", "dead_letters.replay"} <= actions
    assert all(e.get("operator") == "ops-erin" for e in events if e.get("event") == "admin.action")


# Over 20 s on the CI machine: in `make slow` (CI runs it after `make test`).
@pytest.mark.slow
async def test_schemathesis_finds_no_server_error_and_no_response_off_the_schema(
    operated: Operated, tmp_path: Path
) -> None:
    schemathesis = Path(sys.executable).parent / "schemathesis"
    command = [
        str(schemathesis),
        "run",
        f"{operated.url}/schema/openapi.json",
        "--header",
        f"Authorization: Bearer {operated.admin_token}",
        "--checks",
        "not_a_server_error,response_schema_conformance,status_code_conformance,"
        "content_type_conformance",
        "--max-examples",
        "25",
        "--seed",
        "20261122",
        "--generation-database",
        "none",
        "--no-color",
        "--workers",
        "1",
    ]
    run = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=240, cwd=tmp_path
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    assert "passed" in output and "Coverage" in output and "Fuzzing" in output
    assert operated.admin_token not in output  # schemathesis sanitises it; so do we
    assert operated.proc.poll() is None  # the service survived the fuzzing
