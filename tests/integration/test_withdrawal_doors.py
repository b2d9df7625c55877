"""design.withdrawn comes in by every door a design.approved does: AMQP (test_withdrawals.py),
the signed webhook, the admin API's try-it route and ``merch-pipeline publish``; each refuses a
bad withdrawal with an error that names what is wrong, and publishes nothing then."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import msgspec
import pytest

from contracts.events import DesignWithdrawnV1
from service.samples import design_event, sample_design, withdrawal
from service.settings import load_settings
from service.testing.broker import watching
from service.testing.inprocess import running_service
from service.testing.sandbox import SandboxHandle
from tests.support import signed

pytestmark = pytest.mark.integration

SECRET = "whsec_" + base64.b64encode(b"secret-of-the-withdrawing-tool!!").decode()
TOKEN = "admin-token-for-tests-0123456789"
ROOT = Path(__file__).resolve().parents[2]


def _body(**changes: object) -> bytes:
    gone = withdrawal(sample_design("shop-1", 0, "doors-wd"), reason="typo")
    doc = msgspec.json.decode(msgspec.json.encode(design_event(gone)))
    doc["data"].update(changes)
    return msgspec.json.encode(doc)


async def test_the_webhook_and_the_admin_route_publish_a_withdrawal(
    service_env: dict[str, str], sandbox: SandboxHandle, amqp_url: str
) -> None:
    settings = load_settings({**service_env, "WEBHOOK_SECRETS": SECRET, "ADMIN_TOKEN": TOKEN})
    base = f"http://127.0.0.1:{settings.http_port}"
    auth = {"authorization": f"Bearer {TOKEN}"}
    async with (
        running_service(settings, ("product-created",)),
        watching(amqp_url, keys=("design.withdrawn",)) as watcher,
        httpx.AsyncClient(base_url=base) as http,
    ):
        body = _body()
        hooked = await http.post(
            "/webhooks/design-withdrawn", content=body, headers=signed(SECRET, body)
        )
        assert hooked.status_code == 202, hooked.text
        tried = await http.post("/admin/events/design-withdrawn", content=_body(), headers=auth)
        assert tried.status_code == 202, tried.text
        assert tried.json()["routing_key"] == "design.withdrawn"
        # bad ones: each refused with what is wrong, nothing published
        zero = _body(revision=0)
        refused = await http.post(
            "/webhooks/design-withdrawn", content=zero, headers=signed(SECRET, zero)
        )
        assert refused.status_code == 400 and "$.data.revision" in refused.json()["detail"]
        approval = msgspec.json.encode(design_event(sample_design("shop-1", 1, "doors-wd")))
        wrong_door = await http.post(
            "/webhooks/design-withdrawn", content=approval, headers=signed(SECRET, approval)
        )
        assert wrong_door.status_code == 400
        assert "merch.design.approved.v1" in wrong_door.json()["detail"]
        typo = await http.post(
            "/admin/events/design-withdrawn", content=_body(reasn="x"), headers=auth
        )
        assert typo.status_code == 400 and "$.data.reasn" in typo.json()["detail"]
        await watcher.wait_for("design.withdrawn", 2)
    assert len(watcher.of_type("design.withdrawn")) == 2
    assert all(isinstance(s.data, DesignWithdrawnV1) for s in watcher.of_type("design.withdrawn"))


def _cli(amqp_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AMQP_URL": amqp_url}
    return subprocess.run(
        [sys.executable, "-m", "service", "publish", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
    )


async def test_the_cli_publishes_a_withdrawal_from_its_data_alone(
    amqp_url: str, tmp_path: Path
) -> None:
    good = tmp_path / "withdrawn.json"
    good.write_text(json.dumps({"shop_id": "shop-1", "design_id": "dsg-1", "revision": 2}))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"shop_id": "shop-1"}))
    async with watching(amqp_url, keys=("design.withdrawn",)) as watcher:
        done = _cli(amqp_url, "design-withdrawn", str(good))
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["routing_key"] == "design.withdrawn"
        refused = _cli(amqp_url, "design-withdrawn", str(bad))
        (seen,) = await watcher.wait_for("design.withdrawn", 1)
    assert refused.returncode == 2 and "design_id" in refused.stderr
    assert isinstance(seen.data, DesignWithdrawnV1)
    assert (seen.data.design_id, seen.data.revision) == ("dsg-1", 2)
