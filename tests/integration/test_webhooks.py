"""The signed webhook ingress against the real broker: what reaches merch.events, once."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from standardwebhooks.webhooks import Webhook

from service.samples import design_event, sample_design
from service.settings import Settings, load_settings
from service.testing.broker import watching
from service.testing.inprocess import running_service
from service.testing.polling import eventually
from service.testing.proxy import proxied
from service.testing.sandbox import SandboxHandle
from service.webhooks.example import readme_block
from tests.strategies import generated_bodies
from tests.support import signed

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
OLD = "whsec_" + base64.b64encode(b"old-secret-of-the-design-tool!!!").decode()
NEW = "whsec_" + base64.b64encode(b"new-secret-of-the-design-tool!!!").decode()
PARTNER = "whsec_" + base64.b64encode(b"partner-secret-0123456789abcdef").decode()


def test_standard_webhooks_specification_vector() -> None:
    # The test vector published with the Standard Webhooks specification.
    hook = Webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    signature = hook.sign(
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        datetime.fromtimestamp(1614265330, tz=UTC),
        '{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def structured(n: int = 0) -> bytes:
    return msgspec.json.encode(design_event(sample_design("shop-1", n, "hook")))


@pytest.fixture
async def hook_service(
    service_env: dict[str, str], sandbox: SandboxHandle, amqp_url: str, tmp_path: Path
) -> AsyncIterator[tuple[str, Settings]]:
    config = Path(service_env["CONFIG_FILE"])
    config.write_text(
        config.read_text() + f'\n[[producers]]\nname = "partner"\nsecrets = ["{PARTNER}"]\n'
    )
    settings = load_settings(
        {
            **service_env,
            "WEBHOOK_SECRETS": f"{OLD},{NEW}",
            "WEBHOOK_MAX_BATCH": "3",
            "MAX_MESSAGE_BYTES": "20000",
            "WEBHOOK_RATE_PER_MINUTE": "30",
        }
    )
    async with running_service(settings, ("product-created",)):
        yield f"http://127.0.0.1:{settings.http_port}/webhooks/design-approved", settings


async def post(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(url, content=body, headers=headers)


async def test_structured_binary_and_batch_reach_the_exchange_once(
    hook_service: tuple[str, Settings], amqp_url: str
) -> None:
    url, _ = hook_service
    async with watching(amqp_url, keys=("design.approved",)) as watcher:
        one = structured(1)
        r1 = await post(url, one, signed(NEW, one))
        data = msgspec.json.encode(sample_design("shop-2", 2, "hook"))
        binary = {
            "ce-specversion": "1.0",
            "ce-id": "bin-evt-1",
            "ce-source": "urn:tool",
            "ce-type": "merch.design.approved.v1",
        }
        r2 = await post(
            url, data, signed(PARTNER, data, content_type="application/json", extra=binary)
        )
        batch = b"[" + structured(3) + b"," + structured(4) + b"]"
        r3 = await post(
            url, batch, signed(OLD, batch, content_type="application/cloudevents-batch+json")
        )
        assert [r.status_code for r in (r1, r2, r3)] == [202, 202, 202], [
            r.text for r in (r1, r2, r3)
        ]
        assert r3.json()["accepted"] == 2
        seen = await watcher.wait_for("design.approved", 4)
    assert len({s.event.id for s in seen}) == 4
    assert "bin-evt-1" in {s.event.id for s in seen}
    assert all(s.message_id == s.event.id for s in seen)


async def test_a_replayed_webhook_id_publishes_nothing_new(
    hook_service: tuple[str, Settings], amqp_url: str
) -> None:
    url, _ = hook_service
    body = structured(5)
    headers = signed(NEW, body, webhook_id="msg_replayed")
    async with watching(amqp_url, keys=("design.approved",)) as watcher:
        first = await post(url, body, headers)
        await watcher.wait_for("design.approved", 1)
        again = await post(url, body, signed(NEW, body, webhook_id="msg_replayed"))
        probe = structured(6)  # a marker after the replay: once it is seen, the replay is not
        await post(url, probe, signed(NEW, probe))
        await watcher.wait_for("design.approved", 2)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["duplicate"] is True
    assert len(watcher.of_type("design.approved")) == 2


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("wrong signature", 401),
        ("stale timestamp", 401),
        ("rotated-out secret", 401),
        ("oversized body", 413),
        ("wrong content type", 415),
        ("malformed event", 400),
        ("too many in a batch", 413),
    ],
)
async def test_bad_deliveries_get_their_status_and_publish_nothing(
    hook_service: tuple[str, Settings], amqp_url: str, case: str, status: int
) -> None:
    url, _ = hook_service
    body = structured(7)
    headers = signed(NEW, body)
    if case == "wrong signature":
        headers["webhook-signature"] = "v1," + base64.b64encode(b"x" * 32).decode()
    elif case == "stale timestamp":
        headers = signed(NEW, body, timestamp=time.time() - 600)
    elif case == "rotated-out secret":
        retired = "whsec_" + base64.b64encode(b"a-secret-rotated-out-last-month").decode()
        headers = signed(retired, body)
    elif case == "oversized body":
        body = b'{"pad":"' + b"x" * 30_000 + b'"}'
        headers = signed(NEW, body)
    elif case == "wrong content type":
        headers = signed(NEW, body, content_type="text/plain")
    elif case == "malformed event":
        doc = msgspec.json.decode(body)
        doc["data"]["revision"] = "two"
        body = msgspec.json.encode(doc)
        headers = signed(NEW, body)
    elif case == "too many in a batch":
        body = b"[" + b",".join(structured(n) for n in range(4)) + b"]"
        headers = signed(NEW, body, content_type="application/cloudevents-batch+json")
    async with watching(amqp_url, keys=("design.approved",)) as watcher:
        response = await post(url, body, headers)
        marker = structured(8)
        assert (await post(url, marker, signed(NEW, marker))).status_code == 202
        await watcher.wait_for("design.approved", 1)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status and problem["title"] and problem["detail"]
    if status == 401:  # one answer, whatever part failed
        assert problem["detail"] == "The webhook signature could not be verified."
    if case == "malformed event":
        assert "$.data.revision" in problem["detail"]
    assert len(watcher.of_type("design.approved")) == 1  # only the marker


async def test_the_producer_rate_limit_answers_429_with_retry_after(
    service_env: dict[str, str], sandbox: SandboxHandle, amqp_url: str
) -> None:
    settings = load_settings(
        {**service_env, "WEBHOOK_SECRETS": NEW, "WEBHOOK_RATE_PER_MINUTE": "2"}
    )
    url = f"http://127.0.0.1:{settings.http_port}/webhooks/design-approved"
    async with running_service(settings, ("product-created",)):
        answers = []
        for n in range(3):
            body = structured(20 + n)
            answers.append(await post(url, body, signed(NEW, body)))
    assert [a.status_code for a in answers] == [202, 202, 429]
    assert int(answers[2].headers["retry-after"]) >= 1


async def test_without_a_secret_the_endpoint_is_off(
    settings: Settings, sandbox: SandboxHandle
) -> None:
    async with running_service(settings, ("product-created",)):
        body = structured(9)
        response = await post(
            f"http://127.0.0.1:{settings.http_port}/webhooks/design-approved",
            body,
            signed(NEW, body),
        )
    assert response.status_code == 404


async def test_broker_down_is_503_and_the_retry_is_accepted_once(
    service_env: dict[str, str], sandbox: SandboxHandle, amqp_url: str
) -> None:
    body = structured(10)
    # the service reaches the broker through a proxy of its own: cutting it is its outage only
    async with (
        proxied(amqp_url, 5672) as (service_url, proxy),
        running_service(
            load_settings({**service_env, "AMQP_URL": service_url, "WEBHOOK_SECRETS": NEW}),
            ("product-created",),
        ) as service,
        watching(amqp_url, keys=("design.approved",)) as watcher,
    ):
        url = f"http://127.0.0.1:{service.settings.http_port}/webhooks/design-approved"
        await proxy.cut()
        try:

            async def refused() -> httpx.Response | None:
                response = await post(url, body, signed(NEW, body, webhook_id="msg_outage"))
                return response if response.status_code == 503 else None

            down = await eventually(refused, timeout=20, what="503 while the broker is down")
            assert int(down.headers["retry-after"]) >= 1
        finally:
            await proxy.restore()

        async def accepted() -> httpx.Response | None:
            response = await post(url, body, signed(NEW, body, webhook_id="msg_outage"))
            return response if response.status_code == 202 else None

        await eventually(accepted, timeout=60, what="the retried delivery accepted")
        again = await post(url, body, signed(NEW, body, webhook_id="msg_outage"))
        await watcher.wait_for("design.approved", 1)
    assert again.json()["duplicate"] is True
    assert len(watcher.of_type("design.approved")) == 1


async def test_readme_curl_example_is_current_and_reaches_pins_created(
    service_env: dict[str, str], sandbox: SandboxHandle, amqp_url: str
) -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(
        r"<!-- webhook-curl-example:start -->\n(.*?)<!-- webhook-curl-example:end", readme, re.S
    )
    assert block is not None and block.group(1) == readme_block()  # never stale
    script = block.group(1).removeprefix("```bash\n").removesuffix("```\n")
    settings = load_settings({**service_env, "WEBHOOK_SECRETS": NEW})
    env: dict[str, Any] = {
        **os.environ,
        "SECRET": NEW,
        "URL": f"http://127.0.0.1:{settings.http_port}/webhooks/design-approved",
    }
    async with watching(amqp_url) as watcher, running_service(settings):
        result = await asyncio.to_thread(
            subprocess.run,
            ["bash", "-euo", "pipefail", "-c", script],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert msgspec.json.decode(result.stdout)["accepted"] == 1
        pins = (await watcher.wait_for("pins.created", 1))[0]
    assert pins.data.design_id.startswith("dsg-msg_")  # type: ignore[union-attr]


# Over 20 s on the CI machine: in `make slow` (CI runs it after `make test`).
@pytest.mark.slow
async def test_generated_bodies_through_the_signed_webhook_get_202_or_a_400_naming_the_field(
    service_env: dict[str, str], sandbox: SandboxHandle
) -> None:
    """The every-door events (valid, and one field just outside its bound), signed: a valid one
    is accepted, an invalid one is a 400 problem naming the field and the rule; never a 5xx."""
    settings = load_settings(
        {**service_env, "WEBHOOK_SECRETS": NEW, "WEBHOOK_RATE_PER_MINUTE": "100000"}
    )
    url = f"http://127.0.0.1:{settings.http_port}/webhooks/design-approved"
    statuses: dict[int, int] = {}
    async with running_service(settings, ("product-created",)):
        for body in generated_bodies(300):
            answer = await post(url, body, signed(NEW, body))
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
            assert answer.status_code in (202, 400), answer.text
            if answer.status_code == 400:
                problem = answer.json()
                assert problem["type"].startswith("urn:merch-pipeline:problem:")
                assert "$.data." in problem["detail"], problem  # the field, with the rule
    assert statuses.get(202) and statuses.get(400), statuses
